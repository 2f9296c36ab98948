"""The Avro schemas in ``schemas/``: loaded and parsed once, found by type or fingerprint.

The top-level ``schemas/`` directory is installed as the package
``broker._schemas`` (setup.py maps it), so a wheel carries the schemas and an
editable install reads them in place; both are found through
``importlib.resources``.

Each event schema references the shared named types in ``schemas/types/`` by
full name (``jigsaw.PersonRef``). To fingerprint a writer schema it is made
standalone first: the first reference to each shared type is replaced by its
definition, later references stay names (Avro forbids defining a name twice).
The fingerprint is CRC-64-AVRO of the Parsing Canonical Form, as 8 bytes in
the little-endian order of Avro's single-object encoding. Released versions
under ``schemas/released/<version>/`` are loaded too, so data written with an
older writer schema is still found by its fingerprint; no registry server.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from broker.errors import ConfigError, SchemaInvalid

__all__ = [
    "ENVELOPE_TYPE",
    "SCHEMAS_DIR",
    "Catalogue",
    "Schema",
    "compile_schema",
    "default_catalogue",
    "load_catalogue",
    "standalone",
]

SCHEMAS_PACKAGE = "broker._schemas"


def _schemas_dir() -> Path:
    """Where the installed schemas are: a real directory (wheels and editable installs unpack them)."""
    root = importlib.resources.files(SCHEMAS_PACKAGE)
    if not isinstance(root, Path):  # a zipped install: the schemas are read from disk, by path
        raise ConfigError(f"the schemas package {SCHEMAS_PACKAGE} is not a directory on disk ({root})")
    return root


SCHEMAS_DIR = _schemas_dir()
ENVELOPE_TYPE = "envelope"
CURRENT = "current"


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Schema:
    """One writer schema, parsed once."""

    event_type: str  # "envelope" for the envelope schema
    version: str  # "current" or a released version such as "v1"
    source: Mapping[str, Any]  # standalone JSON (shared types inlined)
    parsed: Any  # fastavro's parsed form
    canonical: str  # Parsing Canonical Form
    fingerprint: bytes  # CRC-64-AVRO, 8 bytes little-endian

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as 16 hex digits (as fastavro prints it)."""
        return self.fingerprint.hex()


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Catalogue:
    """Every schema: current ones by event type, all versions by fingerprint."""

    envelope: Schema
    by_type: Mapping[str, Schema]
    by_fingerprint: Mapping[bytes, Schema]
    released: Mapping[str, Mapping[str, Schema]]  # version -> event type (and "envelope") -> schema

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every event type with a current schema, sorted."""
        return tuple(sorted(self.by_type))

    def for_type(self, event_type: str) -> Schema:
        """The current schema of an event type.

        Raises:
            SchemaInvalid: there is no such event type.
        """
        try:
            return self.by_type[event_type]
        except KeyError:
            raise SchemaInvalid(f"unknown event type {event_type!r}", event_type=event_type) from None

    def for_fingerprint(self, fp: bytes) -> Schema:
        """The writer schema (any version) with this fingerprint.

        Raises:
            SchemaInvalid: no known schema has this fingerprint.
        """
        try:
            return self.by_fingerprint[fp]
        except KeyError:
            raise SchemaInvalid(f"no known schema has fingerprint {fp.hex()}", fingerprint=fp.hex()) from None


def _fullname(schema: Mapping[str, Any]) -> str:
    name = str(schema["name"])
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def standalone(schema: Any, shared: Mapping[str, Mapping[str, Any]]) -> Any:
    """A copy of ``schema`` with the first reference to each shared named type inlined.

    Args:
        schema: a schema as loaded from JSON.
        shared: shared named types by full name (``jigsaw.PersonRef``).
    """
    defined: set[str] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            if node in shared and node not in defined:
                defined.add(node)
                return walk(copy.deepcopy(dict(shared[node])))
            return node
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            if node.get("type") in ("record", "error", "enum", "fixed") and "name" in node:
                defined.add(_fullname(node))
            out = dict(node)
            if "fields" in out:
                out["fields"] = [{**fld, "type": walk(fld["type"])} for fld in out["fields"]]
            for key in ("items", "values"):
                if key in out:
                    out[key] = walk(out[key])
            if isinstance(out.get("type"), (list, dict)) or out.get("type") in shared:
                out["type"] = walk(out["type"])
            return out
        return node

    return walk(schema)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the schema {path}: {exc}") from exc


def compile_schema(name: str, source: Any, *, version: str = CURRENT, origin: str = "") -> Schema:
    """Parse and fingerprint one standalone schema (for framings that are not events).

    Raises:
        ConfigError: the schema does not parse.
    """
    try:
        parsed = parse_schema(source)
        canonical = to_parsing_canonical_form(parsed)
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise ConfigError(f"the schema {origin or name} does not parse: {exc}") from exc
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return Schema(name, version, source, parsed, canonical, fp)


def _load_tree(root: Path, version: str) -> dict[str, Schema]:
    shared: dict[str, Mapping[str, Any]] = {}
    types_dir = root / "types"
    if types_dir.is_dir():
        for path in sorted(types_dir.glob("*.avsc")):
            schema = _read_json(path)
            shared[_fullname(schema)] = schema
    schemas: dict[str, Schema] = {}
    for path in sorted(root.glob("*.avsc")):
        event_type = path.name.removesuffix(".avsc")
        schemas[event_type] = compile_schema(
            event_type, standalone(_read_json(path), shared), version=version, origin=str(path)
        )
    if ENVELOPE_TYPE not in schemas:
        raise ConfigError(f"{root} has no envelope.avsc")
    return schemas


def load_catalogue(root: Path = SCHEMAS_DIR) -> Catalogue:
    """Load, inline and fingerprint every schema under ``root`` and ``root/released/*``.

    Raises:
        ConfigError: a schema file is missing, unreadable or invalid.
    """
    current = _load_tree(root, CURRENT)
    released: dict[str, Mapping[str, Schema]] = {}
    released_dir = root / "released"
    if released_dir.is_dir():
        for version_dir in sorted(p for p in released_dir.iterdir() if p.is_dir()):
            released[version_dir.name] = _load_tree(version_dir, version_dir.name)
    by_fingerprint: dict[bytes, Schema] = {}
    for tree in [*released.values(), current]:  # current last: it wins on identical fingerprints
        for event_type, schema in tree.items():
            if event_type != ENVELOPE_TYPE:
                by_fingerprint[schema.fingerprint] = schema
    envelope = current.pop(ENVELOPE_TYPE)
    return Catalogue(envelope=envelope, by_type=current, by_fingerprint=by_fingerprint, released=released)


@functools.cache
def default_catalogue() -> Catalogue:
    """The catalogue in the installed schemas (``schemas/`` in the repository), loaded once per process."""
    return load_catalogue(SCHEMAS_DIR)
