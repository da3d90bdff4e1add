"""Hostile and damaged stores through the command line: what a store holds never reaches the terminal raw.

A crafted store (names and values holding escape sequences, OSC titles, bidi
overrides, rich markup, lone surrogates; value cells that do not decode) is
made with the library and then edited with plain sqlite3. Every command
must print it escaped, and a value that cannot be read must be one error
line naming the run and the value, exit status 1, no traceback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import recorder as rec
from recorder.cli.commands import main

EXP = "lorenz"


def cli(store: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--store", str(store), *args])


def assert_error(result: Result, *fragments: str, code: int = 1) -> str:
    """A clean error: exit ``code`` (the error class's exit_code), one line on stderr starting 'recorder: error:', nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("recorder: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def short(store: Path, run_id: str) -> str:
    with rec.open(store) as db:
        return db.short_id(run_id)


# -- hostile stores: what a store holds never reaches the terminal raw -------------------------

_HOSTILE = "\x1b]0;pwned\x07\x1b[31mred\x1b[0m\u202edesrever\u0085\u2028[bold]x[/bold]\x9b2J"


def _raw_controls(text: str) -> list[str]:
    import unicodedata

    return [c for c in text if c not in "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs")]


def _hostile_store(store: Path) -> str:
    with rec.Recorder(EXP, store=store, git=False, message=_HOSTILE) as r, r.run(a=1, label=_HOSTILE) as run:
        run.log(word=_HOSTILE, e=1.0)
        print(_HOSTILE)
    bad = run.id
    with rec.Recorder(EXP, store=store, git=False) as r:
        failing = r.run(a=2)
        with pytest.raises(ValueError), failing:
            raise ValueError(_HOSTILE)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:  # what only a crafted store can hold: names with escapes, a lone surrogate
        conn.execute("UPDATE experiments SET name = ?", ("exp\x1b[2J\u202e",))
        conn.execute("UPDATE sessions SET host = ?", ("host\x1b]8;;http://x\x07",))
        conn.execute("UPDATE psets SET params = ? WHERE params LIKE '%\"a\":1%'", ('{"a":1,"s":"\\udc80\\u001b"}',))
    conn.close()
    return bad


@pytest.mark.parametrize(
    "args",
    [
        ["log"],
        ["log", "--oneline"],
        ["log", "--json"],
        ["status"],
        ["status", "--json"],
        ["sql", "SELECT * FROM overview_runs"],
        ["sql", "SELECT name FROM experiments", "--csv"],
        ["sql", "SELECT * FROM experiments", "--json"],
        ["show", "BAD"],
        ["show", "BAD", "--json"],
        ["show", "FAILED"],
        ["diff", "BAD", "FAILED"],
        ["log", "--status", "failed"],
    ],
)
def test_store_strings_are_escaped_on_output(store: Path, args: list[str]) -> None:
    bad = _hostile_store(store)
    with rec.open(store) as db:
        failed = db.sql("SELECT run_id FROM overview_runs WHERE status = 'failed'")["run_id"][0]
    args = [bad if a == "BAD" else failed if a == "FAILED" else a for a in args]
    result = cli(store, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.strip()
    assert _raw_controls(result.output) == [], result.output
    if "--json" in args:  # still exact: the escapes read back as the characters
        text = result.output
        values = [json.loads(text)] if args[0] not in ("log", "sql") else [json.loads(x) for x in text.splitlines()]
        assert any("\x1b" in v for v in _strings(values)) or args[0] == "status"


def _strings(value: Any) -> list[str]:
    """Every str in a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# Invisible characters a store may hold (only a crafted store can hold them in names): Hangul fillers,
# the grapheme joiner, variation selectors, a tag, unassigned, noncharacter and private-use code points.
_INVISIBLE = "\u3164\u115f\u1160\uffa0\u034f\ufe0f\U000e0100\U000e0041\u00ad\u0378\uffff\ufdd0\ue000\U000f0000"


def _invisible_store(store: Path) -> str:
    with rec.Recorder(EXP, store=store, git=False, message="m" + _INVISIBLE) as r:
        with r.run(a=1, label="l" + _INVISIBLE) as run:
            run.log(word="w" + _INVISIBLE, accent="e\u0301", e=1.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute("UPDATE experiments SET name = ?", ("exp" + _INVISIBLE,))
    conn.close()
    return run.id


@pytest.mark.parametrize(
    "args",
    [
        ["log"],
        ["log", "--oneline"],
        ["log", "--json"],
        ["status"],
        ["status", "--json"],
        ["sql", "SELECT * FROM overview_runs"],
        ["sql", "SELECT name FROM experiments", "--csv"],
        ["sql", "SELECT * FROM experiments", "--json"],
        ["show", "RUN"],
        ["show", "RUN", "--json"],
    ],
)
def test_invisible_store_characters_are_escaped_on_output(store: Path, args: list[str]) -> None:
    run_id = _invisible_store(store)
    result = cli(store, *[run_id if a == "RUN" else a for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.strip()
    raw = [ascii(c) for c in _INVISIBLE if c in result.output]
    assert raw == [], result.output
    if args[0] == "show":  # a combining mark is text: the decomposed "é" prints as itself
        assert "e\u0301" in result.output
    if "--json" in args and args[0] != "status":  # still exact: the escapes read back as the characters
        text = result.output
        values = [json.loads(text)] if args[0] == "show" else [json.loads(x) for x in text.splitlines()]
        assert any(_INVISIBLE in v for v in _strings(values)), values


def test_an_error_naming_store_text_is_one_clean_line(store: Path) -> None:
    _hostile_store(store)
    line = assert_error(cli(store, "log", "exp\x1b[2J\u202e-not-there"), "no experiment", code=4)
    assert _raw_controls(line) == []


# -- crafted values: one line, not a traceback ----------------------------------------------------


@pytest.mark.parametrize(
    "craft, fragment",
    [
        ("UPDATE results SET kind = 'json', value = '{not json' WHERE name = 'word'", "result 'word'"),
        ("UPDATE results SET kind = 'martian' WHERE name = 'word'", "result 'word'"),
        ("UPDATE results SET kind = 'npy', value = x'00' WHERE name = 'word'", "result 'word'"),
        ("UPDATE results SET kind = 'np:nonsense' WHERE name = 'word'", "result 'word'"),
        ("UPDATE runs SET scalars = '{broken'", "scalar results"),
        ("UPDATE runs SET scalars = '[1, 2]'", "scalar results"),
        ("UPDATE psets SET params = 'nope'", "parameters"),
        ("UPDATE config SET kind = 'json', value = '[' WHERE name = 'dt'", "config 'dt'"),
    ],
)
def test_show_of_a_crafted_value_is_one_line(store: Path, craft: str, fragment: str) -> None:
    with rec.Recorder(EXP, store=store, git=False, config={"dt": 0.1}) as r, r.run(a=1) as run:
        run.log(word="hello", e=1.0)
    conn = sqlite3.connect(store / "recorder.sqlite")
    with conn:
        conn.execute(craft)
    conn.close()
    s = short(store, run.id)
    for args in (["show", s], ["show", s, "--json"]):
        line = assert_error(cli(store, *args), f"run {s}", fragment, "cannot be read")
    result = CliRunner().invoke(main, ["--store", str(store), "--debug", "show", s])
    from recorder.errors import UnreadableValue

    assert isinstance(result.exception, UnreadableValue)
    assert line
