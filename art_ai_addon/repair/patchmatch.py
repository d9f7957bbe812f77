"""Exemplar-based hole filling: multi-scale PatchMatch with expectation-maximisation voting.

The method follows the idea of Wexler et al. (space-time completion) with the randomised nearest-neighbour
search of Barnes et al. (PatchMatch): every patch overlapping the hole gets a source patch from the known
part of the image (the nearest-neighbour field, NNF); hole pixels become the weighted vote of the source
pixels that overlapping patches propose; both steps alternate, coarse to fine. Everything is vectorised
numpy: propagation and random search update all patches at once (a Jacobi-style sweep instead of the
sequential scan-line order), which is what makes it fast enough in Python.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import reporter

_DIRS = ((0, 1), (0, -1), (1, 0), (-1, 0))


class _Level:
    """One pyramid level: image, hole, where source patches may come from, and the patch geometry."""

    def __init__(self, img, hole, source_ok, radius):
        self.img = img
        self.hole = hole
        self.h, self.w = hole.shape
        self.r = radius
        size = 2 * radius + 1
        kernel = np.ones((size, size), np.uint8)
        # source centres: the whole patch inside the image and on allowed pixels
        ok = cv2.erode(source_ok.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        self.valid = ok
        self.vy, self.vx = np.nonzero(ok)
        # target centres: every patch that touches the hole
        tmask = cv2.dilate(hole.astype(np.uint8), kernel) > 0
        self.ty, self.tx = np.nonzero(tmask)
        self.tidx = np.full((self.h, self.w), -1, np.int64)
        self.tidx[self.ty, self.tx] = np.arange(self.ty.size)
        self.wp = self.w + 2 * radius
        dy, dx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
        self.dy = dy.ravel()
        self.dx = dx.ravel()
        self.offs = self.dy * self.wp + self.dx
        self.t_lin = (self.ty + radius) * self.wp + (self.tx + radius)
        # voting: which (target, offset) pairs land on a hole pixel
        py = self.ty[:, None] + self.dy[None, :]
        px = self.tx[:, None] + self.dx[None, :]
        inside = (py >= 0) & (py < self.h) & (px >= 0) & (px < self.w)
        pyc = np.clip(py, 0, self.h - 1)
        pxc = np.clip(px, 0, self.w - 1)
        land = inside & hole[pyc, pxc]
        self.vote_t, self.vote_o = np.nonzero(land)
        self.vote_pix = (pyc * self.w + pxc)[self.vote_t, self.vote_o]

    def padded(self, img):
        r = self.r
        return cv2.copyMakeBorder(img, r, r, r, r, cv2.BORDER_REFLECT_101).reshape(-1, img.shape[2])

    def src_lin(self, sy, sx):
        return (sy + self.r) * self.wp + (sx + self.r)


def _cost(flat, tpatch, level, sy, sx):
    """Mean squared difference between the target patches and the source patches at (sy, sx)."""
    sp = flat[level.src_lin(sy, sx)[:, None] + level.offs[None, :]]
    d = tpatch - sp
    return np.einsum("npc,npc->n", d, d) / (d.shape[1] * d.shape[2])


def _try(level, flat, tpatch, sy, sx, cost, cy, cx, sel=None):
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
    c = _cost(flat, tpatch[idx], level, cy[idx], cx[idx])
    better = c < cost[idx]
    j = idx[better]
    sy[j] = cy[j]
    sx[j] = cx[j]
    cost[j] = c[better]


def _patchmatch(level, cur, sy, sx, iters, rng):
    """Improve the NNF (sy, sx) of all target patches of `cur` by propagation and random search."""
    flat = level.padded(cur)
    tpatch = flat[level.t_lin[:, None] + level.offs[None, :]]
    cost = _cost(flat, tpatch, level, sy, sx)
    n = sy.size
    radius0 = min(max(level.h, level.w), 64)
    for _ in range(iters):
        for jump in (1, 2, 4) if iters > 1 else (1,):
            for dy, dx in _DIRS:
                ny = level.ty - dy * jump
                nx = level.tx - dx * jump
                inb = (ny >= 0) & (ny < level.h) & (nx >= 0) & (nx < level.w)
                nb = np.where(inb, level.tidx[np.clip(ny, 0, level.h - 1), np.clip(nx, 0, level.w - 1)], -1)
                has = nb >= 0
                nbc = np.where(has, nb, 0)
                _try(level, flat, tpatch, sy, sx, cost, sy[nbc] + dy * jump, sx[nbc] + dx * jump, has)
        rad = radius0
        while rad >= 1:
            cy = sy + rng.integers(-rad, rad + 1, n)
            cx = sx + rng.integers(-rad, rad + 1, n)
            _try(level, flat, tpatch, sy, sx, cost, cy, cx)
            rad //= 2
        k = rng.integers(0, level.vy.size, n)
        _try(level, flat, tpatch, sy, sx, cost, level.vy[k], level.vx[k])
    return cost


def _vote(level, cur, sy, sx, cost):
    """New hole pixels: similarity-weighted average of what the overlapping source patches propose."""
    c = cur.shape[2]
    flat = level.padded(cur)
    sigma2 = max(float(np.percentile(cost, 75)), 1e-6)
    wt = np.exp(-cost / (2.0 * sigma2)) + 1e-8
    src = level.src_lin(sy, sx)[level.vote_t] + level.offs[level.vote_o]
    w = wt[level.vote_t]
    npix = level.h * level.w
    den = np.bincount(level.vote_pix, weights=w, minlength=npix)
    out = cur.reshape(-1, c).copy()
    holes = np.nonzero(level.hole.ravel())[0]
    for ch in range(c):
        num = np.bincount(level.vote_pix, weights=w * flat[src, ch], minlength=npix)
        out[holes, ch] = (num[holes] / np.maximum(den[holes], 1e-12)).astype(np.float32)
    return out.reshape(cur.shape)


def _down(img, hole, source_ok):
    """Halve the image (averaging known pixels only), the hole (any) and the allowed sources (all)."""
    h, w = hole.shape
    size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    known = (~hole).astype(np.float32)
    num = cv2.resize(img * known[:, :, None], size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    if num.ndim == 2:
        num = num[:, :, None]
    small = num / np.maximum(den, 1e-6)[:, :, None]
    small_hole = den < 0.999
    small_ok = cv2.resize(source_ok.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    return small.astype(np.float32), small_hole, small_ok & ~small_hole


def _smooth_fill(img, hole):
    """Initial guess at the coarsest level: OpenCV Telea per channel (float, no 8-bit rounding)."""
    m = hole.astype(np.uint8)
    out = img.copy()
    for ch in range(img.shape[2]):
        out[:, :, ch] = cv2.inpaint(np.ascontiguousarray(img[:, :, ch] * 255.0), m, 3, cv2.INPAINT_TELEA)
    return np.clip(out / 255.0, 0.0, 1.0)


def patch_inpaint(img, hole, *, source_ok=None, patch_size=7, seed=0, em_iters=None, progress=None, cancel=None):
    """Fill `hole` (bool (H, W)) of float image (H, W, C) from patches of the known part; returns a new image.

    `source_ok` restricts where source patches may come from (default: everywhere outside the hole), so
    other damage is never copied. Returns None when no whole patch fits in the known area.
    """
    rep = reporter(progress, cancel)
    rng = np.random.default_rng(seed)
    img = np.ascontiguousarray(img, dtype=np.float32)
    hole = np.asarray(hole, bool)
    source_ok = ~hole if source_ok is None else (np.asarray(source_ok, bool) & ~hole)
    radius = max(1, patch_size // 2)
    # pyramid: go down while the hole is wider than a few patches and enough sources remain
    levels = [(img, hole, source_ok)]
    while True:
        im, ho, so = levels[-1]
        if min(ho.shape) < 4 * (2 * radius + 1):
            break
        dist = cv2.distanceTransform(ho.astype(np.uint8), cv2.DIST_L2, 3)
        if dist.max() <= radius:
            break
        nxt = _down(im, ho, so)
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
        im, ho, so = levels[li]
        level = _Level(im, ho, so, radius)
        if level.vy.size == 0:
            return None
        rep.check()
        if cur is None:
            cur = _smooth_fill(im, ho)
            k = rng.integers(0, level.vy.size, level.ty.size)
            sy, sx = level.vy[k].copy(), level.vx[k].copy()
        else:
            # upsample the NNF: a fine target takes its coarse parent's source, scaled, plus its sub-offset
            pl, psy, psx = prev
            py = np.clip(level.ty // 2, 0, pl.h - 1)
            px = np.clip(level.tx // 2, 0, pl.w - 1)
            pi = pl.tidx[py, px]
            k = rng.integers(0, level.vy.size, level.ty.size)
            sy, sx = level.vy[k].copy(), level.vx[k].copy()
            has = pi >= 0
            cy = psy[np.where(has, pi, 0)] * 2 + (level.ty & 1)
            cx = psx[np.where(has, pi, 0)] * 2 + (level.tx & 1)
            inb = has & (cy >= 0) & (cy < level.h) & (cx >= 0) & (cx < level.w)
            cy = np.where(inb, cy, 0)
            cx = np.where(inb, cx, 0)
            ok = inb & level.valid[cy, cx]
            sy[ok], sx[ok] = cy[ok], cx[ok]
            # the first estimate of the fine hole: a vote of fine source pixels with the inherited NNF
            cur = _vote(level, im, sy, sx, np.zeros(sy.size))
        n_em = em_iters or (3 if li == 0 else 5 if li == 1 else 8)
        for it in range(n_em):
            cost = _patchmatch(level, cur, sy, sx, 2 if li > 0 or it == 0 else 1, rng)
            cur = _vote(level, cur, sy, sx, cost)
            done = (nlev - 1 - li + (it + 1) / n_em) / nlev
            rep(done, f"patch fill, level {nlev - li}/{nlev}")
        prev = (level, sy, sx)
    return cur
