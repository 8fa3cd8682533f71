"""In a real browser: JupyterLab on 127.0.0.1 and headless Chromium, as a student meets the project.

1. Notebook 01 is opened and run in JupyterLab; the ε slider of its explorer is dragged with the
   mouse; the readout (vertices, characters, IoU) and the picture must change, with no console errors.
2. The smoke run's book (``index.html`` and one page per notebook) is opened from disk: every page
   shows its figures and no widget repr or widget error.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` test extra; ``.ci/run``
installs them. Without them these tests skip and say how to enable them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    HAVE_SELENIUM = True
except ImportError:
    HAVE_SELENIUM = False

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM and DRIVER and HAVE_SELENIUM), reason=(
        "browser tests need chromium + chromedriver + selenium: `sudo apt-get install -y chromium "
        "chromium-driver` and `.venv/bin/pip install -e '.[test]'` (.ci/run does both)")),
]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "simpleseg-browser-test"
# Console messages that are the closed network of a test machine, not the project's fault.
NOISE = ("favicon", "net::ERR_", "Failed to load resource", "Could not load", "Failed to fetch", "ERR_INTERNET")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, smoke_run):
    """JupyterLab on loopback serving notebook 01 (built from its .py, as users get it) and the smoke run's
    executed copy of it (``executed_01.ipynb``, as a reader of a run folder opens it)."""
    import jupytext

    folder = tmp_path_factory.mktemp("lab")
    shutil.copy(smoke_run / "01_contour_serialization.ipynb", folder / "executed_01.ipynb")
    nb = jupytext.read(ROOT / "notebooks" / "01_contour_serialization.py")
    nb.metadata.get("jupytext", {}).pop("formats", None)
    jupytext.write(nb, folder / "01_contour_serialization.ipynb")
    # Every cell attached to the page: JupyterLab's default windowing skips laying out cells outside the
    # viewport, and a slider that was never laid out "has no size and location" for the mouse.
    settings = folder / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's own default: inline
    env["JUPYTERLAB_SETTINGS_DIR"] = str(folder / "lab-settings")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--LabServerApp.extension_manager=readonly", "--allow-root"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start on 127.0.0.1 within 60 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def _errors(driver) -> list[str]:
    logs = driver.get_log("browser")
    return [e["message"] for e in logs if e["level"] == "SEVERE" and not any(n in e["message"] for n in NOISE)]


def _readout(driver) -> tuple[str, str]:
    """(the explorer's numbers, its picture's src) as the page shows them now."""
    return driver.execute_script("""
        const html = [...document.querySelectorAll('.widget-html-content')].find(e => e.textContent.includes('vertices'));
        const img = [...document.querySelectorAll('.widget-image, .jupyter-widgets img')].find(e => e.src);
        return [html ? html.textContent : '', img ? img.src : ''];""")


def _visible_handle(driver):
    """The ε slider's handle of the explorer that shows the readout, scrolled to the middle of the window and
    laid out (non-zero size), or None while it is not yet."""
    return driver.execute_script("""
        const html = [...document.querySelectorAll('.widget-html-content')].find(e => e.textContent.includes('vertices'));
        const box = html && html.closest('.jp-OutputArea-output');
        const handle = box && box.querySelector('.widget-slider .noUi-handle');
        if (!handle) return null;
        handle.scrollIntoView({block: 'center'});
        const r = handle.getBoundingClientRect();
        return r.width > 0 && r.height > 0 ? handle : null;""")


_READY = """
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!(w && w.context && w.context.isReady && w.content && w.content.widgets && w.content.widgets.length > 0
              && w.sessionContext.isReady && k && k.status === 'idle');"""


def _notebook_state(driver) -> dict:
    """What a failing run-all left on the page: kernel status, cells, prompts, error outputs, console errors."""
    state = driver.execute_script("""
        const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
        const errs = [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type*="stderr"], .jp-RenderedText[data-mime-type*="error"]')];
        return {kernel: k ? k.status : null, cells: w && w.content ? w.content.widgets.length : null,
                prompts: [...document.querySelectorAll('.jp-InputArea-prompt')].map(e => e.textContent).join(' '),
                widget_views: document.querySelectorAll('.jupyter-widgets').length,
                error_outputs: errs.map(e => e.textContent.slice(0, 400))};""")
    state["console"] = _errors(driver)
    return state


def test_explorer_reacts_to_the_slider_in_jupyterlab(browser, lab):
    from selenium.common.exceptions import (ElementNotInteractableException, StaleElementReferenceException,
                                            TimeoutException)
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # start from an empty console log
    browser.get(f"{lab}/lab/tree/01_contour_serialization.ipynb?token={TOKEN}")
    wait = WebDriverWait(browser, 120)
    # Run all only once the document is loaded (its cells exist) and the kernel is up and idle: a run-all sent
    # earlier can find no cells yet and run nothing. Once in CI the readout never came within 120 s; if it does
    # not come, the page's state is printed and everything is run again once.
    wait.until(lambda d: d.execute_script(_READY))
    early_console: list[str] = []
    for attempt in range(2):
        browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            WebDriverWait(browser, 120).until(lambda d: all(_readout(d)))  # the explorer drew numbers and picture
            break
        except TimeoutException:
            state = _notebook_state(browser)
            early_console += state["console"]
            if attempt == 1:
                pytest.fail(f"the explorer never drew its readout after run-all (twice); page state: {state}")
            print(f"run-all #1 drew no readout within 120 s, running all again; page state: {state}")
    before = _readout(browser)
    assert "vertices" in before[0] and "IoU" in before[0]
    wait.until(lambda d: d.execute_script(  # every cell ran: the kernel is idle and no cell is queued
        "const w = window.jupyterapp.shell.currentWidget; return w.sessionContext.session.kernel.status === 'idle'"
        " && ![...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.textContent.includes('*'))"))
    for attempt in range(3):  # a re-render between finding the handle and pressing it: find it again
        handle = wait.until(lambda d: _visible_handle(d))
        try:
            ActionChains(browser).click_and_hold(handle).move_by_offset(60, 0).release().perform()
            break
        except (ElementNotInteractableException, StaleElementReferenceException):
            if attempt == 2:
                raise
            time.sleep(1)
    WebDriverWait(browser, 60).until(lambda d: _readout(d)[0] != before[0],
                                     "the explorer's readout did not change after the ε slider was dragged")
    after = _readout(browser)
    WebDriverWait(browser, 30).until(lambda d: _readout(d)[1] != before[1],
                                     "the explorer's picture did not change after the ε slider was dragged")
    assert after[0] != before[0]
    errors = early_console + _errors(browser)
    assert not errors, errors


def test_executed_notebook_shows_the_snapshot_in_jupyterlab(browser, lab):
    """A run folder's notebook opened later, with no widget state: the explorer's still picture, no repr."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get("about:blank")  # leave the previous notebook (its 'leave page?' prompt is not this test's)
    browser.get_log("browser")
    browser.get(f"{lab}/lab/tree/executed_01.ipynb?token={TOKEN}")
    WebDriverWait(browser, 120).until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output')].some(e => e.querySelector('.simpleseg-snapshot'))"))
    text = browser.execute_script("return document.querySelector('.jp-Notebook').innerText")
    assert "VBox(children" not in text and "Error displaying widget" not in text
    shown = browser.execute_script("""
        const out = [...document.querySelectorAll('.jp-OutputArea-output')].find(e => e.querySelector('.simpleseg-snapshot'));
        return [...out.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length;""")
    assert shown >= 1, "the explorer's snapshot picture is not shown"
    assert not _errors(browser), _errors(browser)


def test_the_run_book_reads_in_a_browser(browser, smoke_run):
    from selenium.webdriver.common.by import By

    browser.get("about:blank")
    browser.get_log("browser")
    browser.get((smoke_run / "index.html").as_uri())
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a") if
             a.get_attribute("href").endswith(".html")]
    assert len(links) >= 7
    for link in links:
        browser.get(link)
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "VBox(children" not in text and "Error displaying widget" not in text, link
        images = browser.execute_script(
            "return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        assert images > 0, f"{link}: no figure shown"
    assert not _errors(browser), _errors(browser)
