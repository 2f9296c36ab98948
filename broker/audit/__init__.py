"""Auditing: tamper evidence on the log, ``jigsaw replay``, and a child's chronology.

- ``chain``: a SHA-256 hash chain over each events partition; every accepted
  record carries its chain value in a ``chain`` header.
- ``checkpoint`` and ``sealer``: the intake writes checkpoints of the chain,
  signed with Jigsaw's own Ed25519 key, every ``JIGSAW_CHECKPOINT_EVERY``
  events per partition and when it shuts down (or a simulation ends); each
  also records where the notifications, decisions, acks and rejections ended.
- ``merkle`` (RFC 9162 trees and proofs), ``merkle_leaf`` (a record's leaf),
  ``sth`` (signed tree heads), ``tree_store`` (the tree in an append-only file),
  ``merkle_proof`` and ``merkle_log`` (proof files, documented in ``proofs.md``;
  ``standalone_verify.py`` checks them without Jigsaw).
- ``collect`` reads a log; ``replay`` (with ``integrity``, ``verify`` and
  ``window``) checks it: signatures as the key registry stood, the chain and
  checkpoints, and the routing policy re-run and compared with what was sent.
- ``chronology`` (and ``chronology_html``) tell one child's story; ``api``
  serves it to auditors and the child's CSC over HTTP.
"""

from broker.audit.chain import ChainCheck, next_link
from broker.audit.checkpoint import Checkpoint, checkpoint_valid, sign_checkpoint
from broker.audit.findings import Finding
from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.sth import SignedTreeHead, sign_tree_head, verify_tree_head
from broker.audit.tree_store import TreeStore

__all__ = [
    "ChainCheck",
    "Checkpoint",
    "Finding",
    "ProofInvalid",
    "SignedTreeHead",
    "TreeStore",
    "checkpoint_valid",
    "next_link",
    "record_leaf_hash",
    "sign_checkpoint",
    "sign_tree_head",
    "verify_tree_head",
]
