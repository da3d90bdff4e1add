"""Hostile pypet files: nothing is unpickled, no link leads out of the file, no read is unbounded.

Each test edits a copy of one trajectory of ``tests/data/pypet_study.hdf5``
(written by real pypet, see ``tests/data/make_pypet_fixture.py``) with h5py,
the way an attacker who hands over a file could, and reads it with the
importer's reader (and, for the pickle, imports it into a store).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import recorder as rec
from recorder.errors import ImportSourceError

h5py = pytest.importorskip("h5py")

from recorder.importing.pypet import MAX_READ_BYTES, read_pypet  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "pypet_study.hdf5"
RUN0 = "study/results/runs/run_00000000"


class _Marker:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (Path.write_text, (str(self.path), "unpickled"))  # type: ignore[return-value]


def _copy(tmp_path: Path) -> Path:
    """A file holding a copy of the fixture's ``study`` trajectory."""
    path = tmp_path / "hostile.hdf5"
    with h5py.File(path, "w") as f, h5py.File(FIXTURE, "r") as src:
        src.copy(src["study"], f, name="study")
    return path


def test_pickles_in_the_file_are_never_loaded(tmp_path: Path, store: Path) -> None:
    marker = tmp_path / "marker"
    payload = pickle.dumps(_Marker(marker))
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        info = f[RUN0]["info"]
        del info["info"]
        info.create_dataset("info", data=np.bytes_(payload))  # pypet's PickleResult layout, a hostile pickle
        # the same pickle as a plain Result's item of PyTables' object atom (variable-length bytes) ...
        leaf = f[RUN0].create_group("obj")
        leaf.attrs["SRVC_INIT_CLASS_NAME"] = np.bytes_(b"Result")
        leaf.attrs["SRVC_LEAF"] = np.uint8(1)
        item = leaf.create_dataset("obj", shape=(1,), dtype=h5py.vlen_dtype(np.uint8))
        item[0] = np.frombuffer(payload, dtype=np.uint8)
        item.attrs["SRVC_STORE"] = np.bytes_(b"VLARRAY")
        item.attrs["SRVC_DATA_COLL_TYPE"] = np.bytes_(b"COLL_NDARRAY")
        # ... and as a plain bytes scalar
        leaf = f[RUN0].create_group("raw")
        leaf.attrs["SRVC_INIT_CLASS_NAME"] = np.bytes_(b"Result")
        leaf.attrs["SRVC_LEAF"] = np.uint8(1)
        item = leaf.create_dataset("raw", data=np.bytes_(payload))
        item.attrs["SRVC_STORE"] = np.bytes_(b"ARRAY")
        item.attrs["SRVC_DATA_COLL_TYPE"] = np.bytes_(b"COLL_SCALAR")
        item.attrs["SRVC_DATA_SCALAR_TYPE"] = np.bytes_(b"bytes")
    study = read_pypet(path)
    first = study.runs[0].results
    assert set(first) == {"z", "arr", "stats.mean", "stats.n", "q", "w"}
    unmapped = "\n".join(study.unmapped)
    assert "'info': a pypet PickleResult" in unmapped
    assert "'obj'" in unmapped and "variable-length" in unmapped
    assert "'raw'" in unmapped and "bytes" in unmapped
    rec.import_pypet(path, into=store)
    assert not marker.exists()


def test_links_and_storage_outside_the_file_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.hdf5"
    with h5py.File(outside, "w") as f:
        f["secret"] = np.arange(5.0)
    raw = tmp_path / "outside.bin"
    raw.write_bytes(np.full(3, 42.0).tobytes())
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        run = f[RUN0]
        del run["z"]
        run["z"] = h5py.ExternalLink(str(outside), "/secret")  # a result leading into another file
        run["loop"] = h5py.SoftLink("/study")  # a soft link back up the tree
        arr = run["arr"]
        del arr["arr"]
        ext = arr.create_dataset("arr", shape=(3,), dtype="<f8", external=[(str(raw), 0, 24)])
        ext.attrs["SRVC_STORE"] = np.bytes_(b"CARRAY")
        ext.attrs["SRVC_DATA_COLL_TYPE"] = np.bytes_(b"COLL_NDARRAY")
    study = read_pypet(path)
    assert "z" not in study.runs[0].results and "arr" not in study.runs[0].results
    assert study.runs[0].results["stats.mean"] == 0.25  # the rest of the run reads as before
    unmapped = "\n".join(study.unmapped)
    assert "'z' is an external link, not followed" in unmapped
    assert "'loop' is a soft link, not followed" in unmapped
    assert "outside the file" in unmapped
    assert study.runs[1].results["z"] == 1.0  # the other runs read as before


def test_a_dataset_claiming_more_than_the_read_limit_is_reported_not_read(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        arr = f[RUN0]["arr"]
        del arr["arr"]
        # chunked and never written: a few bytes in the file, 8 GiB when read
        huge = arr.create_dataset("arr", shape=(2**30,), dtype="<f8", chunks=(1024,), compression="gzip")
        huge.attrs["SRVC_STORE"] = np.bytes_(b"CARRAY")
        huge.attrs["SRVC_DATA_COLL_TYPE"] = np.bytes_(b"COLL_NDARRAY")
    assert path.stat().st_size < 10 * 2**20
    study = read_pypet(path)
    assert "arr" not in study.runs[0].results and study.runs[0].results["z"] == 0.5
    assert any(f"more than the {MAX_READ_BYTES}" in line for line in study.unmapped)


def test_names_that_are_not_text_are_reported_not_imported(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        f[RUN0].move("z", "z\x1b[2J")  # an escape sequence that would clear a terminal
    study = read_pypet(path)
    assert "z" not in study.runs[0].results and "z\x1b[2J" not in study.runs[0].results
    assert any("not a plain name" in line and "\\x1b" in line for line in study.unmapped)
    assert all("\x1b" not in line for line in study.unmapped + study.mapped)


def test_explored_ranges_that_do_not_match_the_runs_are_refused(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        x = f["study/parameters/x"]
        rows = x["explored_data"][:4]
        attrs = dict(x["explored_data"].attrs)
        del x["explored_data"]
        x.create_dataset("explored_data", data=rows)
        x["explored_data"].attrs.update(attrs)
    with pytest.raises(ImportSourceError) as e:
        read_pypet(path, trajectory="study")
    assert "\n" not in str(e.value)
    assert "'x' has 4 values for 6 runs" in str(e.value)


def test_a_group_hard_linked_below_itself_ends(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    with h5py.File(path, "a") as f:
        f["study/parameters/model/again"] = f["study/parameters"]  # a cycle: parameters.model.again.model...
        f[f"{RUN0}/deeper"] = f[RUN0]
    # in another process, so that a reader walking the cycle forever fails the test instead of hanging it
    code = (
        "import json, sys; from recorder.importing.pypet import read_pypet; "
        "s = read_pypet(sys.argv[1], trajectory='study'); "
        "print(json.dumps([s.config['model.name'], s.runs[0].results['z'], s.unmapped]))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    name, z, unmapped = json.loads(out.stdout)
    assert (name, z) == ("linear", 0.5)
    assert any("parameters.model.again links to a group met before (a cycle)" in line for line in unmapped)
    assert any("results.deeper links to a group met before (a cycle)" in line for line in unmapped)
