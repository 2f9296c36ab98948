"""Where ``../shared`` is (the partnership's design, scenarios and checker), for the tests that read it.

It sits beside the checkout; ``JIGSAW_SHARED`` names it when it is elsewhere (a worktree, as
``deploy/test.sh`` also reads it). A test whose files are missing is skipped on a developer's
machine, but under ``CI=true`` the missing folder fails the run: CI must run what the README
promises, never pass by skipping it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

__all__ = ["ROOT", "SCENARIOS", "SHARED", "in_ci", "need_shared", "require_shared"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JIGSAW_SHARED") or ROOT.parent / "shared")
SCENARIOS = SHARED / "scenarios"


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when running under CI (``CI=true``, as ``.ci/run`` sets it)."""
    return environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing(path: Path) -> str:
    return f"{path} is missing: ../shared is not beside this checkout (JIGSAW_SHARED names it when it is elsewhere)"


def need_shared(path: Path = SCENARIOS) -> pytest.MarkDecorator:
    """A module mark for tests that read ``path``: skip them when it is missing, or under CI fail the run.

    Under ``CI=true`` a missing ``path`` fails collection of the module that asks, with the reason.
    """
    if not path.exists() and in_ci():
        pytest.fail(_missing(path) + "; CI must run these tests", pytrace=False)
    return pytest.mark.skipif(not path.exists(), reason=_missing(path))


def require_shared(path: Path = SCENARIOS) -> None:
    """Inside a test or fixture: skip when ``path`` is missing, or under ``CI=true`` fail."""
    if path.exists():
        return
    if in_ci():
        pytest.fail(_missing(path) + "; CI must run this test", pytrace=False)
    pytest.skip(_missing(path))
