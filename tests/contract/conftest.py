"""Fixtures of the contract suites in this package: the store's come from ``store_support.py``."""

from __future__ import annotations

import collections

import pytest

from tests.contract.store_support import postgres_dsn, store, store_backend

__all__ = ["postgres_dsn", "store", "store_backend"]


# Outcomes of the tests marked ``postgres``, reported at the end of the run (as the Kafka ones are)
# so the output says how many ran against a real server.
_postgres_outcomes: collections.Counter[str] = collections.Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "postgres" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _postgres_outcomes[report.outcome] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_outcomes:
        passed, failed, skipped = (_postgres_outcomes[k] for k in ("passed", "failed", "skipped"))
        terminalreporter.write_line(
            f"postgres-marked tests against a real server: {passed} passed, {failed} failed or errored, "
            f"{skipped} skipped"
        )
