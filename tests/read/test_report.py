"""The HTML report (``db.report``) and the matplotlib plot (``db.plot``), on real stores.

What a browser makes of the report is checked in ``test_report_browser.py``;
the command line in ``tests/cli/test_cli_report.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import git

import recorder as rec
from recorder.read import report as report_module

pytest.importorskip("plotly", reason="the report needs plotly: pip install 'recorder[report]'")

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=alert(1)>"


def model(a: float, b: int, label: str) -> dict[str, Any]:
    if a > 0.8 and b == 3:
        raise ValueError(f"diverged at a={a} </script><script>alert('e')</script>")
    return {"energy": a * b + 0.1, "loss": (a - 0.5) ** 2 + b, "note": f"n{b}", "traj": np.sin(np.linspace(0, a, 50))}


def make_store(store: Path, experiment: str = "lorenz") -> None:
    """A 5 × 3 grid of runs (a, b), one of them failed, with two numeric results, a text one and an array."""
    with rec.Recorder(experiment, store=store, git=False, message="<b>bold</b> message") as r:
        with pytest.warns(rec.RecorderWarning, match="1 of 15 runs failed"):
            r.sweep(model, rec.grid(a=[0.1, 0.3, 0.5, 0.7, 0.9], b=[1, 2, 3], label=["x"]), progress=False)


def hostile_store(store: Path) -> str:
    """A store whose experiment, parameter, result, value, message and error all hold markup."""
    experiment = "x<img src=x onerror=alert(2)>"
    with rec.Recorder(experiment, store=store, git=False, message=f"{HOSTILE} message") as r:
        for a in (1, 2, 3):
            for b in ("<i>b1</i>", "<i>b2</i>"):
                with r.run(**{HOSTILE: a, "b": b}) as run:
                    run.log(**{"<script>alert(3)</script>": float(a), "y": a * 2.0})
        with pytest.raises(RuntimeError):
            with r.run(**{HOSTILE: 9, "b": "<i>b1</i>"}):
                raise RuntimeError(f"bad {HOSTILE} </script><script>alert(4)</script>")
    return experiment


def external_sources(text: str) -> list[str]:
    """The script and stylesheet sources (``src=``, ``href=``) of the page's tags that point to the network."""
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text, flags=re.IGNORECASE)
    return [t for t in tags if re.search(r"(?:src|href)\s*=\s*['\"]?\s*(?:https?:)?//", t, flags=re.IGNORECASE)]


