"""Packaging: the schema ships in the wheel and is found in an editable install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

import recorder
from recorder.store.db import schema_path


def test_schema_found_from_this_install() -> None:
    path = schema_path("views.sql")
    assert "CREATE VIEW overview_runs" in path.read_text()


def test_wheel_contains_schema_and_package(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    done = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("recorder-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "recorder/schema/views.sql" in names
    assert "recorder/__init__.py" in names and "recorder/cli/commands.py" in names
    # PEP 561: the marker that tells type checkers the installed package carries its own types.
    assert "recorder/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "recorder = recorder.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_finds_its_schema(tmp_path: Path) -> None:
    """Install the wheel into a folder on its own and create a store with it."""
    pytest.importorskip("hatchling")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("recorder-*.whl")
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = (
        "import recorder, recorder.store.db as d\n"
        f"assert recorder.__file__.startswith({str(tmp_path / 'site')!r}), recorder.__file__\n"
        "print(d.schema_path('views.sql'))\n"
        "s = recorder.Store.open(r'" + str(tmp_path / "store") + "'); s.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "site" / "recorder" / "schema" / "views.sql")


def test_editable_install_finds_the_top_level_schema() -> None:
    """In this checkout the package has no schema/ of its own: the top-level one is used."""
    if (Path(recorder.__file__).parent / "schema").exists():
        pytest.skip("running from an installed wheel")
    assert schema_path("views.sql") == ROOT / "schema" / "views.sql"


def test_every_error_class_is_exported_from_the_package() -> None:
    """Users catch recorder's errors as ``rec.NoStoreError`` etc.: each one is in ``recorder.__all__``."""
    import recorder
    import recorder.errors

    classes = {
        name
        for name, value in vars(recorder.errors).items()
        if isinstance(value, type) and issubclass(value, (recorder.errors.RecorderError, Warning))
    }
    assert classes <= set(recorder.errors.__all__), classes - set(recorder.errors.__all__)
    missing = set(recorder.errors.__all__) - set(recorder.__all__)
    assert not missing, f"not exported from recorder: {sorted(missing)}"
    assert all(getattr(recorder, name) is getattr(recorder.errors, name) for name in recorder.errors.__all__)
