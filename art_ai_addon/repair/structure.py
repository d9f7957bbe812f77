"""Structure first: an exemplar fill in the order of the isophotes entering the hole (Criminisi et al. 2004).

Used as the first guess of the multi-scale PatchMatch at its coarsest level (patchmatch.patch_inpaint's
`coarse_init`), where the layout of the fill is decided and the hole is a few pixels across, so the greedy fill
is cheap. PatchMatch started from a smooth guess fills the middle of a hole with whatever matches a blur; a
greedy fill that first extends the strong edges arriving at the hole's border (a rim, a horizon, a tile joint)
gives it a guess in which those edges already cross the hole, and the EM iterations refine from there.

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
# sources are searched within this many hole sizes (and at least 24 px) of the target
WINDOW = 4.0


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

    source_ok: where source patches may come from (default everywhere outside the hole). Returns the input's
    copy with Telea's fill where no intact patch exists at all.
    """
    import cv2

    img = np.ascontiguousarray(img, dtype=np.float32)
    hole = np.asarray(hole, bool)
    h, w = hole.shape
    r = max(1, patch_size // 2)
    size = 2 * r + 1
    source_ok = ~hole if source_ok is None else (np.asarray(source_ok, bool) & ~hole)
    valid = cv2.erode(source_ok.astype(np.uint8), np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0) > 0
    vy, vx = np.nonzero(valid)
    out = img.copy()
    if vy.size == 0 or not hole.any():
        return out
    known = ~hole
    out[hole] = 0.0
    conf = known.astype(np.float32)
    feats = _features(np.where(hole[:, :, None], 0.0, img))  # sources never touch the hole, so this is exact there
    pad = lambda a: np.pad(a, ((r, r), (r, r)) + ((0, 0),) * (a.ndim - 2), mode="edge")  # noqa: E731
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    dy, dx = dy.ravel(), dx.ravel()
    # all source patches, (n, P * C), and their squares
    fp = pad(feats)
    src = fp[vy[:, None] + r + dy[None, :], vx[:, None] + r + dx[None, :]].reshape(vy.size, -1)
    src2 = src * src
    nch = feats.shape[2]
    gx, gy = _isophotes(img, known)
    n_comp, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    extent = max(1, max(np.ptp(np.nonzero(labels == i)[k]) for i in range(1, n_comp) for k in (0, 1)))
    win = max(24, int(WINDOW * extent))
    diag2 = float(h * h + w * w)
    unknown = hole.copy()
    ball = np.ones((3, 3), np.uint8)
    while unknown.any():
        front = unknown & (cv2.dilate((~unknown).astype(np.uint8), ball) > 0)
        fy, fx = np.nonzero(front)
        if fy.size == 0:  # (a hole with no known pixel around it at all)
            break
        # confidence of each front pixel: mean confidence over its patch
        cpad = pad(np.where(unknown, 0.0, conf))
        c = cpad[fy[:, None] + r + dy[None, :], fx[:, None] + r + dx[None, :]].mean(axis=1)
        # the normal of the fill front, from the smoothed mask of what is left
        sm = cv2.GaussianBlur(unknown.astype(np.float32), (0, 0), 1.5)
        ny, nx = cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3)[fy, fx], cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3)[fy, fx]
        nrm = np.hypot(ny, nx) + 1e-8
        ny, nx = ny / nrm, nx / nrm
        # data term: the strongest known isophote in the patch, against the border normal
        gxp, gyp = pad(gx), pad(gy)
        wy, wx = fy[:, None] + r + dy[None, :], fx[:, None] + r + dx[None, :]
        pgx, pgy = gxp[wy, wx], gyp[wy, wx]
        k = np.argmax(pgx * pgx + pgy * pgy, axis=1)
        ix, iy = pgx[np.arange(fy.size), k], pgy[np.arange(fy.size), k]
        # isophote = gradient rotated by 90 degrees: (-gy, gx) in (x, y)
        d = np.abs(-iy * nx + ix * ny)
        pri = ((1 - CONF_FLOOR) * c + CONF_FLOOR) * (d + DATA_FLOOR)
        j = int(np.argmax(pri))
        py, px = int(fy[j]), int(fx[j])
        # the target patch: known (or filled) pixels only
        op = pad(np.where(unknown[:, :, None], 0.0, feats))
        tgt = op[py + r + dy, px + r + dx].reshape(-1)
        kn = np.repeat(~pad(unknown)[py + r + dy, px + r + dx], nch).astype(np.float32)
        near = (np.abs(vy - py) <= win) & (np.abs(vx - px) <= win)
        idx = np.nonzero(near)[0] if near.any() else np.arange(vy.size)
        s = src[idx]
        cost = (src2[idx] @ kn - 2.0 * (s @ (tgt * kn)) + float((tgt * tgt * kn).sum())) / max(float(kn.sum()), 1.0)
        cost += DISTANCE_WEIGHT * ((vy[idx] - py) ** 2 + (vx[idx] - px) ** 2) / diag2
        b = idx[int(np.argmin(cost))]
        sy, sx = int(vy[b]), int(vx[b])
        # copy into the unknown pixels of the target patch (inside the image)
        ty, tx = py + dy, px + dx
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        ty, tx, oy, ox = ty[inside], tx[inside], sy + dy[inside], sx + dx[inside]
        put = unknown[ty, tx]
        ty, tx, oy, ox = ty[put], tx[put], oy[put], ox[put]
        out[ty, tx] = img[oy, ox]
        feats[ty, tx] = feats[oy, ox]
        # the copied pixels carry on the isophotes of their source (so an edge keeps leading the fill)
        gx[ty, tx], gy[ty, tx] = gx[oy, ox], gy[oy, ox]
        conf[ty, tx] = c[j]
        unknown[ty, tx] = False
    if unknown.any():
        out[unknown] = img[unknown]
    return out
