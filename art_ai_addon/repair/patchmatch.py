"""Exemplar-based hole filling: multi-scale PatchMatch, coarse to fine, numpy + OpenCV.

The method follows the idea of Wexler et al. (space-time completion) with the randomised nearest-neighbour
search of Barnes et al. (PatchMatch): every patch overlapping the hole gets a source patch from the known
part of the image (the nearest-neighbour field, NNF), and the hole is re-estimated from it; both steps
alternate, coarse to fine. The choices, each measured on bench/inpaint.py's cases against pypatchmatch:
- at every iteration but the last the estimate is the weighted vote of all overlapping proposals (weights
  exp(-cost / median cost)): it keeps the coarse layout coherent (brick joints continue: +2 dB on brick);
  the very last estimate is a copy (each hole pixel takes its own patch's source centre), which keeps the
  sources' grain;
- a vote is sharp only in its low frequencies, and compared with sharp sources a blurry guess attracts smooth
  ones (the middle of a fill in grass went flat): at the two finest levels the guess inside the hole is
  compared with the source blurred by 1 px, the known pixels with the sharp source (detail 0.82 -> 0.96 of
  the original's on texture holes);
- patch distances weigh the known pixels more than the current guess inside the hole (1 : 0.1 at the start,
  1 : 0.3 later), compare the luminance gradient besides colour, so edges entering the hole line up, and
  add a mild penalty for distance between a patch and its source (none at the coarsest level, where a strong
  one drew the nearest content into the hole: see DISTANCE_WEIGHT_COARSE);
- going down to the next level, the field is inherited (sources snapped to the nearest valid patch) and
  searched near where it points; more EM iterations at the coarse levels (2, 3, 5, 7, 9 from the finest up);
- going down, the hole shrinks: a coarse pixel with known pixels around it is known, their average (the layout
  of a large hole starts from what surrounds it, not from copied patches: see SHRINK_SIGMA).
Everything is vectorised: propagation and random search update all patches at once (a Jacobi-style sweep
with jumps of 1, 2 and 4 instead of the sequential scan-line order); the search measures distances on half
the patch pixels (a checkerboard) and gathers each channel with numpy's take from a channel-major copy of
the image, which together made it about 5x faster than a full-patch gather of pixel rows.
"""

from __future__ import annotations

import contextvars

import numpy as np

from ..core import reporter

# weight of the current guess inside the hole against known pixels (1) in patch distances: at the first
# iterations of the coarsest level the guess is a smooth fill, so known pixels decide almost alone; later
# the guess still counts less, which keeps sources from drifting to whatever matches a blurry estimate
HOLE_WEIGHT_START = 0.1
HOLE_WEIGHT = 0.15
# weight of the luminance gradient (Sobel / 4) against colour in patch distances: edges must line up
GRADIENT_WEIGHT = 1.0
# the vote: proposals weigh exp(-cost / (VOTE_H * median cost)) (a larger VOTE_H averages more)
VOTE_H = 1.0
# EM iterations at the finest level, the next ones, and every coarser one (more where the layout is decided: the
# coarse levels are small, so they cost little)
EM_ITERS = (2, 3, 5, 7, 9)
# random-search radius at the levels below the coarsest (the inherited field is close)
SEARCH_FINE = 8
# at this many finest levels, the guess inside the hole is compared with sources blurred by this sigma
BLUR_LEVELS = 2
BLUR_SIGMA = 1.0
# penalty for the distance between a target patch and its source, per squared image diagonal, at the coarsest
# level and below it. Once 1.0 at the coarsest level (+0.5 dB on bench/inpaint.py's few photo holes); on the grid
# (bench/inpaint.py --grid: 12 pictures x 3 shapes x 3 sizes) it drew whatever was nearest into the hole (a white
# cup rim across the coffee, a wall across a stripe): 0 there moved the median against pypatchmatch from -1.13
# to -0.52 dB and the worst decile from -3.71 to -3.36 dB
DISTANCE_WEIGHT_COARSE = 0.0
DISTANCE_WEIGHT = 0.01
# the length the penalty is measured against: the diagonal of the whole picture being repaired (None: of the image
# given). inpaint() fills a large picture window by window and sets it to the whole picture's, so a hole gets the
# same fill in its window as in the whole picture. (A fixed 724 px instead made the pull 16x weaker on 128 px
# pictures, and the middle of their holes went flat.)
distance_ref: contextvars.ContextVar[float | None] = contextvars.ContextVar("distance_ref", default=None)
_DIRS = ((0, 1), (0, -1), (1, 0), (-1, 0))
# targets per block in _cost: its temporaries ((targets x patch) indices, differences, sums, and the scored targets'
# patches when a subset is scored) are a few MB, not ~60 MB at a time per window at 1080p (~90k targets); the same
# costs to the bit, and no slower: bench/scaling.py --only inpaint-holes, 1080p, patch's CPU time within noise
COST_BLOCK = 16384
# grain_inpaint: the patch (5 px, nearer the grain's scale than 7: on bench/inpaint_scale.py --thin-grid, 9 pictures
# x 512 and 1024 px x 2 seeds, the median against Telea went from +1.3 dB with 7 px patches to +1.6 dB, the worst
# decile from -0.5 to -0.3, the gradient energy in the scratches staying at x1.05 of the original's; 3 px gave
# +2.0 dB there but too little grain on 128 px textures: the gain hit its bound, brick's detail fell from x1.0 to
# x0.5-0.7), the search iterations on the cover, the random search's radius divided by this from 64 px down (64,
# 16, 4, 1), then the iterations over every pixel (propagation, and random search from GRAIN_DENSE_RADIUS px down).
# (16 px there: the same). Two passes over every pixel: 0.1 dB of the median below three, for a seventh less time;
# fewer iterations lose more: 6 on the cover 0.2 dB, 5 on the cover and 2 over every pixel 0.6 dB
GRAIN_PATCH = 5
GRAIN_ITERS = 8
GRAIN_RADIUS_STEP = 4
GRAIN_DENSE_ITERS = 2
GRAIN_DENSE_RADIUS = 4
# (the guess inside a scratch is the smooth fill and weighs 0.1: comparing it with blurred sources changes nothing
# measurable on the bench's scratches, and costs 15 %)
BLUR_SIGMA_GRAIN = 0.0
# going down the pyramid, a pixel of the smaller hole is known when any of its four pixels is, or when known pixels
# lie within this sigma (in pixels of the larger level) and weigh at least SHRINK_WEIGHT: its value is their
# average. So the hole shrinks at every level, and at the coarse ones it is filled with the average of what
# surrounds it before any patch is copied (as the C++ PatchMatch, pypatchmatch, does with its wider kernel). Once a
# coarse pixel was in the hole when any of its four pixels was: the coarse holes grew, and their layout was all
# copied patches, often the wrong ones (bench/inpaint.py --grid, 720 cases: patch against pypatchmatch from
# -0.82 / -3.67 dB median / worst decile to -0.01 / -1.54; photos -1.59 / -3.67 to -0.46 / -1.55). A wider support
# (sigma 1) fills photos better but breaks periodic patterns (tiles -0.13 -> -2.50 dB median)
SHRINK_SIGMA = 0.5
SHRINK_WEIGHT = 0.05


