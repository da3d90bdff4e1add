"""A run interrupted (Ctrl-C) after its series were spilled: its spill file is closed, not left open.

The sweep records the run ``interrupted`` with the spilled series and removes the file; the descriptor
the run wrote it through must not stay open (one leaked per interrupted run, in the process or a worker).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import recorder as rec


def _open_spills() -> list[str]:
    """The files this process holds open that are (or were) spill files."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if ".spill" in target:
            found.append(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists open files through /proc")
def test_an_interrupted_run_s_spill_file_is_closed(store: Path) -> None:
    def steps(n: int) -> None:
        run = rec.current_run()
        for i in range(n):
            run.append(loss=float(i))  # flush_interval=0: each append is spilled
        raise KeyboardInterrupt  # Ctrl-C inside the run

    with rec.Recorder("spills", store=store, git=False, flush_interval=0) as r:
        with pytest.raises(KeyboardInterrupt):
            r.sweep(steps, rec.plist("n", [5]), progress=False)
        assert _open_spills() == []
    with rec.open(store) as db:
        (run_id,) = db.df("spills", status=None)["_run_id"]
        assert db.df("spills", status=None)["_status"].tolist() == ["interrupted"]
        assert np.array_equal(db.result(run_id, "loss_series"), np.arange(5.0))  # salvaged from the file
