"""Canonical JSON: how numbers, psets and scalar results are written as JSON text, and read back.

Every number recorder writes as JSON follows one rule, :func:`number_json`:

- an int of 64 bits is its ``repr``;
- a float is its ``repr`` (the shortest text that reads back as the same
  float), ``±inf`` is ``±1e999`` (plain JSON, which SQLite's JSON functions
  and Python read back as infinity); NaN has no JSON text (a parameter
  refuses it, a result keeps it in a cell of kind ``nan``, a list refuses it);
- a bool is ``true``/``false``, None is ``null``; a str is a JSON string
  with non-ASCII characters as they are.

It is written in three places, each with its own policy on top:

- **a pset's canonical JSON** (``psets.params``; its hash identifies the
  pset, so these bytes must never change): keys sorted by code point, no
  spaces; ``-0.0`` is written ``0.0`` (the same pset); numpy scalars and
  subclasses of the built-in types as the built-in value; NaN and ints
  beyond 64 bits refused (:func:`canonical_pset`);
- **a run's plain scalar results** (``runs.scalars``): numbers, bools and
  None, sorted by name, written as psets are but ``-0.0`` kept
  (:func:`scalars_json`);
- **lists and dicts logged as results** (kind ``json``), in the order
  given (:func:`structure_json`).

It is read back by :data:`read_json` (``json.loads``: ``1e999`` reads as
infinity), and column-wise, for a DataFrame of many runs, by
:func:`read_columns`.

Each fast path sits beside the general rule it shortcuts, and a test pins
the two to each other (``tests/codec/test_canonical.py``):

- :func:`pset_layout` and :func:`plain_numbers` (a template for psets of
  known names and plain numbers) beside :func:`canonical_pset`;
- :func:`scalar_layout` and :func:`plain_results` (a template for results of
  known names and plain numbers) beside :func:`scalars_json`, and
  :func:`scalars_rows` (the template over whole columns of such results,
  bools included through :func:`bool_column`: a vectorised chunk's runs);
- :func:`read_columns` (texts cut at their keys and parsed by pandas' CSV
  reader in C) beside :func:`read_one_by_one` (each text parsed by json,
  each column made by :func:`values_column`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import ValueRefused
from .hashing import claim_names, is_utf8

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "INT64_MIN",
    "INT64_MAX",
    "read_json",
    "json_string",
    "json_key",
    "float_json",
    "number_json",
    "param_json",
    "canonical_pset",
    "PsetLayout",
    "pset_layout",
    "plain_numbers",
    "plain_scalar",
    "Cell",
    "scalar_json",
    "scalars_json",
    "ScalarLayout",
    "scalar_layout",
    "plain_results",
    "bool_column",
    "scalars_rows",
    "refused",
    "structure_json",
    "read_columns",
    "read_one_by_one",
    "values_column",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
_INF = float("inf")

#: Reads any JSON text this module writes (``1e999`` as infinity): psets, ``runs.scalars``, lists and dicts.
read_json: Callable[[str | bytes], Any] = json.loads

#: The JSON text of a str: non-ASCII characters as they are (canonical JSON's strings and keys).
json_string: Callable[[str], str] = json.JSONEncoder(ensure_ascii=False).encode


# -- numbers -------------------------------------------------------------------------------------------


def float_json(value: float) -> str:
    """Return the JSON text of a float other than NaN: its ``repr``, ``±inf`` as ``±1e999``."""
    if value - value == 0.0:  # finite (inf - inf is NaN)
        return repr(value)
    return "1e999" if value > 0 else "-1e999"


def number_json(value: bool | int | float | None) -> str:
    """Return the JSON text of a plain value: a bool, an int of 64 bits, a float other than NaN, or None.

    The general rule every JSON text here follows for numbers (see the module's docstring).
    """
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is float:
        return float_json(value)
    return repr(value)


_JSON_KEYS: dict[str, str] = {}  # name → its JSON key


def json_key(name: str) -> str:
    """Return a name as a key of canonical JSON: its JSON string and a colon (remembered for 10^4 names)."""
    key = _JSON_KEYS.get(name)
    if key is None:
        key = json_string(name) + ":"
        if len(_JSON_KEYS) < 10_000:
            _JSON_KEYS[name] = key
    return key


def _numpy_scalar_kind(value: Any) -> str | None:
    """Return the numpy dtype kind of a numpy scalar, or None for anything else."""
    if type(value).__module__ != "numpy" or getattr(value, "shape", None) != ():
        return None
    kind: str = value.dtype.kind
    return kind


# -- psets: canonical JSON ----------------------------------------------------------------------------


def param_json(name: str, value: Any) -> tuple[str, Any]:
    """Return the canonical JSON text of one parameter value, and the built-in value it stands for."""
    kind = type(value)
    if kind is str:
        if not is_utf8(value):
            raise ValueRefused(f"parameter {name!r} holds a lone surrogate, which is not text; fix its encoding")
        return json_string(value), value
    if kind is float:
        if value == 0.0:  # -0.0 == 0.0: the same parameter set
            return "0.0", 0.0
        return _finite_json(name, value), value
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueRefused(
                f"parameter {name!r}: the int {value} does not fit in 64 bits; pass it as a str or a float"
            )
        return repr(value), value
    if kind is bool:
        return ("true" if value else "false"), value
    if value is None:
        return "null", None
    # numpy scalars, and subclasses of the built-in types, are stored as the
    # built-in value they stand for.
    dtype_kind = _numpy_scalar_kind(value)
    if dtype_kind == "b" or (dtype_kind is None and isinstance(value, bool)):
        return param_json(name, bool(value))
    if dtype_kind in ("i", "u") or (dtype_kind is None and isinstance(value, int)):
        return param_json(name, int(value))
    if dtype_kind == "f" or (dtype_kind is None and isinstance(value, float)):
        return param_json(name, float(value))
    if dtype_kind == "U" or (dtype_kind is None and isinstance(value, str)):
        return param_json(name, str(value))
    if isinstance(value, (list, tuple, dict)):
        return _structure_param(name, value, 0)
    raise ValueRefused(
        f"parameter {name!r} has type {type(value).__name__}: a parameter must be "
        "a bool, int, float, str or None, or a list, tuple or dict of them; log arrays "
        "as results, or pass a scalar that selects them"
    )


def _structure_param(name: str, value: list[Any] | tuple[Any, ...] | dict[str, Any], depth: int) -> tuple[str, Any]:
    """The canonical JSON of a list, tuple or dict parameter, and the plain value it stands for.

    Each item follows :func:`param_json` (numpy scalars as Python numbers, ``-0.0`` as
    ``0.0``, NaN refused); a tuple is written as a list (a tuple and a list with the
    same items are one pset) and stands for that list; a dict's keys are str, sorted
    by code point as a pset's names are.
    """
    if depth >= _MAX_DEPTH:
        raise ValueRefused(
            f"parameter {name!r} is nested more than {_MAX_DEPTH} levels deep, or contains itself; "
            "pass a flatter structure"
        )
    if isinstance(value, dict):
        keys = []
        for key in value:
            if type(key) is not str or not is_utf8(key):
                raise ValueRefused(
                    f"parameter {name!r} holds a dict key {key!r} of type {type(key).__name__}; "
                    "the keys of a dict parameter are str"
                )
            keys.append(key)
        parts, clean = [], {}
        for key in sorted(keys):
            text, clean[key] = _item_param(name, value[key], depth)
            parts.append(json_string(key) + ":" + text)
        return "{" + ",".join(parts) + "}", clean
    texts, items = [], []
    for item in value:
        text, plain = _item_param(name, item, depth)
        texts.append(text)
        items.append(plain)
    return "[" + ",".join(texts) + "]", items


def _item_param(name: str, item: Any, depth: int) -> tuple[str, Any]:
    """One item of a structure parameter: a plain value (:func:`param_json`) or a nested structure."""
    if isinstance(item, (list, tuple, dict)):
        return _structure_param(name, item, depth + 1)
    try:
        return param_json(name, item)
    except ValueRefused as e:
        if "has type" not in str(e):
            raise
        raise ValueRefused(
            f"parameter {name!r} holds {item!r} of type {type(item).__name__} inside a list or dict: "
            "a structure parameter holds only bool, int, float, str, None and nested lists, tuples "
            "and dicts of them"
        ) from None


def _finite_json(name: str, value: float) -> str:
    """The JSON of a parameter's float: :func:`float_json`, NaN refused."""
    if value != value:
        raise ValueRefused(
            f"parameter {name!r} is NaN, which cannot identify a parameter set "
            "(NaN is not equal to itself); use None for 'no value'"
        )
    return float_json(value)


class PsetLayout(NamedTuple):
    """A set of parameter names, checked once: their canonical order, JSON keys, and JSON template."""

    #: The names sorted by code point, as canonical JSON writes them.
    order: tuple[str, ...]
    #: The JSON key of each name in ``order``, colon included.
    keys: tuple[str, ...]
    #: The canonical JSON with ``%r`` for each value in ``order``: exact for :func:`plain_numbers`.
    template: str


def pset_layout(names: tuple[str, ...]) -> PsetLayout:
    """Return the layout of a pset with these names (in the order given), checking them the first time.

    :raises NameRefused: for a reserved or invalid name, or two names equal but for case.
    """
    layout = _LAYOUTS.get(names)
    if layout is None:
        claim_names("parameter", names, {})
        order = tuple(sorted(names))
        keys = tuple(json_string(name) + ":" for name in order)
        template = "{" + ",".join(key.replace("%", "%%") + "%r" for key in keys) + "}"
        layout = PsetLayout(order, keys, template)
        if len(_LAYOUTS) < 1024:
            _LAYOUTS[names] = layout
    return layout


# Parameter names seen together (in the order given) → their layout.
_LAYOUTS: dict[tuple[str, ...], PsetLayout] = {}


def plain_numbers(values: Iterable[Any]) -> bool:
    """Return whether every value is a number whose canonical JSON is its ``repr``.

    That is a float other than ±0.0, ±inf and NaN, or an int of 64 bits;
    bools, numpy scalars and the rest go through the general rules.
    """
    for value in values:
        if type(value) is float:
            if value - value != 0.0 or value == 0.0:  # NaN, ±inf (inf - inf is NaN), ±0.0
                return False
        elif type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            return False
    return True


def canonical_pset(params: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Validate a pset and return it as plain Python values with its canonical JSON.

    :param params: flat mapping of parameter name to scalar value.
    :returns: ``(clean, text)``: the pset with numpy scalars turned into
        built-in values, in canonical order, and its canonical JSON.
    :raises NameRefused: for a reserved or invalid name.
    :raises ValueRefused: for a value that is not a scalar, or is NaN.
    """
    if not isinstance(params, Mapping):
        raise ValueRefused(f"a parameter set must be a dict of name → scalar, not {type(params).__name__}")
    layout = pset_layout(tuple(params))
    values = tuple([params[name] for name in layout.order])
    if plain_numbers(values):  # the common case, without a call per value
        return dict(zip(layout.order, values)), layout.template % values
    clean: dict[str, Any] = {}
    parts = []
    for name, key, value in zip(layout.order, layout.keys, values):
        text, clean[name] = param_json(name, value)
        parts.append(key + text)
    return clean, "{" + ",".join(parts) + "}"


# -- plain scalar results: runs.scalars -----------------------------------------------------------------


def plain_scalar(value: Any) -> Any:
    """Return the plain Python number a numpy scalar of a JAX result stands for, or the scalar itself.

    JAX has no scalar types: its numbers are 0-d arrays. Those of bool, int
    and float dtypes (bfloat16 and float16 included) are stored as the plain
    bool, int or float they hold, exactly (a float64 holds any of them), so
    they are numbers in SQL and columns in tables. Others (complex, …) stay
    numpy scalars and keep their dtype.
    """
    dtype = value.dtype
    if dtype.kind in "biu":
        return value.item()
    if (dtype.kind == "f" and dtype.itemsize <= 8) or dtype.name.startswith(("bfloat16", "float8")):
        return float(value)  # ml_dtypes' floats (bfloat16, float8_*) included
    return value


class Cell(Protocol):
    """A result as :func:`recorder.codec.values.encode` makes it: its kind and stored value."""

    @property
    def kind(self) -> str | None:
        """The encoding: None for a plain value, ``"bool"`` for a bool stored as 0 or 1, …"""

    @property
    def value(self) -> Any:
        """The stored value."""


def scalar_json(kind: str | None, value: Any) -> str:
    """Return the JSON of a plain scalar result cell in ``runs.scalars`` (:func:`number_json`, ``-0.0`` kept).

    :param kind: ``"bool"`` (``value`` is 0 or 1) or None (``value`` is an int
        of 64 bits, a float other than NaN, or None: NaN has its own kind and
        never comes here, nor does a str, which is a row of ``results``).
    """
    if kind == "bool":
        return "true" if value else "false"
    kind_ = type(value)
    if kind_ is float:
        return float_json(value)
    if kind_ is int:
        return repr(value)
    return "null"  # the only other plain value kept in runs.scalars


def scalars_json(results: Mapping[str, Cell], names: Iterable[str]) -> str:
    """Return ``runs.scalars`` of the results ``names`` (plain scalar cells): keys sorted, each by :func:`scalar_json`."""
    parts = []
    for name in sorted(names):
        cell = results[name]
        parts.append(json_key(name) + scalar_json(cell.kind, cell.value))
    return "{" + ",".join(parts) + "}"


class ScalarLayout(NamedTuple):
    """Result names whose values, when plain numbers, make ``runs.scalars`` from a template."""

    #: The names sorted, as ``runs.scalars`` writes them.
    order: tuple[str, ...]
    #: Whether the names came in that order.
    in_order: bool
    #: ``runs.scalars`` with ``%r`` for each value in ``order``: exact for :func:`plain_results`.
    template: str


def scalar_layout(names: tuple[str, ...]) -> ScalarLayout:
    """Return the layout of results with these names (in the order given)."""
    order = tuple(sorted(names))
    template = "{" + ",".join(json_key(name).replace("%", "%%") + "%r" for name in order) + "}"
    return ScalarLayout(order, order == names, template)


def plain_results(values: tuple[Any, ...]) -> bool:
    """Return whether every value is a finite float or a 64-bit int: kept in ``runs.scalars`` as its ``repr``.

    Those are the values :func:`recorder.codec.values.encode` leaves as they
    are (``Encoded(None, value)``) and :func:`scalar_json` writes by ``repr``;
    unlike :func:`plain_numbers`, ``±0.0`` is plain (a result keeps its sign).
    """
    for value in values:
        if type(value) is float:
            if value - value != 0.0:  # NaN and ±inf have their own rules
                return False
        elif type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            return False
    return True


class _Literal(str):
    """A text that ``%r`` writes as it is (``true``, ``false`` in a :class:`ScalarLayout` template)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str.__str__(self)


_TRUE, _FALSE = _Literal("true"), _Literal("false")


def bool_column(values: Iterable[Any]) -> list[Any]:
    """Return a column of bools as values that a :class:`ScalarLayout` template writes ``true``/``false``."""
    return [_TRUE if value else _FALSE for value in values]


def scalars_rows(layout: ScalarLayout, columns: Sequence[Sequence[Any]]) -> list[str]:
    """Return ``runs.scalars`` of many runs at once, from their results given column by column.

    The template of :func:`scalar_layout` over whole columns, one ``%`` per
    run and no call per value: what :func:`scalars_json` writes for each
    run, when every value is plain (:func:`plain_results`: finite floats,
    ints of 64 bits) or comes from :func:`bool_column`.

    :param columns: one sequence of values per name of ``layout.order``, in that order, all as long.
    """
    template = layout.template
    return [template % values for values in zip(*columns)]


# -- lists and dicts: results of kind json -----------------------------------------------------------


_MAX_DEPTH = 100  # lists and dicts nested deeper are refused (a structure that contains itself is)


def refused(what: str, name: str, value: Any, hint: str) -> ValueRefused:
    """The error refusing a value recorder cannot store, naming it, its type and what to do (``hint``)."""
    return ValueRefused(f"{what} {name!r} has type {type(value).__qualname__}, which recorder cannot store: {hint}")


def _json_default(what: str, name: str) -> Callable[[Any], Any]:
    def default(value: Any) -> Any:
        if type(value).__module__ == "numpy" and getattr(value, "shape", None) == ():
            return value.item()
        raise refused(
            what,
            name,
            value,
            "lists and dicts may hold only bool, int, float, str, None and nested "
            "lists/dicts with str keys; log arrays as results of their own",
        )

    return default


def _is_float(item: Any) -> bool:
    if isinstance(item, float):
        return True
    return type(item).__module__ == "numpy" and getattr(item, "shape", None) == () and item.dtype.kind == "f"


def _scan(what: str, name: str, value: Any) -> bool:
    """Check what JSON would silently change; return whether an infinite float is inside.

    Refuses dict keys that are not str (JSON would turn them into strings)
    and NaN (not standard JSON, and not needed: an array keeps it).
    """
    infinite = False
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)) and depth >= _MAX_DEPTH:
            raise ValueRefused(
                f"{what} {name!r} is nested more than {_MAX_DEPTH} levels deep, or contains itself; "
                "store a flatter structure"
            )
        if isinstance(item, dict):
            for key, sub in item.items():
                if type(key) is not str:
                    raise ValueRefused(
                        f"{what} {name!r} holds a dict key {key!r} of type {type(key).__name__}; "
                        "JSON keys are strings, so convert the keys with str() first"
                    )
                stack.append((sub, depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((sub, depth + 1) for sub in item)
        elif _is_float(item):
            number = float(item)
            if number != number:
                raise ValueRefused(
                    f"{what} {name!r} holds NaN inside a list or dict, which JSON cannot hold; "
                    "log the numbers as a numpy array (numpy.asarray(...)), which keeps NaN exactly"
                )
            infinite = infinite or number in (_INF, -_INF)
    return infinite


def structure_json(what: str, name: str, value: Any) -> str:
    """Return standard JSON for a list or dict, ±inf written as ±1e999."""
    default = _json_default(what, name)
    if not _scan(what, name, value):
        return json.dumps(value, default=default, ensure_ascii=False, allow_nan=False)

    def dump(item: Any) -> str:
        if isinstance(item, dict):
            return "{" + ",".join(json_string(k) + ":" + dump(v) for k, v in item.items()) + "}"
        if isinstance(item, (list, tuple)):
            return "[" + ",".join(dump(v) for v in item) + "]"
        if _is_float(item):
            item = float(item)
            if item in (_INF, -_INF):
                return float_json(item)
        return json.dumps(item, default=default, ensure_ascii=False, allow_nan=False)

    return dump(value)


# -- reading back, column by column --------------------------------------------------------------------


def read_columns(data: bytes | None, layout: Collection[str], wanted: list[str], n: int) -> dict[str, Any]:
    """The values of the ``wanted`` names from canonical JSON texts (UTF-8) joined by \\x1e, one per run.

    The texts are psets' canonical JSON or runs' ``runs.scalars``; ``layout``
    holds every name they may have (the experiment's parameters, or its
    results kept in ``runs.scalars``). When every text has every name of
    ``layout``, the texts are cut into values
    without parsing each one: canonical JSON is ``{"a":1,"b":2}``, and a
    quote is escaped inside a JSON string, so ``{"a":`` and ``,"b":`` occur
    only as keys. Numbers, true, false and null are then parsed by pandas'
    CSV reader, in C; anything else by json. (Bytes, not str: pandas reads
    bytes faster.) What it gives makes the DataFrame :func:`read_one_by_one`
    gives, the general rule.
    """
    if not wanted or n == 0:
        return {name: [] for name in wanted}
    assert data is not None
    keys = sorted(layout)
    m = len(keys)
    quoted = [json_key(key).encode() for key in keys]  # as canonical JSON writes them, colon included
    first = b"{" + quoted[0]
    if data.count(b"\x1e" + first) + data.startswith(first) != n:  # some object lacks the first key
        return read_one_by_one(data, wanted)
    cut = data.replace(b"}\x1e" + first, b"\x1e")  # every object ends in }: one pass for both ends
    cut = cut.removeprefix(first).removesuffix(b"}")
    for key in quoted[1:]:
        cut = cut.replace(b"," + key, b"\x1f")
    # Each object has each key at most once, so this count means every object has every key.
    if cut.count(b"\x1e") != n - 1 or cut.count(b"\x1f") != n * (m - 1):
        return read_one_by_one(data, wanted)
    if b'"' not in cut:  # numbers, true, false and null only: pandas' parser reads them exactly
        import pandas as pd

        # With nulls, nullable dtypes: an int column with nulls stays ints (float64 would round beyond 2**53).
        nullable = {"dtype_backend": "numpy_nullable"} if b"null" in cut else {}
        table = pd.read_csv(
            io.BytesIO(cut),
            sep="\x1f",
            lineterminator="\x1e",
            header=None,
            names=keys,
            usecols=wanted,
            na_values=["null"],
            keep_default_na=False,
            **nullable,
            **_exact_floats(),
        )
        if len(table) == n and not nullable and all(table[name].dtype.kind in "fiub" for name in wanted):
            return {name: table[name].to_numpy() for name in wanted}
        if len(table) == n and nullable:
            parsed = {name: _plain_column(table[name]) for name in wanted}
            if all(column is not None for column in parsed.values()):
                return parsed
    flat = cut.replace(b"\x1f", b",").replace(b"\x1e", b",")
    values = read_json(b"[" + flat + b"]")
    columns = {key: values_column(values[j::m]) for j, key in enumerate(keys)}
    return {name: columns[name] for name in wanted}


def _plain_column(column: pd.Series) -> Any:
    """A column read by read_csv with nullable dtypes, as :func:`values_column` would make it; None if not numbers.

    Ints stay numpy int64, or pandas' nullable ``Int64`` when some are
    missing; floats are numpy float64 with NaN where missing; bools numpy
    bool; a column of nulls only is NaN. Bools with nulls (and anything
    else) are left to the JSON parser, which keeps them as objects.
    """
    import numpy as np

    kind = column.dtype.kind
    missing = bool(column.isna().any())
    if missing and column.isna().all():
        return np.full(len(column), np.nan)
    if kind in "iu":
        return column.array if missing else column.to_numpy(dtype=np.int64)
    if kind == "f":
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "b" and not missing:
        return column.to_numpy(dtype=bool)
    return None


def read_one_by_one(data: bytes, wanted: list[str]) -> dict[str, Any]:
    """The slow way, for objects of several layouts: each parsed by json; a missing key is None."""
    objects = read_json(b"[" + data.replace(b"\x1e", b",") + b"]")
    return {name: values_column([item.get(name) for item in objects]) for name in wanted}


def _exact_floats() -> dict[str, str]:
    """read_csv's option for floats parsed exactly: pandas 3 does by default, pandas 2 when asked."""
    import pandas as pd

    return {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def values_column(cells: list[Any]) -> Any:
    """A column of plain result values: a numpy array when they are all numbers of one type.

    A column of None only is NaN, as it reads from runs.scalars (see read_columns).
    Ints (Python's or numpy's) with some None are pandas' nullable integers,
    exact where float64 would round beyond 2**53: numpy ints of one dtype keep
    its width and sign (``np.uint64`` → ``UInt64``), other ints are ``Int64``,
    or ``UInt64`` when they only fit unsigned, else objects.
    """
    import numpy as np

    if cells and cells[0] is None and all(c is None for c in cells):
        return np.full(len(cells), np.nan)
    if cells and None in cells:  # the common path (no run lacks the result) costs one scan
        types = set(map(type, cells))
        types.discard(type(None))
        if types <= {int} or all(issubclass(t, np.integer) for t in types):
            return _nullable_ints(cells, types)
    if cells and type(cells[0]) in (float, int):
        array = np.array(cells)
        if array.dtype.kind in "fi":
            return array
    return cells


def _nullable_ints(cells: list[Any], types: set[type]) -> Any:
    """Ints (Python's and numpy's, of ``types``) with some None as pandas' nullable integer array (see values_column)."""
    import numpy as np
    import pandas as pd

    if int not in types:
        dtype = np.result_type(*types)  # int64 and uint64 together have none (float64): by their range below
        if dtype.kind in "iu":
            return pd.array(cells, dtype=("UInt" + dtype.name[4:]) if dtype.kind == "u" else ("Int" + dtype.name[3:]))
    present = [int(c) for c in cells if c is not None]
    low, high = min(present), max(present)
    if low >= INT64_MIN and high <= INT64_MAX:
        return pd.array(cells, dtype="Int64")
    if low >= 0 and high <= _UINT64_MAX:
        return pd.array(cells, dtype="UInt64")
    return np.array(cells, dtype=object)
