"""A griffe extension that lets the reST docstrings of ``recorder`` render in the Markdown reference.

The docstrings are written for Sphinx. Two habits of theirs do not survive griffe's ``sphinx``
parser and Markdown, so this extension rewrites each docstring's text (in the docs build only,
never the code) before it is parsed:

- a field naming several parameters (``:param a, b: as for :meth:`sweep`.``), which griffe
  refuses with a warning (an error under ``mkdocs build --strict``), becomes one field per name;
- a cross-reference role (``:meth:`sweep```, ``:class:`~recorder.Recorder```) becomes a code span,
  rather than showing its role name.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

#: ``:param a, b, c: text`` with its indented continuation lines.
MULTI_PARAM = re.compile(
    r"^(?P<indent>[ \t]*):param (?P<names>\w+(?:,[ \t]*\w+)+):(?P<text>.*(?:\n(?P=indent)[ \t]+\S.*)*)",
    re.MULTILINE,
)
#: ``:role:`target``` and ``:role:`~dotted.target```, the Python-domain roles the docstrings use.
ROLE = re.compile(r":(?:py:)?(?:meth|func|class|attr|mod|exc|data|obj|const):`~?([^`]+)`")


def _split(match: re.Match[str]) -> str:
    """Return one ``:param name: text`` field per name of a multi-name field."""
    indent = match["indent"]
    text = " ".join(line.strip() for line in match["text"].splitlines() if line.strip())
    return "\n".join(f"{indent}:param {name.strip()}: {text}" for name in match["names"].split(","))


def rewrite(text: str) -> str:
    """Return a docstring's text with multi-name fields split and reST roles turned into code spans."""
    return ROLE.sub(r"`\1`", MULTI_PARAM.sub(_split, text))


class RestDocstrings(griffe.Extension):
    """Rewrites every docstring with :func:`rewrite` as griffe loads it."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring, if it has one, before anything parses it."""
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
