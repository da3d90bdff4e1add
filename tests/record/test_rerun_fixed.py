"""recorder rerun of a run swept with fixed inputs (``fixed=``, a partial's arguments): the same values passed back.

Real git repositories, real subprocesses (the sweeps and the reruns run in
fresh interpreters), a real store tampered with for the hostile cases.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import git, make_repo

import recorder as rec
from recorder.errors import RerunRefused

ROOT = Path(__file__).resolve().parents[2]

MODULE = """\
import numpy as np


class Opaque:
    def __init__(self, k):
        self.k = k


def weighted(a: int, table, blob: bytes, model: dict) -> dict:
    return {"y": float(table.sum()) * a + model["bias"] * len(blob), "z": table * a, "kinds": type(blob).__name__}


def opaque(a: int, thing) -> dict:
    return {"y": a * thing.k}


def plain(a: int) -> dict:
    return {"y": a}
"""

SWEEP = """\
import functools, warnings
import numpy as np
import recorder as rec
from fixmod import weighted, opaque, Opaque

warnings.simplefilter("ignore")
table = np.arange(20_000, dtype=np.float64).reshape(100, 200)[:, ::2]  # not C-ordered; an object once stored
with rec.Recorder("fx", store={store!r}, git="auto") as r:
    if {mode!r} == "fixed":
        r.sweep(weighted, rec.plist("a", [2, 3]), fixed={{"table": table, "blob": bytearray(b"abc"), "model": {{"bias": 0.5}}}})
    elif {mode!r} == "partial":
        r.sweep(functools.partial(weighted, table=table, blob=b"xy", model={{"bias": (1, 2)[0]}}), rec.plist("a", [2]))
    else:
        r.sweep(opaque, rec.plist("a", [2]), fixed={{"thing": Opaque(3)}})
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def swept(tmp_path: Path, mode: str) -> tuple[Path, list[str]]:
    repo = make_repo(tmp_path / "repo")
    (repo / "fixmod.py").write_text(MODULE)
    git(repo, "add", "fixmod.py")
    git(repo, "commit", "-q", "-m", "fixmod")
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", SWEEP.format(store=str(store), mode=mode)],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        ids = [i.hex() for (i,) in conn.execute("SELECT id FROM runs WHERE status = 'done' ORDER BY pk")]
    finally:
        conn.close()
    return store, ids


def sessions(store: Path) -> int:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        return int(conn.execute("SELECT count(*) FROM sessions").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["fixed", "partial"])
def test_rerun_of_a_run_with_fixed_inputs_passes_them_back_and_matches(tmp_path: Path, mode: str) -> None:
    store, ids = swept(tmp_path, mode)
    found = rec.rerun(ids[-1], store=store)
    assert found.match, found.differences
    with rec.open(store) as db:
        assert np.array_equal(db.result(found.rerun, "z"), db.result(ids[-1], "z"))
        assert db.result(found.rerun, "kinds") == ("bytearray" if mode == "fixed" else "bytes")
        config = db.sql("SELECT name FROM config WHERE name LIKE 'fixed.table%' ORDER BY name")["name"].tolist()
    assert sorted(set(config)) == ["fixed.table", "fixed.table.value"]  # both sessions: the sweep and the rerun


def test_rerun_of_a_run_with_an_unstorable_fixed_input_is_refused_naming_it(tmp_path: Path) -> None:
    store, ids = swept(tmp_path, "opaque")
    before = sessions(store)
    with pytest.raises(RerunRefused, match=r"fixed input 'thing'.*fixmod.Opaque.*type and repr only"):
        rec.rerun(ids[0], store=store)
    assert sessions(store) == before  # refused before any child process recorded anything


def _tamper(store: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        with conn:
            conn.execute(sql, args)
    finally:
        conn.close()


def _object_of(store: Path, name: str) -> str:
    conn = sqlite3.connect(store / "recorder.sqlite")
    try:
        kind, digest = conn.execute("SELECT kind, value FROM config WHERE name = ?", (name,)).fetchone()
    finally:
        conn.close()
    assert kind == "object"
    return str(digest)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing object", r"fixed input 'table'.*"),
        ("other object", r"fixed input 'table'.*does not match its recorded digest"),
        ("json value", r"fixed input 'model'.*does not match its recorded digest"),
        ("digest only", r"fixed input 'blob'.*only its digest was recorded"),
        ("bad name", r"fixed input 'x; import os'.*not a keyword argument"),
        ("not an entry", r"fixed input 'model'.*not a digest entry"),
        ("value of another kind", r"fixed input 'table'.*not an array"),
    ],
)
def test_a_hostile_fixed_input_record_is_refused_cleanly(tmp_path: Path, damage: str, message: str) -> None:
    store, ids = swept(tmp_path, "fixed")
    if damage == "missing object":
        digest = _object_of(store, "fixed.table.value")
        (store / "objects" / digest[:2] / f"{digest[2:]}.npy").unlink()
    elif damage == "other object":  # the z result of a run: a real object, of another array
        conn = sqlite3.connect(store / "recorder.sqlite")
        other = conn.execute("SELECT value FROM results WHERE name = 'z' AND kind = 'object'").fetchone()[0]
        conn.close()
        _tamper(store, "UPDATE config SET value = ? WHERE name = 'fixed.table.value'", other)
    elif damage == "json value":
        entry = {"type": "json", "sha256": "0" * 64, "value": {"bias": 99}}
        _tamper(store, "UPDATE config SET value = ? WHERE name = 'fixed.model'", json.dumps(entry))
    elif damage == "digest only":
        _tamper(store, "DELETE FROM config WHERE name = 'fixed.blob.value'")
    elif damage == "bad name":
        _tamper(store, "UPDATE config SET name = 'fixed.x; import os' WHERE name = 'fixed.model'")
    elif damage == "not an entry":
        _tamper(store, "UPDATE config SET kind = NULL, value = 'hello' WHERE name = 'fixed.model'")
    else:
        _tamper(store, "UPDATE config SET kind = 'bytes', value = x'00' WHERE name = 'fixed.table.value'")
    before = sessions(store)
    with pytest.raises(RerunRefused, match=message):
        rec.rerun(ids[0], store=store)
    assert sessions(store) == before
