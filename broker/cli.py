"""The ``jigsaw`` command. Each subcommand lives in ``broker/commands/<name>.py``
with ``add_arguments(parser)`` and ``run(args) -> int``; modules are imported
only when their subcommand runs, so ``jigsaw --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from broker.errors import JigsawError

__all__ = ["main"]

COMMANDS: dict[str, str] = {
    "serve": "run the HTTP gateway, router, dispatcher and views (JIGSAW_ROLES picks a subset)",
    "simulate": "run a scenario file through the real pipeline on a virtual clock",
    "replay": "verify a log: signatures, hash chain, routing decisions; write a child's chronology",
    "keys": "Jigsaw's own key (init); make, revoke and list agency signing keys; credentials",
    "adapter": "turn an agency's export file into signed events and send them to the gateway",
    "demo": "start Jigsaw on the embedded log and publish the review's three cases through it",
    "proof": "check a Merkle proof file: one record's inclusion, or two signed tree heads' consistency",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jigsaw", description="Inter-agency safeguarding message broker.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one subcommand; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not args or args[0] not in COMMANDS:
        parser.parse_args(args)  # prints usage or help and exits
        return 2
    name = args[0]
    module = importlib.import_module(f"broker.commands.{name}")
    sub = argparse.ArgumentParser(prog=f"jigsaw {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    parsed = sub.parse_args(args[1:])
    try:
        return int(module.run(parsed))
    except JigsawError as exc:
        print(f"jigsaw {name}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
