"""Delivery: every notification to its organisation, by signed webhook or the inbox, and the inbox API.

Pure core: ``backoff`` (retry schedule), ``breaker`` (per-endpoint circuit
breaker), ``addresses`` (which webhook targets are allowed), ``signing``
(Standard Webhooks ``v1a`` signatures), ``records`` and ``ledger`` (what was
attempted and what is still owed), ``inboxes`` (inbox state), ``report``.
Shell: ``webhook`` (one HTTP attempt), ``dispatcher`` (the delivery worker),
``inbox`` and ``api`` (HTTP routes), ``workers`` (the router and dispatcher
roles of ``jigsaw serve``), ``horizon`` and ``tail`` (how they read the log).

Nothing is imported here: ``broker.settings`` uses ``backoff`` and must not pull in the rest.
"""
