"""The command line: ``python -m analysis.simulate`` (also ``alliance-simulate``)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from analysis.errors import UserError
from analysis.simulate.exports import write_study
from analysis.simulate.generator import simulate_study
from analysis.simulate.parameters import ALLIANCE_DRIVERS


def main(argv: Sequence[str] | None = None) -> int:
    """Simulate a study and write its raw exports (see :mod:`analysis.simulate`)."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.simulate",
        description="Simulate raw therapy-service exports (sessions.csv, outcomes.csv) with "
        "known alliance effects, and truth.yaml with every generating parameter.",
    )
    parser.add_argument("--clients", type=int, required=True, help="number of clients")
    parser.add_argument("--therapists", type=int, required=True, help="number of therapists")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", required=True, help="folder to write the files into")
    parser.add_argument(
        "--max-sessions", type=int, default=16, help="most sessions a client attends (16)"
    )
    parser.add_argument(
        "--no-identifiers", action="store_true", help="leave out names, contacts and notes"
    )
    parser.add_argument(
        "--no-invalid", action="store_true", help="leave out invalid rows for the cleaning stage"
    )
    parser.add_argument(
        "--alliance-driver", choices=ALLIANCE_DRIVERS, default="observed",
        help="what drives symptoms: the observed WAI-SR score (default) or the latent true "
        "alliance, measured with the WAI-SR's reliability",
    )
    parser.add_argument(
        "--engagement", action="store_true",
        help="add attendance and endings: dropout whose hazard depends on the alliance (a known "
        "effect), an ending column, missed appointments and a status column",
    )
    args = parser.parse_args(argv)
    try:
        study = simulate_study(
            args.clients,
            args.therapists,
            args.seed,
            max_sessions=args.max_sessions,
            identifiers=not args.no_identifiers,
            invalid_rows=not args.no_invalid,
            alliance_driver=args.alliance_driver,
            engagement=args.engagement,
        )
    except UserError as error:
        parser.error(str(error))
    write_study(study, args.out)
    print(
        f"wrote {len(study.sessions)} session rows and {len(study.outcomes)} outcome rows "
        f"for {args.clients} clients to {args.out}",
        file=sys.stderr,
    )
    return 0
