"""Parameter-set helpers, psweep-style: plain dicts all the way, lazy where it matters.

>>> plist("a", [1, 2])
[{'a': 1}, {'a': 2}]
>>> list(pgrid(plist("a", [1, 2]), plist("b", [3, 4])))
[{'a': 1, 'b': 3}, {'a': 1, 'b': 4}, {'a': 2, 'b': 3}, {'a': 2, 'b': 4}]
>>> list(pzip(plist("a", [1, 2]), plist("b", [3, 4])))
[{'a': 1, 'b': 3}, {'a': 2, 'b': 4}]
>>> list(grid(a=[1, 2], b=[3]))
[{'a': 1, 'b': 3}, {'a': 2, 'b': 3}]

:func:`pgrid` and :func:`pzip` return lazy sequences: they know their
length, can be indexed and iterated any number of times, and make each
dict only when it is needed, so a grid of 10^6 psets costs the memory of
its axes, not of 10^6 dicts.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from ..errors import RecorderError

__all__ = ["plist", "pgrid", "pzip", "grid", "zip", "stargrid", "merged_pset", "ParamSequence"]

Pset = dict[str, Any]


class ParamSequence(Sequence[Pset]):
    """A lazy, re-iterable, indexable sequence of psets (the result of :func:`pgrid` and :func:`pzip`)."""

    names: tuple[str, ...]

    def __repr__(self) -> str:
        shown = ", ".join(repr(p) for p in itertools.islice(self, 3))
        more = ", …" if len(self) > 3 else ""
        return f"{type(self).__name__}([{shown}{more}], len={len(self)})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, ParamSequence)):
            return len(self) == len(other) and all(a == b for a, b in builtins.zip(self, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Iterable[Mapping[str, Any]]) -> ParamSequence:
        """Concatenate, as with psweep's lists: ``pgrid(a, b) + pgrid(c, d)``."""
        return _Chain([self, _as_part(other, "+")])

    def __radd__(self, other: Iterable[Mapping[str, Any]]) -> ParamSequence:
        return _Chain([_as_part(other, "+"), self])


def _as_part(part: Iterable[Mapping[str, Any]] | ParamSequence, where: str) -> Sequence[Pset]:
    """Return a sized, re-iterable sequence of psets."""
    if isinstance(part, ParamSequence):
        return part
    if isinstance(part, Mapping):
        raise RecorderError(f"{where} takes lists of psets (for example plist('a', [1, 2])), not a single dict")
    items: Sequence[Any] = part if isinstance(part, Sequence) and not isinstance(part, (str, bytes)) else list(part)
    if not all(isinstance(item, Mapping) for item in items):
        items = [merged_pset(item, where) for item in items]
    # Every item was checked to be a mapping just above.
    return cast("Sequence[Pset]", items)


def merged_pset(item: Any, where: str) -> Mapping[str, Any]:
    """A pset, or the psets of a tuple (or list) merged into one, as builtin ``zip`` of plists yields them.

    ``zip(plist("a", [1, 2]), plist("b", [3, 4]))`` gives ``({"a": 1}, {"b": 3})``, …: each is one pset.

    :raises RecorderError: for anything else, or a name in two of the merged psets.
    """
    if isinstance(item, Mapping):
        return item
    if isinstance(item, (tuple, list)) and item and all(isinstance(part, Mapping) for part in item):
        merged: dict[str, Any] = {}
        for part in item:
            both = merged.keys() & part.keys()
            if both:
                raise RecorderError(f"{where}: the parameter {sorted(both)[0]!r} appears twice in {item!r}")
            merged.update(part)
        return merged
    raise RecorderError(f"{where}: {item!r} is not a pset (a dict of name → value, or a tuple of such dicts)")


def _names(part: Sequence[Pset]) -> tuple[str, ...]:
    if isinstance(part, ParamSequence):
        return part.names
    seen: dict[str, None] = {}
    for item in part:
        seen.update(dict.fromkeys(item))
    return tuple(seen)


def _unique_names(parts: Sequence[Sequence[Pset]], where: str) -> tuple[str, ...]:
    names: list[str] = []
    for part in parts:
        for name in _names(part):
            if name in names:
                raise RecorderError(
                    f"{where}: the parameter {name!r} appears in more than one of its parts; "
                    "each parameter may vary along one axis only"
                )
            names.append(name)
    return tuple(names)


