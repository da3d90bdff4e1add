"""Inside a function run by ``vsweep`` there is no run of one pset: ``current_run()`` says so, and what to use instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import recorder as rec
from recorder.errors import NoRunInVsweep, NotInRun

jnp = pytest.importorskip("jax.numpy")


def asks_for_its_run(a: float) -> dict[str, Any]:
    rec.current_run().append(loss=a)
    return {"y": jnp.square(a)}


def asks_for_its_seed(a: float) -> dict[str, Any]:
    return {"y": a * rec.current_seed()}


@pytest.mark.parametrize(("func", "called"), [(asks_for_its_run, "current_run"), (asks_for_its_seed, "current_seed")])
def test_current_run_in_vsweep_is_a_clear_error_naming_what_to_use(store: Path, func: Any, called: str) -> None:
    with rec.Recorder("v", store=store, git=False) as r, pytest.raises(rec.RecorderError) as caught:
        r.vsweep(func, rec.plist("a", [1.0, 2.0, 3.0]), chunk_size=2, progress=False)
    cause = caught.value.__cause__
    assert isinstance(cause, NoRunInVsweep) and isinstance(cause, NotInRun)  # NotInRun handlers still catch it
    message = str(caught.value)
    assert f"recorder.{called}() " in message and "vsweep" in message
    assert "rec.jax.key()" in message  # per-pset randomness
    assert "return" in message and ".sweep()" in message  # results returned; or a sweep, with a run per pset
    with rec.open(store) as db:
        assert db.sql("SELECT count(*) AS n FROM runs")["n"].tolist() == [0]  # refused before any run


def test_outside_vsweep_the_error_is_the_generic_one() -> None:
    with pytest.raises(NotInRun, match="only known inside a recorded run") as caught:
        rec.current_run()
    assert not isinstance(caught.value, NoRunInVsweep)