class _Level:
    """One pyramid level: image, hole, where source patches may come from, and the patch geometry."""

    def __init__(self, img, hole, source_ok, radius, centred=False):
        import cv2

        self.img = img
        self.hole = hole
        self.dw = DISTANCE_WEIGHT  # the distance penalty at this level (see DISTANCE_WEIGHT_COARSE)
        self.h, self.w = hole.shape
        self.d2 = float(self.h * self.h + self.w * self.w)  # ... per this squared length (see distance_ref)
        self.r = radius
        size = 2 * radius + 1
        kernel = np.ones((size, size), np.uint8)
        # source centres: the whole patch inside the image and on allowed pixels
        ok = cv2.erode(source_ok.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        self.valid = ok
        self._near = None
        # the valid centres: their linear indices, int32 (a third of the memory of int64 (y, x) pairs; the coordinates
        # of the few drawn at a time come from valid_at)
        self.vlin = np.flatnonzero(ok).astype(np.int32)
        self.nvalid = self.vlin.size
        # target centres: every patch that touches the hole (centred: only those centred in it)
        tmask = hole if centred else cv2.dilate(hole.astype(np.uint8), kernel) > 0
        self.ty, self.tx = np.nonzero(tmask)
        self.tidx = np.full((self.h, self.w), -1, np.int32)
        self.tidx[self.ty, self.tx] = np.arange(self.ty.size)
        self.wp = self.w + 2 * radius
        dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        dy, dx = dy.ravel(), dx.ravel()
        self.offs = dy * self.wp + dx
        self.t_lin = (self.ty + radius) * self.wp + (self.tx + radius)
        # the pixels patch distances are measured on during the search, and which of them are in the hole in each
        # target patch (the current guess there weighs less; the whole patch's: thole)
        self.soffs = self.offs[(dy + dx) % 2 == 0]
        self.sthole = self._in_hole(self.soffs)

    def _in_hole(self, offs):
        """(targets, offsets) bool: whether the pixel at each offset of each target patch is in the hole. (Column-major,
        as the column selection of a whole (targets, patch) array was: the weights' sums are made in that order.)"""
        flat_hole = self.padded(self.hole.view(np.uint8)[:, :, None])[:, 0]
        out = np.empty((self.ty.size, offs.size), bool, order="F")
        for j, o in enumerate(offs):  # (one offset at a time: no (targets x patch) index array)
            out[:, j] = flat_hole[self.t_lin + o]
        return out

    @property
    def thole(self):
        return self._in_hole(self.offs)

    def valid_at(self, k):
        """The coordinates (y, x) of the valid centres numbered k."""
        v = self.vlin[k]
        return v // np.int32(self.w), v % np.int32(self.w)

    def nearest_valid(self, y, x):
        """The valid source centre nearest to each (y, x)."""
        import cv2

        if self._near is None:  # (one int32 plane, the nearest centre's linear index; patch_inpaint frees it)
            lab = cv2.distanceTransformWithLabels((~self.valid).view(np.uint8), cv2.DIST_L2, 5,
                                                  labelType=cv2.DIST_LABEL_PIXEL)[1]
            lut = np.zeros(lab.max() + 1, np.int32)
            lut[lab.reshape(-1)[self.vlin]] = self.vlin
            self._near = lut[lab]
        near = self._near[np.clip(y, 0, self.h - 1), np.clip(x, 0, self.w - 1)]
        return near // self.w, near % self.w

    def padded(self, img):
        import cv2

        r = self.r
        return cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT_101).reshape(-1, img.shape[2])

    def src_lin(self, sy, sx):
        return np.multiply(sy + self.r, self.wp, dtype=np.int64) + (sx + self.r)


