"""Make an image tile: remove the smooth part of the wrap seam, then replace each seam by a strip of the image.

After rolling the image by half its size the old wrap seams cross its middle. Each seam is covered by a band
copied from elsewhere in the image (Kwatra et al.'s graph-cut textures, reduced to one strip per seam): the
band's width, the strip it copies and the strip's shift along the seam are searched together, so both ends of
the band meet the image where it matches best. That is what keeps structure whole: brick courses continue
across the band because the band's width is chosen to fit a whole number of courses, which a fixed-width
re-synthesis cannot do. Minimum-error cuts in the two overlaps decide the exact boundary.
"""

from __future__ import annotations

import numpy as np

from .quilt import min_cut_columns

_BIG = np.float32(3.0e38)
_SEAM_MEDIAN = 2.5  # a wrap seam needs work when its squared step is over this many times the median pair's ...
_SEAM_TOP = 1.0     # ... and over this fraction of the 95th percentile pair's (see seam_needs)


def smooth_component(img: np.ndarray, across: bool = True, down: bool = True) -> np.ndarray:
    """Moisan's periodic + smooth decomposition: the smooth part that carries the wrap discontinuity.

    Solving a Poisson problem on the torus whose only source is the jump across the image borders gives a
    slowly varying field; the image minus it tiles at low frequencies while keeping all detail. `across` /
    `down`: the jump between the left and right / top and bottom edges is a source (the field is linear in
    each, so an edge pair that already meets is left out and nothing is changed for it).
    """
    H, W = img.shape[:2]
    v = np.zeros(img.shape, np.float64)
    if across:
        dx = img[:, 0] - img[:, -1]
        v[:, 0] += dx
        v[:, -1] -= dx
    if down:
        dy = img[0, :] - img[-1, :]
        v[0, :] += dy
        v[-1, :] -= dy
    q = np.arange(H)[:, None]
    r = np.arange(W)[None, :]
    denom = 2 * np.cos(2 * np.pi * q / H) + 2 * np.cos(2 * np.pi * r / W) - 4
    denom[0, 0] = 1.0
    V = np.fft.fft2(v, axes=(0, 1))
    S = V / denom[:, :, None]
    S[0, 0] = 0
    return np.real(np.fft.ifft2(S, axes=(0, 1))).astype(np.float32)


def seam_needs(img: np.ndarray) -> tuple[bool, bool]:
    """(left/right, top/bottom): whether the picture's wrap seam across each pair of edges needs work.

    A seam is measured against the picture's own neighbour steps: the mean squared difference between the last
    and the first column (row) against the same between every pair of neighbouring columns (rows) inside. A
    texture that tiles has a wrap pair like any other (its ratio to their median about 1, at the top 5 % of
    them one time in twenty); a cut through unrelated content differs several times more than the median pair.
    Both must hold: _SEAM_MEDIAN times the median and _SEAM_TOP times the 95th percentile (a texture with
    strong lines, such as mortar, has a few large steps of its own, and a wrap that falls on one is ordinary).
    """
    out = []
    for g in (img, img.transpose(1, 0, 2)):  # columns, then rows
        if g.shape[1] < 8:
            out.append(True)
            continue
        d = ((g[:, 1:].astype(np.float64) - g[:, :-1]) ** 2).sum(axis=2).mean(axis=0)
        wrap = float(((g[:, 0].astype(np.float64) - g[:, -1]) ** 2).sum(axis=1).mean())
        med, top = float(np.median(d)), float(np.percentile(d, 95))
        out.append(wrap > _SEAM_MEDIAN * med + 1e-12 and wrap > _SEAM_TOP * top)
    return out[0], out[1]


def _take(canvas: np.ndarray, rows, cols) -> np.ndarray:
    H, W = canvas.shape[:2]
    return np.ascontiguousarray(canvas[np.asarray(rows) % H][:, np.asarray(cols) % W], dtype=np.float32)


