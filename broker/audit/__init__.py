"""Auditing: tamper evidence on the log, ``jigsaw replay``, and a child's chronology.

- ``chain``: a SHA-256 hash chain over each events partition; every accepted
  record carries its chain value in a ``chain`` header.
- ``checkpoint`` and ``sealer``: the intake writes checkpoints of the chain,
  signed with Jigsaw's own Ed25519 key, every ``JIGSAW_CHECKPOINT_EVERY``
  events per partition and when it shuts down (or a simulation ends); each
  also records where the notifications, decisions, acks and rejections ended.
- ``collect`` reads a log; ``replay`` (with ``integrity``, ``verify`` and
  ``window``) checks it: signatures as the key registry stood, the chain and
  checkpoints, and the routing policy re-run and compared with what was sent.
- ``chronology`` (and ``chronology_html``) tell one child's story; ``api``
  serves it to auditors and the child's CSC over HTTP.
"""

from broker.audit.chain import ChainCheck, next_link
from broker.audit.checkpoint import Checkpoint, checkpoint_valid, sign_checkpoint
from broker.audit.findings import Finding

__all__ = ["ChainCheck", "Checkpoint", "Finding", "checkpoint_valid", "next_link", "sign_checkpoint"]
