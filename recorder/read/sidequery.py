"""Run one read-only query in a short-lived helper process, beside the caller's own queries.

Loading the DataFrame of 10^6 runs is mostly SQLite aggregating columns,
which runs on one core. Two threads of one process running such big
aggregates at once hardly overlap (measured on a 2-core machine: 1.23 s
for two queries in two threads, 1.26 s one after the other), while two
processes do (0.6 s). So a big read hands one of its queries to a helper:
``sys.executable -I -S`` running a few lines that import only ``sqlite3``,
open the database read-only, and write the one result row back on a pipe.

The helper reads in a transaction of its own, begun after the caller's:
callers use it only where they can tell whether it read what their own
transaction holds (see :func:`recorder.frame._start_helper`).

A helper that cannot start or fails is not an error: :meth:`SideQuery.result`
returns None and the caller runs the query itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store.db import read_uri

__all__ = ["InThread", "SideQuery", "available"]

# The helper's program. Each value of the row goes out as an 8-byte length
# (all ones for NULL) and its bytes: text as UTF-8, a number as its decimal text.
_PROGRAM = r"""
import json, sqlite3, sys
uri, sql, values = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
conn = sqlite3.connect(uri, uri=True, timeout=60)
conn.text_factory = bytes
row = conn.execute(sql, values).fetchone()
out = sys.stdout.buffer
for value in row:
    if value is None:
        out.write(b"\xff" * 8)
        continue
    data = value if isinstance(value, bytes) else str(value).encode()
    out.write(len(data).to_bytes(8, "little"))
    out.write(data)
out.flush()
"""
_NULL = b"\xff" * 8


def available() -> bool:
    """Whether a helper is possible and useful: a plain Python executable (not a frozen application), two cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > 1 and bool(sys.executable) and not getattr(sys, "frozen", False) and os.path.isfile(sys.executable)


class SideQuery:
    """One query running in a helper process; :meth:`result` waits for its row.

    :param database: the database file, opened read-only by the helper (see :func:`recorder.db.read_uri`).
    :param sql: one SELECT statement returning one row.
    :param values: its bound values (JSON-serialisable: numbers and strings).
    """

    def __init__(self, database: Path, sql: str, values: list[Any]) -> None:
        self._out: bytes | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        uri = read_uri(database)  # as the caller's connection opened it (immutable=1 in a read-only folder)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _PROGRAM, uri, sql, json.dumps(values)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            return  # no helper here (no fork, no executable): result() says so and the caller reads alone
        # The row may be larger than a pipe's buffer: read it while the caller works.
        self._reader = threading.Thread(target=self._read, name="recorder-sidequery", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        self._out = self._process.stdout.read()

    def result(self) -> tuple[bytes | None, ...] | None:
        """Wait for the helper; return its row (each value as bytes, or None for NULL), or None if it failed."""
        if self._process is None or self._reader is None:
            return None
        self._reader.join()
        if self._process.wait() != 0 or self._out is None:
            return None
        return _decode(self._out)

    def cancel(self) -> None:
        """Stop the helper, if it still runs (its row is not needed, or the caller was interrupted)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._reader is not None:
            self._reader.join()


class InThread:
    """Run a function in a thread now; :meth:`result` waits for it and returns its value or raises its error.

    Such as the first import of pandas, while the caller runs an ``sqlite3``
    query (which lets go of the GIL while SQLite works).
    """

    def __init__(self, function: Callable[[], Any]) -> None:
        self._function = function
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="recorder-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._function()
        except BaseException as e:  # handed to the caller by result()
            self._error = e

    def result(self) -> Any:
        """Wait for the function; return its value, or raise what it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _decode(out: bytes) -> tuple[bytes | None, ...] | None:
    """Split the helper's output into its values; None if it is cut short."""
    values: list[bytes | None] = []
    at = 0
    while at < len(out):
        head = out[at : at + 8]
        if len(head) < 8:
            return None
        at += 8
        if head == _NULL:
            values.append(None)
            continue
        size = int.from_bytes(head, "little")
        if at + size > len(out):
            return None
        values.append(out[at : at + size])
        at += size
    return tuple(values)
