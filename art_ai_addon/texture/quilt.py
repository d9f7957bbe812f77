"""Image quilting (Efros & Freeman 2001) on a torus: block search with OpenCV, minimum-error boundary cuts.

The canvas can wrap around (tileable output) or not. Each block's overlap with what is already on the
canvas is matched against every position of the source at once (a masked SSD through the source's spectrum),
one of the near-best candidates is taken at random (seeded), and a dynamic-programming cut along each
overlapping side decides which pixels the block replaces. Blocks go in waves of blocks that do not overlap;
helper processes may place parts of each wave on a canvas shared with them (see `quilt`).
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
    w = cols + 2
    # cumulative cost, all strips side by side in one row with an infinite column either side of each; a cell
    # (strip k, column j) is at index k * w + j of a row's middle part `flat[r, 1:-1]`
    c = np.full((rows, n, w), np.inf)
    c[:, :, 1:-1] = e.transpose(1, 0, 2)
    flat = c.reshape(rows, -1)
    left, mid, right = flat[:, :-2], flat[:, 1:-1], flat[:, 2:]
    low = np.empty(n * w - 2)
    for lo, ri, mi, nxt in zip(left[:-1], right[:-1], mid[:-1], mid[1:], strict=True):
        np.minimum(lo, ri, out=low)
        np.minimum(low, mi, out=low)
        nxt += low
    base = np.arange(n) * w
    cur = np.argmin(c[-1, :, 1:-1], axis=1) + base
    path = [cur]
    if rows > 1:
        # each cell's index in the row above: staying wins ties, then the left neighbour
        a, b, d = left[:-1], mid[:-1], right[:-1]
        go_left = a < b
        go_left &= a <= d
        go_right = d < b
        go_right &= ~go_left
        up = go_right.view(np.int8) - go_left.view(np.int8) + np.arange(n * w - 2)
        for step in up[::-1]:
            cur = step.take(cur)
            path.append(cur)
    path = np.stack(path[::-1], axis=1) - base[:, None]
    return path[0] if single else path


def owner_is_wide(sh: int, sw: int) -> bool:
    """Whether a source position needs 64 bits when packed as row * 2^15 + column (see `Quilter.owner`)."""
    return sh >= (1 << 16) or sw >= (1 << 14)


class Quilter:
    """A canvas (H, W, C) with a `filled` mask, filled with blocks of one size (bh, bw) by `match_many` and
    `paste_many`.

    A block's known pixels are matched against every source position by a masked sum of squared differences,
    sum M (S - T)^2 = corr(S^2, M) - 2 corr(S, M T) + sum M T^2: the first term depends on the mask only (kept
    per mask), the second is one product with the source's spectrum (computed once) and one inverse DFT. Source
    and template are taken about the source's mean, which keeps the float32 DFT's error small. Everything else
    (the choice among the near-best, the seam cuts, the paste) runs on all the blocks of a call at once.
    """

    def __init__(self, source: np.ndarray, canvas: np.ndarray, filled: np.ndarray, *, block: tuple[int, int],
                 wrap: bool, overlap: int, tolerance: float = 0.1, owner: np.ndarray | None = None):
        cv2 = _cv2()
        self.src = np.ascontiguousarray(source, dtype=np.float32)
        self.canvas = canvas
        self.filled = filled
        self.wrap = wrap
        self.tol = float(tolerance)
        sh, sw, nc = self.src.shape
        self.bh, self.bw = bh, bw = int(block[0]), int(block[1])
        self.o = min(int(overlap), bh // 2, bw // 2)  # the width of the seam cuts
        self.mean = self.src.reshape(-1, nc).mean(axis=0, dtype=np.float64).astype(np.float32)
        self.dft_shape = (cv2.getOptimalDFTSize(sh), cv2.getOptimalDFTSize(sw))
        centred = self.src - self.mean
        self.spectra = []
        for ch in range(nc):
            pad = np.zeros(self.dft_shape, np.float32)
            pad[:sh, :sw] = centred[:, :, ch]
            self.spectra.append(cv2.dft(pad))
        energy = (centred.astype(np.float64) ** 2).sum(axis=2)  # sum over channels of (S - mean)^2
        self._integral = np.zeros((sh + 1, sw + 1))
        self._integral[1:, 1:] = energy.cumsum(axis=0).cumsum(axis=1)
        self._mask_terms: dict = {}
        # source position of the block that currently owns each canvas pixel (to forbid verbatim continuation),
        # packed as row * _K + column
        wide = owner_is_wide(sh, sw)
        self._K = 1 << (32 if wide else 15)
        self.owner = np.zeros(canvas.shape[:2], np.int64 if wide else np.int32) if owner is None else owner
        # a pixel's offset in the block, packed the same way
        self._rc = (np.arange(bh)[:, None] * self._K + np.arange(bw)[None, :]).astype(self.owner.dtype)

    def _mask_term(self, known: np.ndarray, key: bytes) -> np.ndarray:
        """corr(sum_c (S_c - mean_c)^2, M) at every source position, per mask: exact box sums of the energy's
        integral image over the mask's rectangles (kept for the next block with the same mask, `key`)."""
        term = self._mask_terms.get(key)
        if term is not None:
            return term
        bh, bw = known.shape
        sh, sw = self.src.shape[:2]
        ph, pw = sh - bh + 1, sw - bw + 1
        sums = self._integral
        total = np.zeros((ph, pw))
        # the mask as rectangles: runs of rows with the same runs of columns
        edges = np.diff(known.astype(np.int8), axis=1, prepend=0, append=0)
        top = 0
        for r in range(1, bh + 1):
            if r < bh and np.array_equal(edges[r], edges[top]):
                continue
            for c0, c1 in zip(np.flatnonzero(edges[top] == 1), np.flatnonzero(edges[top] == -1), strict=True):
                total += sums[r:r + ph, c1:c1 + pw] - sums[top:top + ph, c1:c1 + pw]
                total -= sums[r:r + ph, c0:c0 + pw] - sums[top:top + ph, c0:c0 + pw]
            top = r
        term = self._mask_terms[key] = total.astype(np.float32)
        return term

    def _scores(self, old: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, ph, pw) masked SSD of each block's known pixels at every source position, less its sum M T^2
        (returned apart, (n,))."""
        cv2 = _cv2()
        n = len(old)
        bh, bw = self.bh, self.bw
        sh, sw = self.src.shape[:2]
        ph, pw = sh - bh + 1, sw - bw + 1
        templ = old - self.mean
        templ *= known[..., None]
        t2 = np.square(templ).reshape(n, -1).sum(axis=1, dtype=np.float64)
        keys = np.packbits(known.reshape(n, -1), axis=1)
        terms = [self._mask_term(k, key.tobytes()) for k, key in zip(known, keys, strict=True)]
        score = np.empty((n, ph, pw), np.float32)
        pad = np.zeros(self.dft_shape, np.float32)  # only its top-left (bh, bw) is ever written
        inverse = cv2.DFT_INVERSE | cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT
        dft, mul, scale_add = cv2.dft, cv2.mulSpectrums, cv2.scaleAdd
        if len(self.spectra) == 1:
            spectrum, templ = self.spectra[0], templ[..., 0]
            for i in range(n):
                pad[:bh, :bw] = templ[i]
                prod = mul(spectrum, dft(pad, nonzeroRows=bh), 0, conjB=True)
                scale_add(dft(prod, flags=inverse, nonzeroRows=ph)[:ph, :pw], -2.0, terms[i], dst=score[i])
            return score, t2
        for i in range(n):
            acc = None
            for ch, spectrum in enumerate(self.spectra):
                pad[:bh, :bw] = templ[i, :, :, ch]
                prod = mul(spectrum, dft(pad, nonzeroRows=bh), 0, conjB=True)
                if acc is None:
                    acc = prod
                else:
                    acc += prod
            scale_add(dft(acc, flags=inverse, nonzeroRows=ph)[:ph, :pw], -2.0, terms[i], dst=score[i])
        return score, t2

    def _forbid_continuation(self, score: np.ndarray, own: np.ndarray, known: np.ndarray) -> None:
        """No candidate may continue a neighbour's source verbatim (that would copy large regions).

        For each block and each source block owning some of its known pixels, the source position that would make
        it that block's seamless continuation (the owner's source position less the pixel's offset in this block)
        and its neighbours within 2 px are excluded."""
        n, ph, pw = score.shape
        key = (own - self._rc).astype(np.int64)
        key += (np.arange(n, dtype=np.int64)[:, None, None] << 50) + (1 << 49)
        key = key[known]
        if key.size == 0:
            return
        key = np.unique(np.concatenate([key[:1], key[np.flatnonzero(np.diff(key)) + 1]]))  # owners come in runs
        which = key >> 50
        key = (key & ((1 << 50) - 1)) - (1 << 49)
        py = (key + self._K // 2) // self._K
        px = key - py * self._K
        r = np.arange(-2, 3)
        yy = (py[:, None, None] + r[None, :, None]) + np.zeros(5, np.int64)
        xx = (px[:, None, None] + r[None, None, :]) + np.zeros((5, 1), np.int64)
        ok = (yy >= 0) & (yy < ph) & (xx >= 0) & (xx < pw)
        score[np.broadcast_to(which[:, None, None], ok.shape)[ok], yy[ok], xx[ok]] = _BIG

    def _choose(self, score: np.ndarray, t2: np.ndarray, known: np.ndarray, u1: np.ndarray) -> np.ndarray:
        """Per block, the flat source position picked by `u1` among the near-best (within the tolerance; the 64
        best if there are more, in order of score)."""
        n = len(score)
        flat = score.reshape(n, -1)
        low = flat.min(axis=1).astype(np.float64)
        best = np.maximum(low + t2, 0.0)
        thresh = best * (1.0 + self.tol) + 1e-6 * known.reshape(n, -1).sum(axis=1) - t2
        good = flat <= np.maximum(thresh, low).astype(np.float32)[:, None]
        count = good.sum(axis=1)
        kth = np.minimum((u1 * np.minimum(count, 64)).astype(np.int64), np.minimum(count, 64) - 1)
        # the kth candidate in raster order (all blocks' candidates listed in order, block by block)
        pick = np.flatnonzero(good)[np.cumsum(count) - count + kth] - np.arange(n) * flat.shape[1]
        for i in np.flatnonzero(count > 64):  # keep the field of near-best ones bounded but random
            cand = np.flatnonzero(good[i])
            pick[i] = cand[np.argsort(flat[i, cand], kind="stable")[kth[i]]]
        return pick

    def match_many(self, ys, xs, draws: np.ndarray) -> dict:
        """Choose the source blocks for the canvas blocks at (ys, xs), which must not overlap each other; returns
        what `paste_many` needs. `draws` (n, 2): each block's own uniform numbers in [0, 1), so the result does
        not depend on how the blocks are grouped into calls.

        Reads the blocks' own pixels only and writes nothing, so calls for the blocks of one wave may run at the
        same time (in processes sharing the canvas).
        """
        bh, bw = self.bh, self.bw
        sh, sw, nc = self.src.shape
        n = len(ys)
        where = [self._index(y, x) for y, x in zip(ys.tolist(), xs.tolist(), strict=True)]
        known = np.empty((n, bh, bw), bool)
        old = np.empty((n, bh, bw, nc), np.float32)
        own = np.empty((n, bh, bw), self.owner.dtype)
        for i, idx in enumerate(where):
            known[i] = self.filled[idx]
            old[i] = self.canvas[idx]
            own[i] = self.owner[idx]
        some = known.reshape(n, -1).any(axis=1)
        # blocks with nothing known yet: anywhere, at random
        sy = np.minimum((draws[:, 0] * (sh - bh + 1)).astype(np.int64), sh - bh)
        sx = np.minimum((draws[:, 1] * (sw - bw + 1)).astype(np.int64), sw - bw)
        if some.any():
            m = slice(None) if some.all() else np.flatnonzero(some)
            score, t2 = self._scores(old[m], known[m])
            self._forbid_continuation(score, own[m], known[m])
            sy[m], sx[m] = np.divmod(self._choose(score, t2, known[m], draws[m, 0]), sw - bw + 1)
        patch = np.empty_like(old)
        for i, (y, x) in enumerate(zip(sy.tolist(), sx.tolist(), strict=True)):
            patch[i] = self.src[y:y + bh, x:x + bw]
        diff = patch - old
        err = np.square(diff[..., 0]) if nc == 1 else np.einsum("nijc,nijc->nij", diff, diff)
        return {"where": where, "known": known, "old": old, "own": own, "patch": patch, "err": err, "sy": sy,
                "sx": sx}

    def paste_many(self, chosen: dict) -> None:
        """Cut and paste the blocks `match_many` chose: every block's seam cuts in one dynamic-programming pass.
        Writes the blocks' own pixels only (like `match_many`, it may run at the same time for other blocks of
        the wave)."""
        cv2 = _cv2()
        bh, bw = self.bh, self.bw
        where, known, old, own, patch, err, sy, sx = (
            chosen[k] for k in ("where", "known", "old", "own", "patch", "err", "sy", "sx"))
        n = len(where)
        new = self._cut(err, known)
        # soften the cut by one pixel so it does not show as a hard line (each block a channel of one image)
        soft = np.empty_like(new)
        for k in range(0, n, 512):
            part = np.ascontiguousarray(new[k:k + 512].transpose(1, 2, 0))
            blurred = cv2.blur(part, (3, 3), borderType=cv2.BORDER_REPLICATE).reshape(bh, bw, -1)
            soft[k:k + 512] = blurred.transpose(2, 0, 1)
        mix = np.where(known, soft, np.float32(1.0))
        w = mix[..., None]
        out = old * (1.0 - w) + patch * w
        mine = np.where(mix >= 0.5, self._rc + (sy * self._K + sx).astype(self.owner.dtype)[:, None, None], own)
        for i, idx in enumerate(where):
            self.canvas[idx] = out[i]
            self.filled[idx] = True
            self.owner[idx] = mine[i]

    def _index(self, y: int, x: int):
        """The block's pixels: plain slices (views) unless it crosses the torus' edge."""
        H, W = self.canvas.shape[:2]
        if y + self.bh <= H and x + self.bw <= W:
            return slice(y, y + self.bh), slice(x, x + self.bw)
        return np.ix_(np.arange(y, y + self.bh) % H, np.arange(x, x + self.bw) % W)

    def _cut(self, err: np.ndarray, known: np.ndarray) -> np.ndarray:
        """(n, bh, bw) 1 where the new block wins: min-error cuts along each side whose overlap strip is known,
        the old content outside them; every block's cuts in one dynamic-programming pass. `err`: (n, bh, bw) the
        squared difference between new and old."""
        n, bh, bw = known.shape
        new = np.ones((n, bh, bw), np.float32)
        o = self.o
        if o < 1:
            return new
        errT, knownT, newT = err.transpose(0, 2, 1), known.transpose(0, 2, 1), new.transpose(0, 2, 1)
        # each side as a strip with the old content at its low columns: (error, known, the mask's matching view)
        sides = [(err[:, :, :o], known[:, :, :o], new[:, :, :o]),
                 (err[:, :, ::-1][:, :, :o], known[:, :, -o:], new[:, :, ::-1][:, :, :o]),
                 (errT[:, :, :o], knownT[:, :, :o], newT[:, :, :o]),
                 (errT[:, :, ::-1][:, :, :o], knownT[:, :, -o:], newT[:, :, ::-1][:, :, :o])]
        picked = [np.flatnonzero(k.reshape(n, -1).all(axis=1)) for _, k, _ in sides]
        by_len: dict = {}
        for (e, _, _), p in zip(sides, picked, strict=True):
            if p.size:
                by_len.setdefault(e.shape[1], []).append(e[p])
        cuts = {length: min_cut_columns(np.concatenate(group)) for length, group in by_len.items()}
        used = dict.fromkeys(cuts, 0)
        columns = np.arange(o)
        for (e, _, view), p in zip(sides, picked, strict=True):
            if not p.size:
                continue
            length = e.shape[1]
            path = cuts[length][used[length]:used[length] + p.size]
            used[length] += p.size
            view[p] = view[p] * (columns >= path[:, :, None])
        return new


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
    whatever the number of workers. Without wrap the order gives each block the same filled neighbours as raster
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
    """Workers: `threads` if given, else the cores this process may use (up to 8), no more than the add-on's CPU
    Threads setting if it is set."""
    if threads and threads > 0:
        return int(threads)
    import os

    from ..core import get_threads

    cores = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))
    return min(get_threads(), cores) if get_threads() else cores


# After this many waves of 8+ blocks shared with helpers, sharing stops if it has not been faster than this
# process alone.
GUARD_WAVES = 8

# A helper process pays for itself from about this much work (blocks x source pixels: ~0.3 s on one core);
# below it the synthesis is done before a helper could start.
HELPER_MIN_WORK = 5e7

# The helper's first lines: read the paths, load this file as a module (not the add-on package: only numpy and
# OpenCV are imported) and serve.
_BOOT = """import pickle, sys
paths, here = pickle.load(sys.stdin.buffer)
sys.path[:0] = [p for p in paths if p not in sys.path]
import importlib.util
spec = importlib.util.spec_from_file_location("art_ai_quilt_helper", here)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._serve(sys.stdin.buffer, sys.stdout.buffer)
"""


def _serve(inp, out) -> None:
    """The helper process: for each job, attach its shared canvas and place the blocks of each wave part it is
    sent; between jobs it holds nothing (a None part ends a job, a None job ends the helper)."""
    import pickle
    import time
    import traceback

    def say(msg) -> None:
        pickle.dump(msg, out)
        out.flush()

    try:
        _cv2().setNumThreads(1)
        while (job := pickle.load(inp)) is not None:
            canvas, filled, owner, source = _attach(job["file"], job["shapes"], "r+")
            q = Quilter(source, canvas, filled, owner=owner, **job["options"])
            say("ready")
            while (part := pickle.load(inp)) is not None:
                start = time.perf_counter()
                ys, xs, draws = part  # plain lists: they pickle in microseconds, arrays in tens
                q.paste_many(q.match_many(np.array(ys), np.array(xs), np.array(draws).reshape(-1, 2)))
                say(("done", time.perf_counter() - start))
            q = canvas = filled = owner = source = None
            say("free")
    except EOFError:
        return
    except BaseException:
        say(("error", traceback.format_exc()))


def _attach(path: str, shapes: list, mode: str) -> list[np.ndarray]:
    """The canvas, filled, owner and source arrays, one after the other in one file (mapped, shared between
    processes): plain arrays on the mapping (np.memmap's own indexing costs microseconds a call)."""
    arrays, offset = [], 0
    for dtype, shape in shapes:
        arrays.append(np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=tuple(shape)).view(np.ndarray))
        offset += -(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64
    return arrays


def _shared_size(shapes: list) -> int:
    return sum(-(-int(np.prod(shape)) * np.dtype(dtype).itemsize // 64) * 64 for dtype, shape in shapes)


class _Helper:
    """A helper process (a fresh interpreter: `python -c`, never a fork of this long-lived one, which may hold
    torch and threads) that places parts of waves on a shared canvas, job after job. Starts in the background;
    `ready()` says when it can take work. Any failure just retires it: its part is then placed here."""

    def __init__(self):
        import os
        import pickle
        import queue
        import subprocess
        import sys
        import threading

        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self.proc = subprocess.Popen([sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, creationflags=flags)
        self.replies: queue.Queue = queue.Queue()
        self.state = "free"
        self.error = ""
        self.idle_since = 0.0
        self.sent_at = self.done_at = self.took = 0.0
        self.speed = 0.0  # blocks per second on its parts (0: not known yet)
        try:
            pickle.dump((list(sys.path), __file__), self.proc.stdin)
        except OSError:
            self.state = "failed"
        threading.Thread(target=self._read, daemon=True, name="art_ai_quilt_helper").start()

    def _read(self) -> None:
        import pickle
        import time

        try:
            while True:
                reply = pickle.load(self.proc.stdout)
                self.done_at = time.perf_counter()
                self.replies.put(reply)
        except Exception:  # EOF or a broken pipe: the helper is gone
            self.replies.put(("error", "the helper process ended"))

    def _send(self, msg) -> bool:
        import pickle

        try:
            pickle.dump(msg, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            self.state = "failed"
            return False

    def _take(self, block: bool, timeout: float | None = None) -> bool:
        import queue

        try:
            reply = self.replies.get(block, timeout if block else 0)
        except queue.Empty:
            return False
        return self._handle(reply)

    def _handle(self, reply) -> bool:
        if reply == "ready" or (isinstance(reply, tuple) and reply[0] == "done"):
            self.state = "idle"
            self.took = reply[1] if reply != "ready" else 0.0
            return True
        if reply == "free":
            self.state = "free"
            return True
        self.state = "failed"
        self.error = reply[1] if isinstance(reply, tuple) else str(reply)
        return False

    def start(self, job: dict) -> None:
        """Take a job (the canvas to attach): ready for parts once it says so."""
        if self.state == "free" and self._send(job):
            self.state = "starting"

    def ready(self) -> bool:
        if self.state == "starting":
            self._take(block=False)
        return self.state == "idle"

    def submit(self, part) -> bool:
        import time

        self.sent_at = time.perf_counter()
        if self._send(part):
            self.state = "busy"
            return True
        return False

    def wait(self, blocks: int, check=None) -> bool:
        """Whether the part of `blocks` blocks it was sent is placed (else it is retired and the part is still to
        place); keeps track of its speed. `check` (cancel) is called while waiting."""
        import queue

        while True:
            try:
                reply = self.replies.get(True, 0.25)
                break
            except queue.Empty:
                if self.proc.poll() is not None:
                    self.state = "failed"
                    return False
                if check is not None:
                    check()
        if not self._handle(reply):
            return False
        # its own time on the part and the round trip at best: this process, busy with its own part meanwhile,
        # sees the reply late (as the part's full time, it would give the helper too little)
        trip = min(self.done_at - self.sent_at, self.took + 2e-4)
        self.speed = _smooth(self.speed, blocks / max(trip, 1e-6))
        return True

    def finish(self) -> bool:
        """End the job (the helper lets go of the canvas); whether it can take another."""
        return self.state == "idle" and self._send(None) and self._take(block=True, timeout=5.0) \
            and self.state == "free"

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # end of input: a waiting helper exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=0.2 if self.state in ("free", "idle") else 0)
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# Helpers that finished a job wait here for the next one (an artist trying seeds does not pay the start again)
# until they have been idle for HELPER_IDLE_SECONDS.
HELPER_IDLE_SECONDS = 60.0
_idle_helpers: list = []
_pool_lock = None
_pool_timer = None


def _lock():
    global _pool_lock
    if _pool_lock is None:
        import threading

        _pool_lock = threading.Lock()
    return _pool_lock


def _get_helpers(n: int) -> list:
    with _lock():
        taken = [h for h in _idle_helpers[:n] if h.proc.poll() is None]
        del _idle_helpers[:n]
    return taken + [_Helper() for _ in range(n - len(taken))]


def _put_helpers(helpers: list) -> None:
    import threading
    import time

    global _pool_timer
    now = time.monotonic()
    for h in helpers:
        h.idle_since = now
    with _lock():
        _idle_helpers.extend(helpers)
        if _idle_helpers and _pool_timer is None:
            _pool_timer = threading.Timer(HELPER_IDLE_SECONDS, _retire_idle)
            _pool_timer.daemon = True
            _pool_timer.start()


def close_idle_helpers() -> None:
    """Close the helper processes waiting for work now (they would go after HELPER_IDLE_SECONDS)."""
    with _lock():
        old = list(_idle_helpers)
        _idle_helpers.clear()
    for h in old:
        h.close()


def _retire_idle() -> None:
    """Close the helpers idle for HELPER_IDLE_SECONDS; look again later while some are left."""
    import threading
    import time

    global _pool_timer
    now = time.monotonic()
    with _lock():
        old = [h for h in _idle_helpers if now - h.idle_since >= HELPER_IDLE_SECONDS - 0.5]
        _idle_helpers[:] = [h for h in _idle_helpers if h not in old]
        _pool_timer = None
        if _idle_helpers:
            wait = HELPER_IDLE_SECONDS - (now - min(h.idle_since for h in _idle_helpers))
            _pool_timer = threading.Timer(max(wait, 1.0), _retire_idle)
            _pool_timer.daemon = True
            _pool_timer.start()
    for h in old:
        h.close()


def _smooth(old: float, new: float) -> float:
    return new if old <= 0 else 0.7 * old + 0.3 * new


def _split(wave: list, speeds: list[float]) -> list[list]:
    """`wave` in consecutive parts sized in proportion to the workers' speeds (equal while one is not known)."""
    if len(speeds) == 1 or min(speeds) <= 0:
        k = len(speeds)
        return [wave[(p * len(wave)) // k:((p + 1) * len(wave)) // k] for p in range(k)]
    ends = np.round(np.cumsum(speeds) / sum(speeds) * len(wave)).astype(int)
    starts = np.concatenate([[0], ends[:-1]])
    return [wave[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def _remove(path: str) -> None:
    import os

    try:
        os.unlink(path)
    except OSError:
        pass


def _can_spawn() -> bool:
    """A helper is a fresh interpreter: only where this process runs a Python executable (not a Blender binary)."""
    import os
    import sys

    return "python" in os.path.basename(sys.executable or "").lower()


def _shared_file(size: int) -> str | None:
    """A file of `size` zero bytes for the shared arrays: in memory (/dev/shm) where there is one with room for
    it (writing past a full tmpfs would kill the process), else in the temporary folder; None if neither has."""
    import os
    import tempfile

    for where in ("/dev/shm", tempfile.gettempdir()):
        try:
            st = os.statvfs(where) if hasattr(os, "statvfs") else None
            if not os.path.isdir(where) or (st is not None and st.f_bavail * st.f_frsize < size * 1.2 + (64 << 20)):
                continue
            fd, path = tempfile.mkstemp(prefix="art_ai_quilt_", dir=where)
        except OSError:
            continue
        try:
            os.ftruncate(fd, size)
        except OSError:
            os.close(fd)
            os.unlink(path)
            continue
        os.close(fd)
        return path
    return None


def quilt(source: np.ndarray, size: tuple[int, int], *, block: int, overlap: int, wrap: bool, seed: int,
          tolerance: float = 0.1, rep=None, threads: int = 0) -> np.ndarray:
    """Synthesize (H, W, C) from `source` by quilting blocks (on a torus if `wrap`).

    Blocks are placed in waves of non-overlapping blocks (see `schedule`). With `threads` > 1 (0: the add-on's CPU
    Threads setting, else the cores, up to 8) and enough work, `threads` - 1 helper processes place parts of each
    wave on a canvas shared with them (memory-mapped): Python threads would wait on each other for the GIL. Each
    block's random numbers are drawn up front from `seed`, and each block is placed the same way whoever places
    it, so the result is the same whatever the number of workers.
    """
    import os
    import time

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
    total = len(rows) * len(cols)
    workers = min(_thread_count(threads), max(1, min(len(rows), len(cols) // 2)))  # a wave's most blocks
    if total * sh * sw < HELPER_MIN_WORK or not _can_spawn():
        workers = 1
    shapes = [(np.float32, (ch, cw, C)), (np.bool_, (ch, cw)),
              (np.int64 if owner_is_wide(sh, sw) else np.int32, (ch, cw)), (np.float32, (sh, sw, C))]
    path = _shared_file(_shared_size(shapes)) if workers > 1 else None  # None: no room, this process alone
    helpers: list = _get_helpers(workers - 1) if path is not None else []  # they start while this one works
    left = path  # the shared file, until it is removed
    try:
        # one block size for all (the torus' steps differ by a pixel at most: those blocks overlap a pixel more)
        bh = min(max(n for _, n in rows) + overlap, sh, ch)
        bw = min(max(n for _, n in cols) + overlap, sw, cw)
        waves = schedule(rows, cols, [bh] * len(rows), [bw] * len(cols), ch, cw, wrap)
        if path is None:
            canvas, filled = np.zeros(shapes[0][1], np.float32), np.zeros(shapes[1][1], bool)
            owner = None
        else:
            canvas, filled, owner, shared_source = _attach(path, shapes, "r+")
            shared_source[...] = source  # the helpers read it there: the pipe takes only small messages
        options = {"block": (bh, bw), "wrap": wrap, "overlap": overlap, "tolerance": tolerance}
        q = Quilter(source, canvas, filled, owner=owner, **options)
        if path is not None:
            # (a message larger than the pipe's buffer would wait here until the helper has started)
            job = {"file": path, "shapes": [(np.dtype(d).str, s) for d, s in shapes], "options": options}
            for h in helpers:
                h.start(job)
        done = 0
        reported = 0.0
        check = getattr(rep, "check", None)
        # every block's random numbers drawn up front, so they do not depend on who places it or when
        draws = np.random.default_rng(seed).random((len(rows), len(cols), 2))
        ys = np.array([y for y, _ in rows])
        xs = np.array([x for x, _ in cols])

        def work(part):
            i, j = np.array(part).T
            return ys[i], xs[j], draws[i, j]

        speed = 0.0  # this process's blocks per second on its own parts
        team, team_waves = 0.0, 0  # blocks per second of the waves shared with helpers
        for wave in waves:
            if left is not None and os.name != "nt" and not any(h.state == "starting" for h in helpers):
                _remove(left)  # every helper has it open: nothing is left behind even if this process is killed
                left = None
            # a wave in one part per worker (this process and each ready helper), sized by their speeds so far
            # (a helper on a busy core gets less); the pixels do not depend on the split
            ready = [h for h in helpers if h.ready()][:len(wave) - 1] if team_waves >= 0 else []
            parts = _split(wave, [speed] + [h.speed for h in ready])
            start = time.perf_counter()
            sent = [bool(part) and h.submit(tuple(a.tolist() for a in work(part)))
                    for h, part in zip(ready, parts[1:], strict=True)]
            if parts[0]:
                mine = time.perf_counter()
                q.paste_many(q.match_many(*work(parts[0])))
                speed = _smooth(speed, len(parts[0]) / max(time.perf_counter() - mine, 1e-6))
            for h, part, ok in zip(ready, parts[1:], sent, strict=True):
                if part and not (ok and h.wait(len(part), check)):
                    q.paste_many(q.match_many(*work(part)))  # the helper is gone: placed here
            if any(parts[1:]) and len(wave) >= 8:  # (on the first, smallest waves the IPC weighs too much to tell)
                team = _smooth(team, len(wave) / max(time.perf_counter() - start, 1e-6))
                team_waves += 1
                # waiting for each other costs more than it brings (the cores are busy with other work): alone
                if team_waves >= GUARD_WAVES and team < speed:
                    team_waves = -1
            done += len(wave)
            if rep is not None and (done / total - reported >= 0.01 or done == total):  # at most ~100 reports
                reported = done / total
                rep(reported, f"quilting block {done}/{total}")
            elif check is not None:
                check()
        if path is not None:
            # the shared canvas itself (its file goes below: on POSIX the memory stays while the array lives);
            # Windows cannot remove a mapped file: a copy there
            return np.array(canvas[:H, :W]) if os.name == "nt" else canvas[:H, :W]
        return canvas[:H, :W]
    finally:
        keep = [h for h in helpers if h.finish()]
        for h in helpers:
            if h not in keep:
                h.close()
        _put_helpers(keep)
        if left is not None:
            canvas = filled = owner = q = shared_source = None  # noqa: F841 (unmap before the file goes)
            _remove(left)
