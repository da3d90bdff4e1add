"""The report as a person sees it: opened in headless Chromium (through Selenium), offline, with no console error.

Chromium and chromedriver come from the system (Debian: ``apt-get install
chromium chromium-driver``; ``.ci/run`` installs them); without them, or
without selenium, these tests are skipped, saying why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import console_errors, wait_for

import recorder as rec

pytestmark = pytest.mark.browser

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'recorder[report]'")


def _record(store: Path) -> None:
    with rec.Recorder("lorenz", store=store, git=False) as r:
        for a in (0.1, 0.2, 0.3, 0.4):
            for b in (8, 9, 10):
                with r.run(a=a, b=b, solver="rk4") as run:
                    run.log(energy=a * b, loss=(a - 0.2) ** 2, traj=[a * i for i in range(30)])
        with pytest.raises(ValueError), r.run(a=0.5, b=8, solver="rk4"):
            raise ValueError("diverged")


def test_report_renders_in_chromium_without_consoleconsole_errors(tmp_path: Path, browser: Any) -> None:
    store = tmp_path / "store"
    _record(store)
    with rec.open(store) as db:
        db.report("lorenz", tmp_path / "r.html", array="traj")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    figures = text.count('class="plotly-graph-div"')
    assert figures == 1 + 2 * 3 + 1  # parallel coordinates; per result a heat map and 2 lines; the arrays
    browser.get((tmp_path / "r.html").as_uri())
    drawn = wait_for(
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
    assert console_errors(browser) == []


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
    wait_for(browser, "document.querySelectorAll('#runs-table tbody tr').length", "its table")
    wait_for(browser, "document.querySelectorAll('.js-plotly-plot .main-svg').length", "its plots")
    assert browser.execute_script("return document.querySelectorAll('img, i').length") == 0
    assert browser.title == f"{experiment} · recorder report"
    assert hostile in browser.find_element("css selector", "#runs-table thead").text
    assert "<i>b1</i>" in browser.find_element("css selector", "#runs-table tbody").text
    # plotly's labels show the markup as text too (it reads a few tags in labels; they were escaped)
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.js-plotly-plot text')).map(t => t.textContent).join('|')"
    )
    assert hostile in labels
    assert console_errors(browser) == []  # an alert would have been an UnexpectedAlertPresent error above
