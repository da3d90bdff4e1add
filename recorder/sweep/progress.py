"""Progress of long work through ``tqdm.auto``: a widget in Jupyter, a bar on a terminal, silent otherwise.

A sweep calls :meth:`Progress.add` once per run, so adding is a counter
and a clock read; the bar itself is redrawn at most five times a second.
tqdm is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["Progress", "shown_by_default"]

#: Seconds between two redraws of the bar.
REDRAW_S = 0.2


def shown_by_default() -> bool:
    """Whether progress is shown when not asked for (``progress=None``): on a terminal, or in a Jupyter kernel.

    stderr a terminal, or code run by an IPython kernel (Jupyter, where
    tqdm.auto shows a widget); not in a pipe, a file, a plain ``python``
    whose stderr is redirected, or a test.
    """
    if sys.stderr is not None and sys.stderr.isatty():
        return True
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # any IPython that does not look like this one: no kernel as far as we know
        return False


class Progress:
    """A progress bar (tqdm.auto) over ``total`` items: rate, ETA, and the failed and skipped counts.

    Skipped items (a pset already done) are taken off the total rather than
    counted as done, so that the rate and the ETA are those of the runs that
    run.

    :param total: how many items, or None when not known (a generator of psets).
    :param enabled: True shows the bar, False never; None as :func:`shown_by_default`.
    :param label: the bar's description.
    :param unit: what the items are ("runs", "stores", ...).
    """

    def __init__(self, total: int | None, enabled: bool | None, label: str, unit: str = "runs") -> None:
        self.enabled = shown_by_default() if enabled is None else bool(enabled)
        self.total, self.label = total, label
        self.counts = {"done": 0, "failed": 0, "interrupted": 0, "skipped": 0}
        self._next = 0.0  # when the bar may next be redrawn (time.monotonic)
        self._bar: Any = None
        if self.enabled:
            self._bar = _bar(total, label, unit)

    def add(self, status: str) -> None:
        """Count one item that ended with ``status`` (done, failed, interrupted, skipped)."""
        self.counts[status] = self.counts.get(status, 0) + 1
        if self._bar is not None:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + REDRAW_S
                self._draw()

    def add_many(self, status: str, count: int) -> None:
        """Count ``count`` items that ended with ``status`` (a vectorised chunk's runs)."""
        self.counts[status] = self.counts.get(status, 0) + count
        if self._bar is not None:
            self._next = time.monotonic() + REDRAW_S
            self._draw()

    def _draw(self) -> None:
        bar, counts = self._bar, self.counts
        skipped = counts["skipped"]
        ran = sum(counts.values()) - skipped
        if self.total is not None and bar.total != self.total - skipped:
            bar.total = self.total - skipped
        bar.set_postfix_str(", ".join(f"{n} {s}" for s, n in counts.items() if n and s != "done"), refresh=False)
        if ran > bar.n:
            bar.update(ran - bar.n)
        else:
            bar.refresh()

    def close(self) -> None:
        """Draw the final counts and end the bar (it stays on screen)."""
        if self._bar is not None:
            self._draw()
            self._bar.close()
            self._bar = None


def _bar(total: int | None, label: str, unit: str) -> Any:
    """A tqdm.auto bar on stderr, redrawn whenever :class:`Progress` updates it (it throttles itself)."""
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        # No monitor thread: it only tunes miniters, which is 0 here, and a thread would be
        # copied by every fork of a process pool.
        monitor_interval = 0

    return Bar(
        total=total,
        desc=label,
        unit=f" {unit}",
        file=sys.stderr,
        mininterval=0,
        miniters=0,
        dynamic_ncols=True,
        leave=True,
    )
