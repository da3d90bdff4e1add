"""Canonical JSON of parameter sets, pset hashes, run seeds and names."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import Any

import numpy as np
import pytest

import recorder as rec
import recorder.codec.canonical
from recorder.codec.canonical import canonical_pset
from recorder.codec.hashing import (
    PSET_HASH_LENGTH,
    RESERVED_NAMES,
    check_name,
    pset_hash,
    run_seed,
    text_digest,
)


def hash_of(params: dict[str, Any]) -> str:
    return pset_hash(canonical_pset(params)[1])


# -- canonical JSON ------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_json() -> None:
    clean, text = canonical_pset({"b": "x", "a": 1})
    assert text == '{"a":1,"b":"x"}'
    assert clean == {"a": 1, "b": "x"}
    assert json.loads(text) == clean


def test_key_order_does_not_matter() -> None:
    params = {"zeta": 1.5, "alpha": "s", "mid": None, "flag": True, "n": -3}
    texts = {
        canonical_pset(dict(order))[1]
        for order in (
            params.items(),
            reversed(params.items()),
            sorted(params.items()),
            sorted(params.items(), reverse=True),
        )
    }
    assert len(texts) == 1
    assert texts == {'{"alpha":"s","flag":true,"mid":null,"n":-3,"zeta":1.5}'}


def test_keys_sort_by_code_point() -> None:
    assert canonical_pset({"b": 1, "a": 2, "C": 3, "é": 4, "D": 5})[1] == '{"C":3,"D":5,"a":2,"b":1,"é":4}'


def test_names_differing_only_in_case_are_refused() -> None:
    """SQL column names ignore case, so the wide view could not tell them apart."""
    with pytest.raises(rec.NameRefused, match=r"'B' is already used.*as 'b'"):
        canonical_pset({"b": 1, "B": 3})
    with pytest.raises(rec.NameRefused, match="column recorder adds"):
        canonical_pset({"Status": 1})


def test_empty_pset() -> None:
    assert canonical_pset({}) == ({}, "{}")
    assert pset_hash("{}") == hashlib.sha256(b"{}").hexdigest()[:20]


@pytest.mark.parametrize(
    ("value", "json_text"),
    [
        (1, "1"),
        (1.0, "1.0"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (0.0, "0.0"),
        (None, "null"),
        ("1", '"1"'),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (5e-324, "5e-324"),
        (-(2**63), str(-(2**63))),
        (2**63 - 1, str(2**63 - 1)),
    ],
)
def test_value_json(value: Any, json_text: str) -> None:
    clean, text = canonical_pset({"p": value})
    assert text == '{"p":' + json_text + "}"
    assert json.loads(text)["p"] == value
    assert type(clean["p"]) is type(value)


def test_int_float_and_bool_are_different_psets() -> None:
    hashes = {hash_of({"p": v}) for v in (1, 1.0, True, "1")}
    assert len(hashes) == 4
    assert len({hash_of({"p": v}) for v in (0, 0.0, False, None, "")}) == 5


@pytest.mark.parametrize(
    ("numpy_value", "python_value"),
    [
        (np.float64(0.1), 0.1),
        (np.float32(0.5), 0.5),
        (np.float16(-2.0), -2.0),
        (np.int64(3), 3),
        (np.int8(-3), -3),
        (np.uint64(2**63 - 1), 2**63 - 1),
        (np.uint8(200), 200),
        (np.bool_(True), True),
        (np.bool_(False), False),
        (np.str_("abc ✓"), "abc ✓"),
        (np.float64("inf"), math.inf),
    ],
)
def test_numpy_scalars_hash_like_the_python_values_they_equal(numpy_value: Any, python_value: Any) -> None:
    clean, text = canonical_pset({"p": numpy_value, "q": 1})
    assert (clean, text) == canonical_pset({"p": python_value, "q": 1})
    assert type(clean["p"]) is type(python_value)
    assert hash_of({"p": numpy_value}) == hash_of({"p": python_value})


def test_float32_is_hashed_by_its_exact_value() -> None:
    # np.float32(0.1) is not 0.1: it is the float closest to it in 32 bits.
    assert hash_of({"p": np.float32(0.1)}) != hash_of({"p": 0.1})
    assert hash_of({"p": np.float32(0.1)}) == hash_of({"p": float(np.float32(0.1))})


@pytest.mark.parametrize(("value", "token"), [(math.inf, "1e999"), (-math.inf, "-1e999")])
def test_infinity_is_written_as_1e999_and_reads_back(value: float, token: str) -> None:
    clean, text = canonical_pset({"x": value, "y": 2})
    assert text == '{"x":' + token + ',"y":2}'
    assert clean == {"x": value, "y": 2}
    assert json.loads(text)["x"] == value
    # Standard JSON: no Infinity token, and SQLite's JSON functions read it as infinity too.
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard token {token}"))
    with sqlite3.connect(":memory:") as con:
        assert con.execute("SELECT json_extract(?, '$.x')", (text,)).fetchone() == (value,)


@pytest.mark.parametrize("nan", [math.nan, float("-nan"), np.float64("nan"), np.float32("nan")])
def test_nan_is_refused(nan: Any) -> None:
    with pytest.raises(rec.ValueRefused, match="NaN") as info:
        canonical_pset({"a": 1, "temperature": nan})
    assert "'temperature'" in str(info.value)
    assert isinstance(info.value, rec.RecorderError)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ([1, object()], "object"),  # lists, tuples and dicts of plain values are parameters (test_structure_psets.py)
        ((1, np.arange(2)), "ndarray"),
        ({"a": {1, 2}}, "set"),
        (np.arange(3), "ndarray"),
        ({1, 2}, "set"),
        (b"bytes", "bytes"),
        (1 + 2j, "complex"),
        (np.complex128(1), "complex128"),
        (object(), "object"),
    ],
)
def test_non_scalar_values_are_refused_naming_the_parameter(value: Any, type_name: str) -> None:
    with pytest.raises(rec.ValueRefused) as info:
        canonical_pset({"ok": 1, "grid": value})
    assert "'grid'" in str(info.value)
    assert type_name in str(info.value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64, 10**30, np.uint64(2**64 - 1)])
def test_ints_beyond_64_bits_are_refused(value: Any) -> None:
    with pytest.raises(rec.ValueRefused, match="64 bits") as info:
        canonical_pset({"big": value})
    assert "'big'" in str(info.value)


def test_a_pset_must_be_a_mapping() -> None:
    for params in ([("a", 1)], "a=1", None):
        with pytest.raises(rec.ValueRefused):
            canonical_pset(params)  # type: ignore[arg-type]


# -- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["_x", "_", "__init__", "_pset_hash"])
def test_names_starting_with_underscore_are_refused(name: str) -> None:
    with pytest.raises(rec.NameRefused, match="'_'") as info:
        canonical_pset({"a": 1, name: 2})
    assert repr(name) in str(info.value)
    assert isinstance(info.value, rec.RecorderError)


@pytest.mark.parametrize("name", [1, None, 1.5, b"a", ("a",), ""])
def test_non_str_and_empty_names_are_refused(name: Any) -> None:
    with pytest.raises(rec.NameRefused, match="not a non-empty string"):
        canonical_pset({name: 1})
    with pytest.raises(rec.NameRefused):
        canonical_pset({"a": 1, name: 2})  # mixed with str names (not a TypeError from sorting)


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_run_column_names_are_refused(name: str) -> None:
    with pytest.raises(rec.NameRefused, match=repr(name)):
        canonical_pset({name: 1})


def test_check_name_says_what_the_name_is_for() -> None:
    assert check_name("result", "energy") == "energy"
    with pytest.raises(rec.NameRefused, match=r"^result name '_e'"):
        check_name("result", "_e")
    with pytest.raises(rec.NameRefused, match=r"^config name 3"):
        check_name("config", 3)


# -- pset hash ----------------------------------------------------------------------------------------

#: SHA-256 of the UTF-8 bytes of '{"a":1,"b":"x"}', computed independently of the library.
EXPECTED_SHA256 = "ecf9e98ec0641e23113ff3ce8bdc78d0ddd249886517fd4a7f68cc83d4e65667"


def test_pset_hash_is_stable() -> None:
    assert hashlib.sha256(b'{"a":1,"b":"x"}').hexdigest() == EXPECTED_SHA256
    assert PSET_HASH_LENGTH == 20
    assert pset_hash('{"a":1,"b":"x"}') == EXPECTED_SHA256[:20] == "ecf9e98ec0641e23113f"
    assert hash_of({"b": "x", "a": 1}) == "ecf9e98ec0641e23113f"
    assert hash_of({"b": np.str_("x"), "a": np.int64(1)}) == "ecf9e98ec0641e23113f"


def test_pset_hash_is_20_lowercase_hex_digits() -> None:
    for params in ({}, {"a": 1}, {"x": -math.inf, "s": "✓" * 100}):
        digest = hash_of(params)
        assert len(digest) == 20
        assert all(c in "0123456789abcdef" for c in digest)


def test_different_psets_have_different_hashes() -> None:
    psets = [{"a": a, "b": b} for a in range(30) for b in (0.5, "0.5", None, False)]
    assert len({hash_of(p) for p in psets}) == len(psets)


def test_unicode_keys_and_values() -> None:
    clean, text = canonical_pset({"température": "ü 日本 ✓", "🎉": 1.5, "a b": "tab\there"})
    assert text == '{"a b":"tab\\there","température":"ü 日本 ✓","🎉":1.5}'
    assert json.loads(text) == clean == {"température": "ü 日本 ✓", "🎉": 1.5, "a b": "tab\there"}
    assert pset_hash(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]
    # Not \u-escaped: the UTF-8 bytes of the characters themselves are hashed.
    assert "\\u" not in text


@pytest.mark.parametrize("name", ["a\nb", "tab\tx", "nul\x00", "del\x7f", "\x1e"])
def test_names_with_control_characters_are_refused(name: str) -> None:
    # A name is a column of the experiment's view: a newline or a NUL cannot be one.
    with pytest.raises(rec.NameRefused, match="control character"):
        canonical_pset({name: 1})
    with pytest.raises(rec.NameRefused, match="control character"):
        check_name("result", name)


@pytest.mark.parametrize("params", [{"s": "a\ud800b"}, {"a\udfff": 1}])
def test_lone_surrogates_in_a_pset_are_refused_or_recorded(tmp_path: Any, params: dict[str, Any]) -> None:
    store = tmp_path / "store"
    with rec.Recorder("exp", store=store, git=False) as r:
        try:
            run = r.run(params)
        except (rec.ValueRefused, rec.NameRefused):
            return  # refused with a recorder error: fine
        with run:
            pass
    with sqlite3.connect(store / "recorder.sqlite") as con:
        assert con.execute("SELECT status FROM runs").fetchall() == [("done",)]


# -- run seed -----------------------------------------------------------------------------------------


def test_run_seed_is_deterministic_and_31_bits() -> None:
    h = pset_hash('{"a":1,"b":"x"}')
    expected = int.from_bytes(hashlib.sha256(f":{h}".encode()).digest()[:4], "big") & 0x7FFFFFFF
    assert run_seed(h) == run_seed(h) == expected
    seeds = [run_seed(hash_of({"i": i})) for i in range(2000)]
    assert all(type(s) is int and 0 <= s < 2**31 for s in seeds)
    assert len(set(seeds)) == len(seeds)
    assert max(seeds) >= 2**30  # the whole range is used, not just the low bits
    np.random.seed(max(seeds))  # accepted by seeding APIs


def test_run_seed_depends_on_the_experiment_seed() -> None:
    h = hash_of({"a": 1})
    seeds = {run_seed(h), run_seed(h, 0), run_seed(h, 1), run_seed(h, 7), run_seed(h, -1), run_seed(h, 2**40)}
    assert len(seeds) == 6
    assert run_seed(h, 7) == run_seed(h, 7) == run_seed(h, np.int64(7))
    assert all(0 <= s < 2**31 for s in seeds)


def test_run_seed_matches_the_recorded_run(tmp_path: Any) -> None:
    with rec.Recorder("exp", store=tmp_path / "store", git=False, seed=11) as r:
        with r.run(b="x", a=1) as run:
            assert run.pset_hash == "ecf9e98ec0641e23113f"
            assert run.seed == run_seed("ecf9e98ec0641e23113f", 11)
    with sqlite3.connect(tmp_path / "store" / "recorder.sqlite") as con:
        assert con.execute(
            "SELECT runs.seed, lower(hex(psets.hash)), psets.params FROM runs JOIN psets ON psets.pk = runs.pset"
        ).fetchone() == (run_seed("ecf9e98ec0641e23113f", 11), "ecf9e98ec0641e23113f", '{"a":1,"b":"x"}')


# -- text digest ----------------------------------------------------------------------------------------


def test_text_digest_is_sha256_of_utf8() -> None:
    assert text_digest("print('✓')\n") == hashlib.sha256("print('✓')\n".encode()).hexdigest()
    assert len(text_digest("")) == 64
    assert text_digest("a\ud800") == hashlib.sha256("a\ud800".encode("utf-8", "surrogatepass")).hexdigest()


def test_negative_zero_is_the_same_pset_as_zero() -> None:
    assert canonical_pset({"x": -0.0}) == canonical_pset({"x": 0.0}) == ({"x": 0.0}, '{"x":0.0}')


# -- the shortcut for plain numbers gives what the general rules give ---------------------------------


@pytest.mark.parametrize("experiment_seed", [None, 0, 7, -1, 2**40])
def test_pset_identity_gives_pset_hash_and_run_seed(experiment_seed: int | None) -> None:
    from recorder.codec.hashing import pset_identity

    identity = pset_identity(experiment_seed)
    for params in ({"a": 1, "b": "x"}, {"a": 0.1}, {}):
        text = canonical_pset(params)[1]
        assert identity(text) == (pset_hash(text), run_seed(pset_hash(text), experiment_seed))


# -- names: every character that is not text, and experiment names that look like paths ------------

_NOT_TEXT = [
    "a\u0085b",
    "a\u202eb",
    "a\u200bb",
    "a\u2028b",
    "a\u2029b",
    "a\x9bb",
    "a\ufeffb",
    "a\udc80b",
    "\x1b[31mred",
]


@pytest.mark.parametrize("name", _NOT_TEXT)
def test_names_with_format_and_separator_characters_are_refused(name: str) -> None:
    with pytest.raises(rec.NameRefused, match="parameter name") as info:
        check_name("parameter", name)
    assert "\\u" in str(info.value) or "\\x" in str(info.value)  # the character shown escaped
    with pytest.raises(rec.NameRefused):
        recorder.codec.canonical.canonical_pset({name: 1})


# Characters that show nothing, or nothing reliable: Unicode's Default_Ignorable_Code_Point set (Hangul
# fillers are letters, variation selectors and the grapheme joiner are marks, yet all are invisible),
# unassigned code points and noncharacters (Cn), private use (Co). "exp" and "exp\u3164" would look alike.
_INVISIBLE = {
    "hangul filler": "exp\u3164",
    "hangul choseong filler": "a\u115fb",
    "hangul jungseong filler": "a\u1160b",
    "halfwidth hangul filler": "a\uffa0b",
    "combining grapheme joiner": "a\u034fb",
    "variation selector 16": "a\ufe0fb",
    "variation selector 17": "a\U000e0100b",
    "mongolian variation selector": "a\u180bb",
    "khmer inherent aq": "a\u17b4b",
    "soft hyphen": "a\u00adb",
    "tag": "a\U000e0041b",
    "unassigned": "a\u0378b",
    "noncharacter FFFF": "a\uffffb",
    "noncharacter FDD0": "a\ufdd0b",
    "noncharacter 10FFFE": "a\U0010fffeb",
    "private use": "a\ue000b",
    "supplementary private use": "a\U000f0000b",
    "reserved ignorable": "a\ufff0b",
}


@pytest.mark.parametrize("name", list(_INVISIBLE.values()), ids=list(_INVISIBLE))
def test_names_with_invisible_unassigned_or_private_characters_are_refused(name: str, tmp_path: Any) -> None:
    from recorder.codec.hashing import check_experiment, not_text

    assert not_text(name) is not None
    with pytest.raises(rec.NameRefused, match="parameter name") as info:
        check_name("parameter", name)
    assert "\\u" in str(info.value) or "\\U" in str(info.value) or "\\x" in str(info.value)  # shown escaped
    with pytest.raises(rec.NameRefused):
        recorder.codec.canonical.canonical_pset({name: 1})
    with pytest.raises(rec.NameRefused, match="experiment name"):
        check_experiment(name)
    with pytest.raises(rec.NameRefused, match="experiment name"):
        rec.Recorder(name, store=tmp_path / "st", git=False)
    assert not (tmp_path / "st").exists()


def test_ordinary_unicode_names_are_accepted() -> None:
    from recorder.codec.hashing import check_experiment

    # Combining marks are text: a decomposed "é" (e + U+0301), Devanagari vowel signs, a Hangul syllable.
    for name in ("énergie", "Ω", "能量", "a b", "x-1.5", "e\u0301nergie", "\u0915\u093f", "\ud55c", "\U0001d6fc"):
        assert check_name("parameter", name) == name
        assert check_experiment(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "../escaped",
        "/abs/path",
        "a/b",
        "a\\b",
        ".hidden",
        "..",
        ".",
        "C:\\x",
        "C:x",
        " ",
        "",
        "\tx",
        *_NOT_TEXT,
        *_INVISIBLE.values(),
        "_private",
        "sqlite_master",
    ],
)
def test_path_like_and_control_experiment_names_are_refused(name: str, tmp_path: Any) -> None:
    from recorder.codec.hashing import check_experiment

    with pytest.raises(rec.NameRefused, match="experiment name"):
        check_experiment(name)
    with pytest.raises(rec.NameRefused, match="experiment name"):
        rec.Recorder(name, store=tmp_path / "st", git=False)
    if name:  # (an empty name means the function's own)
        with pytest.raises(rec.NameRefused, match="experiment name"):
            rec.experiment(name, store=tmp_path / "st", git=False)(lambda x: None)
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize("name", ["lorenz", "Lorenz 2", "énergie", "run.v2", "a-b_c", "lorenz:v2"])
def test_plain_experiment_names_are_accepted(name: str) -> None:
    from recorder.codec.hashing import check_experiment

    assert check_experiment(name) == name