def runs_data(text: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="runs-data">(.*?)</script>', text, flags=re.DOTALL)
    assert found is not None
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def test_report_is_one_file_that_opens_offline_and_names_everything(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    with rec.open(store) as db:
        done = db.report("lorenz", tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert done.path == tmp_path / "r.html" and done.runs == 15 and done.bytes == len(text.encode())
    assert done.notes == ()  # nothing summarised in a small experiment
    assert external_sources(text) == []
    assert text.count("* plotly.js v") == 1  # the library inlined once, not once per figure
    for name in ("a", "b", "label", "energy", "loss", "note"):
        assert f"<code>{name}</code>" in text or f'"{name}"' in text, name
    data = runs_data(text)
    assert data["columns"] == [
        "run",
        "status",
        "started",
        "duration_s",
        "a",
        "b",
        "label",
        "energy",
        "loss",
        "note",
        "error",
    ]
    assert len(data["values"][0]) == 15
    # The header: runs by status, the session with its host, the time span.
    assert "<b>15</b> runs: 14 done, 1 failed" in text
    assert "&lt;b&gt;bold&lt;/b&gt; message" in text
    assert os.uname().nodename in text
    assert "Explored parameters: <code>a</code>, <code>b</code>" in text
    assert "Constant parameters: <code>label</code> = x" in text
    # The failure, with its error, escaped.
    assert "Failures (1)" in text
    assert "<tr><td class='num'>1</td><td><pre>ValueError: diverged at a=0.9" in text  # each error, its count
    assert "ValueError: diverged at a=0.9 &lt;/script&gt;&lt;script&gt;alert(&#x27;e&#x27;)&lt;/script&gt;" in text
    assert "<script>alert(" not in text


def test_the_header_lists_sessions_with_commit_branch_host_and_user(tmp_path: Path, repo: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("exp", store=store, git="record", repo=repo, message="first") as r:
        for a in (1, 2):
            with r.run(a=a) as run:
                run.log(y=a * 1.5)
    (repo / "model.py").write_text("A = 2\n")  # the second session records a modified work tree
    with rec.Recorder("exp", store=store, git="record", repo=repo, message="second") as r, r.run(a=3) as run:
        run.log(y=4.5)
    with rec.open(store) as db:
        db.report("exp", tmp_path / "r.html")
        first = db.df("exp")["_time_start"].iloc[0]
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    commit = git(repo, "rev-parse", "HEAD")[:12]
    rows = re.findall(r"<tr><td>[0-9a-f]{24}</td>(.*?)</tr>", text)
    assert len(rows) == 2 and "<h3>Sessions (2)</h3>" in text
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    # status, started, ended, runs here, commit, branch, host, user, message
    assert [c[3] for c in cells] == ["2", "1"]
    assert cells[0][4] == commit and cells[1][4] == f"{commit} (dirty)"
    assert [c[5] for c in cells] == ["main", "main"]
    assert cells[0][6] == os.uname().nodename and cells[0][7] and [c[8] for c in cells] == ["first", "second"]
    start = first.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert f"<p>From {start} to " in text


def test_report_figures_parcoords_lines_and_heat_maps(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    with rec.open(store) as db:
        db.report("lorenz", tmp_path / "r.html", color="loss")
    figures = _figures((tmp_path / "r.html").read_text(encoding="utf-8"))
    kinds = [[trace["type"] for trace in data] for data, _ in figures]
    # parallel coordinates, then per result (energy, loss): a heat map (a and b form a grid) and two line plots
    assert kinds[0] == ["parcoords"]
    assert kinds[1:] == [["heatmap"], ["scatter"] * 3, ["scatter"] * 5] * 2
    parcoords = figures[0][0][0]
    assert [d["label"] for d in parcoords["dimensions"]] == ["a", "b", "energy", "loss"]
    assert parcoords["line"]["colorbar"]["title"]["text"] == "loss"
    assert len(parcoords["line"]["color"]) == 14  # the done runs
    # energy against a: a line per value of b, through the mean of each point; b = 3 lacks the failed a = 0.9
    lines = figures[2][0]
    assert [t["name"] for t in lines] == ["b = 1", "b = 2", "b = 3"]
    assert lines[2]["x"] == [0.1, 0.3, 0.5, 0.7]
    assert lines[2]["y"] == pytest.approx([0.4, 1.0, 1.6, 2.2])
    heat = figures[1][0][0]
    assert figures[1][1]["title"]["text"] == "energy over a and b"  # one run per cell: no mean to say
    assert heat["x"] == [0.1, 0.3, 0.5, 0.7, 0.9] and heat["y"] == [1, 2, 3]
    assert heat["z"][2][4] is None  # the failed run's cell is a hole
    assert heat["z"][0][0] == pytest.approx(0.2)


def _figures(text: str) -> list[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """The data and layout of each plotly figure in a report, in order."""
    found = re.findall(
        r'Plotly\.newPlot\(\s*"figure-\d+",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{"displaylogo"', text, re.DOTALL
    )
    return [(json.loads(data), json.loads(layout)) for data, layout in found]


def test_hostile_names_and_values_are_escaped(tmp_path: Path) -> None:
    store = tmp_path / "store"
    experiment = hostile_store(store)
    with rec.open(store) as db:
        db.report(experiment, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<img" not in text.lower()
    assert "<i>b" not in text
    assert "<script>alert" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # shown, as text
    assert external_sources(text) == []
    # In JSON inside a script, < > & are \u escapes: no value can close the script.
    data = runs_data(text)
    assert HOSTILE in data["columns"] and "<script>alert(3)</script>" in data["columns"]
    assert any(isinstance(e, str) and "</script><script>alert(4)" in e for e in data["values"][-1])


def test_a_big_experiment_is_summarised_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the thresholds (lowered here) the plots sample or bin, the table keeps the newest runs, and the report says so."""
    store = tmp_path / "store"
    with rec.Recorder("big", store=store, git=False) as r:
        r.sweep(
            lambda a, b: {"y": a * b},
            rec.grid(a=[i / 10 for i in range(30)], b=[1, 2]),
            return_df=False,
            progress=False,
        )
    # The thresholds the README names.
    assert (report_module.PARCOORDS_MAX_RUNS, report_module.SCATTER_MAX_POINTS) == (5_000, 5_000)
    assert (report_module.LINE_MAX_X, report_module.TABLE_MAX_RUNS, report_module.ARRAY_MAX_POINTS) == (
        500,
        10_000,
        10_000,
    )
    assert (report_module.HUE_MAX, report_module.HEATMAP_MAX_SIDE) == (12, 200)
    monkeypatch.setattr(report_module, "PARCOORDS_MAX_RUNS", 20)
    monkeypatch.setattr(report_module, "SCATTER_MAX_POINTS", 10)
    monkeypatch.setattr(report_module, "LINE_MAX_X", 10)
    monkeypatch.setattr(report_module, "TABLE_MAX_RUNS", 25)
    with rec.open(store) as db:
        done = db.report("big", tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "The parallel coordinates show 20 of the 60 done runs, chosen at random." in done.notes
    assert "The table holds the newest 25 of 60 runs; recorder export writes them all to a file." in done.notes
    assert "a has more than 10 distinct values: the line of y against it goes through 100 bins." in done.notes
    assert "The points behind y against a are 10 of 60 runs, chosen at random." in done.notes
    assert "a has 30 values, more than 12 lines: the line of y against b is the mean over them." in done.notes
    for note in done.notes:
        assert note in text  # said in the report, where it happened and at the top
    assert text.count("The table holds the newest 25 of 60 runs") == 2
    figures = _figures(text)
    assert len(figures[0][0][0]["line"]["color"]) == 20
    assert len(runs_data(text)["values"][0]) == 25
    with rec.open(store) as db:
        newest = db.df("big", status=None)["_run_id"].tolist()[-1]
        assert runs_data(text)["values"][0][-1] == db.short_id(newest)


def test_where_narrows_the_report_and_array_plots_a_few_runs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    with rec.open(store) as db:
        done = db.report("lorenz", tmp_path / "r.html", where="b = 2", array="traj", array_runs=3)
        expected = [db.short_id(i) for i in db.df("lorenz", where="b = 2")["_run_id"][:3]]
    text = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert done.runs == 5
    assert "(those where <code>b = 2</code>)" in text
    assert len(runs_data(text)["values"][0]) == 5
    data, layout = _figures(text)[-1]
    assert layout["title"]["text"] == "traj of 3 runs"
    assert [t["name"] for t in data] == expected
    assert len(data[0]["y"]) == 50
    with rec.open(store) as db:
        db.report("lorenz", tmp_path / "all.html", array="traj")  # by default, the first 5 done runs
        first = [db.short_id(i) for i in db.df("lorenz")["_run_id"][:5]]
    data, layout = _figures((tmp_path / "all.html").read_text(encoding="utf-8"))[-1]
    assert layout["title"]["text"] == "traj of 5 runs" and [t["name"] for t in data] == first


def test_a_2d_array_is_a_heat_map_and_a_long_one_is_thinned(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with rec.Recorder("arr", store=store, git=False) as r:
        for a in (1, 2):
            with r.run(a=a) as run:
                run.log(image=np.arange(12.0).reshape(3, 4) * a, long=np.arange(25_000.0), wide=np.ones((450, 10)))
    with rec.open(store) as db:
        images = db.report("arr", tmp_path / "i.html", array="image")
        thinned = db.report("arr", tmp_path / "l.html", array="long", array_runs=1)
        wide = db.report("arr", tmp_path / "w.html", array="wide", array_runs=1)
        short = db.short_id(db.df("arr")["_run_id"][0])
    figures = _figures((tmp_path / "i.html").read_text(encoding="utf-8"))
    heat = [d for d, _ in figures if d[0]["type"] == "heatmap"]
    assert len(heat) == 2 and heat[1][0]["z"][2] == [16.0, 18.0, 20.0, 22.0]
    assert images.notes == ()
    assert thinned.notes == (f"Run {short}: long has 25,000 values; one in 3 is drawn.",)
    line = _figures((tmp_path / "l.html").read_text(encoding="utf-8"))[-1][0][0]
    assert len(line["y"]) == 8334 and line["x"][1] == 3
    assert wide.notes == (f"Run {short}: wide of shape (450, 10) is drawn at one row and column in 3.",)
    z = _figures((tmp_path / "w.html").read_text(encoding="utf-8"))[-1][0][0]["z"]
    assert (len(z), len(z[0])) == (150, 4)  # at most HEATMAP_MAX_SIDE (200) rows and columns


def test_report_errors_name_the_problem(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    with rec.open(store) as db:
        with pytest.raises(rec.RecorderError, match=r"cannot colour by 'note'.*'energy', 'loss'"):
            db.report("lorenz", tmp_path / "r.html", color="note")
        with pytest.raises(rec.RecorderError, match=r"no array result 'energy'.*'traj'"):
            db.report("lorenz", tmp_path / "r.html", array="energy")
        with pytest.raises(rec.ExperimentNotFound):
            db.report("nope", tmp_path / "r.html")
        with pytest.raises(rec.RecorderError, match="cannot write the report"):
            db.report("lorenz", tmp_path / "missing" / "r.html")
    assert not (tmp_path / "r.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "store"]  # no temporary file left


def _without(module: str, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where ``module`` cannot be imported (None in sys.modules)."""
    return subprocess.run(
        [sys.executable, "-c", f"import sys; sys.modules[{module!r}] = None\n{code}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_without_plotly_or_matplotlib_the_error_says_how_to_install(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    code = (
        "import recorder as rec\n"
        "try:\n"
        "    rec.open({store!r}).{call}\n"
        "except rec.ExtraNotInstalled as e:\n"
        "    print(type(e).__name__, isinstance(e, ImportError), e.exit_code, '|', e)\n"
    )
    report = _without("plotly", code.format(store=str(store), call="report('lorenz', 'r.html')"), tmp_path)
    assert report.stdout == (
        "ExtraNotInstalled True 12 | recorder report needs plotly, which is not installed: "
        "pip install 'recorder[report]'\n"
    ), report.stderr
    assert not (tmp_path / "r.html").exists()
    plot = _without("matplotlib", code.format(store=str(store), call="plot('lorenz', x='a', y='energy')"), tmp_path)
    assert plot.stdout == (
        "ExtraNotInstalled True 12 | db.plot needs matplotlib, which is not installed: pip install 'recorder[report]'\n"
    ), plot.stderr


def test_plot_draws_a_line_per_hue_value_through_the_means(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="db.plot needs matplotlib: pip install 'recorder[report]'")
    from matplotlib.figure import Figure

    store = tmp_path / "store"
    make_store(store)
    with rec.open(store) as db:
        figure = db.plot("lorenz", x="a", y="energy", hue="b")
        single = db.plot("lorenz", x="b", y="loss")
        narrowed = db.plot("lorenz", x="a", y="energy", hue="b", where="b >= 2")
    assert isinstance(figure, Figure)
    axes = figure.axes[0]
    assert [line.get_label() for line in axes.lines] == ["b = 1", "b = 2", "b = 3"]
    assert list(axes.lines[2].get_xdata()) == [0.1, 0.3, 0.5, 0.7]  # b = 3 at a = 0.9 failed
    assert list(axes.lines[2].get_ydata()) == pytest.approx([0.4, 1.0, 1.6, 2.2])
    assert axes.get_xlabel() == "a" and axes.get_ylabel() == "energy"
    assert axes.get_legend().get_title().get_text() == "b"
    # Without hue: one line through the mean over the runs of each x (5 values of a at b = 1 and 2, 4 at b = 3).
    (line,) = single.axes[0].lines
    assert single.axes[0].get_ylabel() == "loss (mean)"
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == pytest.approx([1.08, 2.08, 3.06])
    assert len(narrowed.axes[0].lines) == 2
    figure.savefig(tmp_path / "energy.png")  # drawn headless, by Agg
    assert (tmp_path / "energy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without pyplot: no GUI backend is chosen, no window can open (checked in a fresh interpreter).
    code = (
        "import sys, recorder as rec\n"
        f"fig = rec.open({str(store)!r}).plot('lorenz', x='a', y='energy', hue='b')\n"
        "print(type(fig).__name__, 'matplotlib.pyplot' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DISPLAY": ""},
    )
    assert done.stdout == "Figure False\n", done.stderr


def test_plot_refuses_what_it_cannot_draw(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="db.plot needs matplotlib: pip install 'recorder[report]'")
    store = tmp_path / "store"
    with rec.Recorder("many", store=store, git=False) as r:
        r.sweep(lambda a, b: {"y": a + b, "t": f"t{a}"}, rec.grid(a=list(range(14)), b=[1, 2]), progress=False)
    with rec.open(store) as db:
        with pytest.raises(rec.RecorderError, match=r"hue='a' has 14 values.*at most|more lines than the 12"):
            db.plot("many", x="b", y="y", hue="a")
        with pytest.raises(rec.RecorderError, match="'t' of 'many' is not numbers"):
            db.plot("many", x="a", y="t")
        with pytest.raises(rec.RecorderError, match="no parameter or scalar result named 'z'"):
            db.plot("many", x="z", y="y")
        assert len(db.plot("many", x="a", y="y", hue="b").axes[0].lines) == 2


def test_import_and_help_do_not_import_the_report_extra() -> None:
    """``import recorder``, ``recorder --help`` and ``recorder report --help`` import neither plotly nor matplotlib."""
    code = (
        "import sys, recorder\n"
        "from recorder.cli.commands import main\n"
        "for args in (['--help'], ['report', '--help']):\n"
        "    try:\n        main(args)\n    except SystemExit:\n        pass\n"
        "print('HEAVY', [m for m in ('plotly', 'matplotlib', 'pandas', 'numpy') if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_the_docs_show_a_small_screenshot_of_a_report() -> None:
    """docs/img/report.png (taken by docs/screenshot_report.py) is a PNG under 300 KB that docs/index.md shows."""
    image = ROOT / "docs" / "img" / "report.png"
    data = image.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000
    assert "](img/report.png)" in (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert (ROOT / "docs" / "screenshot_report.py").is_file()


def test_odd_experiments_still_make_a_report_and_a_plot(tmp_path: Path) -> None:
    """Every run failed; one run without results; parameters of mixed types, None, bools; NaN and inf results."""
    pytest.importorskip("matplotlib", reason="db.plot needs matplotlib: pip install 'recorder[report]'")
    store = tmp_path / "store"

    def fail(a: int) -> dict[str, Any]:
        raise RuntimeError(f"no {a}")

    with rec.Recorder("allfail", store=store, git=False) as r, pytest.warns(rec.RecorderWarning):
        r.sweep(fail, rec.plist("a", [1, 2]), progress=False)
    with rec.Recorder("one", store=store, git=False) as r, r.run(a=1):
        pass
    with rec.Recorder("odd", store=store, git=False) as r:
        for i, (p, q) in enumerate([("u", None), (3, True), ("u", False), ("t", True)]):
            with r.run(p=p, q=q, big=2**60 + i) as run:
                run.log(flag=bool(i % 2), n=i, x=float("nan") if i == 0 else float(i), inf=float("inf") if i else 1.0)
    with rec.open(store) as db:
        failed = db.report("allfail", tmp_path / "allfail.html")
        one = db.report("one", tmp_path / "one.html")
        odd = db.report("odd", tmp_path / "odd.html")
        figure = db.plot("odd", x="p", y="n", hue="q")
    assert (failed.runs, one.runs, odd.runs) == (2, 1, 4)
    assert "<p>No run is done yet.</p>" in (tmp_path / "allfail.html").read_text(encoding="utf-8")
    assert "Failures (2)" in (tmp_path / "allfail.html").read_text(encoding="utf-8")
    text = (tmp_path / "odd.html").read_text(encoding="utf-8")
    data = runs_data(text)
    column = dict(zip(data["columns"], data["values"]))
    assert column["big"] == [str(2**60 + i) for i in range(4)]  # beyond 2**53: text, so JavaScript keeps every digit
    assert column["x"][0] == "nan" and column["inf"][1] == "inf" and column["q"] == [None, "True", "False", "True"]
    dimensions = _figures(text)[0][0][0]["dimensions"]
    assert dimensions[0]["label"] == "p" and dimensions[0]["ticktext"] == ["3", "t", "u"]  # a mixed axis, as text
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["3", "t", "u"]
    assert [line.get_label() for line in axes.lines] == ["q = False", "q = None", "q = True"]
