"""Structure first: an exemplar fill in the order of the isophotes entering the hole (Criminisi et al. 2004).

Used by inpaint's `auto` as one of the fills it chooses between per hole ("structure": this fill at full size,
refined by a one-level PatchMatch started from it). The multi-scale PatchMatch decides the layout of a fill at
its coarsest level, where a thin edge (a cup's rim 4 px wide) has vanished: it filled a hole across a rim with
a wedge of the saucer's red. The greedy fill, which first extends the strong edges arriving at the hole's border
(a rim, a horizon, a tile joint), continues them. As the first guess of the multi-scale PatchMatch at its
coarsest level instead (patch_inpaint's `coarse_init`) it did not help: on bench/inpaint.py's grid (12
pictures x 9 hole classes) the median against pypatchmatch went from -0.52 to -0.60 dB.

Each step takes the border pixel of highest priority P = C * D: C, the confidence, is the share of known (or
already filled, with their own confidence) pixels in its patch; D, the data term, is how strongly an isophote
(the direction of an edge) points into the hole there: |grad(I) rotated 90 degrees . n|, n the normal of the
hole's border. The patch around that pixel is matched against every intact patch within a window (sum of
squared differences on its known pixels, colour and luminance gradient, plus a small penalty for distance), and
its unknown pixels copy the best one. Everything is numpy + OpenCV (the engine worker's "opencv").
"""

from __future__ import annotations

import numpy as np

# weight of the luminance gradient (Sobel / 4) against colour in the patch match
GRADIENT_WEIGHT = 1.0
# the data term's floor, so flat borders still fill, onion-peel like (in units of a normalised gradient)
DATA_FLOOR = 0.02
# confidence is regularised as (1 - w) * C + w, so that it does not fall to nothing deep in a large hole
CONF_FLOOR = 0.3
# penalty for the distance between a target patch and its source, per squared image diagonal, in units of the
# mean squared difference per patch value (nearby content first, as at PatchMatch's coarsest level)
DISTANCE_WEIGHT = 0.5
# sources are searched within this many hole sizes (and at least 24 px) of the hole
WINDOW = 2.0
# above this many source patches in a window, every other position in y and x is searched
_MAX_SOURCES = 12000


def _features(img):
    import cv2

    g = img.mean(axis=2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) * (GRADIENT_WEIGHT / 4)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) * (GRADIENT_WEIGHT / 4)
    return np.concatenate([img, gx[:, :, None], gy[:, :, None]], axis=2).astype(np.float32)


