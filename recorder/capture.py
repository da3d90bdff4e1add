"""Capture of a run's stdout and stderr: bounded in size, carriage-return lines collapsed."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Iterator

__all__ = ["MAX_OUTPUT_CHARS", "captured", "collapse_carriage_returns"]

#: Most characters kept of a run's output: the first and last half of it.
MAX_OUTPUT_CHARS = 1_000_000


def collapse_carriage_returns(text: str) -> str:
    """Keep, of each line, what a terminal shows: the text after its last carriage return.

    Progress bars redraw one line thousands of times with ``\\r``; only the
    last state is worth storing.
    """
    if "\r" not in text:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "\r" in line:
            parts = line.split("\r")
            visible = parts[-1] or (parts[-2] if len(parts) > 1 else "")
            lines[i] = visible
    return "\n".join(lines)


class _Buffer(io.TextIOBase):
    """A text stream keeping the first and last ``limit / 2`` characters written to it."""

    def __init__(self, limit: int) -> None:
        self._half = limit // 2
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written = len(text)
        if self._head_size < self._half:
            room = self._half - self._head_size
            self._head.append(text[:room])
            self._head_size += min(len(text), room)
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_size += len(text)
            if self._tail_size > 2 * self._half:
                joined = "".join(self._tail)
                self.dropped += len(joined) - self._half
                self._tail, self._tail_size = [joined[-self._half :]], self._half
        return written

    def getvalue(self) -> str:
        tail = "".join(self._tail)
        dropped = self.dropped
        if len(tail) > self._half:
            dropped += len(tail) - self._half
            tail = tail[-self._half :]
        middle = f"\n[… {dropped} characters of output dropped …]\n" if dropped else ""
        return collapse_carriage_returns("".join(self._head) + middle + tail)


@contextlib.contextmanager
def captured(limit: int = MAX_OUTPUT_CHARS) -> Iterator[_Buffer]:
    """Send ``sys.stdout`` and ``sys.stderr`` to one bounded buffer inside the block.

    Python-level capture: what C extensions write to the file descriptors
    directly is not captured.
    """
    buffer = _Buffer(limit)
    previous = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buffer  # type: ignore[assignment]
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = previous
