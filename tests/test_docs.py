"""The documentation: the CLI page matches the CLI, and the site builds with warnings as errors."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import recorder

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD_TIMEOUT_S = 300  # a bound on a hang, not a timing assertion; the build takes about 2 s


def _load(name: str) -> ModuleType:
    """Import ``docs/<name>.py`` (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _needs_mkdocs() -> None:
    """Skip, saying why, where the docs toolchain is not installed."""
    for module in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "griffe", "pymdownx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed; the docs build needs pip install -e '.[docs]' (or '.[test]')")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mkdocs build --strict`` on ``config`` into ``site``, importing this checkout's recorder."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


def test_cli_page_is_current() -> None:
    """docs/cli.md is what docs/gen_cli.py writes for today's CLI: regenerate it when a command changes."""
    gen_cli = _load("gen_cli")
    committed = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert committed == gen_cli.render(), "docs/cli.md is out of date: run python docs/gen_cli.py and commit it"


def test_cli_page_has_every_command() -> None:
    """The CLI page has a section, with the help text, for the group and each of its commands."""
    from recorder.cli.commands import main

    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert "## `recorder`" in page
    for name, command in main.commands.items():
        assert f"### `recorder {name}`" in page
        assert f"Usage: recorder {name} " in page
        assert (command.short_help or command.help or "").split("\n")[0][:40] in page


def test_cli_page_does_not_depend_on_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page is the same whatever terminal generates it, so the freshness check cannot flap."""
    gen_cli = _load("gen_cli")
    monkeypatch.setenv("COLUMNS", "200")
    wide = gen_cli.render()
    monkeypatch.setenv("COLUMNS", "40")
    assert gen_cli.render() == wide


def test_rest_rewrite_splits_fields_and_roles() -> None:
    """The docs-only docstring rewrite splits multi-name fields and turns roles into code spans."""
    _needs_mkdocs()
    rest = _load("griffe_rest")
    text = "Run it.\n\n:param a, b: as for\n    :meth:`sweep`.\n:returns: a :class:`~recorder.Run`.\n"
    assert rest.rewrite(text) == (
        "Run it.\n\n:param a: as for `sweep`.\n:param b: as for `sweep`.\n:returns: a `recorder.Run`.\n"
    )


def test_docs_build_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` passes and documents every name of ``recorder.__all__``."""
    _needs_mkdocs()
    result = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    anchors = {anchor.rsplit(".", 1)[-1] for anchor in re.findall(r'id="(recorder\.[\w.]+)"', api)}
    missing = sorted(set(recorder.__all__) - {"__version__"} - anchors)
    assert not missing, f"docs/api.md does not document {missing}; add a ::: line for each"
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Keep a Changelog" in changelog  # the page includes CHANGELOG.md, not an empty stub


def test_docs_build_fails_on_a_broken_reference(tmp_path: Path) -> None:
    """The strict build is a real check: a reference to a name that does not exist fails it."""
    _needs_mkdocs()
    copy = tmp_path / "project"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "CHANGELOG.md", copy / "CHANGELOG.md")
    (copy / "recorder").symlink_to(ROOT / "recorder", target_is_directory=True)
    api = copy / "docs" / "api.md"
    api.write_text(api.read_text(encoding="utf-8") + "\n::: recorder.NoSuchName\n", encoding="utf-8")
    result = _build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "NoSuchName" in result.stdout + result.stderr
