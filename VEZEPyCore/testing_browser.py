"""Browser tests' shared start: Debian's Chromium driven by Playwright (never a downloaded one).

Kept apart from `VEZEPyCore.testing` because Playwright is a development dependency only.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Browser, async_playwright

#: Headless in a container: no sandbox (root), no GPU, and nothing that calls out to Google.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_executable() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        # A failure, not a skip: a browser test that cannot run must not look like a pass.
        raise RuntimeError("Debian's chromium is not installed (apt-get install chromium)")
    return executable


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium for the duration of the block."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