def _isophotes(img, known):
    """Per pixel, the luminance gradient (Sobel / 4) where its 3x3 neighbourhood is known, else 0."""
    import cv2

    g = img.mean(axis=2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 4
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 4
    ok = cv2.erode(known.astype(np.uint8), np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE) > 0
    return np.where(ok, gx, 0.0), np.where(ok, gy, 0.0)


def structure_fill(img, hole, source_ok=None, *, patch_size=7):
    """Fill `hole` of float image (H, W, C) greedily, strong edges first; returns a new image.

    source_ok: where source patches may come from (default everywhere outside the hole). Each connected part
    of the hole is filled on its own, from sources within a window around it (WINDOW times its size); a part
    with no intact patch there keeps the input's values.
    """
    import cv2

    img = np.ascontiguousarray(img, dtype=np.float32)
    hole = np.asarray(hole, bool)
    h, w = hole.shape
    r = max(1, patch_size // 2)
    source_ok = ~hole if source_ok is None else (np.asarray(source_ok, bool) & ~hole)
    out = img.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hole.astype(np.uint8), connectivity=8)
    for i in range(1, n):
        x0, y0, bw, bh = (int(v) for v in stats[i, :4])
        m = max(24, int(WINDOW * max(bw, bh))) + r
        ya, yb, xa, xb = max(0, y0 - m), min(h, y0 + bh + m), max(0, x0 - m), min(w, x0 + bw + m)
        part = labels[ya:yb, xa:xb] == i
        got = _greedy(img[ya:yb, xa:xb], part, hole[ya:yb, xa:xb] & ~part, source_ok[ya:yb, xa:xb], r, (h, w))
        out[ya:yb, xa:xb][part] = got[part]
    return out


def _greedy(img, fill, blind, source_ok, r, full_shape):
    """The greedy fill of `fill` in a crop; `blind`: other damage (never a source, never filled, never known)."""
    import cv2

    h, w = fill.shape
    size = 2 * r + 1
    valid = cv2.erode(source_ok.astype(np.uint8), np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0) > 0
    vy, vx = np.nonzero(valid)
    out = img.copy()
    if vy.size == 0:
        return out
    if vy.size > _MAX_SOURCES:  # a large part: every other source position (neighbours are alike)
        keep = ((vy % 2) == 0) & ((vx % 2) == 0)
        vy, vx = vy[keep], vx[keep]
    bad = fill | blind
    unknown = fill.copy()
    conf = (~bad).astype(np.float32)
    feats = _features(np.where(bad[:, :, None], 0.0, img))  # sources never touch the damage: exact there
    gx, gy = _isophotes(img, ~bad)

    def pad(a, value=0.0):
        return np.pad(a, ((r, r), (r, r)) + ((0, 0),) * (a.ndim - 2), mode="constant", constant_values=value)

    featp, confp, gxp, gyp = pad(np.where(bad[:, :, None], 0.0, feats)), pad(conf), pad(gx), pad(gy)
    darkp = pad(bad, True)  # pixels that do not count in a target patch (unknown, other damage, off the crop)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    dy, dx = dy.ravel(), dx.ravel()
    src = featp[vy[:, None] + r + dy[None, :], vx[:, None] + r + dx[None, :]].reshape(vy.size, -1)
    src2 = src * src
    nch = feats.shape[2]
    diag2 = float(full_shape[0] ** 2 + full_shape[1] ** 2)
    ball = np.ones((3, 3), np.uint8)
    while unknown.any():
        ys, xs = np.nonzero(unknown)
        ya, yb, xa, xb = max(0, ys.min() - 4), min(h, ys.max() + 5), max(0, xs.min() - 4), min(w, xs.max() + 5)
        unk = unknown[ya:yb, xa:xb]
        front = unk & (cv2.dilate((~unk).astype(np.uint8), ball, borderType=cv2.BORDER_REPLICATE) > 0)
        fy, fx = np.nonzero(front)
        if fy.size == 0:
            break
        # the normal of the fill front, from the smoothed mask of what is left
        sm = cv2.GaussianBlur(unk.astype(np.float32), (0, 0), 1.5)
        ny, nx = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)[fy, fx], cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)[fy, fx]
        nrm = np.hypot(ny, nx) + 1e-8
        ny, nx = ny / nrm, nx / nrm
        fy, fx = fy + ya, fx + xa
        wy, wx = fy[:, None] + r + dy[None, :], fx[:, None] + r + dx[None, :]
        c = confp[wy, wx].mean(axis=1)  # confidence: unknown pixels count 0
        # data term: the strongest known isophote in the patch, against the front's normal
        pgx, pgy = gxp[wy, wx], gyp[wy, wx]
        k = np.argmax(pgx * pgx + pgy * pgy, axis=1)
        rows = np.arange(fy.size)
        ix, iy = pgx[rows, k], pgy[rows, k]
        d = np.abs(-iy * nx + ix * ny)  # the isophote is the gradient turned by 90 degrees
        pri = ((1 - CONF_FLOOR) * c + CONF_FLOOR) * (d + DATA_FLOOR)
        j = int(np.argmax(pri))
        py, px = int(fy[j]), int(fx[j])
        # the best source for the known pixels of the target patch
        tgt = featp[py + r + dy, px + r + dx].reshape(-1)
        kn = np.repeat(~darkp[py + r + dy, px + r + dx], nch).astype(np.float32)
        cost = (src2 @ kn - 2.0 * (src @ (tgt * kn)) + float((tgt * tgt * kn).sum())) / max(float(kn.sum()), 1.0)
        cost += DISTANCE_WEIGHT * ((vy - py) ** 2 + (vx - px) ** 2) / diag2
        b = int(np.argmin(cost))
        sy, sx = int(vy[b]), int(vx[b])
        # copy into the unknown pixels of the target patch (inside the crop)
        ty, tx = py + dy, px + dx
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        ty, tx, oy, ox = ty[inside], tx[inside], sy + dy[inside], sx + dx[inside]
        put = unknown[ty, tx]
        ty, tx, oy, ox = ty[put], tx[put], oy[put], ox[put]
        out[ty, tx] = img[oy, ox]
        featp[ty + r, tx + r] = featp[oy + r, ox + r]
        # the copied pixels carry on the isophotes of their source (an edge keeps leading the fill)
        gxp[ty + r, tx + r], gyp[ty + r, tx + r] = gxp[oy + r, ox + r], gyp[oy + r, ox + r]
        confp[ty + r, tx + r] = c[j]
        darkp[ty + r, tx + r] = False
        unknown[ty, tx] = False
    return out
