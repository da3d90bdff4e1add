"""The command line, through click's CliRunner and as a real process."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import recorder as rec
from recorder.cli.commands import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"recorder, version {rec.__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag: str) -> None:
    result = CliRunner().invoke(main, [flag])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert text.startswith("Usage: recorder [OPTIONS] COMMAND [ARGS]...")
    assert "SQLite provenance database" in text


def test_every_command_has_help() -> None:
    assert main.help
    for name, command in main.commands.items():
        assert command.help, f"command {name!r} has no help text"
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output


def test_unknown_command_is_an_error() -> None:
    result = CliRunner().invoke(main, ["frobnicate"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_console_script_starts_without_heavy_imports() -> None:
    code = (
        "import sys; from recorder.cli.commands import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'pandas', 'git', 'sqlmodel', 'jax', 'tqdm') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_cli_package_is_the_only_click_importer() -> None:
    import pathlib

    package = pathlib.Path(rec.__file__).parent
    importers = sorted(
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if "import click" in p.read_text() or "from click" in p.read_text()
    )
    assert importers == ["cli/commands.py"]
    assert isinstance(main, click.Group)
