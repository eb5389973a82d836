"""Headless Chromium, set up once for everything that drives the dashboard in a browser:
``bench dashboard``'s paint time, the browser tests and ``tools/first_start.py``. It uses
Debian's chromium and chromium-driver. Also the reads they share: a panel's painted label,
a page's text that waits for it and survives a redraw, and the console's errors; and a
dashboard served in a thread for them to drive."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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


@contextmanager
def serving(app) -> Iterator[str]:
    """The Dash ``app`` served by waitress on a free loopback port, in a thread, until the
    block ends: its base URL."""
    import threading

    from waitress import create_server

    server = create_server(app.server, host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()


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


@contextmanager
def chromium(window: tuple[int, int] = (1400, 1000), downloads: Path | None = None, logs: Iterable[str] = ()) -> Iterator:
    """:func:`chrome` for the length of a ``with`` block: the browser quits when it ends."""
    driver = chrome(window, downloads, logs)
    try:
        yield driver
    finally:
        driver.quit()


def panel_label(driver, panel: str = "text-panel") -> str | None:
    """The label of what the painter last drew in the text panel ``panel`` (its id): the
    neuron, or None before the first paint (``assets/painter.js`` sets it after the text)."""
    return driver.execute_script(f"var p = document.getElementById('{panel}'); return p && p.dataset.label")


def text_of(driver, css: str, until=bool, timeout: float = 30) -> str:
    """The text of the first element matching ``css`` once ``until(text)`` holds (by
    default: once it has some); an element drawn again while it is read is looked up again
    (a callback may draw a message twice)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        text = d.find_element(By.CSS_SELECTOR, css).text
        return (text,) if until(text) else None

    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(ready)[0]


def texts_of(driver, css: str, until=bool, timeout: float = 30) -> list[str]:
    """The texts of every element matching ``css`` once ``until(texts)`` holds (by default:
    once there is one), each looked up again if it is redrawn while read."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        texts = [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]
        return (texts,) if until(texts) else None

    return WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException]).until(ready)[0]


def severe_console_errors(driver) -> list[dict]:
    """The console's errors since it was last read (the driver keeps the "browser" log)."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
