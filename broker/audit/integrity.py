"""The hash chain and the signed checkpoints, checked over a snapshot of the log (pure).

For the input topic: each record chains onto the signed chain value of the one
before it, no offset is missing, and each checkpoint whose signature verifies with Jigsaw's
public key matches the chain recomputed from the checkpoint before it. A
checkpoint that covers more records than a partition holds, or records the
end of a notifications, decisions, acks or rejections partition beyond where
it now ends, means records were cut off the end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.chain import ChainCheck
from broker.audit.checkpoint import checkpoint_valid, decode_checkpoint
from broker.audit.collect import Snapshot
from broker.audit.findings import NOTE, Finding

__all__ = ["Integrity", "check_integrity"]

TopicPartition = tuple[str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Integrity:
    """What the chain check found, and how much it covered."""

    findings: list[Finding]
    partitions: int
    records: int
    checkpoints: int  # checkpoints whose signature verified


def check_integrity(
    snapshot: Snapshot,
    public_key: Ed25519PublicKey | None,
    *,
    every: int,
    order: Mapping[tuple[str, int, int], int],
) -> Integrity:
    """Check the chain of the input topic against the checkpoints Jigsaw signed.

    Args:
        public_key: Jigsaw's checkpoint key; None when the auditor has none (every checkpoint is then unverified).
        every: the checkpoint interval the sealer used: a tail longer than this with no checkpoint is a finding.
        order: (topic, partition, offset) -> sort rank in merge order, to sort findings by where they are.
    """
    found: list[Finding] = []
    sealed: dict[TopicPartition, dict[int, bytes]] = {}
    links: dict[TopicPartition, dict[int, bytes]] = {}
    ends: dict[TopicPartition, int] = {}
    valid = 0
    for record in snapshot.checkpoints:
        try:
            cp = decode_checkpoint(record)
        except ValueError as exc:
            found.append(Finding("checkpoint_undecodable", str(exc), record.topic, record.partition, record.offset))
            continue
        if public_key is None:
            continue
        if not checkpoint_valid(cp, public_key):
            found.append(
                Finding(
                    "checkpoint_signature_invalid",
                    f"the checkpoint of {cp.topic}:{cp.partition} up to offset "
                    f"{cp.offset} is not signed by Jigsaw's key",
                    record.topic,
                    record.partition,
                    record.offset,
                )
            )
            continue
        valid += 1
        sealed.setdefault((cp.topic, cp.partition), {})[cp.offset] = cp.chain
        first = cp.offset - len(cp.links) + 1
        links.setdefault((cp.topic, cp.partition), {}).update((first + i, v) for i, v in enumerate(cp.links))
        for topic, partition, end in cp.ends:
            ends[(topic, partition)] = max(ends.get((topic, partition), 0), end)
    if public_key is None and (snapshot.checkpoints or snapshot.event_count):
        found.append(
            Finding(
                "checkpoint_key_missing",
                "without Jigsaw's public key (--checkpoint-key) no checkpoint "
                "can be checked, and a chain nothing signs could have been recomputed",
            )
        )
    records = 0
    parts = dict(snapshot.partitions)
    for tp in sealed:
        parts.setdefault(tp, [])  # a checkpointed partition that is gone altogether
    for (topic, partition), recs in sorted(parts.items()):
        check = ChainCheck(sealed.get((topic, partition)), links.get((topic, partition)))
        by_offset = {}
        for record in recs:
            check.feed(record)
            by_offset[record.offset] = record
        check.finish()
        records += len(recs)
        for br in check.breaks:
            rec = by_offset.get(br.offset)
            # A removed record sorts where it stood: just before the next record that is still there.
            later = [order.get((topic, partition, r.offset), -1) for r in recs if r.offset >= br.offset]
            header = rec.header("event_id") if rec is not None else None
            found.append(
                Finding(
                    br.code,
                    br.message,
                    topic,
                    partition,
                    br.offset,
                    header.decode(errors="replace") if header else None,
                    order=later[0] if later else -1,
                )
            )
        if recs and public_key is not None and check.unsealed > 0:
            where = f"offsets {check.last_sealed + 1} to {check.expected - 1}"
            if check.unsealed >= every:
                found.append(
                    Finding(
                        "checkpoint_missing",
                        f"no signed checkpoint covers {where} ({check.unsealed} records; one is written every {every})",
                        topic,
                        partition,
                        check.last_sealed + 1,
                    )
                )
            else:
                found.append(
                    Finding(
                        "unsealed",
                        f"{where} are not yet under a signed checkpoint",
                        topic,
                        partition,
                        check.last_sealed + 1,
                        severity=NOTE,
                    )
                )
    for (topic, partition), end in sorted(ends.items()):
        now = snapshot.ends.get((topic, partition), 0)
        if now < end:
            found.append(
                Finding(
                    "log_truncated",
                    f"a signed checkpoint saw this partition end at offset {end}; it now ends at "
                    f"{now}: {end - now} record(s) removed from its end",
                    topic,
                    partition,
                    now,
                )
            )
    return Integrity(found, len(parts), records, valid)
