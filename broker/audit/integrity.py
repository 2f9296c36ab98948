"""The input topic against Jigsaw's signed tree heads, checked as the log streams past (pure but for a temp file).

``TreeCheck`` is fed the seals of ``jigsaw.tree-heads`` (``feed_seal``) ahead of
the input records they cover, and the input records in offset order (``feed``).
It holds only the signed leaf hashes of records not yet reached and, in a
temporary ``TreeStore`` file, the tree the seals describe. It finds:

- a seal that does not decode or is not signed by Jigsaw's key;
- a seal whose listed leaves do not rebuild its signed root
  (``tree_head_mismatch``), two consecutive heads that are not consistent (the
  RFC 9162 consistency proof between them, built from the tree and verified,
  fails: ``tree_heads_inconsistent``), a head smaller than the one before
  (``tree_head_shrank``), or seals missing between two heads (``tree_head_missing``);
- per record: an offset no record holds (``record_missing``: removed), a record
  whose leaf hash is not the signed one for its offset (``record_altered``:
  altered, moved or inserted), a record past the last head that no head lists
  although it should be sealed by now (``tree_head_missing``);
- at the end: a head covering more records than the topic holds, or an output
  topic shorter than a head saw it (``log_truncated``).

Each damaged record is named on its own, wherever it lies, also when the log
was extended and sealed again after the tampering.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import topics
from broker.audit.findings import NOTE, Finding
from broker.audit.merkle import ProofInvalid, verify_consistency
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.seal import INPUT_TREE, decode_seal, seal_valid
from broker.audit.sth import SignedTreeHead
from broker.audit.tree_store import TreeStore
from broker.log.base import Record

__all__ = ["TreeCheck"]

TopicPartition = tuple[str, int]


class TreeCheck:
    """Checks the input partition, record by record, against the signed leaves and heads.

    Args:
        public_key: Jigsaw's key; None when the auditor has none (nothing signed can be trusted: a finding).
        every: the sealer's head interval in records: a longer unsealed tail is a finding.
        start: the first offset this check is fed (a resumed replay; earlier seals are only read for context).
    """

    def __init__(self, public_key: Ed25519PublicKey | None, *, every: int, start: int = 0) -> None:
        self.key = public_key
        self.every = every
        self.findings: list[Finding] = []
        self.heads = 0  # seals whose signatures verified
        self.records = 0
        self.expected = start  # the next offset
        self.covered = 0  # the largest size a valid head states
        self._start = start
        self._signed: dict[int, bytes] = {}  # offset -> signed leaf, for offsets not reached yet
        self._ends: dict[TopicPartition, int] = {}
        self._last: SignedTreeHead | None = None
        self._gap = False  # seals are missing: roots after the gap cannot be rebuilt
        self._dir = tempfile.TemporaryDirectory(prefix="jigsaw-replay-tree-")
        self._tree = TreeStore(Path(self._dir.name) / "signed.tree")
        self._any = False
        self._expected_head: tuple[int, bytes] | None = None
        self._expected_seen = False

    def expect(self, size: int, root: bytes) -> None:
        """A resumed replay's snapshot was made under this head: a valid head must say so."""
        self._expected_head = (size, root)

    @property
    def last_head(self) -> SignedTreeHead | None:
        """The newest valid head seen."""
        return self._last

    def feed_seal(self, record: Record) -> None:
        """Check one record of the tree heads topic (in offset order)."""
        self._any = True
        try:
            seal = decode_seal(record)
        except ProofInvalid as exc:
            self._find("tree_head_undecodable", exc.message, record)
            return
        if seal.tree != INPUT_TREE or self.key is None:
            return
        if not seal_valid(seal, self.key):
            self._find(
                "tree_head_signature_invalid",
                f"the tree head of size {seal.size} is not signed by Jigsaw's key (or its leaves do not add up to it)",
                record,
            )
            return
        self.heads += 1
        if self._expected_head is not None and self._expected_head[0] == seal.size:
            self._expected_seen = self._expected_seen or self._expected_head[1] == seal.head.root_hash
        last = self._last
        if last is not None and seal.size < last.tree_size:
            self._find("tree_head_shrank", f"a head of size {seal.size} follows one of size {last.tree_size}", record)
            return
        if seal.first > self._tree.size:
            self._find(
                "tree_head_missing",
                f"no seal lists leaves {self._tree.size} to {seal.first - 1}: tree heads were removed",
                record,
            )
            self._gap = True
        # Only leaves of records not yet reached: a resumed replay checks the tail only.
        self._signed.update(
            (seal.first + i, leaf) for i, leaf in enumerate(seal.leaves) if seal.first + i >= self.expected
        )
        for topic, partition, end in seal.ends:
            self._ends[(topic, partition)] = max(self._ends.get((topic, partition), 0), end)
        self.covered = max(self.covered, seal.size)
        if self._gap or seal.first != self._tree.size:
            self._last = seal.head
            return
        self._tree.append_many(seal.leaves, sync=False)
        if self._tree.root(seal.size) != seal.head.root_hash:
            self._find(
                "tree_head_mismatch",
                f"the leaves listed under the head of size {seal.size} do not give its root",
                record,
            )
        elif last is not None:
            try:
                path = self._tree.consistency_proof(last.tree_size, seal.size)
                verify_consistency(last.tree_size, seal.size, last.root_hash, seal.head.root_hash, path)
            except (ProofInvalid, ValueError) as exc:
                self._find("tree_heads_inconsistent", f"heads {last.tree_size} and {seal.size}: {exc}", record)
        self._last = seal.head

    def _find(self, code: str, message: str, record: Record) -> None:
        self.findings.append(Finding(code, message, record.topic, record.partition, record.offset))

    def feed(self, record: Record, order: int, leaf: bytes | None = None) -> None:
        """Check one input record (in offset order); ``order`` sorts its findings; ``leaf``: its hash, if known."""
        self.records += 1
        header = record.header("event_id")
        event_id = header.decode(errors="replace") if header else None
        if record.offset > self.expected:
            missing = record.offset - self.expected
            span = str(self.expected) if missing == 1 else f"{self.expected} to {record.offset - 1}"
            self.findings.append(
                Finding(
                    "record_missing",
                    f"offset {span} is missing: {missing} record(s) removed",
                    record.topic,
                    record.partition,
                    self.expected,
                    order=order - 1,
                )
            )
            for offset in range(self.expected, record.offset):
                self._signed.pop(offset, None)
        self.expected = record.offset + 1
        signed = self._signed.pop(record.offset, None)
        if signed is None:
            return
        if signed != (leaf or record_leaf_hash(record)):
            self.findings.append(
                Finding(
                    "record_altered",
                    "the record is not the one Jigsaw's signed tree head lists at this offset: it was altered, "
                    "moved or inserted",
                    record.topic,
                    record.partition,
                    record.offset,
                    event_id,
                    order=order,
                )
            )

    def finish(self, ends: Mapping[TopicPartition, int], *, any_input: bool, routed: int | None = None) -> None:
        """After the last input record: ``ends`` maps each topic partition to where it ends now.

        ``routed`` is the router's committed input offset (None: unknown, everything counts as routed).
        """
        topic, partition = topics.INPUT, 0
        if self.key is None:
            if self._any or any_input:
                self.findings.append(
                    Finding(
                        "checkpoint_key_missing",
                        "without Jigsaw's public key (--checkpoint-key) no tree head can be checked, and a tree "
                        "nothing signs could have been rebuilt",
                    )
                )
            self._close()
            return
        if self._expected_head is not None and not self._expected_seen:
            self.findings.append(
                Finding(
                    "snapshot_head_unknown",
                    f"the router snapshot was made under a tree head of size {self._expected_head[0]} that no "
                    "signed head on the log matches: it does not describe this log",
                    topic,
                    partition,
                    self._start,
                )
            )
        if self.covered > self.expected:
            self.findings.append(
                Finding(
                    "log_truncated",
                    f"a signed tree head covers {self.covered} records but the input topic ends at offset "
                    f"{self.expected - 1}: records were removed from its end",
                    topic,
                    partition,
                    self.expected,
                )
            )
        tail = self.expected - max(self.covered, self._start)
        # Only what the router had read and committed is owed a head: records past its position (a live
        # router a moment behind) are not sealed yet however many there are.
        owed = min(self.expected, routed if routed is not None else self.expected) - max(self.covered, self._start)
        if tail > 0:
            where = f"offsets {max(self.covered, self._start)} to {self.expected - 1}"
            if owed >= self.every:
                self.findings.append(
                    Finding(
                        "tree_head_missing",
                        f"no signed tree head covers {where} ({owed} records the router had routed; one is "
                        f"published every {self.every})",
                        topic,
                        partition,
                        self.covered,
                    )
                )
            else:
                self.findings.append(
                    Finding(
                        "unsealed",
                        f"{where} are not yet under a signed tree head",
                        topic,
                        partition,
                        self.covered,
                        severity=NOTE,
                    )
                )
        for (name, part), end in sorted(self._ends.items()):
            now = ends.get((name, part), 0)
            if now < end:
                self.findings.append(
                    Finding(
                        "log_truncated",
                        f"a signed tree head saw this partition end at offset {end}; it now ends at "
                        f"{now}: {end - now} record(s) removed from its end",
                        name,
                        part,
                        now,
                    )
                )
        self._close()

    def _close(self) -> None:
        self._tree.close()
        self._dir.cleanup()
