"""Richer psets: lists, tuples and dicts of plain values, hashed canonically beside the rule for numbers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from recorder.codec.canonical import canonical_pset, param_json
from recorder.codec.hashing import pset_hash
from recorder.errors import ValueRefused


def _hash(params: dict[str, Any]) -> str:
    return pset_hash(canonical_pset(params)[1])


def test_a_tuple_and_a_list_with_the_same_items_are_one_pset() -> None:
    assert _hash({"layers": (64, 64)}) == _hash({"layers": [64, 64]})
    assert _hash({"layers": [[1, 2], (3,)]}) == _hash({"layers": ((1, 2), [3])})
    assert _hash({"layers": [64, 64]}) != _hash({"layers": [64]})


def test_items_follow_the_rule_for_plain_values() -> None:
    # numpy scalars hash like Python numbers, -0.0 like 0.0, a dict's keys sorted by code point
    given = {"w": [np.int64(3), np.float64(0.5), np.bool_(True), -0.0, "x", None], "d": {"b": 1, "a": np.float32(2.0)}}
    plain = {"w": [3, 0.5, True, 0.0, "x", None], "d": {"a": 2.0, "b": 1}}
    clean, text = canonical_pset(given)
    assert text == canonical_pset(plain)[1] == '{"d":{"a":2.0,"b":1},"w":[3,0.5,true,0.0,"x",null]}'
    assert clean == plain and json.loads(text) == plain
    for value in [3, 0.5, True, None, "x", -0.0, np.int32(7)]:  # each item as param_json writes it alone
        assert canonical_pset({"w": [value]})[1] == '{"w":[' + param_json("w", value)[0] + "]}"


def test_plain_psets_keep_their_hashes() -> None:
    # The fast path and the general rule of plain psets are unchanged (pinned in test_canonical.py too).
    assert canonical_pset({"a": 1, "b": 0.5})[1] == '{"a":1,"b":0.5}'
    assert _hash({"a": 1, "b": 0.5}) == pset_hash('{"a":1,"b":0.5}')


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1, object()], "holds <object object"),
        ([float("nan")], "NaN"),
        ({1: "a"}, "dict key 1"),
        ([np.zeros(2)], "inside a list or dict"),
    ],
)
def test_structures_refuse_what_a_pset_cannot_hold(value: Any, match: str) -> None:
    with pytest.raises(ValueRefused, match=match):
        canonical_pset({"p": value})


def test_a_structure_that_contains_itself_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueRefused, match="nested more than"):
        canonical_pset({"p": loop})
