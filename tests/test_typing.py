"""Types: the package is checked with ``mypy --strict``, and a decorated experiment keeps its signature."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent

USE = textwrap.dedent(
    """
    import recorder as rec

    @rec.experiment
    def bare(a: int, b: float = 1.0) -> dict[str, float]:
        return {"x": a * b}

    @rec.experiment("named", store="runs")
    def named(a: int) -> None:
        return None

    reveal_type(bare)
    reveal_type(named)
    bare(1, b=2.0)
    named(1)
    bare("not an int")
    """
)


@pytest.mark.slow  # runs mypy
def test_decorated_experiment_keeps_its_signature_for_type_checkers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This tree's package, not whichever copy is installed.
    monkeypatch.setenv("MYPYPATH", str(ROOT))
    (tmp_path / "use.py").write_text(USE)
    out, err, code = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(tmp_path / "use.py"),
        ]
    )
    lines = [line for line in out.splitlines() if "use.py" in line]
    assert 'Revealed type is "recorder.record.experiment.Experiment[[a: int, b: float =], dict[str, float]]"' in out, (
        out
    )
    assert 'Revealed type is "recorder.record.experiment.Experiment[[a: int], None]"' in out, out
    errors = [line for line in lines if ": error:" in line]
    # The one wrong call, and nothing else (the right calls type-check).
    assert len(errors) == 1, out
    assert 'use.py:16: error: Argument 1 to "__call__" of "Experiment" has incompatible type "str"' in errors[0], out
    assert code == 1, (out, err)
