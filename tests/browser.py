"""What the browser tests share, beside the browser itself (``lstmviz.bench.browser.chrome``,
set up once for the tests, the benchmark and the tools): reads of a page's text that wait
for it and survive a redraw, and the console's errors."""

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def text_of(browser, css: str, until=bool, timeout: float = 30) -> str:
    """The text of the first element matching ``css`` once ``until(text)`` holds (by
    default: once it has some); an element drawn again while it is read is looked up again
    (a callback may draw a message twice)."""
    wait = WebDriverWait(browser, timeout, ignored_exceptions=[StaleElementReferenceException])

    def ready(d):
        text = d.find_element(By.CSS_SELECTOR, css).text
        return (text,) if until(text) else None

    return wait.until(ready)[0]


def texts_of(browser, css: str, until=bool, timeout: float = 30) -> list[str]:
    """The texts of every element matching ``css`` once ``until(texts)`` holds (by default:
    once there is one), each looked up again if it is redrawn while read."""
    wait = WebDriverWait(browser, timeout, ignored_exceptions=[StaleElementReferenceException])

    def ready(d):
        texts = [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]
        return (texts,) if until(texts) else None

    return wait.until(ready)[0]


def severe_console_errors(browser) -> list[dict]:
    """The console's errors since it was last read (the driver keeps the "browser" log)."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
