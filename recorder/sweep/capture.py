"""Capture of a run's stdout, stderr and ``logging`` records: bounded in size, carriage-return lines collapsed."""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_OUTPUT_CHARS", "LOG_FORMAT", "captured", "collapse_carriage_returns"]

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


#: The buffer of the run capturing in this thread (or context), if any.
_CURRENT: contextvars.ContextVar[_Buffer | None] = contextvars.ContextVar("recorder_capture", default=None)
_LOCK = threading.Lock()
_active = 0  # captures in progress, in every thread
_installed: tuple[_Dispatch, _Dispatch] | None = None  # while any capture is in progress
_log_handler: Any = None  # the _LogHandler on the root logger, while any capture is in progress

#: How a ``logging`` record is written into a run's output: time, level, logger name, message.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Dispatch(io.TextIOBase):
    """Stands for ``sys.stdout`` or ``sys.stderr`` while captures run: writes go to the current run's buffer.

    Threads (a thread pool, Dask's threads) run several captured runs at
    once, and ``sys.stdout`` is one for the whole process: so it is
    replaced once, by this, and each write goes where the writing thread's
    run wants it (its buffer), or to the original stream when that thread
    captures nothing.
    """

    def __init__(self, original: Any) -> None:
        self.original = original

    def _target(self) -> Any:
        buffer = _CURRENT.get()
        return self.original if buffer is None else buffer

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        written: int = self._target().write(text)
        return written

    def flush(self) -> None:
        target = self._target()
        if target is self.original and self.original is not None:
            self.original.flush()

    # What code asks of a stream (its encoding, file descriptor, whether it is a terminal): the original's.
    @property
    def encoding(self) -> Any:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    @property
    def errors(self) -> Any:  # type: ignore[override]
        return getattr(self.original, "errors", None)

    def fileno(self) -> int:
        fd: int = self.original.fileno()
        return fd

    def isatty(self) -> bool:
        return bool(getattr(self.original, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


def _log_handler_class() -> Any:
    """The class of the handler that sends ``logging`` records to the capturing run's buffer (logging imported now)."""
    import logging

    class _LogHandler(logging.Handler):
        """On the root logger while captures run: a record goes to the buffer of the emitting thread's run.

        Records reach it as the user's logging configuration lets them (a
        logger's level, ``propagate``); a thread that captures nothing gets
        what logging would have done without this handler (its last resort,
        when no other handler is configured).
        """

        def emit(self, record: logging.LogRecord) -> None:
            buffer = _CURRENT.get()
            if buffer is None:
                last = logging.lastResort
                if last is not None and len(logging.getLogger().handlers) == 1 and record.levelno >= last.level:
                    last.handle(record)
                return
            try:
                buffer.write(self.format(record) + "\n")
            except Exception:
                self.handleError(record)

    return _LogHandler


def _install() -> None:
    global _active, _installed, _log_handler
    with _LOCK:
        _active += 1
        if _active == 1:
            import logging

            _installed = (_Dispatch(sys.stdout), _Dispatch(sys.stderr))
            sys.stdout, sys.stderr = _installed
            _log_handler = _log_handler_class()()
            _log_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            logging.getLogger().addHandler(_log_handler)


def _uninstall() -> None:
    global _active, _installed, _log_handler
    with _LOCK:
        _active -= 1
        if _active == 0 and _log_handler is not None:
            import logging

            logging.getLogger().removeHandler(_log_handler)
            _log_handler = None
        if _active == 0 and _installed is not None:
            out, err = _installed
            # Put back exactly what was there, unless someone replaced our stream meanwhile (theirs stays).
            if sys.stdout is out:
                sys.stdout = out.original
            if sys.stderr is err:
                sys.stderr = err.original
            _installed = None


@contextlib.contextmanager
def captured(limit: int = MAX_OUTPUT_CHARS) -> Iterator[_Buffer]:
    """Send what this thread writes to ``sys.stdout`` and ``sys.stderr``, and its ``logging`` records, to one bounded buffer.

    Other threads' output is not taken: while any capture runs,
    ``sys.stdout`` and ``sys.stderr`` dispatch each write to the buffer of
    the writing thread's (or context's) run, or to the original stream; the
    originals are put back when the last capture ends. A handler on the root
    logger does the same for ``logging`` records (:data:`LOG_FORMAT`), at the
    levels the user's configuration lets through. Python-level capture:
    what C extensions write to the file descriptors directly is not captured.
    """
    buffer = _Buffer(limit)
    _install()
    token = _CURRENT.set(buffer)
    try:
        yield buffer
    finally:
        _CURRENT.reset(token)
        _uninstall()
