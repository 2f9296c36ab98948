"""Headless Chromium for the browser tests: the system's browser and driver, a real OIDC provider, axe-core.

Where things come from (``deploy/test.sh`` sets them up and exports the addresses):

- the browser and its driver: Debian's ``chromium`` and ``chromium-driver``
  (``JIGSAW_TEST_CHROMIUM``, ``JIGSAW_TEST_CHROMEDRIVER``; default ``/usr/bin/...``).
  Selenium is given both paths, so it never downloads a browser;
- the OpenID Connect provider: ``deploy/oidc/start.sh`` (``JIGSAW_TEST_OIDC_ISSUER``,
  e.g. ``http://127.0.0.1:18080/default``);
- axe-core: ``deploy/web/fetch.sh`` (``JIGSAW_TEST_AXE_JS``; default under the web assets cache).

When one is missing the browser tests skip with a message saying how to get it,
except in CI (``CI=true``), where they fail: CI never skips them.
``ServerThread`` runs Jigsaw's event loop beside the blocking WebDriver calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.web.app import default_assets_dir
from tests.web.support import Site, serve_case

SEVERE = ("serious", "critical")
HOW = "run `bash deploy/test.sh`, or apt-get install chromium chromium-driver, deploy/web/fetch.sh and deploy/oidc/"


def need(what: str, ok: bool) -> None:
    """Skip (fail under CI=true) when something the browser tests need is missing."""
    if ok:
        return
    message = f"browser tests need {what}: {HOW}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def chromium_paths() -> tuple[str, str]:
    browser = os.environ.get("JIGSAW_TEST_CHROMIUM", "/usr/bin/chromium")
    driver = os.environ.get("JIGSAW_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
    need(f"Chromium at {browser} and its driver at {driver}", Path(browser).is_file() and Path(driver).is_file())
    return browser, driver


def oidc_issuer() -> str:
    issuer = os.environ.get("JIGSAW_TEST_OIDC_ISSUER", "")
    need("a running OpenID Connect provider (JIGSAW_TEST_OIDC_ISSUER)", bool(issuer))
    return issuer


def axe_source() -> str:
    path = Path(os.environ.get("JIGSAW_TEST_AXE_JS") or default_assets_dir() / "axe-core" / "axe.min.js")
    need(f"axe-core at {path}", path.is_file())
    return path.read_text(encoding="utf-8")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    with tempfile.TemporaryDirectory(prefix="jigsaw-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1200,1000",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        driver.set_page_load_timeout(30)
        try:
            yield driver
        finally:
            driver.quit()


class ServerThread:
    """Jigsaw serving the simulated case on its own event loop in a thread (the WebDriver calls block)."""

    def __init__(self, tmp: Path, **options: Any) -> None:
        self.tmp = tmp
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stack = contextlib.AsyncExitStack()
        self.site: Site | None = None

    def __enter__(self) -> Site:
        self.thread.start()
        self.site = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(120)
        return self.site

    async def _start(self) -> Site:
        return await self.stack.enter_async_context(serve_case(self.tmp, **self.options))

    async def _stop(self) -> None:
        """Stop the service, then end what the browser's kept-alive connections left running (an open stream)."""
        await self.stack.aclose()
        left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def axe_violations(driver: Any, source: str) -> list[dict[str, Any]]:
    """Run axe-core (WCAG 2.0-2.2 A and AA rules) on the page; its serious and critical violations."""
    driver.execute_script(source)
    script = """
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa',
                                                           'best-practice']}})
           .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                                   nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))
           .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));
    """
    driver.set_script_timeout(30)
    found: list[dict[str, Any]] = driver.execute_async_script(script)
    return [v for v in found if v.get("impact") in SEVERE]
