"""The report as a person sees it: opened in headless Chromium (through Selenium), offline, with no console error.

Chromium and chromedriver come from the system (Debian: ``apt-get install
chromium chromium-driver``; ``.ci/run`` installs them); without them, or
without selenium, these tests are skipped, saying why.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import recorder as rec

pytestmark = pytest.mark.browser

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'recorder[report]'")

PAGE_TIMEOUT_S = 60  # a bound on a hang, not a timing assertion


def _browser() -> tuple[str, str]:
    """The Chromium binary and its driver, or skip saying what is missing."""
    pytest.importorskip("selenium", reason="the browser tests need selenium: pip install selenium")
    binary = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "the browser tests need Chromium and chromedriver: apt-get install chromium chromium-driver "
            f"(found chromium: {binary}, chromedriver: {driver})"
        )
    return binary, driver


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium keeping the console's messages, with no network: a page must need none."""
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        "--enable-unsafe-swiftshader",  # software WebGL for the parallel coordinates, without a deprecation warning
        "--proxy-server=http://127.0.0.1:9",  # any fetch from the network fails, and says so in the console
        "--proxy-bypass-list=<-loopback>",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, script: str, what: str) -> Any:
    """Poll a JavaScript expression until it is truthy (bounded by PAGE_TIMEOUT_S)."""
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"the page never showed {what}")


def _errors(driver: Any) -> list[dict[str, Any]]:
    """The console's errors (SEVERE), and warnings that a resource failed to load."""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" or "Failed to load" in e["message"]]


def _record(store: Path) -> None:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a in (0.1, 0.2, 0.3, 0.4):
            for b in (8, 9, 10):
                with r.run(a=a, b=b, solver="rk4") as run:
                    run.log(energy=a * b, loss=(a - 0.2) ** 2, traj=[a * i for i in range(30)])
        with pytest.raises(ValueError), r.run(a=0.5, b=8, solver="rk4"):
            raise ValueError("diverged")


def test_report_renders_in_chromium_without_console_errors(tmp_path: Path, browser: Any) -> None:
    store = tmp_path / "store"
    _record(store)
    with rec.open(store) as db:
        db.report("lorenz", tmp_path / "r.html", array="traj")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    figures = text.count('class="plotly-graph-div"')
    assert figures == 1 + 2 * 3 + 1  # parallel coordinates; per result a heat map and 2 lines; the arrays
    browser.get((tmp_path / "r.html").as_uri())
    drawn = _wait(
        browser,
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {figures} && "
        "document.querySelectorAll('#runs-table tbody tr').length",
        "its plots and table",
    )
    assert drawn == 13
    assert len(browser.find_elements("css selector", "div.plotly-graph-div.js-plotly-plot")) == figures
    assert browser.find_elements("css selector", ".parcoords")  # the parallel coordinates were drawn
    assert len(browser.find_elements("css selector", "svg.main-svg")) >= figures
    assert browser.find_elements("css selector", ".hm image, g.hm")  # a heat map
    # The table sorts on a click on a header, and reverses on a second one.
    header = next(h for h in browser.find_elements("css selector", "#runs-table th") if h.text.startswith("energy"))
    header.click()
    column = ["run", "status", "started", "duration_s", "a", "b", "solver", "energy", "loss", "error"].index("energy")
    cells = [
        row.find_elements("css selector", "td")[column].text
        for row in browser.find_elements("css selector", "#runs-table tbody tr")
    ]
    assert cells[0] == "0.8" and cells[-1] == "nan"  # ascending; the failed run (energy NaN in db.df) last
    next(h for h in browser.find_elements("css selector", "#runs-table th") if h.text.startswith("energy")).click()
    first = browser.find_elements("css selector", "#runs-table tbody tr")[0]
    assert first.find_elements("css selector", "td")[column].text == "4"  # JavaScript writes the float 4.0 as 4
    failed = browser.find_elements("css selector", "#runs-table tr.failed")
    assert len(failed) == 1 and "ValueError: diverged" in failed[0].text
    assert _errors(browser) == []


def test_a_hostile_report_runs_no_script_of_the_store(tmp_path: Path, browser: Any) -> None:
    """Markup in names, values, messages and errors is shown as text: no tag of it exists, no alert opens."""
    hostile = "<img src=x onerror=alert(1)>"
    store = tmp_path / "store"
    experiment = "x<img src=x onerror=alert(2)>"
    with rec.Recorder(experiment, store=store, git=False, message=hostile) as r:
        for a in (1, 2, 3):
            for b in ("<i>b1</i>", "<i>b2</i>"):
                with r.run(**{hostile: a, "b": b}) as run:
                    run.log(**{"<script>alert(3)</script>": float(a)})
        with pytest.raises(RuntimeError), r.run(**{hostile: 9, "b": "<i>b1</i>"}):
            raise RuntimeError(f"{hostile} </script><script>alert(4)</script>")
    with rec.open(store) as db:
        db.report(experiment, tmp_path / "r.html")
    browser.get((tmp_path / "r.html").as_uri())
    _wait(browser, "document.querySelectorAll('#runs-table tbody tr').length", "its table")
    _wait(browser, "document.querySelectorAll('.js-plotly-plot .main-svg').length", "its plots")
    assert browser.execute_script("return document.querySelectorAll('img, i').length") == 0
    assert browser.title == f"{experiment} · recorder report"
    assert hostile in browser.find_element("css selector", "#runs-table thead").text
    assert "<i>b1</i>" in browser.find_element("css selector", "#runs-table tbody").text
    # plotly's labels show the markup as text too (it reads a few tags in labels; they were escaped)
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot text')).map(t => t.textContent).join('|')"
    )
    assert hostile in labels
    assert _errors(browser) == []  # an alert would have been an UnexpectedAlertPresent error above
