"""A one-line progress display for long work, shown on a terminal only."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """A one-line progress display on stderr, redrawn at most five times a second."""

    def __init__(self, total: int | None, enabled: bool | None, label: str) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total, self.label = total, label
        self.counts = {"done": 0, "failed": 0, "interrupted": 0, "skipped": 0}
        self._start = self._last = time.monotonic()

    def add(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        if self.enabled:
            now = time.monotonic()
            if now - self._last >= 0.2:
                self._last = now
                self._draw(now, end="")

    def _draw(self, now: float, end: str) -> None:
        seen = sum(self.counts.values())
        ran = seen - self.counts["skipped"]
        rate = ran / max(now - self._start, 1e-9)
        total = f"/{self.total}" if self.total is not None else ""
        eta = ""
        if self.total and rate > 0 and seen < self.total:
            eta = f", ETA {_duration((self.total - seen) / rate)}"
        parts = ", ".join(f"{n} {s}" for s, n in self.counts.items() if n and s != "done")
        sys.stderr.write(
            f"\r{self.label}: {seen}{total} psets, {self.counts['done']} done"
            f"{', ' + parts if parts else ''} [{rate:.1f} runs/s{eta}]\x1b[K{end}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic(), end="\n")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