def _cost(ctx, level, sy, sx, sub=None):
    """Weighted mean squared difference between the target patches and the source patches at (sy, sx).

    ctx = (flat, tpatch, tw, toffs, scale): flat (C, N) the padded features, channel-major (numpy's take on
    one channel's contiguous row is several times faster than gathering pixel rows), with `scale` entries
    per pixel (2: the sharp value, then the blurred one); tpatch (C, n, P) the target patches; tw (n, P) the
    per-pixel weights of the target patches (known pixels count more than the current guess inside the
    hole), normalised to sum 1; toffs: where each patch pixel's value is, from its patch's source entry
    ((P,) or (n, P)). sub: score only these targets (indices or a slice). An optional sixth entry, a _CostBuffers,
    holds the (targets x patch) temporaries from one call to the next."""
    if sy.size > COST_BLOCK:  # in blocks of targets: the (targets x patch) temporaries stay small
        c = np.empty(sy.size, np.float32)
        for a in range(0, sy.size, COST_BLOCK):
            b = min(a + COST_BLOCK, sy.size)
            c[a:b] = _cost(ctx, level, sy[a:b], sx[a:b], slice(a, b) if sub is None else sub[a:b])
        return c
    flat, tpatch, tw, toffs, scale = ctx[:5]
    bufs = ctx[5] if len(ctx) > 5 else None
    rows = slice(None) if sub is None else sub
    if sub is not None:
        tpatch = tpatch[:, sub]
    tw = tw[rows]
    if toffs.ndim == 2:
        toffs = toffs[rows]
    base = level.src_lin(sy, sx) * scale
    toffs = toffs if toffs.ndim == 2 else toffs[None, :]
    if bufs is None:
        idx = base[:, None] + toffs
    else:
        idx = np.add(base[:, None], toffs, out=bufs.idx[:sy.size])
    tot = None
    for ch in range(flat.shape[0]):
        if bufs is None:
            d = flat[ch].take(idx)
        else:  # (mode "clip": no bounds-checked copy of the output; every index is inside the padded features)
            d = flat[ch].take(idx, out=(bufs.tot if tot is None else bufs.d)[:sy.size], mode="clip")
        d -= tpatch[ch]
        d *= d
        if tot is None:
            tot = d
        else:
            tot += d
    c = np.einsum("np,np->n", tot, tw)
    if level.dw:
        ty, tx = (level.ty, level.tx) if sub is None else (level.ty[sub], level.tx[sub])
        c += (level.dw / level.d2) * ((sy - ty) ** 2 + (sx - tx) ** 2)
    return c


class _CostBuffers:
    """_cost's (targets x patch) temporaries for up to `rows` targets, kept from one call to the next: the indices
    gathered, one channel's differences and their sum (new arrays each call were fresh pages to fault in, more so
    as the fill holds less memory)."""

    def __init__(self, rows, p):
        self.idx = np.empty((rows, p), np.int64)
        self.d = np.empty((rows, p), np.float32)
        self.tot = np.empty((rows, p), np.float32)


class _RowWeights:
    """_cost's weights of the target patches' pixels, (targets, P) float32, made a block of targets at a time
    (indexing it gives the rows asked for): `weight` on the patches' hole pixels (`thole`), 1 on the known ones,
    each row normalised to sum 1 over `channels` channels. The same operations on each row as on the whole
    array, so the same weights to the bit, without holding (targets x patch) floats through the search."""

    ndim = 2

    def __init__(self, thole, weight, channels):
        self.thole, weight = thole, np.float32(weight)
        norm = np.empty((thole.shape[0], 1), np.float32)
        for a in range(0, thole.shape[0], COST_BLOCK):
            rows = slice(a, a + COST_BLOCK)
            norm[rows] = np.where(thole[rows], weight, np.float32(1.0)).sum(axis=1, keepdims=True) * channels
        # (a row's two weights, divided once: the same quotients as the whole array's division)
        self.hole_w, self.known_w = weight / norm, np.float32(1.0) / norm

    def __getitem__(self, rows):
        return np.where(self.thole[rows], self.hole_w[rows], self.known_w[rows])


class _RowOffsets:
    """_cost's toffs when the features hold (sharp, blurred) per pixel: per target patch pixel, its entry from the
    source patch's (2 x the pixel's offset, + 1 where the target's pixel is in the hole), int32, made a block of
    targets at a time (indexing it gives the rows asked for)."""

    ndim = 2

    def __init__(self, soffs, thole):
        self.soffs2, self.thole = (2 * soffs[None, :]).astype(np.int32), thole

    def __getitem__(self, rows):
        return np.add(self.soffs2, self.thole[rows], dtype=np.int32)


