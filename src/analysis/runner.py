"""Running a pipeline step from a Snakemake script: logging to the rule's log, clean user errors.

Every ``workflow/scripts/*.py`` calls :func:`run_step` with a function that does the step. The
console stays quiet: the step's log file gets every record (INFO and up), the console only
warnings, and a :class:`~analysis.errors.UserError` (bad config or data) is shown once, as one
message without a traceback, with exit status 1. A step that runs out of memory stops with a
message naming the job and the size of its data (set with :func:`note_size`) and what to do.
Any other exception is a bug and keeps its traceback in the log.
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from analysis.errors import UserError

log = logging.getLogger("analysis")

# What the running step is working on, for the out-of-memory message (see note_size).
_SIZE: dict[str, Any] = {}


def configure_logging(log_path: str | Path | None) -> None:
    """Send the package's records to ``log_path`` (INFO and up) and warnings to stderr."""
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    handlers: list[logging.Handler] = [console]
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


def note_size(**size: Any) -> None:
    """Record the size of what the step works on (``rows=``, ``clients=``, ...) for messages."""
    _SIZE.update(size)


def run_step(step: Callable[[], None], log_path: str | Path | None = None,
             job: str = "this step") -> None:
    """Run ``step``; turn a ``UserError`` or a lack of memory into one clear message."""
    configure_logging(log_path)
    _SIZE.clear()
    try:
        step()
    except UserError as error:
        _stop(str(error))
    except MemoryError:
        size = ", ".join(f"{value:,} {name}" if isinstance(value, int) else f"{name} {value}"
                         for name, value in _SIZE.items()) or "its inputs"
        _stop(f"{job} ran out of memory working on {size}. Give the job more memory (a machine "
              "with more RAM, or a larger mem_mb for this rule in your cluster profile), or "
              "run fewer jobs at once (--cores / --jobs).")
    except Exception as error:
        # A bug, not the user's doing: the traceback goes to the log, one line to the console.
        _log_only(f"internal error (please report it):\n{traceback.format_exc()}")
        where = f"; the traceback is in {log_path}" if log_path else ""
        print(f"\nERROR: internal error in {job} (please report it{where}): "
              f"{type(error).__name__}: {error}\n", file=sys.stderr)
        sys.exit(1)


def _log_only(message: str) -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.makeLogRecord({"levelname": "ERROR", "name": "analysis",
                                                "levelno": logging.ERROR, "msg": message}))


def _stop(message: str) -> None:
    # The log file keeps the message; the console shows it once.
    _log_only(message)
    print(f"\nERROR: {message}\n", file=sys.stderr)
    sys.exit(1)


def snakemake_log(snakemake_object) -> str | None:
    """The first log file of a Snakemake rule, if it declares one."""
    logs = list(getattr(snakemake_object, "log", []) or [])
    return str(logs[0]) if logs else None


def job_name(snakemake_object) -> str:
    """``rule fit_model (outcome=phq9, model=M2, ...)``: the job, for messages."""
    wildcards = dict(getattr(snakemake_object, "wildcards", {}) or {})
    details = ", ".join(f"{name}={value}" for name, value in wildcards.items())
    rule = getattr(snakemake_object, "rule", "step")
    return f"job {rule}" + (f" ({details})" if details else "")


def run_job(step: Callable[[], None], snakemake_object) -> None:
    """:func:`run_step` for a Snakemake script: the rule's log, the job's name in messages."""
    run_step(step, snakemake_log(snakemake_object), job_name(snakemake_object))
