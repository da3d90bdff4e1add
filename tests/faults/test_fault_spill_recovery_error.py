"""A dead session whose spilled series cannot be stored now (the objects folder refuses them).

The store's opening must say so as it says it for a full disk (:class:`recorder.errors.RecoveryError`),
leave the session and its spill files for the next opening, and that opening recovers the series.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

import recorder as rec
from recorder.store.folder import Store

CHILD = r"""
import os, signal, sys
import recorder as rec

with rec.Recorder("faults", store=sys.argv[1], git=False, flush_interval=0) as r:
    with r.run(n=1) as run:
        for i in range(20000):  # flush_interval=0: every append is spilled
            run.append(loss=float(i))
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_series_that_cannot_be_stored_now_leave_the_session_for_the_next_opening(tmp_path: Path, store: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run(
        [sys.executable, str(script), str(store)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = proc.stdout.strip()
    objects = store / "objects"
    shutil.rmtree(objects, ignore_errors=True)
    objects.write_text("")  # the 20000 values need an object file: objects/ cannot take one now

    with pytest.raises(rec.RecoveryError, match="next session"):
        Store.open(store, create=False)

    objects.unlink()
    Store.open(store).close()
    con = sqlite3.connect(store / "recorder.sqlite")
    try:
        (status,) = con.execute("SELECT status FROM runs WHERE lower(hex(id)) = ?", (run_id,)).fetchone()
    finally:
        con.close()
    assert status == "interrupted"
    with rec.open(store) as db:
        assert np.array_equal(db.result(run_id, "loss_series"), np.arange(20000, dtype=np.float64))
