"""A real browser for the dashboard's tests: Debian's Chromium (/usr/bin/chromium), driven by Playwright.

No browser is downloaded. With WORKLOAD_TEST_REQUIRE_BROWSER set (CI sets it), a machine without Chromium fails
the browser tests instead of skipping them. WORKLOAD_UPDATE_SCREENSHOTS=1 writes the screenshots the docs show
(docs/images/) from the same runs.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from benchmarks.dashboard import CHROMIUM, CHROMIUM_ARGS
from tests.harness import DEADLINE

playwright = pytest.importorskip("playwright.async_api")

ROOT = pathlib.Path(__file__).parents[1]
REQUIRE_ENV = "WORKLOAD_TEST_REQUIRE_BROWSER"
SCREENSHOTS_ENV = "WORKLOAD_UPDATE_SCREENSHOTS"
IMAGES = ROOT / "docs" / "images"
LAPTOP = {"width": 1366, "height": 768}
WAIT_MS = DEADLINE * 1000


def row(page: Any, name: str) -> Any:
    return page.locator(f'[data-testid=row][data-name="{name}"]')


@pytest.fixture()
async def page() -> AsyncIterator[Any]:
    """A fresh browser page, 1366×768; what the page's scripts throw fails the test."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set and there is no {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no {CHROMIUM}: apt-get install chromium")
    async with playwright.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        opened = await browser.new_page(viewport=LAPTOP)
        errors: list[str] = []
        opened.on("pageerror", lambda error: errors.append(str(error)))
        opened.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        yield opened
        await browser.close()
        assert not errors, errors


async def screenshot(page: Any, name: str, *, height: int = LAPTOP["height"]) -> None:
    """With WORKLOAD_UPDATE_SCREENSHOTS set, the page as the docs show it (docs/images/NAME), ``height`` tall."""
    if os.environ.get(SCREENSHOTS_ENV):
        IMAGES.mkdir(parents=True, exist_ok=True)
        await page.set_viewport_size({"width": LAPTOP["width"], "height": height})
        await page.screenshot(path=str(IMAGES / name))
        await page.set_viewport_size(LAPTOP)


async def fits_the_width(page: Any) -> bool:
    """Nothing makes the page scroll sideways."""
    return await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
