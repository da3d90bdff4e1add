"""The number codec: each fast path gives exactly what its general rule gives, and what is written reads back."""

from __future__ import annotations

import json
import math
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recorder.codec.canonical import (
    INT64_MAX,
    INT64_MIN,
    bool_column,
    canonical_pset,
    float_json,
    json_key,
    number_json,
    param_json,
    plain_numbers,
    plain_results,
    pset_layout,
    read_columns,
    read_json,
    read_one_by_one,
    scalar_json,
    scalar_layout,
    scalars_json,
    scalars_rows,
    structure_json,
)
from recorder.codec.values import Encoded, encode
from recorder.errors import RecorderError
from recorder.store.objects import ObjectStore

_ODD_TEXTS = ['"', "\\", "%", "%r", "%%", "a\nb", "\x00", "é", "日本", "🎉", "\u2028", "tab\there", "", "1e999", "null"]


def _floats(rng: random.Random, n: int) -> list[float]:
    """Floats of every kind: random bit patterns (subnormals, huge, tiny), round ones, ±0.0, ±inf, NaN."""
    out = [0.0, -0.0, 0.1, -2.5, 1e300, -1e-300, 5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan]
    out += [2.0**53 + 1, float(INT64_MAX), 1e16, 123456789.125]
    while len(out) < n:
        out.append(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
    return out


def _ints(rng: random.Random, n: int) -> list[int]:
    out = [0, 1, -1, INT64_MAX, INT64_MIN, INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**100), 2**53 + 1]
    while len(out) < n:
        out.append(rng.randint(INT64_MIN, INT64_MAX) >> rng.randrange(64))
    return out


