"""The shortcuts a sweep takes for speed give exactly what the general path gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recorder.errors import RecorderError
from recorder.hashing import canonical_pset
from recorder.sweep import Binder


def with_defaults(b: int, a: float, c: float = 2.5, d: str = "x") -> dict:
    return {}


def plain(a: float, b: int) -> dict:
    return {}


def keywords(a: float, **more: Any) -> dict:
    return {}


@pytest.mark.parametrize("func", [with_defaults, plain, keywords])
def test_prepare_gives_what_bind_and_canonical_pset_give(func: Any) -> None:
    binder = Binder(func)
    psets: list[dict[str, Any]] = [
        {"a": 0.5, "b": 1}, {"b": 2, "a": 1.5}, {"a": 0.5, "b": 1}, {"a": -0.0, "b": 3}, {"a": float("inf"), "b": 4},
        {"a": np.float32(0.1), "b": 5}, {"a": True, "b": 6}, {"a": 2.5, "b": 7, "c": 1.0}, {"a": 2.5, "b": 8, "c": 1.0},
        {"a": 2.5, "b": 9, "d": "é"}, {"a": 2**63 - 1, "b": -(2**63)},
    ]
    for pset in psets * 2:  # the second time, every layout is known
        try:
            expected = canonical_pset(binder.bind(**pset))
        except RecorderError as e:  # the same error either way
            with pytest.raises(type(e)):
                binder.prepare(pset)
            continue
        clean, canonical = binder.prepare(pset)
        assert canonical == expected[1]
        assert list(clean.items()) == list(expected[0].items())
        assert [type(v) for v in clean.values()] == [type(v) for v in expected[0].values()]


def test_prepare_refuses_what_bind_refuses() -> None:
    binder = Binder(plain)
    binder.prepare({"a": 0.5, "b": 1})
    with pytest.raises(RecorderError, match="cannot call"):
        binder.prepare({"a": 0.5})
    with pytest.raises(RecorderError, match="NaN"):
        binder.prepare({"a": float("nan"), "b": 1})
