"""Image quilting (Efros & Freeman 2001) on a torus: block search with OpenCV, minimum-error boundary cuts.

The canvas can wrap around (tileable output) or not. Each block's overlap with what is already on the
canvas is matched against every position of the source with one `cv2.matchTemplate` call (masked SSD),
one of the near-best candidates is taken at random (seeded), and a dynamic-programming cut along each
overlapping side decides which pixels the block replaces.
"""

from __future__ import annotations

import numpy as np

_BIG = np.float32(3.0e38)


def _cv2():
    import cv2

    return cv2


def default_block(h: int, w: int) -> int:
    """A block a quarter of the exemplar's short side: big enough for structure, small enough to vary."""
    return int(np.clip(min(h, w) // 4, 8, 64))


def min_cut_columns(err: np.ndarray) -> np.ndarray:
    """Per row, the first column that belongs to the new block along a min-cost top-to-bottom path.

    `err` (rows, cols) or a batch (n, rows, cols): squared difference in the overlap; the old content is
    on the left (low columns). Returns (rows,) or (n, rows).
    """
    single = err.ndim == 2
    e = err[None] if single else err
    n, rows, cols = e.shape
    c = np.full((rows, n, cols + 2), np.inf)
    c[:, :, 1:-1] = e.transpose(1, 0, 2)
    for r in range(1, rows):
        p = c[r - 1]
        c[r, :, 1:-1] += np.minimum(np.minimum(p[:, :-2], p[:, 1:-1]), p[:, 2:])
    path = np.empty((n, rows), np.int64)
    cl = c.tolist()  # the backtrack is a short scalar walk: plain Python beats numpy's per-call overhead
    for k in range(n):
        last = cl[-1][k]
        cur = min(range(1, cols + 1), key=last.__getitem__)
        path[k, -1] = cur - 1
        for r in range(rows - 1, 0, -1):
            row = cl[r - 1][k]
            a, b, d = row[cur - 1], row[cur], row[cur + 1]
            if a < b and a <= d:
                cur -= 1
            elif d < b:
                cur += 1
            path[k, r - 1] = cur - 1
    return path[0] if single else path


class Quilter:
    """A canvas (H, W, C) with a `filled` mask; `place` puts one block there, matched and cut."""

    def __init__(self, source: np.ndarray, canvas: np.ndarray, filled: np.ndarray, *, wrap: bool,
                 overlap: int, rng: np.random.Generator, tolerance: float = 0.1):
        self.src = np.ascontiguousarray(source, dtype=np.float32)
        self.canvas = canvas
        self.filled = filled
        self.wrap = wrap
        self.overlap = int(overlap)
        self.rng = rng
        self.tol = float(tolerance)
        # source position of the block that currently owns each canvas pixel (to forbid verbatim continuation)
        self.owner = np.full(canvas.shape[:2] + (2,), -10_000, np.int32)
        self._rows = np.arange(max(canvas.shape[:2]) + 1, dtype=np.int32)
        self._cols = self._rows

    def _index(self, y: int, x: int, bh: int, bw: int):
        """The block's pixels: plain slices (views) unless it crosses the torus' edge."""
        H, W = self.canvas.shape[:2]
        if y + bh <= H and x + bw <= W:
            return slice(y, y + bh), slice(x, x + bw)
        rows = np.arange(y, y + bh)
        cols = np.arange(x, x + bw)
        if self.wrap:
            rows %= H
            cols %= W
        return np.ix_(rows, cols)

    def place(self, y: int, x: int, bh: int, bw: int, exclude=None, draws=None) -> tuple[int, int]:
        """Fill the block at canvas (y, x) of size (bh, bw); returns the chosen source position.

        Reads and writes the block's own pixels only, so blocks that do not overlap may be placed concurrently
        (OpenCV and numpy release the GIL for the heavy parts). `draws`: the block's own two uniform numbers in
        [0, 1) (else drawn from the quilter's generator), so the result does not depend on the placing order.
        """
        cv2 = _cv2()
        u1, u2 = draws if draws is not None else self.rng.random(2)
        sh, sw = self.src.shape[:2]
        bh = min(bh, sh)
        bw = min(bw, sw)
        idx = self._index(y, x, bh, bw)
        known = self.filled[idx].copy()
        if not known.any():
            sy = min(int(u1 * (sh - bh + 1)), sh - bh)
            sx = min(int(u2 * (sw - bw + 1)), sw - bw)
            self._paste(idx, sy, sx, bh, bw, np.ones((bh, bw), np.float32), y, x)
            return sy, sx
        templ = np.ascontiguousarray(self.canvas[idx])
        mask = known.astype(np.float32)
        if known.all():
            score = cv2.matchTemplate(self.src, templ, cv2.TM_SQDIFF)
        else:
            score = cv2.matchTemplate(self.src, templ * mask[:, :, None], cv2.TM_SQDIFF, mask=mask)
        np.fmin(score, _BIG, out=score)  # NaN and inf (empty masked windows) lose
        self._forbid_continuation(score, idx, known, y, x)
        if exclude is not None:
            score[exclude[0]:exclude[1], exclude[2]:exclude[3]] = _BIG
        best = float(score.min())
        thresh = best * (1.0 + self.tol) + 1e-6 * mask.sum()
        cand = np.flatnonzero(score.ravel() <= thresh)
        if cand.size > 64:  # keep the field of near-best ones bounded but random
            cand = cand[np.argsort(score.ravel()[cand])[:64]]
        pick = int(cand[min(int(u1 * cand.size), cand.size - 1)])
        sy, sx = divmod(pick, score.shape[1])
        block = self.src[sy:sy + bh, sx:sx + bw]
        new = self._cut_mask(block, idx, known)
        self._paste(idx, sy, sx, bh, bw, new, y, x)
        return sy, sx

    def _forbid_continuation(self, score, idx, known, y, x):
        """No candidate may continue a neighbour's source verbatim (that would copy large regions)."""
        bh, bw = known.shape
        own = self.owner[idx]
        # for each owning source block, the source position that would make this block its seamless continuation:
        # the owner's source position minus the pixel's offset in this block (one value per neighbouring block)
        key = (own[:, :, 0] - self._rows[:bh, None]).astype(np.int64) * 65536 + (own[:, :, 1] - self._cols[None, :bw])
        key = np.unique(key[known])
        if key.size == 0:
            return
        pos = np.stack([np.floor_divide(key + 32768, 65536), (key + 32768) % 65536 - 32768], 1)
        r = 2
        for py, px in pos:
            y0, y1 = max(py - r, 0), min(py + r + 1, score.shape[0])
            x0, x1 = max(px - r, 0), min(px + r + 1, score.shape[1])
            if y0 < y1 and x0 < x1:
                score[y0:y1, x0:x1] = _BIG

    def _cut_mask(self, block, idx, known) -> np.ndarray:
        """1 where the new block wins; cuts along the sides whose overlap strip is already filled."""
        bh, bw = known.shape
        o = min(self.overlap, bh // 2, bw // 2)
        old = self.canvas[idx]
        err = ((block - old) ** 2).sum(axis=2)
        new = np.ones((bh, bw), np.float32)
        if o >= 1:
            # vertical cuts (left, right) share one DP, horizontal ones (top, bottom) another
            for axis in (1, 0):
                e = err if axis == 1 else err.T
                kn = known if axis == 1 else known.T
                strips, names = [], []
                if kn[:, :o].all():
                    strips.append(e[:, :o])
                    names.append(0)
                if kn[:, -o:].all():
                    strips.append(e[:, -o:][:, ::-1])
                    names.append(1)
                if not strips:
                    continue
                paths = min_cut_columns(np.stack(strips))
                length = e.shape[1]
                ar = np.arange(length)[None, :]
                for which, p in zip(names, paths, strict=True):
                    old = ar < p[:, None] if which == 0 else ar >= (length - p)[:, None]
                    if axis == 0:
                        old = old.T
                    new[old] = 0
        # soften the cut by one pixel so it does not show as a hard line
        cv2 = _cv2()
        soft = cv2.blur(new, (3, 3), borderType=cv2.BORDER_REPLICATE)
        soft = np.where(known, soft, 1.0).astype(np.float32)
        return soft

    def _paste(self, idx, sy, sx, bh, bw, new, y, x):
        block = self.src[sy:sy + bh, sx:sx + bw]
        region = self.canvas[idx]
        m = new[:, :, None]
        self.canvas[idx] = region * (1.0 - m) + block * m
        self.filled[idx] = True
        win = new >= 0.5
        own = self.owner[idx]
        rr, cc = np.nonzero(win)
        own[rr, cc, 0] = sy + rr
        own[rr, cc, 1] = sx + cc
        self.owner[idx] = own


def grid(total: int, step: int, wrap: bool) -> list[tuple[int, int]]:
    """(start, length-without-overlap) of each block along one axis; on a torus the steps sum to `total`."""
    if wrap:
        n = max(1, int(np.ceil(total / step)))
        starts = [(i * total) // n for i in range(n + 1)]
        return [(starts[i], starts[i + 1] - starts[i]) for i in range(n)]
    n = max(1, int(np.ceil(total / step)))
    return [(i * step, step) for i in range(n)]


def _intervals_meet(spans: list[tuple[int, int]], total: int, wrap: bool) -> np.ndarray:
    """(n, n) bool: do the half-open pixel spans [a, a + length) meet (around the torus when `wrap`)?"""
    n = len(spans)
    a = np.array([s for s, _ in spans])[:, None]
    la = np.array([length for _, length in spans])[:, None]
    b, lb = a.T, la.T
    if not wrap:
        return (a < b + lb) & (b < a + la)
    d = (b - a) % total  # b's start seen from a's start, going forward around the torus
    return (d < la) | ((total - d) % total < lb) | (np.eye(n, dtype=bool))


def schedule(rows, cols, bh: list[int], bw: list[int], H: int, W: int, wrap: bool) -> list[list[tuple[int, int]]]:
    """The blocks (i, j) in waves: every block comes after each block it overlaps that precedes it in the order
    (2i + j, i) -- rows offset by two blocks, so a row may start once the row above is two blocks ahead.

    Blocks of one wave never overlap, so they can be placed at the same time, and what each block sees is the same
    whatever the number of threads. Without wrap the order gives each block the same filled neighbours as raster
    order (left, top-left, top, top-right).
    """
    row_meet = _intervals_meet([(y, h) for (y, _), h in zip(rows, bh, strict=True)], H, wrap)
    col_meet = _intervals_meet([(x, w) for (x, _), w in zip(cols, bw, strict=True)], W, wrap)
    order = sorted(((i, j) for i in range(len(rows)) for j in range(len(cols))), key=lambda b: (2 * b[0] + b[1], b[0]))
    rank = {b: k for k, b in enumerate(order)}
    near_rows = [np.flatnonzero(r).tolist() for r in row_meet]
    near_cols = [np.flatnonzero(c).tolist() for c in col_meet]
    wave: dict[tuple[int, int], int] = {}
    for b in order:
        i, j = b
        before = [wave[(p, q)] for p in near_rows[i] for q in near_cols[j] if rank[(p, q)] < rank[b]]
        wave[b] = 1 + max(before, default=-1)
    waves: list[list[tuple[int, int]]] = [[] for _ in range(max(wave.values()) + 1)]
    for b in order:
        waves[wave[b]].append(b)
    return waves


def _thread_count(threads: int) -> int:
    if threads and threads > 0:
        return int(threads)
    import os

    from ..core import get_threads

    return get_threads() or max(1, min(os.cpu_count() or 1, 8))


def quilt(source: np.ndarray, size: tuple[int, int], *, block: int, overlap: int, wrap: bool, seed: int,
          tolerance: float = 0.1, rep=None, threads: int = 0) -> np.ndarray:
    """Synthesize (H, W, C) from `source` by quilting blocks (on a torus if `wrap`).

    Blocks are placed in waves of non-overlapping blocks (see `schedule`), a wave's blocks on `threads` threads
    (0: the add-on's CPU Threads setting, else the cores, up to 8); each block draws from its own random generator
    drawn up front from `seed`, so the result is the same whatever the thread count.
    """
    H, W = int(size[0]), int(size[1])
    sh, sw = source.shape[:2]
    block = int(max(4, min(block, sh, sw)))
    overlap = int(max(1, min(overlap, block // 2)))
    if wrap:
        # blocks must not overlap themselves around the torus
        block = int(max(4, min(block, max(H, 2 * overlap + 2), max(W, 2 * overlap + 2))))
    step = block - overlap
    rows = grid(H, step, wrap)
    cols = grid(W, step, wrap)
    ch = rows[-1][0] + rows[-1][1] + (0 if wrap else overlap)
    cw = cols[-1][0] + cols[-1][1] + (0 if wrap else overlap)
    C = source.shape[2]
    canvas = np.zeros((ch, cw, C), np.float32)
    filled = np.zeros((ch, cw), bool)
    q = Quilter(source, canvas, filled, wrap=wrap, overlap=overlap, rng=np.random.default_rng(seed),
                tolerance=tolerance)
    bh = [min(sy + overlap, sh) for _, sy in rows]
    bw = [min(sx + overlap, sw) for _, sx in cols]
    waves = schedule(rows, cols, bh, bw, ch, cw, wrap)
    total = len(rows) * len(cols)
    done = 0
    reported = 0.0
    check = getattr(rep, "check", None)

    # every block's random numbers drawn up front, so they do not depend on the order blocks are placed in
    draws = np.random.default_rng(seed).random((len(rows), len(cols), 2))

    def place(b):
        i, j = b
        q.place(rows[i][0], cols[j][0], bh[i], bw[j], draws=draws[i, j])

    n_threads = min(_thread_count(threads), max(len(w) for w in waves))
    pool = None
    if n_threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="art_ai_quilt")
    try:
        for wave in waves:
            if pool is None or len(wave) == 1:
                for b in wave:
                    place(b)
                    done += 1
                    if check is not None:
                        check()  # cancel still answers within a wave
            else:
                futures = [pool.submit(place, b) for b in wave]
                for f in futures:
                    f.result()
                    done += 1
            if rep is not None and (done / total - reported >= 0.01 or done == total):  # at most ~100 reports
                reported = done / total
                rep(reported, f"quilting block {done}/{total}")
            elif check is not None:
                check()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return canvas[:H, :W]
