"""``jigsaw simulate SCENARIO.json [--keep-log FILE]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from broker.errors import ScenarioError
from broker.logging import configure_logging
from broker.simulate import load_scenario, run_scenario


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", type=Path, help="a scenario file (see scenarios.md)")
    parser.add_argument(
        "--keep-log",
        type=Path,
        metavar="FILE",
        help="keep the embedded log in FILE (and the public keys in FILE.keys/) for jigsaw replay",
    )


def run(args: argparse.Namespace) -> int:
    configure_logging("json", "warning")
    try:
        scenario = load_scenario(args.scenario)
        if args.keep_log is not None and args.keep_log.exists():
            raise ScenarioError(f"--keep-log {args.keep_log} already exists; name a new file")
        return asyncio.run(run_scenario(scenario, sys.stdout, keep_log=args.keep_log))
    except ScenarioError as exc:
        print(f"jigsaw simulate: {exc.message}", file=sys.stderr)
        return 2