def values(seed: int = 15, n: int = 400) -> list[Any]:
    """Many values of every kind a pset or a result may hold (and some they may not)."""
    rng = random.Random(seed)
    numpy_ = [np.float64(0.5), np.float32(0.1), np.float16(-2.0), np.int64(-7), np.uint64(2**64 - 1), np.int8(3)]
    numpy_ += [np.bool_(True), np.float64(-0.0), np.float64("inf"), np.str_("x"), np.int32(INT64_MAX % 2**31)]
    return [*_floats(rng, n), *_ints(rng, n), True, False, None, *_ODD_TEXTS, *numpy_]


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type, and the same sign of zero (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (a != a and b != b) or (a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    return bool(a == b)


# -- numbers: one rule ------------------------------------------------------------------------------


def test_number_json_is_repr_with_inf_as_1e999_and_reads_back() -> None:
    for value in values():
        if type(value) not in (int, float, bool, type(None)) or value != value:
            continue
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            continue
        text = number_json(value)
        assert same(read_json(text), value), (value, text)
        if type(value) is float:
            assert (
                text
                == float_json(value)
                == ("1e999" if value == math.inf else "-1e999" if value == -math.inf else repr(value))
            )
        elif type(value) is int:
            assert text == repr(value)


def test_every_writer_writes_numbers_by_the_one_rule(tmp_path: Path) -> None:
    """Pset values, runs.scalars and lists of results: each number as number_json writes it."""
    objects = ObjectStore(tmp_path / "objects")
    for value in values():
        if type(value) not in (int, float, bool, type(None)) or value != value:
            continue
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            continue
        expected = number_json(value)
        assert structure_json("result", "x", [value]) == "[" + expected + "]"
        # (json.dumps's separators, ", " and ": ", except where ±inf is inside: kept so, as stored)
        assert structure_json("result", "x", {"k": value}).replace(" ", "") == '{"k":' + expected + "}"
        assert same(read_json(structure_json("result", "x", {"k": value}))["k"], value)
        cell = encode("x", value, objects)
        assert scalar_json(cell.kind, cell.value) == expected
        text, clean = param_json("p", value)
        if type(value) is float and value == 0.0:  # a pset's -0.0 is its 0.0: the same pset
            assert (text, clean) == ("0.0", 0.0)
        else:
            assert text == expected and same(clean, value)


# -- psets: the template of known names beside the general rule --------------------------------------


# (kept from test_hashing, where they were before the codec had a module of its own)
@pytest.mark.parametrize(
    "params",
    [
        {"a": 0.1, "b": 3},
        {"b": 3, "a": 0.1},
        {"x%s": 1.5, "y%%r": 2, 'q"': 3.0, "é\\": -7},  # names that a %-template or JSON must escape
        {"a": 1e300, "b": -(2**63), "c": 2**63 - 1, "d": 5e-324, "e": -2.5},
        {"a": -0.0, "b": 1.0},
        {"a": float("inf"), "b": 1},
        {"a": True, "b": 1},
        {"a": np.float64(0.5), "b": 1},
        {"a": None, "b": "s"},
    ],
)
def test_canonical_json_of_plain_numbers_matches_the_general_rules(params: dict[str, Any]) -> None:
    clean, text = canonical_pset(params)
    order = sorted(params)
    expected = (
        "{" + ",".join(json.dumps(n, ensure_ascii=False) + ":" + param_json(n, params[n])[0] for n in order) + "}"
    )
    assert text == expected
    assert list(clean) == order
    assert clean == {n: param_json(n, params[n])[1] for n in order}
    assert all(type(clean[n]) is type(param_json(n, params[n])[1]) for n in order)


def test_plain_numbers() -> None:
    assert plain_numbers([0.5, -3, 2**63 - 1, -(2**63), 1e-300])
    for odd in (0.0, -0.0, float("nan"), float("inf"), -float("inf"), 2**63, True, None, "1", np.float64(1.0)):
        assert not plain_numbers([1.5, odd])


def general_pset(params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The canonical JSON of a pset by the general rule alone, value by value."""
    order = sorted(params)
    pairs = [param_json(name, params[name]) for name in order]
    return dict(zip(order, [clean for _, clean in pairs])), "{" + ",".join(
        json_key(name) + text for name, (text, _) in zip(order, pairs)
    ) + "}"


def test_the_pset_template_gives_what_the_general_rule_gives_and_reads_back() -> None:
    rng = random.Random(3)
    pool = values()
    names = [("a", "b"), ("b", "a"), ("x%s", "y%%r", 'q"'), ("é\\", "Z", "a", "🎉"), ("only",)]
    plain_seen = 0
    for _ in range(3000):
        keys = rng.choice(names)
        params = {name: rng.choice(pool) for name in keys}
        try:
            expected = general_pset(params)
        except RecorderError as e:
            with pytest.raises(type(e)):
                canonical_pset(params)
            continue
        clean, text = canonical_pset(params)
        assert text == expected[1], params
        assert list(clean) == list(expected[0]) and all(same(clean[n], expected[0][n]) for n in clean)
        back = read_json(text)
        assert list(back) == list(clean) and all(same(back[n], clean[n]) for n in clean), text  # parse(write(x)) == x
        layout = pset_layout(keys)
        ordered = tuple(params[name] for name in layout.order)
        if plain_numbers(ordered):
            plain_seen += 1
            assert layout.template % ordered == text
    assert plain_seen > 100  # the fast path was taken, many times


def test_plain_numbers_are_exactly_the_values_whose_pset_json_is_their_repr() -> None:
    for value in values():
        plain = plain_numbers([value])
        if plain:
            assert param_json("p", value) == (repr(value), value)
        else:  # not plain: the general rule writes something else, or refuses, or is not a built-in number
            try:
                text, _ = param_json("p", value)
            except RecorderError:
                continue
            assert type(value) not in (int, float) or text != repr(value) or value == 0.0


# -- runs.scalars: the template of known names beside the general rule -------------------------------


def test_the_scalars_template_gives_what_the_general_rule_gives_and_reads_back(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    rng = random.Random(5)
    pool = values()
    names = [("y", "z"), ("z", "y"), ("p%r", 'q"', "neg"), ("é", "B", "a")]
    plain_seen = 0
    for _ in range(3000):
        keys = rng.choice(names)
        returned = {name: rng.choice(pool) for name in keys}
        try:
            cells = {name: encode(name, value, objects) for name, value in returned.items()}
        except RecorderError:
            continue
        in_scalars = [n for n, c in cells.items() if c.kind == "bool" or (c.kind is None and type(c.value) is not str)]
        if in_scalars:
            text = scalars_json(cells, in_scalars)
            back = read_json(text)
            assert list(back) == sorted(in_scalars)
            for name in in_scalars:  # parse(write(x)) == x: numbers exactly, bools as bools, -0.0 kept
                value = returned[name]
                plain = value.item() if isinstance(value, np.generic) else value
                assert same(back[name], bool(plain) if cells[name].kind == "bool" else plain), (name, value, text)
        layout = scalar_layout(keys)
        ordered = tuple(returned.values()) if layout.in_order else tuple(returned[n] for n in layout.order)
        if plain_results(ordered):
            plain_seen += 1
            assert all(cells[n] == Encoded(None, returned[n]) for n in keys)  # encode leaves them as they are
            assert layout.template % ordered == scalars_json(cells, keys)
    assert plain_seen > 100


def test_plain_results_are_exactly_the_values_encode_leaves_and_the_scalars_write_by_repr(tmp_path: Path) -> None:
    objects = ObjectStore(tmp_path / "objects")
    for value in values():
        if plain_results((value,)):
            cell = encode("x", value, objects)
            assert cell == Encoded(None, value) and scalar_json(cell.kind, cell.value) == repr(value)
        else:
            assert type(value) not in (int, float) or value - value != 0 or not INT64_MIN <= value <= INT64_MAX


def test_the_scalars_template_over_columns_gives_what_the_general_rule_gives_per_run(tmp_path: Path) -> None:
    """scalars_rows (a vectorised chunk's runs at once) writes, run by run, what scalars_json writes."""
    objects = ObjectStore(tmp_path / "objects")
    rng = random.Random(21)
    plain = [v for v in values() if plain_results((v,))]
    bools = [True, False]  # as a JAX bool is recorded (plain_scalar)
    for keys in [("y", "z"), ("z", "y"), ("p%r", 'q"', "neg"), ("é", "B", "a"), ("only",)]:
        layout = scalar_layout(keys)
        n = 50
        flags = {name: rng.random() < 0.3 for name in keys}  # some columns are bools
        returned = [{name: rng.choice(bools) if flags[name] else rng.choice(plain) for name in keys} for _ in range(n)]
        columns = [
            bool_column(row[name] for row in returned) if flags[name] else [row[name] for row in returned]
            for name in layout.order
        ]
        texts = scalars_rows(layout, columns)
        assert len(texts) == n
        for row, text in zip(returned, texts):
            cells = {name: encode(name, value, objects) for name, value in row.items()}
            assert text == scalars_json(cells, keys)
    assert scalars_rows(scalar_layout(("a",)), [[]]) == []


# -- reading back column by column: the CSV reader beside json -----------------------------------------


def joined(texts: list[str]) -> bytes:
    return "\x1e".join(texts).encode()


def as_frame(columns: dict[str, Any], n: int) -> pd.DataFrame:
    """The columns as db.df makes a DataFrame of them."""
    return pd.DataFrame(columns, index=range(n), copy=False)


def column_cases() -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(9)
    floats = [f for f in _floats(rng, 300) if f == f]
    ints = [i for i in _ints(rng, 300) if INT64_MIN <= i <= INT64_MAX]
    n = 200
    return {
        "floats": [{"a": rng.choice(floats), "b": rng.choice(floats)} for _ in range(n)],
        "ints": [{"a": rng.choice(ints), "b": rng.randrange(-5, 5)} for _ in range(n)],
        "ints and floats": [{"a": rng.choice([*ints[:20], *floats[:20]]), "b": 1.5} for _ in range(n)],
        "bools": [{"a": rng.random() < 0.5, "b": 2} for _ in range(n)],
        "nulls": [{"a": rng.choice([None, 1, 2**62]), "b": rng.choice([None, 0.5, -0.0])} for _ in range(n)],
        "all null": [{"a": None, "b": 1} for _ in range(n)],
        "bools and nulls": [{"a": rng.choice([True, False, None]), "b": 1} for _ in range(n)],
        "texts": [{"a": rng.choice(_ODD_TEXTS), "b": rng.choice(floats)} for _ in range(n)],
        "several layouts": [rng.choice([{"a": 1.5}, {"a": 2, "b": 3}, {"b": -0.0}]) for _ in range(n)],
        "odd names": [{'q"': rng.choice(floats), "x%s": rng.choice(ints), "é": 1} for _ in range(n)],
    }


@pytest.mark.parametrize("case", list(column_cases()))
def test_the_column_reader_gives_what_parsing_each_text_gives(case: str) -> None:
    psets = column_cases()[case]
    texts = [canonical_pset(params)[1] for params in psets]
    layout = sorted({name for params in psets for name in params})
    n = len(texts)
    fast = read_columns(joined(texts), layout, layout, n)
    general = read_one_by_one(joined(texts), layout)
    pd.testing.assert_frame_equal(as_frame(fast, n), as_frame(general, n))
    # and both are what was written: parse(write(x)) == x, value by value
    frame = as_frame(fast, n)
    for i, params in enumerate(psets):
        for name in layout:
            cell = frame[name].iloc[i]
            value = canonical_pset(params)[0].get(name)
            if value is None:
                assert cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))
            else:
                assert cell == value and (type(value) is not float or math.copysign(1, cell) == math.copysign(1, value))


@pytest.mark.parametrize("case", ["floats", "ints", "ints and floats", "bools", "nulls", "all null", "odd names"])
def test_columns_of_numbers_of_one_layout_take_the_csv_reader(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is taken where it should be (else the test above would compare the general path with itself)."""
    import recorder.codec.canonical as canonical

    psets = column_cases()[case]
    texts = [canonical_pset(params)[1] for params in psets]
    layout = sorted({name for params in psets for name in params})
    general = read_one_by_one(joined(texts), layout)

    def no_json(text: Any) -> Any:
        raise AssertionError("parsed by json")

    monkeypatch.setattr(canonical, "read_json", no_json)
    fast = read_columns(joined(texts), layout, layout, len(texts))
    pd.testing.assert_frame_equal(as_frame(fast, len(texts)), as_frame(general, len(texts)))


def test_the_column_reader_reads_nothing_from_no_runs() -> None:
    assert read_columns(None, ["a"], ["a"], 0) == {"a": []}
