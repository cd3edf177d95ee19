"""Running a pipeline step from a Snakemake script: logging to the rule's log, clean user errors.

Every ``workflow/scripts/*.py`` calls :func:`run_step` with a function that does the step. A
:class:`~analysis.errors.UserError` (bad config or data) ends the step with its one message,
written to the log and to stderr, and exit status 1: no traceback for a mistake the user can fix.
Any other exception is a bug and keeps its traceback in the log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Callable

from analysis.errors import UserError

log = logging.getLogger("analysis")


def configure_logging(log_path: str | Path | None) -> None:
    """Send the package's log records to ``log_path`` (and stderr), one line each."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def run_step(step: Callable[[], None], log_path: str | Path | None = None) -> None:
    """Run ``step``; turn a ``UserError`` into one clear message and exit status 1."""
    configure_logging(log_path)
    try:
        step()
    except UserError as error:
        log.error("%s", error)
        print(f"\nERROR: {error}\n", file=sys.stderr)
        sys.exit(1)
    except Exception:
        log.error("internal error (please report it):\n%s", traceback.format_exc())
        raise


def snakemake_log(snakemake_object) -> str | None:
    """The first log file of a Snakemake rule, if it declares one."""
    logs = list(getattr(snakemake_object, "log", []) or [])
    return str(logs[0]) if logs else None
