"""Result values through the public path: ``run.log`` → SQLite cell → ``values.decode``.

Every accepted type round-trips exactly (NaN-aware, type and dtype checked);
every refused type raises :class:`recorder.ValueRefused` naming the result
and its type; arrays above the inline limit become content-addressed objects.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import recorder as rec
from recorder.codec.npy import npy_bytes
from recorder.codec.values import DEFAULT_INLINE_LIMIT, decode

# -- helpers ------------------------------------------------------------------------


def connect(store: Path) -> sqlite3.Connection:
    return sqlite3.connect(store / "recorder.sqlite")


def result_rows(store: Path) -> list[tuple[str, str, str | None, Any, str]]:
    """``(run id, name, kind, value, typeof(value))`` of every result, in run order."""
    with connect(store) as con:
        return con.execute(
            "SELECT lower(hex(runs.id)), results.name, results.kind, results.value, typeof(results.value) "
            "FROM results_all AS results JOIN runs ON runs.pk = results.run ORDER BY runs.pk, results.name"
        ).fetchall()


def cell(store: Path, name: str = "x") -> tuple[str | None, Any, str]:
    """``(kind, value, typeof(value))`` of the one result called ``name``."""
    rows = [row[2:] for row in result_rows(store) if row[1] == name]
    assert len(rows) == 1, rows
    return rows[0]


def log_one(store: Path, value: Any, *, name: str = "x", **recorder_args: Any) -> tuple[str | None, Any, str]:
    """Record one run logging ``value`` as ``name``; return its stored cell."""
    with rec.Recorder("exp", store=store, git=False, **recorder_args) as r:
        with r.run(i=1) as run:
            run.log(**{name: value})
    return cell(store, name)


def read_back(store: Path, kind: str | None, value: Any) -> Any:
    return decode(kind, value, rec.ObjectStore(store / "objects"))


def object_files(store: Path) -> list[Path]:
    """Object files under ``objects/`` (temp files excluded, but see :func:`temp_files`)."""
    return sorted(p for p in (store / "objects").glob("*/*.npy") if not p.name.startswith(".tmp-"))


def temp_files(store: Path) -> list[Path]:
    return sorted((store / "objects").glob("**/.tmp-*"))


def assert_same(back: Any, expected: Any) -> None:
    """Exact equality: same type, same value (NaN equal to NaN, -0.0 distinct from 0.0)."""
    if isinstance(expected, np.ndarray):
        assert isinstance(back, np.ndarray), type(back)
        assert back.dtype == expected.dtype
        assert back.shape == expected.shape
        if expected.dtype.names:  # structured: field by field (NaN-aware)
            for field in expected.dtype.names:
                assert_same(back[field], expected[field])
        else:
            np.testing.assert_array_equal(back, expected)
        # Bit for bit, so that -0.0 and NaN payloads count too.
        assert np.ascontiguousarray(back).tobytes() == np.ascontiguousarray(expected).tobytes()
        return
    assert type(back) is type(expected), (type(back), type(expected))
    if isinstance(expected, (float, np.floating)):
        if math.isnan(expected):
            assert math.isnan(back)
        else:
            assert back == expected
            assert math.copysign(1.0, back) == math.copysign(1.0, expected)
    elif isinstance(expected, list):
        assert len(back) == len(expected)
        for b, e in zip(back, expected):
            assert_same(b, e)
    elif isinstance(expected, dict):
        assert list(back) == list(expected)
        for key in expected:
            assert_same(back[key], expected[key])
    else:
        assert back == expected


# -- round trip of every accepted value -----------------------------------------------

NAN = float("nan")
INF = float("inf")

#: (value logged, value expected back, kind stored).
SCALARS = [
    pytest.param(True, True, "bool", id="true"),
    pytest.param(False, False, "bool", id="false"),
    pytest.param(0, 0, None, id="int-0"),
    pytest.param(-1, -1, None, id="int--1"),
    pytest.param(2**63 - 1, 2**63 - 1, None, id="int64-max"),
    pytest.param(-(2**63), -(2**63), None, id="int64-min"),
    pytest.param(2**63, 2**63, "int", id="int64-max+1"),
    pytest.param(-(2**63) - 1, -(2**63) - 1, "int", id="int64-min-1"),
    pytest.param(2**64, 2**64, "int", id="2**64"),
    pytest.param(10**30, 10**30, "int", id="10**30"),
    pytest.param(-(10**30), -(10**30), "int", id="-10**30"),
    pytest.param(0.1, 0.1, None, id="float-0.1"),
    pytest.param(-0.0, -0.0, None, id="float--0.0"),
    pytest.param(5e-324, 5e-324, None, id="float-subnormal"),
    pytest.param(1.7976931348623157e308, 1.7976931348623157e308, None, id="float-max"),
    pytest.param(NAN, NAN, "nan", id="float-nan"),
    pytest.param(INF, INF, None, id="float-inf"),
    pytest.param(-INF, -INF, None, id="float--inf"),
    pytest.param("", "", None, id="str-empty"),
    pytest.param("unicode ✓ ünïcødé 日本 🎉 text", "unicode ✓ ünïcødé 日本 🎉 text", None, id="str-unicode"),
    pytest.param("nul \x00 inside", "nul \x00 inside", None, id="str-nul"),
    pytest.param(None, None, None, id="none"),
    pytest.param(b"\x00\xffbytes", b"\x00\xffbytes", "bytes", id="bytes"),
    pytest.param(b"", b"", "bytes", id="bytes-empty"),
    pytest.param(bytearray(b"ab"), b"ab", "bytes", id="bytearray"),
]

CONTAINERS = [
    pytest.param([1, 2.5, "a", None, True], [1, 2.5, "a", None, True], "json", id="list-mixed"),
    pytest.param([], [], "json", id="list-empty"),
    pytest.param({}, {}, "json", id="dict-empty"),
    pytest.param(
        {"a": [1, {"b": [None, 2.5, False]}], "é ✓": {"c": "d"}, "empty": {}, "l": [[], [[-1]]]},
        {"a": [1, {"b": [None, 2.5, False]}], "é ✓": {"c": "d"}, "empty": {}, "l": [[], [[-1]]]},
        "json",
        id="nested",
    ),
    pytest.param({"z": 1, "a": 2, "m": 3}, {"z": 1, "a": 2, "m": 3}, "json", id="dict-key-order-kept"),
    # Documented: tuples become lists (JSON has no tuple).
    pytest.param((1, "a", (2.5, None)), [1, "a", [2.5, None]], "json", id="tuple-becomes-list"),
    # numpy scalars inside a list are stored as the Python values they stand for.
    pytest.param(
        [np.int64(3), np.float64(0.5), np.bool_(True), np.float32(0.25)],
        [3, 0.5, True, 0.25],
        "json",
        id="list-of-numpy-scalars",
    ),
    pytest.param([2**64], [2**64], "json", id="list-big-int"),
]

NUMPY_SCALARS = [
    # np.float64 is a float: stored as a plain REAL cell, read back as float (documented).
    pytest.param(np.float64(0.1), 0.1, None, id="np.float64"),
    pytest.param(np.float64("nan"), NAN, "nan", id="np.float64-nan"),
    pytest.param(np.float32(0.1), np.float32(0.1), "np:<f4", id="np.float32"),
    pytest.param(np.float32("nan"), np.float32("nan"), "np:<f4", id="np.float32-nan"),
    pytest.param(np.float32("-inf"), np.float32("-inf"), "np:<f4", id="np.float32--inf"),
    pytest.param(np.float16(-0.0), np.float16(-0.0), "np:<f2", id="np.float16--0.0"),
    pytest.param(np.int8(-128), np.int8(-128), "np:|i1", id="np.int8"),
    pytest.param(np.int64(-(2**63)), np.int64(-(2**63)), "np:<i8", id="np.int64-min"),
    pytest.param(np.int64(2**63 - 1), np.int64(2**63 - 1), "np:<i8", id="np.int64-max"),
    pytest.param(np.uint8(255), np.uint8(255), "np:|u1", id="np.uint8"),
    pytest.param(np.uint64(2**64 - 1), np.uint64(2**64 - 1), "np:<u8", id="np.uint64-max"),
    pytest.param(np.bool_(True), np.bool_(True), "np:|b1", id="np.bool_-true"),
    pytest.param(np.bool_(False), np.bool_(False), "np:|b1", id="np.bool_-false"),
    pytest.param(np.str_("hé ✓"), "hé ✓", None, id="np.str_"),
]

SMALL_ARRAYS = [
    pytest.param(np.arange(5.0), id="float64"),
    pytest.param(np.array([0.0, -0.0, np.nan, np.inf, -np.inf]), id="float-specials"),
    pytest.param(np.array(3.5), id="0-d"),
    pytest.param(np.zeros((0, 3)), id="empty-2d"),
    pytest.param(np.array([], dtype=np.int8), id="empty-int8"),
    pytest.param(np.asfortranarray(np.arange(12.0).reshape(3, 4)), id="fortran"),
    pytest.param(np.arange(30).reshape(5, 6)[::2, 1::2], id="non-contiguous"),
    pytest.param(np.arange(6, dtype=">f8").reshape(2, 3), id="big-endian-f8"),
    pytest.param(np.arange(4, dtype=">i4"), id="big-endian-i4"),
    pytest.param(
        np.array([(1, 2.5, b"ab"), (-2, np.nan, b"")], dtype=[("i", "<i4"), ("f", ">f8"), ("s", "S2")]),
        id="structured",
    ),
    pytest.param(np.array(["a", "ünï✓"]), id="str-dtype"),
    pytest.param(np.array([b"a", b"bc"]), id="bytes-dtype"),
    pytest.param(np.array([True, False]), id="bool"),
    pytest.param(np.array([1 + 2j, np.nan - 1j], dtype=np.complex64), id="complex64"),
    pytest.param(np.array(["2020-01-01", "NaT"], dtype="datetime64[s]"), id="datetime64"),
    pytest.param(np.array([2**64 - 1], dtype=np.uint64), id="uint64"),
    pytest.param(np.float16([1.5, -0.0]), id="float16"),
]

LARGE = 20_000  # float64 elements: 160 KB, well above the 64 KiB inline limit

LARGE_ARRAYS = [
    pytest.param(np.arange(LARGE, dtype=np.float64), id="float64"),
    pytest.param(np.asfortranarray(np.arange(LARGE, dtype=np.float64).reshape(100, 200)), id="fortran"),
    pytest.param(np.arange(4 * LARGE, dtype=np.float64).reshape(200, 400)[::2, ::2], id="non-contiguous"),
    pytest.param(np.arange(LARGE, dtype=">f8"), id="big-endian"),
    pytest.param(np.zeros(LARGE, dtype=[("a", "<i4"), ("b", "<f8")]), id="structured"),
    pytest.param(np.array(["x✓" * 5] * LARGE), id="str-dtype"),
]


@pytest.mark.parametrize(("value", "expected", "kind"), SCALARS + CONTAINERS + NUMPY_SCALARS)
def test_round_trip(store: Path, value: Any, expected: Any, kind: str | None) -> None:
    stored_kind, stored, _ = log_one(store, value)
    assert stored_kind == kind
    assert_same(read_back(store, stored_kind, stored), expected)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(np.complex128(1 + 2j), id="np.complex128"),
        pytest.param(np.complex64(np.nan - 1j), id="np.complex64-nan"),
        pytest.param(np.datetime64("2020-01-02T03:04:05"), id="np.datetime64"),
        pytest.param(np.timedelta64(5, "ms"), id="np.timedelta64"),
        pytest.param(np.bytes_(b"ab"), id="np.bytes_"),
    ],
)
def test_other_numpy_scalars_keep_value_and_dtype(store: Path, value: Any) -> None:
    kind, stored, _ = log_one(store, value)
    assert kind == "npyscalar"
    back = read_back(store, kind, stored)
    assert np.asarray(back).dtype == value.dtype
    assert np.asarray(back).shape == ()
    np.testing.assert_array_equal(back, value)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(np.complex128(1 + 2j), id="np.complex128"),
        pytest.param(np.datetime64("2020-01-02"), id="np.datetime64"),
    ],
)
def test_other_numpy_scalars_come_back_as_scalars(store: Path, value: Any) -> None:
    kind, stored, _ = log_one(store, value)
    back = read_back(store, kind, stored)
    assert type(back) is type(value)
    assert back == value


@pytest.mark.skipif(np.finfo(np.longdouble).nmant <= 52, reason="longdouble is float64 on this platform")
def test_longdouble_scalar_keeps_its_precision(store: Path) -> None:
    value = np.longdouble(1) / 3
    kind, stored, _ = log_one(store, value)
    back = read_back(store, kind, stored)
    assert type(back) is np.longdouble
    assert back == value


@pytest.mark.parametrize("array", SMALL_ARRAYS)
def test_small_array_round_trip_inline(store: Path, array: np.ndarray) -> None:
    kind, stored, sql_type = log_one(store, array)
    assert kind == "npy" and sql_type == "blob"
    assert stored == npy_bytes(array)
    assert object_files(store) == []
    back = read_back(store, kind, stored)
    assert back.flags.c_contiguous
    assert_same(back, array)


@pytest.mark.parametrize("array", LARGE_ARRAYS)
def test_large_array_round_trip_through_object_store(store: Path, array: np.ndarray) -> None:
    assert len(npy_bytes(array)) > DEFAULT_INLINE_LIMIT
    kind, digest, sql_type = log_one(store, array)
    assert kind == "object" and sql_type == "text"
    objects = rec.ObjectStore(store / "objects")
    path = objects.path(digest)
    assert object_files(store) == [path]
    assert path.read_bytes() == npy_bytes(array)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    back = read_back(store, kind, digest)
    assert_same(back, array)
    assert not back.flags.writeable  # memory-mapped read-only
    assert_same(decode(kind, digest, objects, mmap=False), array)
    with connect(store) as con:
        row = con.execute("SELECT size, dtype, shape FROM objects WHERE digest = ?", (digest,)).fetchone()
    assert row == (path.stat().st_size, array.dtype.str, json.dumps(list(array.shape)))


# -- what the wide SQL cell holds -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sql_type"),
    [
        (0, "integer"),
        (-7, "integer"),
        (2**63 - 1, "integer"),
        (-(2**63), "integer"),
        (0.5, "real"),
        (-0.0, "real"),
        (INF, "real"),
        (-INF, "real"),
        (np.float64(2.5), "real"),
        ("text ✓", "text"),
        ("", "text"),
        (None, "null"),
    ],
)
def test_plain_values_are_plain_sql_cells(store: Path, value: Any, sql_type: str) -> None:
    kind, _stored, typeof = log_one(store, value)
    assert kind is None
    assert typeof == sql_type
    # Plain SQL sees the value itself, no decoding needed.
    with connect(store) as con:
        assert con.execute("SELECT value FROM results_all WHERE name = 'x' AND kind IS NULL").fetchone() == (value,)
        if sql_type in ("integer", "real") and not math.isinf(value):
            # SQL arithmetic and comparison work on the cell as a number.
            assert con.execute("SELECT value + 0, value < 1e300 FROM results_all WHERE name = 'x'").fetchone() == (
                value,
                1,
            )


@pytest.mark.parametrize(
    ("value", "kind", "cell", "sql_type"),
    [
        (NAN, "nan", None, "null"),
        (True, "bool", 1, "integer"),
        (False, "bool", 0, "integer"),
        (2**64, "int", str(2**64), "text"),
        (b"\x01", "bytes", b"\x01", "blob"),
        ([1, "a"], "json", '[1, "a"]', "text"),
        (np.float32(0.5), "np:<f4", 0.5, "real"),
        (np.float32("nan"), "np:<f4", None, "null"),
        (np.int8(-3), "np:|i1", -3, "integer"),
        (np.uint64(2**64 - 1), "np:<u8", str(2**64 - 1), "text"),
        (np.bool_(True), "np:|b1", 1, "integer"),
    ],
)
def test_encoded_cells_are_as_documented(store: Path, value: Any, kind: str, cell: Any, sql_type: str) -> None:
    assert log_one(store, value) == (kind, cell, sql_type)


def test_json_cells_are_readable_by_sqlite(store: Path) -> None:
    log_one(store, {"a": [1, 2.5, "✓"], "b": None})
    with connect(store) as con:
        assert con.execute(
            "SELECT json_extract(value, '$.a[1]'), json_extract(value, '$.a[2]') FROM results_all"
        ).fetchone() == (2.5, "✓")


def test_json_cells_with_nan_or_inf_are_standard_json(store: Path) -> None:
    try:
        kind, text, _ = log_one(store, [1.0, NAN, INF, -INF])
    except rec.ValueRefused:
        return  # refusing is an acceptable fix too
    assert kind == "json"

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    json.loads(text, parse_constant=refuse)


# -- inline limit ----------------------------------------------------------------------


def test_default_inline_limit_is_inclusive_64_kib(tmp_path: Path) -> None:
    at_limit = np.zeros((DEFAULT_INLINE_LIMIT - 128) // 8)
    assert DEFAULT_INLINE_LIMIT == 64 * 1024
    assert len(npy_bytes(at_limit)) == DEFAULT_INLINE_LIMIT
    over = np.zeros(at_limit.size + 1)
    assert log_one(tmp_path / "a", at_limit)[0] == "npy"
    assert log_one(tmp_path / "b", over)[0] == "object"


def test_inline_limit_zero_puts_even_tiny_arrays_into_objects(store: Path) -> None:
    tiny = np.array([1, 2, 3], dtype=np.int8)
    kind, digest, _ = log_one(store, tiny, inline_limit=0)
    assert kind == "object"
    assert object_files(store) == [rec.ObjectStore(store / "objects").path(digest)]
    assert_same(read_back(store, kind, digest), tiny)


def test_inline_limit_zero_stores_empty_and_0d_arrays_as_objects(store: Path) -> None:
    with rec.Recorder("exp", store=store, git=False, inline_limit=0) as r:
        with r.run(i=1) as run:
            run.log(empty=np.zeros((0, 4), dtype=np.float32), zero_d=np.array(7, dtype=np.int16))
    for name, expected in (("empty", np.zeros((0, 4), dtype=np.float32)), ("zero_d", np.array(7, dtype=np.int16))):
        kind, digest, _ = cell(store, name)
        assert kind == "object"
        assert_same(read_back(store, kind, digest), expected)
    assert len(object_files(store)) == 2


def test_large_inline_limit_keeps_a_100_kb_array_inline(store: Path) -> None:
    array = np.arange(12_800, dtype=np.float64)  # 102,400 bytes of data
    kind, stored, sql_type = log_one(store, array, inline_limit=1_000_000)
    assert kind == "npy" and sql_type == "blob"
    assert len(stored) > 100_000
    assert object_files(store) == []
    assert_same(read_back(store, kind, stored), array)


def test_inline_limit_boundary_is_the_npy_size(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.int32)
    size = len(npy_bytes(array))
    assert log_one(tmp_path / "a", array, inline_limit=size)[0] == "npy"
    assert log_one(tmp_path / "b", array, inline_limit=size - 1)[0] == "object"


def test_config_values_use_the_same_encoding(store: Path) -> None:
    big = np.arange(LARGE, dtype=np.float64)
    with rec.Recorder("exp", store=store, git=False, config={"n": 3, "nan": NAN, "arr": big, "t": (1, 2)}):
        pass
    with connect(store) as con:
        rows = {name: (kind, value) for name, kind, value in con.execute("SELECT name, kind, value FROM config")}
    assert rows["n"] == (None, 3)
    assert rows["nan"] == ("nan", None)
    assert rows["arr"][0] == "object"
    assert_same(read_back(store, *rows["arr"]), big)
    assert_same(read_back(store, *rows["t"]), [1, 2])


# -- refused values -----------------------------------------------------------------------


class Thing:
    """An arbitrary class."""


def a_function() -> None:
    """A function."""


REFUSED = [
    pytest.param(lambda tmp: np.array([1, "a"], dtype=object), "object", id="object-array"),
    pytest.param(lambda tmp: np.array([{"a": 1}, None]), "object", id="object-array-inferred"),
    pytest.param(lambda tmp: np.ma.masked_array([1.0, 2.0], mask=[False, True]), "MaskedArray", id="masked-array"),
    pytest.param(lambda tmp: Thing(), "Thing", id="class-instance"),
    pytest.param(lambda tmp: open(tmp / "file.txt", "w"), "TextIOWrapper", id="open-file"),  # noqa: SIM115 (an open file is the value)
    pytest.param(lambda tmp: open(tmp / "file.bin", "wb"), "BufferedWriter", id="open-binary-file"),  # noqa: SIM115 (an open file is the value)
    pytest.param(lambda tmp: {1, 2}, "set", id="set"),
    pytest.param(lambda tmp: frozenset({1}), "frozenset", id="frozenset"),
    pytest.param(lambda tmp: a_function, "function", id="function"),
    pytest.param(lambda tmp: lambda: 1, "function", id="lambda"),
    pytest.param(lambda tmp: [1, Thing()], "Thing", id="list-with-object"),
    pytest.param(lambda tmp: {"a": [1, {"b": Thing()}]}, "Thing", id="nested-object"),
    pytest.param(lambda tmp: [np.arange(3)], "ndarray", id="list-with-array"),
    pytest.param(lambda tmp: [{1, 2}], "set", id="list-with-set"),
    pytest.param(lambda tmp: {1: "a"}, "int", id="dict-int-key"),
    pytest.param(lambda tmp: [{"ok": {(1, 2): 3}}], "tuple", id="nested-dict-tuple-key"),
    pytest.param(lambda tmp: 1 + 2j, "complex", id="complex"),
    pytest.param(lambda tmp: datetime.date(2020, 1, 1), "date", id="date"),
    pytest.param(lambda tmp: decimal.Decimal("1.5"), "Decimal", id="decimal"),
]


@pytest.mark.parametrize(("make", "type_name"), REFUSED)
def test_refused_values_name_the_result_and_type(tmp_path: Path, store: Path, make: Any, type_name: str) -> None:
    value = make(tmp_path)
    try:
        with rec.Recorder("exp", store=store, git=False) as r:
            with r.run(i=1) as run:
                with pytest.raises(rec.ValueRefused) as info:
                    run.log(bad_result=value)
                run.log(good=1)
    finally:
        if hasattr(value, "close"):
            value.close()
    assert isinstance(info.value, rec.RecorderError)
    message = str(info.value)
    assert "'bad_result'" in message
    assert type_name in message
    # The refused value left nothing behind; the run went on and finished.
    assert [(name, kind, v) for _, name, kind, v, _ in result_rows(store)] == [("good", None, 1)]
    with connect(store) as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("done",)]


def test_store_is_consistent_after_refusals(store: Path) -> None:
    big = np.arange(LARGE, dtype=np.float64)
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(i=1) as run:
            with pytest.raises(rec.ValueRefused):
                run.log(a=1, bad={1, 2})
            # The failed call logged nothing, so `a` may still be logged.
            run.log(a=2, arr=big)
            with pytest.raises(rec.ValueRefused):
                run.log(big2=big * 2, obj=Thing())
            run.log(c="after")
        with r.run(i=2) as run:
            run.log(a=3)
    rows = result_rows(store)
    assert [(name, kind) for _, name, kind, _, _ in rows] == [("a", None), ("arr", "object"), ("c", None), ("a", None)]
    assert [value for _, name, _, value, _ in rows if name == "a"] == [2, 3]
    objects = rec.ObjectStore(store / "objects")
    with connect(store) as con:
        assert con.execute("SELECT status FROM runs ORDER BY pk").fetchall() == [("done",), ("done",)]
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        digests = [d for (d,) in con.execute("SELECT digest FROM objects")]
        referenced = [v for (v,) in con.execute("SELECT value FROM results_all WHERE kind = 'object'")]
    # Every object row has a complete file, and every object result has a row.
    assert referenced == digests and all(objects.verify(d) for d in digests)
    assert_same(read_back(store, "object", referenced[0]), big)
    assert temp_files(store) == []


def test_lone_surrogate_is_refused_at_log_time_or_stored_and_loses_nothing(store: Path) -> None:
    text = "x\ud800y"
    refused = False
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(i=1) as run:
            try:
                run.log(s=text)
            except rec.ValueRefused as e:  # the expected fix: refuse it at once, naming the result
                refused = True
                assert "'s'" in str(e)
        with r.run(i=2) as run:
            run.log(s="fine")
    with connect(store) as con:
        assert con.execute("SELECT status FROM runs ORDER BY pk").fetchall() == [("done",), ("done",)]
    expected = [("s", "fine")] if refused else [("s", text), ("s", "fine")]
    assert [(name, value) for _, name, _, value, _ in result_rows(store)] == expected


def test_structured_array_with_non_latin1_field_names(store: Path) -> None:
    array = np.zeros(3, dtype=[("温度", "<f8"), ("✓", "<i4")])
    try:
        kind, stored, _ = log_one(store, array)
    except rec.ValueRefused as e:  # refusing clearly would do too
        assert "'x'" in str(e)
        return
    assert_same(read_back(store, kind, stored), array)


# -- refused names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["_x", "_", "__dunder__", "", "status", "run_id", "env_sha"])
def test_reserved_and_empty_result_names_are_refused(store: Path, name: str) -> None:
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(i=1) as run:
            with pytest.raises(rec.NameRefused) as info:
                run.log(**{name: 1})
            run.log(ok=1)
    assert isinstance(info.value, rec.RecorderError)
    assert repr(name) in str(info.value)
    assert [n for _, n, _, _, _ in result_rows(store)] == ["ok"]


def test_result_named_like_a_parameter_is_refused(store: Path) -> None:
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(alpha=1, beta="b") as run:
            for name in ("alpha", "beta"):
                with pytest.raises(rec.NameRefused, match=repr(name)):
                    run.log(**{name: 2})
            run.log(gamma=3)
    assert [(n, v) for _, n, _, v, _ in result_rows(store)] == [("gamma", 3)]


def test_logging_a_result_twice_is_refused_and_keeps_the_first(store: Path) -> None:
    with rec.Recorder("exp", store=store, git=False) as r:
        with r.run(i=1) as run:
            run.log(y=1.5)
            with pytest.raises(rec.NameRefused, match="'y'"):
                run.log(y=2.5)
            with pytest.raises(rec.NameRefused, match="'y'"):
                run.log(z=0, y=np.arange(3))
            run.log(z=1)
        with r.run(i=2) as run:  # a new run may log the same name again
            run.log(y=3.5)
    assert [(n, v) for _, n, _, v, _ in result_rows(store)] == [("y", 1.5), ("z", 1), ("y", 3.5)]


# -- objects shared by runs --------------------------------------------------------------------


def test_identical_arrays_in_three_runs_share_one_object(store: Path) -> None:
    array = np.linspace(0.0, 1.0, LARGE)
    with rec.Recorder("exp", store=store, git=False) as r:
        for i in range(3):
            with r.run(i=i) as run:
                run.log(traj=array.copy())
    files = object_files(store)
    assert len(files) == 1
    (path,) = files
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert path.parent.name + path.stem == digest
    assert path.parent.parent == store / "objects" and path.suffix == ".npy"
    assert temp_files(store) == []
    rows = result_rows(store)
    assert len(rows) == 3 and len({run_id for run_id, *_ in rows}) == 3
    assert {(name, kind, value) for _, name, kind, value, _ in rows} == {("traj", "object", digest)}
    with connect(store) as con:
        assert con.execute("SELECT digest, size FROM objects").fetchall() == [(digest, path.stat().st_size)]
    assert_same(read_back(store, "object", digest), array)


def test_equal_arrays_in_different_layouts_share_one_object(store: Path) -> None:
    c_order = np.arange(LARGE, dtype=np.float64).reshape(100, 200)
    fortran = np.asfortranarray(c_order)
    base = np.zeros((200, 400))
    base[::2, ::2] = c_order
    strided = base[::2, ::2]
    assert not strided.flags.c_contiguous and not fortran.flags.c_contiguous
    with rec.Recorder("exp", store=store, git=False) as r:
        for i, array in enumerate((c_order, fortran, strided)):
            with r.run(i=i) as run:
                run.log(a=array)
    assert len(object_files(store)) == 1
    assert len({value for _, _, _, value, _ in result_rows(store)}) == 1


def test_infinities_inside_lists_are_standard_json_that_sqlite_reads(store: Path) -> None:
    value = {"curve": [1.0, INF, -INF, np.float32(2.5)], "name": "Infinity"}
    kind, text, _ = log_one(store, value)
    assert kind == "json"

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    assert json.loads(text, parse_constant=refuse) == {"curve": [1.0, INF, -INF, 2.5], "name": "Infinity"}
    with connect(store) as con:
        row = con.execute(
            "SELECT json_extract(value, '$.curve[1]'), json_extract(value, '$.curve[2]') FROM results_all"
        )
        assert row.fetchone() == (INF, -INF)


@pytest.mark.parametrize("value", [[1.0, NAN], {"loss": np.float32("nan")}, [[NAN]]])
def test_nan_inside_lists_is_refused_with_a_way_out(store: Path, value: Any) -> None:
    with rec.Recorder("exp", store=store, git=False) as r, r.run(i=1) as run:
        with pytest.raises(rec.ValueRefused, match=r"'x' holds NaN.*numpy array"):
            run.log(x=value)


def test_surrogates_in_comments_and_names_are_refused(store: Path) -> None:
    with rec.Recorder("exp", store=store, git=False) as r, r.run(i=1) as run:
        with pytest.raises(rec.RecorderError, match="not text"):
            run.log(y=1, comment="bad \ud800")
        with pytest.raises(rec.NameRefused, match="surrogate"):
            run.log(**{"bad\udc80": 1})
        run.log(ok=1)
    assert [n for _, n, _, _, _ in result_rows(store)] == ["ok"]
    with pytest.raises(rec.RecorderError, match="not text"):
        rec.Recorder("exp", store=store, git=False, message="\ud800")


def test_a_list_that_contains_itself_or_nests_too_deep_is_refused(store: Path) -> None:
    cyclic: list = [1]
    cyclic.append(cyclic)
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with rec.Recorder("exp", store=store, git=False) as r, r.run(i=1) as run:
        for value in (cyclic, deep, {"a": cyclic}):
            with pytest.raises(rec.ValueRefused, match="nested more than 100 levels"):
                run.log(x=value)
        run.log(ok=[[[1]]])


def test_result_names_that_differ_from_others_only_in_case_are_refused(store: Path) -> None:
    with rec.Recorder("exp", store=store, git=False) as r, r.run(alpha=1) as run:
        with pytest.raises(rec.NameRefused, match="as 'alpha'"):
            run.log(Alpha=2)
        with pytest.raises(rec.NameRefused, match="column recorder adds"):
            run.log(Run_ID=2)
        with pytest.raises(rec.NameRefused):
            run.log(energy=1, Energy=2)
        run.log(energy=1)
        with pytest.raises(rec.NameRefused, match="as 'energy'"):
            run.log(ENERGY=2)
    assert [n for _, n, _, _, _ in result_rows(store)] == ["energy"]
