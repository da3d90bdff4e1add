"""Globally unique, time-ordered ids, their short forms, and UTC timestamps.

An id is 24 hex digits: 12 for the milliseconds since the Unix epoch, 12
random. Sorting ids sorts them by creation time, so ids of runs from
different stores interleave correctly when the stores are merged. Within a
process, ids made in the same millisecond count up from a random start, so
they stay strictly increasing.

Short ids. Because ids are time-ordered, the runs of one sweep share their
first 16 to 20 digits: no short prefix tells them apart. Their *last*
digits do: the ids of one millisecond count up (so they differ in their
last digit), and each millisecond starts from 47 random bits. A run's
short id is therefore the shortest suffix of its id, :data:`SHORT_LENGTH`
(8) digits or more, that no other run of the store ends with (and that no
run's id starts with, since a prefix is accepted too) -- the way git
abbreviates hashes, from the other end. Two runs share their last 8 digits
with probability 2^-32, so in a store of n runs a run needs a 9th digit
with probability about n / 2^32: 1 in 43,000 at 10^5 runs, and 12 digits
(2^-48 per pair) practically never. A store holds an index on the last 4
bytes of the id (``runs_tail``, schema 3), so looking a short id up is one
index search, not a scan, at any size; 8 digits is the shortest suffix the
index serves, and also why shorter suffixes are not accepted.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time

__all__ = [
    "new_id",
    "new_ids",
    "iso_utc",
    "now_utc",
    "SHORT_LENGTH",
    "matching",
    "matching_sessions",
    "short_id",
    "short_ids",
]

#: The fewest digits of a short id: the last 4 bytes, the key of the index ``runs_tail``.
SHORT_LENGTH = 8

# The runs whose id ends with a suffix of SHORT_LENGTH digits or more: the index finds those
# sharing the last 4 bytes (the expression must be written exactly as the index's), LIKE the rest.
BY_TAIL = "SELECT lower(hex(id)) FROM runs WHERE substr(id, 9, 4) = ? AND hex(id) LIKE ? ORDER BY id LIMIT 6"
# How many runs share each of some 4-byte tails (an IN list searched in the same index).
TAIL_COUNTS = "SELECT substr(id, 9, 4), count(*) FROM runs WHERE substr(id, 9, 4) IN ({marks}) GROUP BY 1"
# The first and last id: a suffix outside their prefixes cannot be the prefix of any run's id.
# (Two ordered lookups: min() and max() together would scan the table.)
BOUNDS = """
SELECT (SELECT lower(hex(id)) FROM runs ORDER BY id LIMIT 1), (SELECT lower(hex(id)) FROM runs ORDER BY id DESC LIMIT 1)
"""
# The runs whose id starts with a prefix: a range of the unique index on runs.id.
BY_PREFIX = "SELECT lower(hex(id)) FROM runs WHERE id BETWEEN ? AND ? ORDER BY id LIMIT 6"

# The sessions whose id starts with the digits, or (8 digits or more) ends with them. Sessions are few
# (one per program run), so a scan of their table is cheap; their ids are text, not blobs.
SESSIONS_MATCHING = """
SELECT id FROM sessions WHERE lower(id) LIKE ? OR (? AND lower(id) LIKE ?) ORDER BY id LIMIT 6
"""

_lock = threading.Lock()
# Not for secrets: only to keep ids of different processes apart. Reseeded in
# forked children, which would otherwise repeat their parent's sequence.
_random = random.Random(os.urandom(16))


def _after_fork_in_child() -> None:
    global _last
    _random.seed(os.urandom(16))
    _last = 0  # the next id draws new random bits, even in the same millisecond


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
# The last id as one int: milliseconds in the high 48 bits, the counter in the low 48.
_last = 0
_time_ns = time.time_ns


def new_id() -> str:
    """Return a new 24-hex-digit id, strictly greater than the previous one of this process."""
    global _last
    first = (_time_ns() // 1_000_000) << 48
    with _lock:
        if first > _last:
            _last = first | _random.getrandbits(47)  # room to count up within the millisecond
        else:  # the same millisecond: count up (2^47 ids later, into the next millisecond)
            _last += 1
        return f"{_last:024x}"


def new_ids(count: int) -> list[str]:
    """Return ``count`` new ids at once: what ``count`` calls of :func:`new_id` give, with one lock and clock read."""
    global _last
    first = (_time_ns() // 1_000_000) << 48
    with _lock:
        start = first | _random.getrandbits(47) if first > _last else _last + 1
        _last = start + count - 1 if count > 0 else _last
    return [f"{i:024x}" for i in range(start, start + count)]


_last_second: tuple[int, str] = (-1, "")


def iso_utc(seconds: float) -> str:
    """Return a Unix time as UTC ISO-8601 with microseconds: ``2026-11-23T08:13:43.123456Z``."""
    global _last_second
    whole = int(seconds)
    micros = round((seconds - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    cached_whole, text = _last_second  # one tuple: safe to read from any thread
    if cached_whole != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{micros:06d}Z"


def now_utc() -> str:
    """Return the current time as UTC ISO-8601 (see :func:`iso_utc`)."""
    return iso_utc(time.time())


def matching(conn: sqlite3.Connection, digits: str) -> list[str]:
    """Return the ids (at most 6, sorted) of the runs whose id starts with ``digits`` or ends with them.

    Ends with: only for :data:`SHORT_LENGTH` digits or more (a short id).

    :param digits: 1 to 24 lower-case hex digits (checked by the caller).
    """
    found = {
        row[0]
        for row in conn.execute(BY_PREFIX, (bytes.fromhex(digits.ljust(24, "0")), bytes.fromhex(digits.ljust(24, "f"))))
    }
    if len(digits) >= SHORT_LENGTH:
        tail = bytes.fromhex(digits[-SHORT_LENGTH:])
        found.update(row[0] for row in conn.execute(BY_TAIL, (tail, "%" + digits)))
    return sorted(found)[:6]


def matching_sessions(conn: sqlite3.Connection, digits: str) -> list[str]:
    """Return the ids (at most 6, sorted) of the sessions whose id starts with ``digits`` or ends with them.

    The same rule as :func:`matching` for runs: ends with only for :data:`SHORT_LENGTH` digits or more.

    :param digits: 1 to 24 lower-case hex digits (checked by the caller, so no ``LIKE`` wildcard).
    """
    rows = conn.execute(SESSIONS_MATCHING, (digits + "%", len(digits) >= SHORT_LENGTH, "%" + digits))
    return [str(row[0]).lower() for row in rows]


def short_id(conn: sqlite3.Connection, full: str) -> str:
    """Return the short id of a run: its shortest suffix (:data:`SHORT_LENGTH` digits or more) that is unique in the store.

    Unique: no other run's id ends with it or starts with it, so
    :func:`matching` finds this run alone. Two index searches for most runs.
    """
    for length in range(SHORT_LENGTH, len(full)):
        if matching(conn, full[-length:]) == [full]:
            return full[-length:]
    return full


def short_ids(conn: sqlite3.Connection, fulls: list[str]) -> dict[str, str]:
    """Return the short id of each of some runs (what :func:`short_id` gives), in three queries for most.

    ``recorder log`` shows thousands of runs: one query for the store's first
    and last id, one for how many runs share each 4-byte tail; only a run
    whose 8-digit tail is shared, or could be a prefix, needs :func:`short_id`.
    """
    if not fulls:
        return {}
    low, high = conn.execute(BOUNDS).fetchone()
    tails = sorted({bytes.fromhex(full[-SHORT_LENGTH:]) for full in fulls})
    counts = dict(conn.execute(TAIL_COUNTS.format(marks=",".join("?" * len(tails))), tails))
    found = {}
    for full in fulls:
        tail = full[-SHORT_LENGTH:]
        alone = counts.get(bytes.fromhex(tail)) == 1
        if alone and low is not None and not low[:SHORT_LENGTH] <= tail <= high[:SHORT_LENGTH]:
            found[full] = tail
        else:
            found[full] = short_id(conn, full)
    return found
