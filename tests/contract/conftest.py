"""Fixtures of the contract suites in this package: the store's come from ``store_support.py``."""

from tests.contract.store_support import postgres_dsn, store, store_backend

__all__ = ["postgres_dsn", "store", "store_backend"]
