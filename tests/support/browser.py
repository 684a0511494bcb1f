"""Headless Debian Chromium for the viewer page: WebGL through SwiftShader, no network of its own.

``python -m tests.support.browser MAP_URL OUT.png`` serves a map, lets the page render, reads the
pixel at the middle of the map and saves a screenshot (how ``docs/viewer.png`` was made).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--no-sandbox",
    # without these Chromium keeps calling home, and there is no network here
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1100, "height": 750}
TIMEOUT_MS = 30_000


@contextlib.contextmanager
def browser_context(profile_dir: str) -> Iterator[Any]:
    """A Playwright browser context on the system Chromium with a fresh profile in ``profile_dir``."""
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        raise RuntimeError("needs Debian's chromium: apt-get install -y chromium")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT
        )
        try:
            yield context
        finally:
            context.close()


def wait_rendered(page: Any, variable: str, level: str | None = None) -> None:
    """Wait until the page has drawn ``variable`` completely (at pyramid ``level`` when given)."""
    expected = f"{variable}@{level}" if level else f"{variable}@"
    page.wait_for_function(
        "([want, exact]) => { const r = document.body.dataset.rendered || '';"
        " return exact ? r === want : r.startsWith(want); }",
        arg=[expected, level is not None],
        timeout=TIMEOUT_MS,
    )


def screenshot(map_url: str, out_png: str) -> None:
    from deepsalt.viewer.page import page_settings
    from deepsalt.viewer.server import STORE_PREFIX, StoreFiles, ViewerServer

    files = StoreFiles(map_url)
    settings = page_settings(files.url, STORE_PREFIX.strip("/") + "/").to_json()
    with (
        ViewerServer(files, lambda: settings, "127.0.0.1", 0) as server,
        tempfile.TemporaryDirectory() as profile,
        browser_context(profile) as context,
    ):
        page = context.new_page()
        page.goto(server.url)
        wait_rendered(page, settings["variables"][0]["name"])
        page.mouse.click(VIEWPORT["width"] * 0.35, VIEWPORT["height"] * 0.5)
        page.wait_for_function(
            "/^[0-9]+,[0-9]+$/.test(document.body.dataset.pixel || '')", timeout=TIMEOUT_MS
        )
        page.screenshot(path=out_png)


if __name__ == "__main__":
    screenshot(sys.argv[1], sys.argv[2])
