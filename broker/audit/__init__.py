"""Auditing: tamper evidence on the log, ``jigsaw replay``, and a child's chronology.

- ``sealer``: the router, the one elected reader of the input topic, keeps an
  RFC 9162 Merkle tree over it and publishes a ``seal`` (a signed tree head with
  the leaf hashes it adds and where the output topics ended) on
  ``jigsaw.tree-heads`` every ``JIGSAW_CHECKPOINT_EVERY`` records, after
  ``JIGSAW_TREE_HEAD_INTERVAL`` seconds, and when it stops; ``checkpoint``
  reads and names Jigsaw's public key.
- ``merkle`` (RFC 9162 trees and proofs), ``merkle_leaf`` (a record's leaf),
  ``sth`` (signed tree heads), ``tree_store`` (the tree in an append-only file),
  ``merkle_proof`` and ``merkle_log`` (proof files, documented in ``proofs.md``;
  ``standalone_verify.py`` checks them without Jigsaw).
- ``collect`` streams a log through ``replay`` (with ``integrity``, ``verify``,
  ``workers``, ``outputs`` and ``window``) in bounded memory: signatures as the
  key registry stood (on every core), every record against the signed tree
  heads, and the routing policy re-run and compared with what was sent.
- ``chronology`` (and ``chronology_html``) tell one child's story; ``api``
  serves it to auditors and the child's CSC over HTTP.
"""

from broker.audit.findings import Finding
from broker.audit.merkle import ProofInvalid
from broker.audit.merkle_leaf import record_leaf_hash
from broker.audit.sth import SignedTreeHead, sign_tree_head, verify_tree_head
from broker.audit.tree_store import TreeStore

__all__ = [
    "Finding",
    "ProofInvalid",
    "SignedTreeHead",
    "TreeStore",
    "record_leaf_hash",
    "sign_tree_head",
    "verify_tree_head",
]
