"""What a failed run's stored traceback says, in one line (for ``_error``, ``log``, ``show`` and the sweep's warning).

A bottom layer: imports nothing from recorder, so every module that shows
an error uses this one rule.
"""

from __future__ import annotations

__all__ = ["LINE_LIMIT", "exception_line"]

#: Characters an exception line keeps at most (a message may embed a whole traceback, as JAX's callbacks do);
#: the full text stays in the run's stored traceback (``recorder show``).
LINE_LIMIT = 300

#: Lines of a formatted traceback that are not the exception: its headers and the separators of chained ones.
_HEADERS = (
    "Traceback (most recent call last):",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def exception_line(error: str | None) -> str | None:
    """The exception of a stored traceback in one line: ``"RuntimeError: multi line message"``; None without one.

    That is the text after the last traceback's frames (its last exception
    header, the type and message, to the end), the message's lines joined by
    a space: a multi-line message keeps its exception type. A note recorder
    appended in brackets on the last lines (vsweep's chunk hint) is left
    out. Text that is no traceback (a note about a dead worker) is given
    whole, in one line. A line longer than :data:`LINE_LIMIT` is cut there,
    ending in "…".
    """
    if not error or not error.strip():
        return None
    lines = error.rstrip().splitlines()
    start = 0
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].strip() in _HEADERS and not lines[index][:1].isspace():
            start = index + 1
            break
    # The frames of the last traceback are indented ("  File …", "    code", "    ^^^"); the exception follows.
    while start < len(lines) and (not lines[start].strip() or lines[start][:1].isspace()):
        start += 1
    text = [line.strip() for line in lines[start:] if line.strip()]
    while len(text) > 1 and text[-1].startswith("[") and text[-1].endswith("]"):
        text.pop()
    if not text:  # only frames: say the last line there is
        return _cut(lines[-1].strip()) or None
    return _cut(" ".join(text))


def _cut(line: str) -> str:
    return line if len(line) <= LINE_LIMIT else line[: LINE_LIMIT - 1] + "…"
