"""``jigsaw keys``: Jigsaw's own key; make, revoke and list agency signing keys (and API credentials).

    jigsaw keys init [--file PATH]
    jigsaw keys new ORG_ID --kind KIND [--valid-from TIME]
    jigsaw keys revoke KEY_ID [--at TIME]
    jigsaw keys list [--json]
    jigsaw keys credential ORG_ID --role ROLE [--file PATH]
    jigsaw keys credentials [--file PATH]
    jigsaw keys revoke-credential ID [--file PATH]

Keys live in ``JIGSAW_KEYS_DIR`` (default ``.jigsaw/keys``). ``new`` writes the
public record there and the private key to ``private/<key_id>.json`` (0600):
hand that file to the agency's adapter and remove it from the broker's box.
``init`` makes Jigsaw's own signing key (webhooks and checkpoints) at
``JIGSAW_SIGNING_KEY_FILE`` (0600), refusing to overwrite one, and writes its
public key beside the agency keys for ``jigsaw replay``. The other actions
never read that file, so they run before it exists.

A running ``jigsaw serve`` sees new and revoked keys and credentials within a
few seconds (or at once on SIGHUP): no restart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

from broker.audit.checkpoint import PUBLIC_KEY_FILE, public_key_line
from broker.delivery.signing import WebhookKey
from broker.envelope.keys import KeyStore, new_key
from broker.errors import ConfigError
from broker.gateway.auth import ROLES, add_credential, list_credentials, revoke_credential
from broker.settings import Settings
from broker.topics import ORG_KINDS

__all__ = ["add_arguments", "init_signing_key", "run"]


def _time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a zone, e.g. 2024-01-01T00:00:00Z")
    return moment.astimezone(dt.UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``keys`` subcommands."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="make Jigsaw's own signing key (webhooks, checkpoints); never overwrites")
    init.add_argument("--file", type=Path, default=None, help="default: JIGSAW_SIGNING_KEY_FILE")
    new = sub.add_parser("new", help="make a key pair for one organisation")
    new.add_argument("org_id", metavar="ORG_ID")
    new.add_argument("--kind", required=True, choices=ORG_KINDS, help="the organisation's kind")
    new.add_argument("--valid-from", type=_time, default=None, help="ISO time (default: now)")
    revoke = sub.add_parser("revoke", help="revoke a key from a time on (default: now)")
    revoke.add_argument("key_id", metavar="KEY_ID")
    revoke.add_argument("--at", type=_time, default=None, help="ISO time (default: now)")
    listing = sub.add_parser("list", help="list every key")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    cred = sub.add_parser("credential", help="add an API bearer token for an organisation; prints it once")
    cred.add_argument("org_id", metavar="ORG_ID")
    cred.add_argument("--role", required=True, choices=ROLES)
    cred.add_argument("--label", default="")
    cred.add_argument("--file", type=Path, default=None, help="default: JIGSAW_CREDENTIALS_FILE")
    creds = sub.add_parser("credentials", help="list the API credentials (ids, organisations, roles, labels)")
    creds.add_argument("--file", type=Path, default=None, help="default: JIGSAW_CREDENTIALS_FILE")
    drop = sub.add_parser("revoke-credential", help="remove an API credential by its id (see credentials)")
    drop.add_argument("credential_id", metavar="ID")
    drop.add_argument("--file", type=Path, default=None, help="default: JIGSAW_CREDENTIALS_FILE")


def init_signing_key(path: Path, keys_dir: Path) -> WebhookKey:
    """Make Jigsaw's own signing key at ``path`` (0600), and its public key in ``keys_dir`` if none is there.

    Raises:
        ConfigError: ``path`` exists already (it is never overwritten) or cannot be written.
    """
    key = WebhookKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already: Jigsaw's signing key is never overwritten") from None
    except OSError as exc:
        raise ConfigError(f"cannot write the signing key {path}: {exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(key.secret_text() + "\n")
    public = keys_dir / PUBLIC_KEY_FILE
    if not public.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        public.write_text(public_key_line(key.private_key) + "\n", encoding="utf-8")
    return key


def run(args: argparse.Namespace) -> int:
    """Run one ``keys`` action; the exit code."""
    env = dict(os.environ)
    credentials_file = env.pop("JIGSAW_CREDENTIALS_FILE", None)  # may not exist yet for `credential`
    signing_key_file = env.pop("JIGSAW_SIGNING_KEY_FILE", None)  # may not exist yet: `init` makes it
    settings = Settings.from_env(env)
    store = KeyStore(settings.keys_dir)
    now = dt.datetime.now(dt.UTC)
    if args.action == "init":
        target = args.file or (Path(signing_key_file) if signing_key_file else None)
        if target is None:
            raise ConfigError("name the signing key file with --file or JIGSAW_SIGNING_KEY_FILE")
        key = init_signing_key(target, settings.keys_dir)
        line = public_key_line(key.private_key)
        public = settings.keys_dir / PUBLIC_KEY_FILE
        kept = public.read_text(encoding="utf-8").strip() == line
        print(f"Jigsaw's signing key {key.key_id} written to {target} (0600; keep it secret)")
        print(f"public key: {line} ({'written to ' if kept else 'NOT written: another key is in '}{public})")
        return 0
    if args.action == "new":
        record, signing = new_key(args.org_id, args.kind, valid_from=args.valid_from or now)
        store.save(record, signing)
        valid_from = record.to_json()["valid_from"]
        print(f"key {record.key_id} for {record.org_id} ({record.kind}), valid from {valid_from}")
        print(f"private key: {store.private_path(record.key_id)} (give it to the agency; keep it 0600)")
        return 0
    if args.action == "revoke":
        revoked = store.revoke(args.key_id, args.at or now)
        print(f"key {revoked.key_id} revoked at {revoked.to_json()['revoked_at']}")
        return 0
    if args.action == "list":
        for record in store.load():
            data = record.to_json()
            if args.json:
                print(json.dumps(data))
            else:
                state = f"revoked {data['revoked_at']}" if data["revoked_at"] else "active"
                print(f"{data['key_id']}\t{data['org_id']}\t{data['kind']}\tfrom {data['valid_from']}\t{state}")
        return 0
    path = args.file or (Path(credentials_file) if credentials_file else None)
    if path is None:
        raise ConfigError("name the credentials file with --file or JIGSAW_CREDENTIALS_FILE")
    if args.action == "credentials":
        for entry in list_credentials(path):
            print(f"{entry['id']}\t{entry['org_id']}\t{entry['role']}\t{entry['label']}")
        return 0
    if args.action == "revoke-credential":
        removed = revoke_credential(path, args.credential_id)
        print(f"credential {removed['id']} ({removed['org_id']}, {removed['role']}) revoked")
        return 0
    token = add_credential(path, args.org_id, args.role, args.label)
    print(token)
    return 0
