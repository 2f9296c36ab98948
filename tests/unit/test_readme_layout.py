"""The README's "How it is built" names every package, and every module of the log and the gateway."""

from __future__ import annotations

import re

from tests.shared import ROOT


def _layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## How it is built") :]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_every_package_is_in_the_layout() -> None:
    """Each package under broker/ has its own line (``  name/``)."""
    layout = _layout()
    packages = sorted(p.name for p in (ROOT / "broker").iterdir() if (p / "__init__.py").is_file())
    assert packages and [p for p in packages if f"  {p}/" not in layout] == []


def test_the_log_and_gateway_modules_are_all_named() -> None:
    """No module of broker/log or broker/gateway is missing from its package's lines."""
    words = set(re.findall(r"[a-z_]+", _layout()))
    for package in ("log", "gateway"):
        modules = {p.stem for p in (ROOT / "broker" / package).glob("*.py") if p.stem != "__init__"}
        assert sorted(modules - words) == [], package