def _flatten(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Accept both ``pgrid(a, b)`` and psweep's ``pgrid([a, b])``."""
    if (
        len(args) == 1
        and isinstance(args[0], (list, tuple))
        and args[0]
        and all(isinstance(p, (list, tuple, ParamSequence)) for p in args[0])
    ):
        return tuple(args[0])
    return args


class _Product(ParamSequence):
    def __init__(self, parts: Sequence[Sequence[Pset]]) -> None:
        self._parts = parts
        self.names = _unique_names(parts, "pgrid")
        self._len = math.prod(len(p) for p in parts) if parts else 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Pset]:
        if not self._parts:
            return
        for combo in itertools.product(*self._parts):
            merged: Pset = {}
            for item in combo:
                merged.update(item)
            yield merged

    def __getitem__(self, index: int) -> Pset:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(f"pset index {index} out of range for a grid of {self._len}")
        merged: Pset = {}
        positions = []
        for part in reversed(self._parts):  # the last axis varies fastest, as in itertools.product
            index, position = divmod(index, len(part))
            positions.append(position)
        for part, position in builtins.zip(self._parts, reversed(positions)):
            merged.update(part[position])
        return merged


class _Zip(ParamSequence):
    def __init__(self, parts: Sequence[Sequence[Pset]]) -> None:
        lengths = {len(p) for p in parts}
        if len(lengths) > 1:
            raise RecorderError(
                f"pzip: the parts have different lengths {[len(p) for p in parts]}; "
                "parameters varied together need the same number of values"
            )
        self._parts = parts
        self.names = _unique_names(parts, "pzip")
        self._len = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Pset]:
        for items in builtins.zip(*self._parts):
            merged: Pset = {}
            for item in items:
                merged.update(item)
            yield merged

    def __getitem__(self, index: int) -> Pset:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if not -self._len <= index < self._len:
            raise IndexError(f"pset index {index} out of range for a zip of {self._len}")
        merged: Pset = {}
        for part in self._parts:
            merged.update(part[index])
        return merged


class _Chain(ParamSequence):
    def __init__(self, parts: Sequence[Sequence[Pset]]) -> None:
        self._parts = parts
        seen: dict[str, None] = {}
        for part in parts:
            seen.update(dict.fromkeys(_names(part)))
        self.names = tuple(seen)
        self._len = sum(len(p) for p in parts)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Pset]:
        for part in self._parts:
            for item in part:
                yield dict(item)

    def __getitem__(self, index: int) -> Pset:  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if not -self._len <= index < self._len:
            raise IndexError(f"pset index {index} out of range for {self._len} psets")
        index %= self._len
        for part in self._parts:
            if index < len(part):
                return dict(part[index])
            index -= len(part)
        raise AssertionError("unreachable: index was checked against the total length")


def plist(name: str, values: Iterable[Any]) -> list[Pset]:
    """Return one pset per value: ``plist("a", [1, 2]) == [{"a": 1}, {"a": 2}]``."""
    if not isinstance(name, str):
        raise RecorderError(f"plist takes the parameter name first, then its values; got name {name!r}")
    if isinstance(values, (str, bytes, Mapping)):
        raise RecorderError(f"plist({name!r}, …) takes a list of values, not {type(values).__name__} {values!r}")
    return [{name: value} for value in values]


def pgrid(*plists: Iterable[Mapping[str, Any]]) -> ParamSequence:
    """Return the Cartesian product of lists of psets, each combination merged into one pset.

    Accepts ``pgrid(a, b, c)`` and ``pgrid([a, b, c])``; a part may itself be
    a :func:`pzip` (parameters varied together) or another :func:`pgrid`.
    """
    parts = [_as_part(p, "pgrid") for p in _flatten(plists)]
    return _Product(parts)


def pzip(*plists: Iterable[Mapping[str, Any]]) -> ParamSequence:
    """Return psets merged item by item from lists of equal length (parameters varied together)."""
    parts = [_as_part(p, "pzip") for p in _flatten(plists)]
    return _Zip(parts)


def grid(**axes: Iterable[Any]) -> ParamSequence:
    """Return the Cartesian product of keyword axes: ``grid(a=[1, 2], b=[3, 4])``."""
    return pgrid(*(plist(name, values) for name, values in axes.items()))


def zip(**columns: Iterable[Any]) -> ParamSequence:  # shadows the builtin: rec.zip, as psweep users expect
    """Return psets varying keyword columns together: ``zip(a=[1, 2], b=[3, 4])``."""
    return pzip(*(plist(name, values) for name, values in columns.items()))


def stargrid(base: Mapping[str, Any], **axes: Iterable[Any]) -> list[Pset]:
    """Vary one parameter at a time around ``base`` (psweep's ``stargrid``).

    ``stargrid({"a": 1, "b": 2}, a=[1, 5], b=[7])`` gives ``{"a": 1, "b": 2}``,
    ``{"a": 5, "b": 2}`` and ``{"a": 1, "b": 7}``: for each axis in turn, ``base``
    with that parameter set to each of its values; a pset equal to one given
    before is left out (so ``base`` appears once, where an axis first holds its value).
    """
    if not isinstance(base, Mapping):
        raise RecorderError(f"stargrid takes the base pset (a dict) first, not {type(base).__name__} {base!r}")
    psets: list[Pset] = []
    for name, values in axes.items():
        for pset in plist(name, values):
            star = {**base, **pset}
            if star not in psets:
                psets.append(star)
    return psets
