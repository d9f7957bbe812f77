"""Progress on stderr (CLI, batch, background Blender) and slicing work into farm chunks."""

from __future__ import annotations

import contextlib
import os
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


class _PipeSafe:
    """stdout that survives its reader going away (`... | head -1`): the output paths after that are dropped,
    the work goes on, and nothing is printed about it (as `cat | head` does). The file descriptor is pointed at the
    null device, so the flush at exit does not fail either."""

    def __init__(self, stream):
        self._stream = stream
        self._gone = False

    def write(self, text):
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self._gone = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def pipe_safe_stdout():
    """sys.stdout guarded by _PipeSafe for the duration (restored after, for callers in the same process)."""
    old = sys.stdout
    sys.stdout = _PipeSafe(old) if old is not None else old
    try:
        yield
    finally:
        sys.stdout = old
