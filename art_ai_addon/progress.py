"""Progress on stderr (CLI, batch, background Blender) and slicing work into farm chunks."""

from __future__ import annotations

import re
import sys
import time


class StderrProgress:
    """Prints 'art_ai: 42% message' lines, at most every few percent, so logs stay readable on farms."""

    def __init__(self, quiet: bool = False, prefix: str = ""):
        self.quiet = quiet
        self.prefix = prefix
        self._last = (-1, "")
        self._t = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.quiet:
            return
        pct = int(round(100 * fraction))
        now = time.monotonic()
        kind = re.sub(r"\d+", "#", message)  # "step 11/5000" and "step 12/5000" are the same kind of line
        if kind == self._last[1] and pct - self._last[0] < 5 and pct != 100 and now - self._t < 5:
            return
        self._last = (pct, kind)
        self._t = now
        print(f"art_ai: {self.prefix}{pct:3d}% {message}", file=sys.stderr, flush=True)

    def item(self, prefix: str) -> StderrProgress:
        return StderrProgress(self.quiet, prefix)


def chunk_slice(items: list, chunk) -> list:
    """The I-th of N contiguous, nearly equal slices of items (1-based I)."""
    if not chunk:
        return list(items)
    i, n = chunk
    k = len(items)
    return list(items[(i - 1) * k // n: i * k // n])
