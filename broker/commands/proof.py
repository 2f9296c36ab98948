"""``jigsaw proof``: check a Merkle proof file (inclusion of one record, or consistency of two tree heads).

    jigsaw proof --verify FILE [--key KEY_FILE]

Prints ``OK: <what the proof shows>`` and exits 0, or ``FAILED: <reason>`` and
exits 1. Jigsaw's public key comes from ``--key`` (``whpk_...`` or PEM), else
``JIGSAW_KEYS_DIR/jigsaw-checkpoint.pub`` when it exists, else the proof file
itself (and the output says so: compare it with the key Jigsaw publishes).
The format is in ``broker/audit/proofs.md``; ``broker/audit/standalone_verify.py``
checks the same files with no Jigsaw installed.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.checkpoint import PUBLIC_KEY_FILE, load_public_key
from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_proof import verify_proof
from broker.errors import ConfigError
from broker.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``proof`` options."""
    parser.add_argument("--verify", type=Path, metavar="FILE", required=True, help="a proof JSON file to check")
    parser.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help=f"Jigsaw's public key, whpk_... or PEM (default: JIGSAW_KEYS_DIR/{PUBLIC_KEY_FILE}, else the proof's own)",
    )


def _key(args: argparse.Namespace) -> Ed25519PublicKey | None:
    if args.key is not None:
        return load_public_key(args.key)
    default = Settings.from_env(dict(os.environ)).keys_dir / PUBLIC_KEY_FILE
    return load_public_key(default) if default.is_file() else None


def run(args: argparse.Namespace) -> int:
    """Check the proof file; 0 when it verifies, 1 when it does not."""
    try:
        doc = json.loads(args.verify.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read the proof file {args.verify}: {exc}") from exc
    if not isinstance(doc, dict):
        print("FAILED: the proof file is not a JSON object")
        return 1
    try:
        print("OK: " + verify_proof(doc, _key(args)))
    except ProofInvalid as exc:
        print(f"FAILED: {exc.message}")
        return 1
    return 0
