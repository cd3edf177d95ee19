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


def require_columns(frame, columns, file: str, needed_by: str) -> None:
    """Raise a DataError naming the file and the missing columns, if any are missing.

    ``frame`` is a DataFrame (anything with ``columns``); ``needed_by`` says which step needs
    them (e.g. ``"model M4"``).
    """
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(
            f"{file}: column(s) {', '.join(missing)} needed by {needed_by} are missing; rerun "
            "the step of the pipeline that writes it."
        )
