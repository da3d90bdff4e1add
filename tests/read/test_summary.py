"""Notebook views: ``_repr_html_`` of Database, db.experiment(...) and Recorder; every name and value escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.read.summary import ExperimentHandle

EVIL = "<script>alert(1)"
PARAM = "<img src=x onerror=alert(2)>"
ALLOWED_TAGS = {"div", "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "p"}


class Tags(HTMLParser):
    """The elements and the text of an HTML fragment, as a browser would parse them."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []
        self.rows: list[list[str]] = []  # the cells of each table row
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.rows and self.rows[-1] and self.lasttag in ("td", "th"):
            self.rows[-1][-1] += data


def parsed(fragment: str) -> Tags:
    tags = Tags(fragment)
    assert tags.tags <= ALLOWED_TAGS and tags.attributes <= {"style"}, (tags.tags, tags.attributes)
    return tags


def make(store: Path) -> None:
    with rec.Recorder(EVIL, store=store, git=False) as r:
        for a in (1, 2, 3):
            with r.run(**{PARAM: "<b>v</b>", "a": a}) as run:
                run.log(**{"<i>e": a / 4, "traj": np.zeros(3)})
        failing = r.run(**{PARAM: "x", "a": 9})
        with pytest.raises(ValueError), failing:
            raise ValueError("<svg onload=alert(3)>")
    with rec.Recorder("plain", store=store, git=False) as r, r.run(x=1) as run:
        run.log(y=2)


def test_database_shows_experiments_by_status_escaped(store: Path) -> None:
    make(store)
    with rec.open(store) as db:
        tags = parsed(db._repr_html_())
    text = "".join(tags.text)
    assert EVIL in text and "plain" in text and str(store) in text
    assert tags.rows == [
        ["experiment", "runs", "done", "failed", "interrupted", "running"],
        [EVIL, "4", "3", "1", "0", "0"],
        ["plain", "1", "1", "0", "0", "0"],
    ]


def test_experiment_handle_shows_params_and_results_with_ranges_escaped(store: Path) -> None:
    make(store)
    with rec.open(store) as db:
        handle = db.experiment(EVIL)
        assert isinstance(handle, ExperimentHandle) and handle.name == EVIL
        summary = handle.summary()
        tags = parsed(handle._repr_html_())
        assert len(handle.df()) == 3 and handle.runs(limit=1).total == 4
        with pytest.raises(rec.ExperimentNotFound):
            db.experiment("nope")
    assert summary["runs"] == 4 and summary["by_status"] == {"done": 3, "failed": 1, "interrupted": 0, "running": 0}
    assert summary["params"]["a"] == {"values": 4, "min": 1, "max": 9, "distinct": 4}
    assert summary["params"][PARAM]["distinct"] == 2
    assert summary["results"]["<i>e"] == {"values": 3, "min": 0.25, "max": 0.75}
    assert summary["other_results"] == ["traj"]
    text = "".join(tags.text)
    assert (
        EVIL in text and PARAM in text and "<b>v</b>" in text and "<i>e" in text and "4 runs (3 done, 1 failed)" in text
    )
    assert ["a", "4", "4", "1", "9"] in tags.rows and ["<i>e", "3", "0.25", "0.75"] in tags.rows
    assert [PARAM, "4", "2", "<b>v</b>", "x"] in tags.rows


def test_recorder_shows_its_session_and_experiment(store: Path) -> None:
    r = rec.Recorder(EVIL, store=store, git=False, message="<b>why</b>")
    text = "".join(parsed(r._repr_html_()).text)
    assert "not started" in text and "<b>why</b>" in text and EVIL in text
    with r:
        with r.run(**{PARAM: 1}) as run:
            run.log(y=0.5)
        r.flush()
        text = "".join(parsed(r._repr_html_()).text)
        assert "recording" in text and r.id is not None and r.id in text and "1 run (1 done)" in text
        assert PARAM in text
    text = "".join(parsed(r._repr_html_()).text)
    tags = parsed(r._repr_html_())
    assert ["state", "ended"] in tags.rows and ["runs recorded", "1"] in tags.rows
