"""The Merkle tree of one topic partition of a log, and proofs of its records (the imperative shell).

Leaf ``i`` of a partition's tree is the record at offset ``i`` (``merkle_leaf``),
kept in a ``TreeStore``. ``extend_tree`` appends what the log holds beyond the
tree; ``find_record`` looks a record up by a header (``event_id``) with a scan,
until the serving views index it; ``prove_record`` builds the inclusion proof
document of one record against a signed tree head.

The elected sealer (``sealer.py``) keeps the tree over the input topic and
publishes its heads; ``jigsaw proof`` rebuilds the same tree from the log and
proves against the newest published head (or over a notifications partition).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.merkle_proof import inclusion_proof
from broker.audit.sth import SignedTreeHead
from broker.audit.tree_store import TreeStore
from broker.log.base import Log, Record
from broker.log.scan import read_available

__all__ = ["extend_tree", "find_record", "prove_record"]


async def extend_tree(log: Log, store: TreeStore, topic: str, *, partition: int = 0, limit: int = 5000) -> int:
    """Append the leaf of every record of the partition from ``store.size`` on; the tree's new size.

    Raises:
        ProofInvalid: the log skips an offset, so leaf positions would no longer be offsets.
    """
    while records := await read_available(log, topic, store.size, partition=partition, limit=limit):
        expected = store.size
        for i, record in enumerate(records):
            if record.offset != expected + i:
                raise ProofInvalid(
                    f"{topic}:{partition} jumps from offset {expected + i - 1} to {record.offset}; "
                    "a tree over it would not number leaves by offset",
                )
        store.append_many(record_leaf_hash(r) for r in records)
    return store.size


async def find_record(
    log: Log, topic: str, value: str, *, header: str = "event_id", partition: int = 0, limit: int = 5000
) -> Record | None:
    """The first record of the partition whose ``header`` is ``value``, or None."""
    wanted = value.encode("utf-8")
    offset = 0
    while records := await read_available(log, topic, offset, partition=partition, limit=limit):
        for record in records:
            if record.header(header) == wanted:
                return record
        offset = records[-1].offset + 1
    return None


def prove_record(
    store: TreeStore, record: Record, head: SignedTreeHead, *, public_key: Ed25519PublicKey | None = None
) -> dict[str, Any]:
    """The inclusion proof document of ``record`` (leaf ``record.offset``) against ``head``.

    Raises:
        ProofInvalid: the head is older than the record, or the tree does not match the head or the record.
    """
    if record.offset >= head.tree_size:
        raise ProofInvalid(
            f"the tree head covers {head.tree_size} records; {record.topic}:{record.offset} came later: "
            "wait for the next head"
        )
    if head.tree_size > store.size:
        raise ProofInvalid(f"the tree file has {store.size} leaves, fewer than the head's {head.tree_size}")
    return inclusion_proof(store.node, record.offset, head, record=record, public_key=public_key)