class _Band:
    """A band of width `b` from column x0 (plus `o` overlap columns each side) covering a column seam.

    Its length is split into segments of a few band widths, each copied from its own strip of the image, so
    the copy can follow structure that drifts along the seam (perspective, bent courses).
    """

    def __init__(self, canvas, seam, widths: range, o: int, shifts, n_segments: int):
        H, W = canvas.shape[:2]
        self.canvas, self.o, self.shifts = canvas, o, shifts
        self.lo, self.hi = seam
        self.widths = [b for b in widths if b > seam[1] - seam[0] + 1]
        self.x0 = self.lo - (widths.start - (self.hi - self.lo + 1)) // 2  # the narrowest band covers the seam
        starts = [(i * H) // n_segments for i in range(n_segments + 1)]
        # each segment also covers the first `o` rows of the next (the last wraps onto the first)
        self.segments = [(starts[i], starts[i + 1] - starts[i] + (o if n_segments > 1 else 0))
                         for i in range(n_segments)]

    def holds_seam(self, starts: np.ndarray, b: int) -> np.ndarray:
        """Strips [s, s + b + 2o) that would copy the seam itself (or are the band's own place)."""
        W = self.canvas.shape[1]
        return ((self.lo - starts) % W < b + 2 * self.o) | ((starts - self.lo) % W <= self.hi - self.lo)

    def errors(self, r0: int, n: int, b: int, dys: range, starts: np.ndarray, src=None):
        """SSD in the left + right overlaps for segment rows r0..r0+n, width b, every (dy, strip start)."""
        import cv2

        o, x0 = self.o, self.x0
        rows = np.arange(r0, r0 + n)
        if src is None:
            src = _take(self.canvas, np.arange(r0 + dys.start, r0 + dys.stop - 1 + n),
                        np.arange(starts[0], starts[-1] + b + 2 * o))
        left = cv2.matchTemplate(src, _take(self.canvas, rows, np.arange(x0 - o, x0)), cv2.TM_SQDIFF)
        right = cv2.matchTemplate(src, _take(self.canvas, rows, np.arange(x0 + b, x0 + b + o)), cv2.TM_SQDIFF)
        k = len(starts)
        err = np.nan_to_num(left[:, :k] + right[:, o + b:o + b + k], nan=_BIG, posinf=_BIG)
        err[:, self.holds_seam(starts, b)] = _BIG
        return err

    def search(self, keep: int = 8):
        """{width: [[(error, dy, start)] per segment]}: the best strips of every segment at every width."""
        W = self.canvas.shape[1]
        d0, d1 = self.shifts
        starts = np.arange(W)
        out = {}
        for b in self.widths:
            src_cols = np.arange(0, W + b + 2 * self.o)
            per_seg = []
            for r0, n in self.segments:
                src = _take(self.canvas, np.arange(r0 + d0, r0 + d1 + n), src_cols)
                flat = self.errors(r0, n, b, range(d0, d1 + 1), starts, src).ravel()
                k = min(keep, flat.size)
                idx = np.argpartition(flat, k - 1)[:k]
                per_seg.append(sorted((float(flat[i]), d0 + int(i) // W, int(i) % W) for i in idx if flat[i] < _BIG))
            out[b] = per_seg
        return out

    def refine(self, b: int, dy: int, st: int, r0: int, n: int, r: int):
        """The best (error, dy, start) within +-r of (dy, st) for one segment at width b, at full size."""
        W = self.canvas.shape[1]
        dys = range(max(self.shifts[0], dy - r), min(self.shifts[1], dy + r) + 1)
        if len(dys) == 0:
            return None
        starts = np.arange(st - r, st + r + 1) % W
        src = _take(self.canvas, np.arange(r0 + dys.start, r0 + dys.stop - 1 + n),
                    np.arange(st - r, st + r + b + 2 * self.o + 1))
        err = self.errors(r0, n, b, dys, starts, src)
        i = int(np.argmin(err))
        if err.flat[i] >= _BIG:
            return None
        return float(err.flat[i]), dys.start + i // len(starts), int(starts[i % len(starts)])

    def paste(self, b: int, picks) -> None:
        """Assemble the segments' strips (cut where they meet), then cut the band into the canvas."""
        import cv2

        canvas, o, x0 = self.canvas, self.o, self.x0
        H, W = canvas.shape[:2]
        bw = b + 2 * o
        band = np.zeros((H, bw, canvas.shape[2]), np.float32)
        for k, ((r0, n), (_, dy, st)) in enumerate(zip(self.segments, picks, strict=True)):
            rows = np.arange(r0, r0 + n) % H
            strip = _take(canvas, np.arange(r0 + dy, r0 + dy + n), np.arange(st, st + bw))
            new = np.ones((n, bw), bool)
            if k > 0:  # the top rows overlap the previous strip: a cut across the band decides
                top = min_cut_columns(((strip[:o] - band[rows[:o]]) ** 2).sum(axis=2).T)
                new[:o] = np.arange(o)[:, None] >= top[None, :]
            if k == len(self.segments) - 1 and k > 0:  # ...and the last one's bottom rows overlap the first
                bottom = min_cut_columns(((band[rows[-o:]] - strip[-o:]) ** 2).sum(axis=2).T[:, ::-1])
                new[-o:] &= np.arange(o)[::-1, None] >= bottom[None, :]
            band[rows] = np.where(new[:, :, None], strip, band[rows])
        cols = np.arange(x0 - o, x0 + b + o) % W
        old = canvas[:, cols]
        err = ((band - old) ** 2).sum(axis=2)
        mask = np.ones(err.shape, np.float32)
        ar = np.arange(bw)[None, :]
        cuts = min_cut_columns(np.stack([err[:, :o], err[:, -o:][:, ::-1]]))
        mask[ar < cuts[0][:, None]] = 0.0
        mask[ar >= (bw - cuts[1])[:, None]] = 0.0
        # soften the cut by a pixel so it does not read as a line; the middle of the band is always copied
        mask = cv2.blur(mask, (3, 3), borderType=cv2.BORDER_REPLICATE)
        mask[:, o:o + b] = 1.0
        canvas[:, cols] = old * (1.0 - mask[:, :, None]) + band * mask[:, :, None]


def _choose(found_by_width, rng, tolerance: float):
    """The width whose segments match best in total, and for each segment one of its near-best strips."""
    totals = {b: sum(seg[0][0] for seg in segs) for b, segs in found_by_width.items() if all(segs)}
    if not totals:
        return None, None
    b = min(totals, key=totals.__getitem__)
    picks = []
    for seg in found_by_width[b]:
        near = [c for c in seg if c[0] <= seg[0][0] * (1.0 + tolerance) + 1e-6]
        picks.append(near[int(rng.integers(0, len(near)))])
    return b, picks


def _cover_column_seam(canvas: np.ndarray, seam: tuple[int, int], widths: range, overlap: int,
                       shifts: tuple[int, int], rng: np.random.Generator, tolerance: float) -> None:
    """Cover the columns seam[0]..seam[1] (a discontinuity lies between two of them) with copied strips.

    Strips may be shifted along the seam by dy in `shifts` (the canvas wraps that way). Canvases over 256 px
    are searched at about 256 px and the chosen strips refined at full size. In place.
    """
    import cv2

    H, W, C = canvas.shape
    n_seg = int(np.clip(round(H / (2.5 * widths.start)), 1, 8))
    band = _Band(canvas, seam, widths, overlap, shifts, n_seg)
    f = max(1, min(H, W) // 256)
    if f == 1:
        b, picks = _choose(band.search(), rng, tolerance)
    else:
        small = cv2.resize(canvas, (W // f, H // f), interpolation=cv2.INTER_AREA).reshape(H // f, W // f, C)
        sw = range(max(2, widths.start // f), max(2, (widths.stop - 1) // f) + 1)
        coarse = _Band(small, (seam[0] // f - 1, seam[1] // f + 1), sw, max(1, overlap // f),
                       (shifts[0] // f, -(-shifts[1] // f)), n_seg)
        cb, cpicks = _choose(coarse.search(keep=4), rng, tolerance)
        if cb is None:
            return
        b = min(band.widths, key=lambda w: abs(w - cb * f)) if band.widths else None
        picks = []
        for (r0, n), (_, dy, st) in zip(band.segments, cpicks, strict=True):
            best = band.refine(b, dy * f, st * f, r0, n, f) if b is not None else None
            if best is None:
                return
            picks.append(best)
    if b is not None:
        band.paste(b, picks)


def seamless(img: np.ndarray, *, band: int | None = None, overlap: int | None = None, seed: int = 0,
             lowfreq: bool = True, tolerance: float = 0.05, rep=None) -> np.ndarray:
    """Same size and look, no wrap seam. `img` (H, W, C) float32; every channel (alpha too) moves together.
    Only the edge pairs whose seam needs it are worked on (seam_needs): a texture that already tiles comes back
    as it is, one that tiles across but not down gets only its horizontal seam covered.

    `band`: the narrowest seam band in pixels (bands grow up to 3x that to fit the structure); `overlap`:
    pixels over which each band's edge is cut into the image.
    """
    H, W, C = img.shape
    src = img.astype(np.float32)
    # measure first: an edge pair that already meets (a texture that tiles that way) is left as it is
    across, down = seam_needs(src)
    if not (across or down):
        return src
    if lowfreq:
        src = np.clip(src - smooth_component(src, across, down), 0.0, 1.0)
    if min(H, W) < 24:
        return src
    if band is None:
        band = int(np.clip(min(H, W) // 6, 8, 64))
    if overlap is None:  # a wide overlap lets the cut follow mortar lines and stone edges
        overlap = max(3, band // 2)
    overlap = int(max(1, min(overlap, min(H, W) // 8)))
    band = int(max(4, min(band, min(H, W) // 2 - 2 * overlap)))
    hy, hx = H // 2, W // 2
    canvas = np.ascontiguousarray(np.roll(src, (hy, hx), axis=(0, 1)))  # old seams: before row hy, column hx
    rng = np.random.default_rng(seed)
    # first the vertical seam; its strip may shift only a little vertically, so the horizontal seam it carries
    # stays inside the second band
    reach = band // 3 if across else 0
    if across:
        widths = range(band, min(3 * band, W // 2 - 2 * overlap) + 1)
        _cover_column_seam(canvas, (hx - 1, hx), widths, overlap, (-reach, reach), rng, tolerance)
    if rep is not None:
        rep(0.5, "re-synthesizing the vertical seam")
    # then the horizontal seam on the transposed canvas: now seamless across, so any horizontal shift is fine;
    # the first band's strips carried their piece of this seam to within `reach` rows of hy
    t = np.ascontiguousarray(canvas.transpose(1, 0, 2))
    if down:
        lo, hi = hy - reach - 1, hy + reach
        band_h = max(band, hi - lo + 3)
        widths = range(band_h, max(band_h, min(3 * band_h, H // 2 - 2 * overlap)) + 1)
        _cover_column_seam(t, (lo, hi), widths, overlap, (0, W - 1), rng, tolerance)
    if rep is not None:
        rep(1.0, "re-synthesizing the horizontal seam")
    return np.roll(t.transpose(1, 0, 2), (-hy, -hx), axis=(0, 1))
