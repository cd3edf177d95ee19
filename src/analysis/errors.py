"""Error types for mistakes a user can make (bad config, bad data).

A ``UserError`` carries one message that names the file, row, column or config key at fault and
says what to do. Scripts catch it and print the message without a traceback; anything else is a
bug in the pipeline and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: the message says where and how."""


class ConfigError(UserError):
    """The configuration is wrong: the message names the key."""


class DataError(UserError):
    """An input file cannot be used: the message names the file, row and column."""
