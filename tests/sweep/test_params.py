"""Parameter helpers: plist, pgrid, pzip, grid, zip (psweep's README semantics), laziness, errors."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

import recorder as rec
from recorder import RecorderError

A = [{"a": 1}, {"a": 2}]
B = [{"b": "xx"}, {"b": "yy"}]
C = [{"c": 88}]


# -- psweep's README cases -------------------------------------------------------


def test_plist_is_a_plain_list_of_dicts() -> None:
    assert rec.plist("a", [1, 2]) == [{"a": 1}, {"a": 2}]
    assert rec.plist("b", ["xx", "yy"]) == [{"b": "xx"}, {"b": "yy"}]
    assert rec.plist("c", [88]) == [{"c": 88}]
    assert rec.plist("a", []) == []
    assert type(rec.plist("a", [1])) is list


def test_pgrid_of_two_plists_last_axis_fastest() -> None:
    a, b = rec.plist("a", [1, 2]), rec.plist("b", ["xx", "yy"])
    assert list(rec.pgrid(a, b)) == [
        {"a": 1, "b": "xx"},
        {"a": 1, "b": "yy"},
        {"a": 2, "b": "xx"},
        {"a": 2, "b": "yy"},
    ]


def test_pgrid_of_three_plists_is_itertools_product_order() -> None:
    a = rec.plist("a", [1, 2])
    b = rec.plist("b", ["xx", "yy"])
    c = rec.plist("c", [0.1, 0.2, 0.3])
    expected = [
        {"a": 1, "b": "xx", "c": 0.1},
        {"a": 1, "b": "xx", "c": 0.2},
        {"a": 1, "b": "xx", "c": 0.3},
        {"a": 1, "b": "yy", "c": 0.1},
        {"a": 1, "b": "yy", "c": 0.2},
        {"a": 1, "b": "yy", "c": 0.3},
        {"a": 2, "b": "xx", "c": 0.1},
        {"a": 2, "b": "xx", "c": 0.2},
        {"a": 2, "b": "xx", "c": 0.3},
        {"a": 2, "b": "yy", "c": 0.1},
        {"a": 2, "b": "yy", "c": 0.2},
        {"a": 2, "b": "yy", "c": 0.3},
    ]
    assert list(rec.pgrid(a, b, c)) == expected
    assert [{**x, **y, **z} for x, y, z in itertools.product(a, b, c)] == expected


def test_pgrid_psweep_style_list_argument() -> None:
    a, b, c = rec.plist("a", [1, 2]), rec.plist("b", ["xx", "yy"]), rec.plist("c", [88])
    assert list(rec.pgrid([a, b])) == list(rec.pgrid(a, b))
    assert list(rec.pgrid((a, b))) == list(rec.pgrid(a, b))
    assert list(rec.pgrid([a, b, c])) == [
        {"a": 1, "b": "xx", "c": 88},
        {"a": 1, "b": "yy", "c": 88},
        {"a": 2, "b": "xx", "c": 88},
        {"a": 2, "b": "yy", "c": 88},
    ]
    # A single list of psets is one axis, not a list of axes.
    assert list(rec.pgrid([{"a": 1}, {"a": 2}])) == [{"a": 1}, {"a": 2}]


def test_pzip_varies_parameters_together() -> None:
    a, b = rec.plist("a", [1, 2]), rec.plist("b", ["xx", "yy"])
    assert list(rec.pzip(a, b)) == [{"a": 1, "b": "xx"}, {"a": 2, "b": "yy"}]
    assert list(rec.pzip([a, b])) == [{"a": 1, "b": "xx"}, {"a": 2, "b": "yy"}]


def test_nested_pgrid_of_pzip() -> None:
    a, b, c = rec.plist("a", [1, 2]), rec.plist("b", ["xx", "yy"]), rec.plist("c", [88])
    assert list(rec.pgrid(rec.pzip(a, b), c)) == [
        {"a": 1, "b": "xx", "c": 88},
        {"a": 2, "b": "yy", "c": 88},
    ]
    d = rec.plist("d", [True, False])
    assert list(rec.pgrid(d, rec.pzip(a, b))) == [
        {"d": True, "a": 1, "b": "xx"},
        {"d": True, "a": 2, "b": "yy"},
        {"d": False, "a": 1, "b": "xx"},
        {"d": False, "a": 2, "b": "yy"},
    ]
    assert list(rec.pgrid([rec.pzip(a, b), c])) == list(rec.pgrid(rec.pzip(a, b), c))


def test_pzip_of_pgrids_of_equal_length() -> None:
    left = rec.pgrid(rec.plist("a", [1, 2]), rec.plist("b", [3, 4]))
    right = rec.pgrid(rec.plist("c", ["p", "q"]), rec.plist("d", [5.0, 6.0]))
    assert list(rec.pzip(left, right)) == [
        {"a": 1, "b": 3, "c": "p", "d": 5.0},
        {"a": 1, "b": 4, "c": "p", "d": 6.0},
        {"a": 2, "b": 3, "c": "q", "d": 5.0},
        {"a": 2, "b": 4, "c": "q", "d": 6.0},
    ]
    # A pgrid of 4 zipped with a plain plist of 4.
    assert list(rec.pzip(left, rec.plist("e", [10, 20, 30, 40]))) == [
        {"a": 1, "b": 3, "e": 10},
        {"a": 1, "b": 4, "e": 20},
        {"a": 2, "b": 3, "e": 30},
        {"a": 2, "b": 4, "e": 40},
    ]


def test_grid_and_zip_keyword_shortcuts() -> None:
    assert list(rec.grid(a=[1, 2], b=["xx", "yy"])) == [
        {"a": 1, "b": "xx"},
        {"a": 1, "b": "yy"},
        {"a": 2, "b": "xx"},
        {"a": 2, "b": "yy"},
    ]
    assert list(rec.zip(a=[1, 2], b=["xx", "yy"])) == [{"a": 1, "b": "xx"}, {"a": 2, "b": "yy"}]
    assert list(rec.grid(a=[1, 2], b=[3])) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert list(rec.grid(a=[1])) == [{"a": 1}]
    # The keyword order is the axis order.
    assert list(rec.grid(b=[3, 4], a=[1])) == [{"b": 3, "a": 1}, {"b": 4, "a": 1}]
    assert isinstance(rec.grid(a=[1]), rec.ParamSequence)
    assert isinstance(rec.zip(a=[1]), rec.ParamSequence)


def test_shortcuts_mix_with_the_psweep_helpers() -> None:
    assert list(rec.pgrid(rec.zip(a=[1, 2], b=[3, 4]), rec.plist("c", [0]))) == [
        {"a": 1, "b": 3, "c": 0},
        {"a": 2, "b": 4, "c": 0},
    ]
    assert list(rec.pzip(rec.grid(a=[1, 2], b=[3, 4]), rec.plist("c", [5, 6, 7, 8]))) == [
        {"a": 1, "b": 3, "c": 5},
        {"a": 1, "b": 4, "c": 6},
        {"a": 2, "b": 3, "c": 7},
        {"a": 2, "b": 4, "c": 8},
    ]


# -- sequence behaviour ------------------------------------------------------------


def _sequences() -> list[rec.ParamSequence]:
    a, b = rec.plist("a", [1, 2, 3]), rec.plist("b", ["xx", "yy"])
    c = rec.plist("c", [7, 8, 9])
    return [
        rec.pgrid(a, b),
        rec.pgrid(a, b, rec.plist("d", [0.5, 1.5])),
        rec.pzip(a, c),
        rec.pgrid(rec.pzip(a, c), b),
        rec.pzip(rec.pgrid(b, a), rec.plist("e", range(6))),
        rec.grid(x=[1]),
    ]


@pytest.mark.parametrize("index", range(6))
def test_len_and_indexing_match_the_list(index: int) -> None:
    seq = _sequences()[index]
    expected = list(seq)
    n = len(expected)
    assert len(seq) == n
    for i in range(-n, n):
        assert seq[i] == expected[i], i
    with pytest.raises(IndexError):
        seq[n]
    with pytest.raises(IndexError):
        seq[n + 10]
    with pytest.raises(IndexError):
        seq[-n - 1]
    for s in (
        slice(None),
        slice(1, 3),
        slice(None, None, 2),
        slice(None, None, -1),
        slice(-3, None),
        slice(2, 100),
        slice(5, 1),
        slice(-100, 2),
    ):
        assert list(seq[s]) == expected[s], s


def test_indexing_a_known_position() -> None:
    g = rec.grid(a=[1, 2, 3], b=["xx", "yy"], c=[0, 1, 2, 3])
    assert g[0] == {"a": 1, "b": "xx", "c": 0}
    assert g[5] == {"a": 1, "b": "yy", "c": 1}
    assert g[23] == g[-1] == {"a": 3, "b": "yy", "c": 3}


def test_sequences_are_reiterable() -> None:
    for seq in _sequences():
        first = list(seq)
        assert list(seq) == first
        assert [p for p in seq] == first
    # Also when built from one-shot generators.
    g = rec.pgrid((dict(a=i) for i in range(2)), rec.plist("b", (x for x in "pq")))
    assert list(g) == list(g) == [{"a": 0, "b": "p"}, {"a": 0, "b": "q"}, {"a": 1, "b": "p"}, {"a": 1, "b": "q"}]
    assert len(g) == 4
    z = rec.zip(a=(i for i in range(3)), b=iter([4, 5, 6]))
    assert list(z) == list(z) == [{"a": 0, "b": 4}, {"a": 1, "b": 5}, {"a": 2, "b": 6}]


def test_psets_handed_out_are_fresh_dicts() -> None:
    g = rec.grid(a=[1, 2], b=[3])
    first = next(iter(g))
    first["a"] = 99
    assert g[0] == {"a": 1, "b": 3}
    assert list(g)[0] == {"a": 1, "b": 3}  # noqa: RUF015 (what list() of a grid gives is the point)


def test_million_pset_grid_is_lazy() -> None:
    tracemalloc.start()
    try:
        g = rec.grid(x=range(1000), y=range(1000))
        n = len(g)
        first = list(itertools.islice(g, 10))
        picks = [g[0], g[1234], g[-1], g[999_999]]
        huge = rec.grid(x=range(1000), y=range(1000), z=range(1000))  # 10**9 psets: no list could hold them
        huge_picks = [huge[0], huge[10**9 - 1], huge[-1000]]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 10**6
    assert first == [{"x": 0, "y": i} for i in range(10)]
    assert picks == [{"x": 0, "y": 0}, {"x": 1, "y": 234}, {"x": 999, "y": 999}, {"x": 999, "y": 999}]
    assert peak < 10 * 1024 * 1024, f"{peak / 2**20:.1f} MiB peak: the grid was materialised"
    assert len(huge) == 10**9
    assert huge_picks == [{"x": 0, "y": 0, "z": 0}, {"x": 999, "y": 999, "z": 999}, {"x": 999, "y": 999, "z": 0}]


def test_generators_and_numpy_arrays_as_values() -> None:
    assert rec.plist("a", (i * i for i in range(3))) == [{"a": 0}, {"a": 1}, {"a": 4}]
    assert rec.plist("a", range(2)) == [{"a": 0}, {"a": 1}]
    assert rec.plist("a", np.array([0.5, 1.5])) == [{"a": 0.5}, {"a": 1.5}]
    assert list(rec.grid(a=np.arange(2), b=(s for s in ("u", "v")))) == [
        {"a": 0, "b": "u"},
        {"a": 0, "b": "v"},
        {"a": 1, "b": "u"},
        {"a": 1, "b": "v"},
    ]
    assert list(rec.zip(a=np.linspace(0, 1, 3), b=[1, 2, 3])) == [
        {"a": 0.0, "b": 1},
        {"a": 0.5, "b": 2},
        {"a": 1.0, "b": 3},
    ]
    assert len(rec.grid(a=np.arange(5), b=np.arange(7))) == 35


def test_empty_grid_has_length_zero() -> None:
    for seq in (
        rec.pgrid(rec.plist("a", [])),
        rec.pgrid(rec.plist("a", [1, 2]), rec.plist("b", [])),
        rec.grid(a=[], b=[1, 2]),
        rec.pzip(rec.plist("a", []), rec.plist("b", [])),
        rec.zip(a=[], b=[]),
    ):
        assert len(seq) == 0
        assert list(seq) == []
        assert list(seq[:]) == []
        with pytest.raises(IndexError):
            seq[0]


# -- errors ------------------------------------------------------------------------


def test_pzip_length_mismatch_lists_the_lengths() -> None:
    with pytest.raises(RecorderError, match=r"different lengths \[2, 3\]"):
        rec.pzip(rec.plist("a", [1, 2]), rec.plist("b", [1, 2, 3]))
    with pytest.raises(RecorderError, match=r"\[2, 1\]"):
        rec.zip(a=[1, 2], b=[1])
    with pytest.raises(RecorderError, match=r"\[4, 3\]"):
        rec.pzip(rec.grid(a=[1, 2], b=[3, 4]), rec.plist("c", [1, 2, 3]))


def test_duplicate_name_in_a_product_or_zip() -> None:
    a = rec.plist("a", [1, 2])
    with pytest.raises(RecorderError, match="'a' appears in more than one"):
        rec.pgrid(a, rec.plist("a", [3]))
    with pytest.raises(RecorderError, match="'a'"):
        rec.pzip(a, rec.plist("a", [3, 4]))
    with pytest.raises(RecorderError, match="'b'"):
        rec.pgrid(rec.zip(a=[1, 2], b=[3, 4]), rec.plist("b", [5]))
    with pytest.raises(RecorderError, match="'a'"):
        rec.pgrid([a, rec.grid(a=[5], c=[6])])


def test_plist_refuses_a_string_or_dict_as_values() -> None:
    with pytest.raises(RecorderError, match="list of values"):
        rec.plist("a", "abc")
    with pytest.raises(RecorderError, match="list of values"):
        rec.plist("a", b"abc")
    with pytest.raises(RecorderError, match="list of values"):
        rec.plist("a", {"x": 1})


def test_plist_refuses_a_non_str_name() -> None:
    with pytest.raises(RecorderError, match="name first"):
        rec.plist(1, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="name first"):
        rec.plist([1, 2], "a")  # type: ignore[arg-type]


def test_a_part_that_is_a_single_dict() -> None:
    with pytest.raises(RecorderError, match="not a single dict"):
        rec.pgrid({"a": 1})  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="not a single dict"):
        rec.pgrid(rec.plist("a", [1]), {"b": 2})  # type: ignore[arg-type]
    with pytest.raises(RecorderError, match="not a single dict"):
        rec.pzip({"a": 1}, {"b": 2})  # type: ignore[arg-type]


def test_a_part_whose_items_are_not_psets() -> None:
    with pytest.raises(RecorderError, match="is not a pset"):
        rec.pgrid([1, 2])  # type: ignore[list-item]
    with pytest.raises(RecorderError, match="is not a pset"):
        rec.pzip(rec.plist("a", [1]), ["x"])  # type: ignore[list-item]


def test_pzip_of_nothing_is_empty_when_indexed() -> None:
    with pytest.raises((IndexError, RecorderError)):
        rec.pzip()[0]


def test_lazy_sequences_compare_and_concatenate_like_psweep_lists() -> None:
    a = rec.plist("a", [1, 2])
    b = rec.plist("b", [3])
    assert rec.pgrid(a, b) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]
    assert rec.pgrid(a, b) != [{"a": 1, "b": 3}]
    both = rec.pgrid(a, b) + rec.plist("a", [9])
    assert list(both) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}, {"a": 9}]
    assert len(both) == 3 and both[-1] == {"a": 9} and both[1:] == [{"a": 2, "b": 3}, {"a": 9}]
    assert [{"a": 0}] + rec.pgrid(a, b) == [{"a": 0}, {"a": 1, "b": 3}, {"a": 2, "b": 3}]  # noqa: RUF005 (the grid's __radd__ is tested)
    with pytest.raises(IndexError):
        both[3]