def _try(level, ctx, sy, sx, cost, cy, cx, sel=None):
    """Evaluate candidate sources (cy, cx) and keep them where they are valid and better."""
    inb = (cy >= 0) & (cy < level.h) & (cx >= 0) & (cx < level.w)
    cy = np.where(inb, cy, 0)
    cx = np.where(inb, cx, 0)
    ok = inb & level.valid[cy, cx] & ((cy != sy) | (cx != sx))
    if sel is not None:
        ok &= sel
    idx = np.nonzero(ok)[0]
    if idx.size == 0:
        return
    if idx.size > 0.7 * ok.size:  # most candidates count: score all (no copies of the target patches)
        c = _cost(ctx, level, np.where(ok, cy, sy), np.where(ok, cx, sx))
        better = ok & (c < cost)
        sy[better] = cy[better]
        sx[better] = cx[better]
        cost[better] = c[better]
        return
    c = _cost(ctx, level, cy[idx], cx[idx], idx)
    better = c < cost[idx]
    j = idx[better]
    sy[j] = cy[j]
    sx[j] = cx[j]
    cost[j] = c[better]


def _patchmatch(level, cur, sy, sx, iters, rng, hole_weight=1.0, search=64, blur=0.0):
    """Improve the NNF (sy, sx) of all target patches of `cur` by propagation and random search.

    hole_weight: weight of the pixels inside the hole (the current guess) against known ones (1).
    blur: when > 0, the guess inside the hole is compared with the source blurred by this sigma (the guess
    is a vote of proposals, sharp only in its low frequencies: compared with sharp sources it attracts
    smooth ones, and the fill loses its grain)."""
    import cv2

    toffs, scale, blurred = level.soffs, 1, None
    if blur:
        known = (~level.hole).astype(np.float32)
        blurred = cv2.GaussianBlur(cur * known[:, :, None], (0, 0), blur)
        blurred /= np.maximum(cv2.GaussianBlur(known, (0, 0), blur), 1e-6)[:, :, None]
        del known
        toffs, scale = _RowOffsets(level.soffs, level.sthole), 2
    flat = _features(level, cur, blurred)  # (blurred: sharp, blurred per pixel)
    del blurred
    tidx = (level.t_lin[:, None] + level.soffs[None, :]) * scale
    tpatch = np.empty((flat.shape[0],) + tidx.shape, np.float32)
    for ch in range(flat.shape[0]):
        flat[ch].take(tidx, out=tpatch[ch])
    del tidx
    ctx = (flat, tpatch, _RowWeights(level.sthole, hole_weight, flat.shape[0]), toffs, scale,
           _CostBuffers(min(sy.size, COST_BLOCK), level.soffs.size))
    cost = _cost(ctx, level, sy, sx)
    n = sy.size
    radius0 = min(max(level.h, level.w), search)
    for _ in range(iters):
        for jump in (1, 2, 4) if iters > 1 else (1,):
            for dy, dx in _DIRS:
                ny = level.ty - dy * jump
                nx = level.tx - dx * jump
                inb = (ny >= 0) & (ny < level.h) & (nx >= 0) & (nx < level.w)
                nb = np.where(inb, level.tidx[np.clip(ny, 0, level.h - 1), np.clip(nx, 0, level.w - 1)], -1)
                has = nb >= 0
                nbc = np.where(has, nb, 0)
                _try(level, ctx, sy, sx, cost, sy[nbc] + dy * jump, sx[nbc] + dx * jump, has)
        rad = radius0
        while rad >= 1:
            cy = sy + rng.integers(-rad, rad + 1, n)
            cx = sx + rng.integers(-rad, rad + 1, n)
            _try(level, ctx, sy, sx, cost, cy, cx)
            rad //= 2
        k = rng.integers(0, level.nvalid, n)
        _try(level, ctx, sy, sx, cost, *level.valid_at(k))
    return cost


def _centre(level, cur, im, sy, sx, out=None):
    """New hole pixels: each takes the centre of its own patch's source (a copy, no averaging). out: the image to
    write them into (`cur` itself, or `im`: sources never lie in the hole), else a copy of `cur`."""
    out = cur.copy() if out is None else out
    hy, hx = np.nonzero(level.hole)
    t = level.tidx[hy, hx]
    out[hy, hx] = im[sy[t], sx[t]]
    return out


