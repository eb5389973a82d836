"""Headless Chromium, set up once for everything that drives the dashboard in a browser:
``bench dashboard``'s paint time, the browser tests and ``tools/first_start.py``. It uses
Debian's chromium and chromium-driver."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Headless, and quiet: no sandbox (containers), no GPU, nothing fetched from outside on its own.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chrome(window: tuple[int, int] = (1400, 1000), downloads: Path | None = None, logs: Iterable[str] = ()):
    """A Selenium driver of a headless Chromium with a ``window`` (width, height) in pixels.
    ``downloads``: the folder downloads land in, without asking; ``logs``: the logs it keeps
    for ``get_log`` ("browser": the console; "performance": DevTools' network events)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for flag in (*FLAGS, f"--window-size={window[0]},{window[1]}"):
        opts.add_argument(flag)
    opts.binary_location = CHROMIUM
    if downloads is not None:
        opts.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    if logs:
        opts.set_capability("goog:loggingPrefs", {name: "ALL" for name in logs})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
