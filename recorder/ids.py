"""Globally unique, time-ordered ids and UTC timestamps.

An id is 24 hex digits: 12 for the milliseconds since the Unix epoch, 12
random. Sorting ids sorts them by creation time, so ids of runs from
different stores interleave correctly when the stores are merged. Within a
process, ids made in the same millisecond count up from a random start, so
they stay strictly increasing.
"""

from __future__ import annotations

import os
import random
import threading
import time

__all__ = ["new_id", "iso_utc", "now_utc"]

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


_last_second: tuple[int, str] = (-1, "")


def iso_utc(seconds: float) -> str:
    """Return a Unix time as UTC ISO-8601 with microseconds: ``2026-11-23T08:13:43.123456Z``."""
    global _last_second
    whole = int(seconds)
    micros = int(round((seconds - whole) * 1_000_000))
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