def _vote(level, cur, im, sy, sx, cost, out=None):
    """New hole pixels: the weighted mean of the proposals of all the patches that cover each of them.

    Weights exp(-(cost - min) / (VOTE_H * median cost)): good matches count, bad ones hardly. Summed one patch
    offset at a time into per-hole-pixel sums, so the memory is a few arrays of the targets' size, not (targets x
    patch pixels) ones. out: as _centre's (written once all proposals are summed)."""
    r = level.r
    hy, hx = np.nonzero(level.hole)
    at = np.full((level.h + 2 * r) * level.wp, -1, np.int32)  # padded position -> hole pixel number
    at[(hy + r) * level.wp + (hx + r)] = np.arange(hy.size)
    flat = im.reshape(-1, im.shape[2])  # (a source patch lies inside the image: no padded copy)
    med = max(float(np.median(cost)), 1e-8)
    w = np.exp(-(cost - cost.min()) / (VOTE_H * med))
    src0 = np.multiply(sy, level.w, dtype=np.int64) + sx
    den = np.zeros(hy.size)
    num = np.zeros((im.shape[2], hy.size))
    for o, uo in zip(level.offs, level.offs - 2 * r * ((level.offs + r) // level.wp)):  # (offsets in the image)
        dst = at[level.t_lin + o]
        keep = dst >= 0
        dst, wk, src = dst[keep], w[keep], src0[keep] + uo
        den += np.bincount(dst, wk, hy.size)
        for ch in range(im.shape[2]):
            num[ch] += np.bincount(dst, wk * flat[src, ch], hy.size)
    out = cur.copy() if out is None else out
    got = den > 0
    out[hy[got], hx[got]] = (num[:, got] / den[got]).T
    return out


def _down(img, hole, source_ok):
    """Halve the image (averaging known pixels only), the hole (it shrinks: see SHRINK_SIGMA) and the allowed
    sources (all four pixels allowed; `source_ok` never includes the hole, so a source is never an average)."""
    import cv2

    h, w = hole.shape
    size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))

    def area(x):
        return cv2.resize(x, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)

    known = (~hole).astype(np.float32)
    weighted = img * known[:, :, None]
    num, den = area(weighted), area(known)[:, :, 0]
    small = num / np.maximum(den, 1e-6)[:, :, None]
    small_hole = den < 1e-3
    # hole pixels near known ones: the average of the known pixels around them
    wnum = area(cv2.GaussianBlur(weighted, (0, 0), SHRINK_SIGMA))
    wden = area(cv2.GaussianBlur(known, (0, 0), SHRINK_SIGMA))[:, :, 0]
    near = small_hole & (wden > SHRINK_WEIGHT)
    small[near] = wnum[near] / wden[near][:, None]
    small_hole &= ~near
    small_ok = cv2.resize(source_ok.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    return small.astype(np.float32), small_hole, small_ok & ~small_hole


def _smooth_fill(img, hole):
    """Initial guess at the coarsest level: OpenCV Telea per channel (float, no 8-bit rounding)."""
    import cv2

    m = hole.astype(np.uint8)
    out = img.copy()
    for ch in range(img.shape[2]):
        out[:, :, ch] = cv2.inpaint(np.ascontiguousarray(img[:, :, ch] * 255.0), m, 3, cv2.INPAINT_TELEA)
    return np.clip(out / 255.0, 0.0, 1.0)


def patch_inpaint(img, hole, *, source_ok=None, patch_size=7, seed=0, em_iters=None, rep=None, init=None,
                  max_levels=None, coarse_init=None, overwrite=False):
    """Fill `hole` (bool (H, W)) of float image (H, W, C) from patches of the known part; returns a new image.

    `source_ok` restricts where source patches may come from (default: everywhere outside the hole), so
    other damage is never copied. em_iters: EM iterations per level (default EM_ITERS). max_levels: at most
    this many pyramid levels (1 for scratches, which vanish at half size). init: the first guess inside the
    hole when there is one level (default Telea's fill; e.g. the smooth fill). coarse_init: a function
    (img, hole, source_ok) -> the first guess at the coarsest level (default Telea's fill; e.g.
    structure.structure_fill). Returns None when no whole patch fits in the known area. overwrite: `img` (float32,
    C-contiguous) is the caller's scratch copy: the fill is written into its hole pixels and it is returned (no
    copy of it is made).
    """
    import cv2

    rep = reporter(rep)
    rng = np.random.default_rng(seed)
    given = img
    img = np.ascontiguousarray(img, dtype=np.float32)
    # the estimate below the coarsest level lives in the level's image itself (its hole pixels are never read
    # otherwise: a source patch lies outside the hole); at the finest level when `img` is a copy made here
    owned = overwrite or not (isinstance(given, np.ndarray) and np.may_share_memory(img, given))
    hole = np.asarray(hole, bool)
    source_ok = ~hole if source_ok is None else (np.asarray(source_ok, bool) & ~hole)
    radius = max(1, patch_size // 2)
    # pyramid: go down while the hole is wider than a few patches and enough sources remain
    levels = [(img, hole, source_ok)]
    while True:
        im, ho, so = levels[-1]
        if min(ho.shape) < 4 * (2 * radius + 1) or len(levels) == (max_levels or 0):
            break
        dist = cv2.distanceTransform(ho.astype(np.uint8), cv2.DIST_L2, 3)
        if dist.max() <= radius:
            break
        nxt = _down(im, ho, so)
        if not nxt[1].any():  # the hole has shrunk away: this level's fill starts from its own smooth guess
            break
        probe = cv2.erode(nxt[2].astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8),
                          borderType=cv2.BORDER_CONSTANT, borderValue=0)
        if probe.sum() < 64:
            break
        levels.append(nxt)
    nlev = len(levels)
    cur = None
    sy = sx = None
    prev = None
    for li in range(nlev - 1, -1, -1):
        im, ho, so = levels.pop()  # (a coarser level's arrays are freed once the finer one starts)
        level = _Level(im, ho, so, radius)
        # (one level only: thin holes, no layout to decide, and the strong penalty costs 0.8 dB on scratches)
        level.dw = DISTANCE_WEIGHT_COARSE if li == nlev - 1 and nlev > 1 else DISTANCE_WEIGHT
        ref = distance_ref.get()
        if ref:
            level.d2 = (ref / 2 ** li) ** 2
        if level.nvalid == 0:
            return None
        rep.check()
        mine = True  # (cur is an array made here: each new estimate is written into it, no copy)
        if cur is None:
            if init is not None and nlev == 1:
                cur = np.where(ho[:, :, None], init, im)
            elif coarse_init is not None:
                cur = np.asarray(coarse_init(im, ho, so), np.float32)
                mine = False
            else:
                cur = _smooth_fill(im, ho)
            k = rng.integers(0, level.nvalid, level.ty.size)
            sy, sx = level.valid_at(k)
        else:
            # upsample the NNF: a fine target takes its coarse parent's source, scaled, plus its sub-offset
            pl, psy, psx = prev
            py = np.clip(level.ty // 2, 0, pl.h - 1)
            px = np.clip(level.tx // 2, 0, pl.w - 1)
            pi = pl.tidx[py, px]
            k = rng.integers(0, level.nvalid, level.ty.size)
            sy, sx = level.valid_at(k)
            has = pi >= 0
            cy = psy[np.where(has, pi, 0)] * 2 + (level.ty & 1)
            cx = psx[np.where(has, pi, 0)] * 2 + (level.tx & 1)
            inb = has & (cy >= 0) & (cy < level.h) & (cx >= 0) & (cx < level.w)
            cy = np.where(inb, cy, 0)
            cx = np.where(inb, cx, 0)
            # inherited sources that are not valid here (the patch reaches into the hole or off the image)
            # snap to the nearest valid centre rather than to a random one
            ny, nx = level.nearest_valid(cy, cx)
            sy[has], sx[has] = ny[has], nx[has]
            # a target whose parent was known at the coarse level (the hole shrinks going down) is like its own
            # surroundings there: it starts from the valid source nearest to itself
            oy, ox = level.nearest_valid(level.ty, level.tx)
            sy[~has], sx[~has] = oy[~has], ox[~has]
            # the first estimate of the fine hole: the fine source pixels the inherited NNF points at (an
            # upsampled coarse image or an average of the overlapping proposals would be blurry, and blurry
            # targets pick smooth sources: the fill would lose its grain)
            cur = _centre(level, im, im, sy, sx, out=im if li > 0 or owned else None)
            prev = level._near = None  # (the coarser level and the nearest-centre plane are done with)
        n_em = em_iters or EM_ITERS[min(li, len(EM_ITERS) - 1)]
        for it in range(n_em):
            hw = HOLE_WEIGHT_START if (li == nlev - 1 and it < 2) else HOLE_WEIGHT
            # below the coarsest level the inherited field is close: search near it (plus one global guess)
            cost = _patchmatch(level, cur, sy, sx, 2 if li > 0 or it == 0 else 1, rng, hw,
                               64 if li == nlev - 1 else SEARCH_FINE,
                               BLUR_SIGMA if li < BLUR_LEVELS else 0.0)
            if li == 0 and it == n_em - 1:
                # the result: each hole pixel copies the centre of its own patch's source (the grain stays)
                cur = _centre(level, cur, im, sy, sx, out=cur if mine else None)
            else:
                # on the way: the vote of all proposals (coherent layout, structure that continues)
                cur = _vote(level, cur, im, sy, sx, cost, out=cur if mine else None)
            mine = True
            done = (nlev - 1 - li + (it + 1) / n_em) / nlev
            rep(done, f"patch fill, level {nlev - li}/{nlev}")
        prev = (level, sy, sx)
    return cur


def grain_inpaint(img, hole, *, source_ok=None, patch_size=GRAIN_PATCH, seed=0, iters=GRAIN_ITERS):
    """The grain of a thin fill: each `hole` pixel copies the centre of the source patch that best matches the
    patch centred on it, the guess inside the hole being `img` (e.g. the smooth fill); one level, no vote.

    The search runs in two steps (most of the work on a third of the pixels):
    - PatchMatch on a cover of the hole: target pixels such that every hole pixel lies in the 3x3 block of one
      (about a third of a scratch's pixels, see _grain_cover), propagating between neighbouring targets along the
      hole (_grain_search);
    - every hole pixel then starts from its target's source moved by its own offset from the target (inside the
      matched patch), tries the other targets' next to it, then GRAIN_DENSE_ITERS passes of propagation between
      neighbouring pixels and random search from GRAIN_DENSE_RADIUS px.
    Weights and features of patch_inpaint's finest level; the known pixels decide almost alone
    (HOLE_WEIGHT_START). Returns None when no whole patch fits in the known area.
    """
    rng = np.random.default_rng(seed)
    img = np.ascontiguousarray(img, dtype=np.float32)
    hole = np.asarray(hole, bool)
    source_ok = ~hole if source_ok is None else (np.asarray(source_ok, bool) & ~hole)
    level = _Level(img, hole, source_ok, max(1, patch_size // 2), centred=True)
    if level.nvalid == 0:
        return None
    level.dw = DISTANCE_WEIGHT
    flat = _features(level, img)
    # the search on the cover
    keep = _grain_cover(hole)[level.ty, level.tx]
    cover = _grain_subset(level, keep)
    k = rng.integers(0, level.nvalid, cover.ty.size)
    sy, sx = level.valid_at(k)
    _grain_search(cover, _grain_ctx(cover, flat), sy, sx, iters, rng)
    # every hole pixel: from its target's source, at its offset
    n = level.ty.size
    owner = np.full(n, -1, np.int64)
    cands = []
    for dy, dx in _GRAIN_BLOCK:
        ty, tx = level.ty + dy, level.tx + dx
        inb = (ty >= 0) & (ty < level.h) & (tx >= 0) & (tx < level.w)
        j = np.where(inb, cover.tidx[np.clip(ty, 0, level.h - 1), np.clip(tx, 0, level.w - 1)], -1)
        free = owner < 0
        owner[free] = j[free]
        cands.append(j)
    ctx = _grain_ctx(level, flat)
    dsy = sy[owner] + (level.ty - cover.ty[owner])
    dsx = sx[owner] + (level.tx - cover.tx[owner])
    ok = level.valid[np.clip(dsy, 0, level.h - 1), np.clip(dsx, 0, level.w - 1)]
    ok &= (dsy >= 0) & (dsy < level.h) & (dsx >= 0) & (dsx < level.w)
    fy, fx = np.where(ok, dsy, level.ty), np.where(ok, dsx, level.tx)  # (an offset off the valid centres: a copy
    cost = np.where(ok, _cost(ctx, level, fy, fx), np.inf)              # all the same, until a candidate is valid)
    for j in cands:
        has = (j >= 0) & (j != owner)
        if has.any():
            jc = np.where(has, j, 0)
            _try(level, ctx, dsy, dsx, cost, sy[jc] + (level.ty - cover.ty[jc]), sx[jc] + (level.tx - cover.tx[jc]),
                 has)
    seen = _GrainSeen(len(_DIRS), n)
    for _ in range(GRAIN_DENSE_ITERS):
        for k, (dy, dx) in enumerate(_DIRS):
            ny, nx = level.ty - dy, level.tx - dx
            inb = (ny >= 0) & (ny < level.h) & (nx >= 0) & (nx < level.w)
            nb = np.where(inb, level.tidx[np.clip(ny, 0, level.h - 1), np.clip(nx, 0, level.w - 1)], -1)
            has = nb >= 0
            nbc = np.where(has, nb, 0)
            cy, cx = dsy[nbc] + dy, dsx[nbc] + dx
            _try(level, ctx, dsy, dsx, cost, cy, cx, seen.new(k, cy, cx, has))
        rad = GRAIN_DENSE_RADIUS
        while rad >= 1:
            _try(level, ctx, dsy, dsx, cost, dsy + rng.integers(-rad, rad + 1, n), dsx + rng.integers(-rad, rad + 1, n))
            rad //= GRAIN_RADIUS_STEP
    out = img.copy()
    out[level.ty, level.tx] = img[np.clip(dsy, 0, level.h - 1), np.clip(dsx, 0, level.w - 1)]
    return out


# a hole pixel's target is itself or one of its 8 neighbours (nearest first)
_GRAIN_BLOCK = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))
# neighbouring targets a target propagates from, found within (2 * GRAIN_REACH + 1) pixels square
GRAIN_NEIGHBOURS = 4
GRAIN_REACH = 3


def _features(level, cur, blurred=None):
    """The features patch distances compare: the colour channels of `cur` and its luminance gradient (Sobel x
    GRADIENT_WEIGHT / 4), each plane padded by the patch radius, channel-major (C + 2, padded pixels).
    blurred: an image like `cur` whose features come second at every pixel (C + 2, 2 x padded pixels)."""
    import cv2

    r, n = level.r, cur.shape[2] + 2
    flat = np.empty((n, level.h + 2 * r, level.wp, 1 if blurred is None else 2), np.float32)
    for k, img in enumerate((cur,) if blurred is None else (cur, blurred)):
        for ch, plane in enumerate(_planes(img)):  # channel-major, each plane padded on its own (no transposed
            if blurred is None:                    # copy), one plane at a time (no list of them)
                cv2.copyMakeBorder(plane, r, r, r, r, cv2.BORDER_REFLECT_101, dst=flat[ch, :, :, 0])
            else:
                flat[ch, :, :, k] = cv2.copyMakeBorder(plane, r, r, r, r, cv2.BORDER_REFLECT_101)
    return flat.reshape(n, -1)


def _planes(cur):
    """_features' planes of `cur`, one at a time (H, W) float32: its channels, then the luminance gradient."""
    import cv2

    c = cur.shape[2]
    for ch in range(c):
        yield cv2.extractChannel(cur, ch) if c > 1 else np.ascontiguousarray(cur[:, :, 0])
    g = cv2.transform(cur, np.full((1, c), 1.0 / c, np.float32)) if c <= 4 else cur.mean(axis=2)
    yield cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3, scale=GRADIENT_WEIGHT / 4)
    yield cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3, scale=GRADIENT_WEIGHT / 4)


def _grain_ctx(level, flat):
    """_cost's context for the level's targets: their patches and weights (the hole's pixels HOLE_WEIGHT_START)."""
    toffs = level.soffs
    tpatch = np.stack([flat[ch].take(level.t_lin[:, None] + toffs[None, :]) for ch in range(flat.shape[0])])
    tw = np.where(level.sthole, np.float32(HOLE_WEIGHT_START), np.float32(1.0))
    tw /= tw.sum(axis=1, keepdims=True) * flat.shape[0]
    return flat, tpatch, tw, toffs, 1, _CostBuffers(min(level.ty.size, COST_BLOCK), toffs.size)


def _grain_subset(level, keep):
    """A copy of a _Level whose targets are those where `keep` (a mask over its targets); the patches' hole pixels
    stay the whole hole's."""
    import copy

    sub = copy.copy(level)
    sub.ty, sub.tx = level.ty[keep], level.tx[keep]
    sub.tidx = np.full((level.h, level.w), -1, np.int64)
    sub.tidx[sub.ty, sub.tx] = np.arange(sub.ty.size)
    sub.t_lin = level.t_lin[keep]
    sub.sthole = level.sthole[keep]
    return sub


def _grain_cover(hole):
    """Target pixels whose 3x3 blocks cover `hole`: every third pixel of every third row first, then every third
    pixel of the rows and columns the blocks have not reached, then whatever is left (a line of the hole gets a
    target every third pixel whatever its direction; a wide part one in nine)."""
    import cv2

    h, w = hole.shape
    yy, xx = np.arange(h)[:, None] % 3 == 0, np.arange(w)[None, :] % 3 == 0
    target = np.zeros_like(hole)
    kernel = np.ones((3, 3), np.uint8)
    covered = target
    for pattern in (yy & xx, yy, xx, None):
        add = hole & ~covered if pattern is None else hole & ~covered & pattern
        target |= add
        if pattern is not None:
            covered = cv2.dilate(target.astype(np.uint8), kernel) > 0
    return target


class _GrainSeen:
    """The candidate each propagation slot (a neighbour, a direction) gave each target last time. A candidate given
    again (the neighbour's source has not moved) is not scored again: it lost then or was taken, and the target's
    cost has only fallen since, so it would lose now (the same search, bit for bit, with fewer patch distances)."""

    def __init__(self, slots, n):
        self.y = np.full((slots, n), -1, np.int64)
        self.x = np.full((slots, n), -1, np.int64)

    def new(self, k, cy, cx, has):
        """The targets whose candidate (cy, cx) in slot k differs from last time's (among `has`); remembers it."""
        out = has & ((cy != self.y[k]) | (cx != self.x[k]))
        self.y[k], self.x[k] = cy, cx
        return out


def _grain_search(level, ctx, sy, sx, iters, rng):
    """PatchMatch over the grain's targets: propagation from up to GRAIN_NEIGHBOURS neighbouring targets (their
    source moved by the offset between the two targets), random search around the current source from 64 px down,
    and one guess anywhere; patch distances as _patchmatch's."""
    cost = _cost(ctx, level, sy, sx)
    n = sy.size
    # the neighbouring targets, nearest first
    reach = GRAIN_REACH
    offsets = sorted(((dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1) if dy or dx),
                     key=lambda o: o[0] * o[0] + o[1] * o[1])
    nbr = np.full((GRAIN_NEIGHBOURS, n), -1, np.int64)
    count = np.zeros(n, np.int64)
    for dy, dx in offsets:
        ny, nx = level.ty + dy, level.tx + dx
        inb = (ny >= 0) & (ny < level.h) & (nx >= 0) & (nx < level.w)
        j = np.where(inb, level.tidx[np.clip(ny, 0, level.h - 1), np.clip(nx, 0, level.w - 1)], -1)
        free = (j >= 0) & (count < GRAIN_NEIGHBOURS)
        nbr[count[free], np.nonzero(free)[0]] = j[free]
        count += free
    radius0 = min(max(level.h, level.w), 64)
    seen = _GrainSeen(GRAIN_NEIGHBOURS, n)
    for _ in range(iters):
        for k in range(GRAIN_NEIGHBOURS):
            nb = nbr[k]
            has = nb >= 0
            if not has.any():
                break
            nbc = np.where(has, nb, 0)
            cy, cx = sy[nbc] + (level.ty - level.ty[nbc]), sx[nbc] + (level.tx - level.tx[nbc])
            _try(level, ctx, sy, sx, cost, cy, cx, seen.new(k, cy, cx, has))
        rad = radius0
        while rad >= 1:
            _try(level, ctx, sy, sx, cost, sy + rng.integers(-rad, rad + 1, n), sx + rng.integers(-rad, rad + 1, n))
            rad //= GRAIN_RADIUS_STEP
        k = rng.integers(0, level.nvalid, n)
        _try(level, ctx, sy, sx, cost, *level.valid_at(k))
    return cost
