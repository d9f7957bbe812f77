"""inpaint(): fill the masked parts of an image; the method is chosen per call or per hole ("auto")."""

from __future__ import annotations

import warnings

import numpy as np

from .. import methods as _methods
from ..core import as_image, as_mask, check_work_memory, merge_alpha, reporter, split_alpha
from ..errors import InputError

METHODS = _methods.names("inpaint")

# a hole whose widest point is at most this many pixels from its edge is a "thin" scratch (~8 px wide)
THIN_RADIUS = 4.0
# mask values above this count as damaged (a little above 0 so 8-bit noise in painted masks is ignored)
HOLE_LEVEL = 1.0 / 255.0


def _opencv(rgb, hole, flag, radius=3, *, eight_bit=None):
    """OpenCV's inpainting per channel in float32, so 16-bit and float images keep their precision; where the pixels
    it reads (those within its radius of the hole) are all 8-bit levels, in 8 bits, all channels in one call (what
    OpenCV does fastest: a third of the time, the same fill to within rounding). eight_bit=True: in 8 bits whatever
    the pixels (a first guess the caller refines far below 1/255, as _smooth's)."""
    import cv2

    m = hole.astype(np.uint8)
    if eight_bit is None and rgb.shape[2] in (1, 3):
        band = cv2.dilate(m, np.ones((2 * radius + 3,) * 2, np.uint8)) > 0
        band &= ~hole
        seen = rgb[band] * np.float32(255.0)
        eight_bit = not band.any() or float(np.abs(seen - np.rint(seen)).max()) < 1e-3
    if eight_bit and rgb.shape[2] in (1, 3):
        got = cv2.inpaint(cv2.convertScaleAbs(rgb, alpha=255.0).reshape(rgb.shape), m, radius, flag)
        out = rgb.copy()
        out[hole] = got.reshape(rgb.shape)[hole].astype(np.float32) * np.float32(1.0 / 255.0)
        return out
    out = np.empty_like(rgb)
    for ch in range(rgb.shape[2]):
        # OpenCV's float path assumes 0..255 values (in 0..1 it diverges), so scale around the call
        out[:, :, ch] = cv2.inpaint(np.ascontiguousarray(rgb[:, :, ch] * 255.0), m, radius, flag)
    return np.clip(out / 255.0, 0.0, 1.0)


def _telea(rgb, hole, **_):
    import cv2

    return _opencv(rgb, hole, cv2.INPAINT_TELEA)


def _ns(rgb, hole, **_):
    import cv2

    return _opencv(rgb, hole, cv2.INPAINT_NS)


def _smooth(rgb, hole, *, solve=None, rep=None, max_iter=400, init=None, **_):
    """Biharmonic fill started from Telea's: continues gradients, not just values (+2 dB on scratches).

    solve: the part of the hole to solve for (default all of it); the rest keeps Telea's fill and serves
    as boundary, so scratches running into a large hole need not wait for the slow solve of the hole.
    init: a better first guess than Telea's for the solved part (e.g. the fill at half size, upsampled).
    """
    import cv2

    from .smooth import biharmonic_fill

    telea = _opencv(rgb, hole, cv2.INPAINT_TELEA, eight_bit=True)  # (the solve refines it far below 1/255)
    solve = hole if solve is None else solve
    if init is not None:
        telea[solve] = init[solve]
    return biharmonic_fill(telea, solve, telea, rep=rep, max_iter=max_iter)


def _patch(rgb, hole, *, seed=0, patch_size=7, em_iters=None, source_ok=None, rep=None, overwrite=False, **_):
    from .patchmatch import patch_inpaint

    out = patch_inpaint(rgb, hole, source_ok=source_ok, patch_size=patch_size, seed=seed, em_iters=em_iters,
                        rep=rep, overwrite=overwrite)
    if out is None:
        warnings.warn("patch inpainting: the known area is too small for a single patch; used Telea instead",
                      RuntimeWarning, stacklevel=3)
        return _telea(rgb, hole)
    return out


def _structure(rgb, hole, *, seed=0, source_ok=None, patch_size=7, em_iters=None, rep=None, **_):
    """Structure first: the greedy fill in isophote order (structure.py), refined by a one-level PatchMatch
    started from it (the copied edges stay where the greedy fill put them, the seams between its patches go)."""
    from .patchmatch import patch_inpaint
    from .structure import structure_fill

    guess = structure_fill(rgb, hole, source_ok, patch_size=patch_size or 7)
    out = patch_inpaint(guess, hole, source_ok=source_ok, patch_size=patch_size or 7, seed=seed, em_iters=em_iters,
                        init=guess, max_levels=1, rep=rep)
    return guess if out is None else out


def thin_and_large(hole: np.ndarray, thin_radius: float = THIN_RADIUS, dist: np.ndarray | None = None):
    """Split a hole mask into thin parts (scratches, text) and large ones (blobs, missing areas).

    Decided per connected component by its widest point (distance-transform maximum); a component that
    is mostly thin but has a wide part (a scratch running into a blob) is split: the wide part, grown by
    its own radius, is large, the rest stays thin.
    """
    import cv2

    h, w = hole.shape
    dist = _hole_depth(hole) if dist is None else dist
    core = (dist > thin_radius).astype(np.uint8)
    # a few wide pixels where scratches cross are not a hole
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= 2 * thin_radius * thin_radius
    keep[0] = False
    if not keep.any():
        return hole.copy(), np.zeros_like(hole)
    core = keep[labels]
    # each wide part grows by its own radius (+1 px): a hole pixel is large when the wide part nearest to it is at
    # most that far (a distance transform costs the same whatever the radius; a dilation costs radius^2). Computed
    # per cluster of wide parts whose boxes, grown by the largest radius, touch (in the box of the cluster): every
    # wide part that could be nearest to a pixel within reach is in the pixel's cluster, so the clusters give what
    # the whole picture would
    radius = np.zeros(n, np.float32)
    np.maximum.at(radius, labels[core], dist[core])
    grow = int(np.ceil(radius.max())) + 2
    reach = np.ceil(radius) + 1.0
    zone = np.zeros((h, w), np.uint8)
    for i in np.flatnonzero(keep):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        zone[max(0, y - grow):y + bh + grow, max(0, x - grow):x + bw + grow] = 1
    k, zone, boxes, _ = cv2.connectedComponentsWithStats(zone, connectivity=8)
    cluster = np.zeros(n, np.int32)  # each wide part's cluster (0: not a wide part)
    cluster[keep] = zone[stats[keep, 1], stats[keep, 0]]
    del zone
    large = np.zeros_like(hole)
    for c, (x, y, bw, bh) in enumerate(boxes[1:k, :4].tolist(), start=1):
        ys, xs = slice(y, y + bh), slice(x, x + bw)
        labels_box = labels[ys, xs]
        core_box = cluster[labels_box] == c  # (the cluster's own wide parts: others may reach into its box)
        away, nearest = cv2.distanceTransformWithLabels((~core_box).view(np.uint8), cv2.DIST_L2, 5,
                                                        labelType=cv2.DIST_LABEL_PIXEL)
        to_part = np.zeros(int(nearest.max()) + 1, np.int32)
        to_part[nearest[core_box]] = labels_box[core_box]
        large[ys, xs] |= hole[ys, xs] & (away <= reach[to_part[nearest]])
    return hole & ~large, large


# auto, large holes: the fills it chooses between, best first when they score alike (detail over smoothness)
# (the structure fill is not among them: as a fourth candidate it doubled auto's time and, on bench/inpaint.py
# --grid, moved the median against pypatchmatch from -0.54 to -0.39 dB but the worst decile from -3.31 to -3.54 and
# the renders' from -3.72 to -5.29, and auto's test copies, off the edges, did not pick it where it was right;
# it is the "structure" method, the artist's choice for holes across an edge)
_CHOICES = ("patch", "smooth+detail", "smooth")
# dB a fill with more detail may lose on the test copies and still be chosen (its error is the price of grain)
_DETAIL_MARGIN = {"patch": 1.0, "smooth+detail": 0.5, "smooth": 0.0}
# share of the intact copy area's gradient energy a fill must reach to be chosen (0.7: on the bench's photo holes
# 0.5 gives +0.2 dB more but less detail than pypatchmatch's, x0.98 instead of x1.06)
_MIN_DETAIL = 0.7
# scale (px) that splits smooth+detail: below it from PatchMatch, above it from the smooth fill (3 px: more
# of the patch fill's detail than 2 px, and closer on the bench's photo holes, by 0.2-0.3 dB)
_DETAIL_SIGMA = 3.0
# thin parts (scratches): pixels on the hole's edge keep the smooth fill (next to known pixels it is close, and a
# 1-px scratch is all edge: with grain there too the gallery's scratches lost 3.8 dB); from 2 px in, the smooth
# fill's shading above _THIN_SIGMA px plus a one-level PatchMatch's detail below it, scaled so that the inner
# pixels get _THIN_DETAIL times the gradient energy of the intact pixels around the scratches. Calibrated on
# the bench's scratches: x1.03-1.08 of pypatchmatch's detail over seeds 0-2 (1.5: x1.01-1.05), 1.5 dB closer
# than it; a fixed gain instead overshoots in textures, whose copied grain is stronger than in photos
_THIN_SIGMA = 2.0
_THIN_DETAIL = 1.6
_GAIN_MAX = 2.0  # (the gain on the detail is held within 0.5-2)
# auto: a "thin" part that is compact (its area at most this many discs of its widest radius; a 3-px scratch
# 60 px long has 25) and wider than a 1-3 px line is not a scratch but a small hole, and gets the choice of the
# large ones. The thin fill (smooth + grain) was calibrated on scratches and text; on bench/inpaint.py's grid,
# small compact holes in textures and renders lost 1-5 dB to the plain patch fill with it (grid medians:
# texture blobs -3.3 dB against pypatchmatch where patch was +2.2)
_COMPACT = 3.0
_SCRATCH_RADIUS = 1.5
# ... and so is a long one whose pixels lie on average more than this many px from the hole's edge: a brush stroke
# 7 px wide or more (mean 2.1-2.2 px; a 5-px line, cv2's thickness 3, has 1.7 and stays a scratch, as the benches'
# 1-5 px scratches do). The mean, not the widest point: where scratches cross or bend, they are wider. On
# bench/inpaint.py --grid --quick, the small brush strokes (7-10 px wide) filled as scratches lost 1-5 dB to the
# plain patch fill on renders and synthetic pictures
_WIDE_MEAN = 2.0
# test copies per large hole: the choice on one copy is a coin toss where the hole is small
_COPIES = 3
# the candidates at half size only rank the fills: fewer EM iterations per level, fewer smooth-fill steps. One EM
# iteration (was 2), the patch candidate on the copies alone (the holes, which it is not scored on, keep the smooth
# candidate's fill as context): the candidates 10.8 -> 6.5 s CPU of auto's 23 s on bench/scaling.py's 1080p holes;
# bench/inpaint.py --grid --quick (seed 0, auto): +0.23 / -1.48 dB median / worst decile -> +0.23 / -1.39
_CHOICE_EM = 1
_CHOICE_CG = 100


def _test_copies(large, hole, labels, n, margin, per_hole=1):
    """Copies of each large hole moved onto intact pixels nearby, where the right fill is known.

    Returns the copies' mask and, per copy pixel, the label of the hole it copies (0 elsewhere). A copy keeps
    `margin` pixels from every hole and from the other copies, so neither changes what the other sees.
    """
    import cv2

    h, w = hole.shape
    copies = np.zeros((h, w), np.int32)
    ball = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2)
    blocked = cv2.dilate(hole.astype(np.uint8), ball) > 0
    # every hole's pixels in raster order, from one pass over the labels (not one pass per hole)
    py, px = np.nonzero(labels)
    order = np.argsort(labels[py, px], kind="stable")
    ends = np.cumsum(np.bincount(labels[py, px], minlength=n))
    for i in range(1, n):
        part = order[ends[i - 1]:ends[i]]
        ys, xs = py[part], px[part]
        size = max(ys.ptp(), xs.ptp()) + 1
        placed = 0
        for dist in (1.0, 1.5, 2.0, 3.0):
            for k in range(8):
                a = k * np.pi / 4 + (0.4 * i if dist > 1.0 else 0.0)
                dy, dx = int(round(np.sin(a) * (dist * size + margin))), int(round(np.cos(a) * (dist * size + margin)))
                cy, cx = ys + dy, xs + dx
                if cy.min() < 0 or cx.min() < 0 or cy.max() >= h or cx.max() >= w or blocked[cy, cx].any():
                    continue
                copies[cy, cx] = i
                # (the dilation of the copy in its box grown by the margin: the same pixels as over the picture)
                y0, x0 = max(cy.min() - margin, 0), max(cx.min() - margin, 0)
                y1, x1 = min(cy.max() + margin + 1, h), min(cx.max() + margin + 1, w)
                one = np.zeros((y1 - y0, x1 - x0), np.uint8)
                one[cy - y0, cx - x0] = 1
                blocked[y0:y1, x0:x1] |= cv2.dilate(one, ball) > 0
                placed += 1
                if placed == per_hole:
                    break
            if placed == per_hole:
                break
    return copies > 0, copies


def _grad_energy(rgb):
    """Squared luminance gradient (Sobel) per pixel: the detail measure of the hole choice."""
    import cv2

    g = rgb.mean(axis=2)
    return cv2.Sobel(g, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(g, cv2.CV_32F, 0, 1) ** 2


def _count(mask):
    import cv2

    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1 if mask.any() else 0


def _half_mask(mask):
    """A mask at half size: a pixel is set where any of its four full-size pixels is."""
    import cv2

    h, w = mask.shape
    size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 1e-3


def _half(img, hole):
    """An image at half size, averaging the pixels outside `hole` only (a hole pixel's value is garbage)."""
    import cv2

    h, w = hole.shape
    size = (max(1, (w + 1) // 2), max(1, (h + 1) // 2))
    known = (~hole).astype(np.float32)
    num = cv2.resize(img * known[:, :, None], size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    return (num / np.maximum(den, 1e-6)[:, :, None]).astype(np.float32)


def _with_detail(smooth, patch, sigma, gain=1.0):
    """The smooth fill above `sigma` px plus `gain` times PatchMatch's detail below it (smooth+detail)."""
    import cv2

    detail = patch - cv2.GaussianBlur(patch, (0, 0), sigma)
    return np.clip(cv2.GaussianBlur(smooth, (0, 0), sigma) + gain * detail, 0.0, 1.0)


def _thin_fill(rgb, hole, thin, seed, rep, source_ok=None, **options):
    """Thin parts: the biharmonic fill, inside with the grain of a one-level PatchMatch started from it.

    The rest of the hole keeps pull_fill's average (context for the patches, never a source); source_ok: where else
    patches may come from (default: everywhere outside the hole)."""
    import cv2

    from . import patchmatch
    from .patchmatch import grain_inpaint
    from .smooth import biharmonic_fill, pull_fill

    # (started from the push-pull average, not Telea's fill as _smooth: the same fill within 0.015, in a third of
    # the time)
    first = pull_fill(rgb, hole)
    smooth = biharmonic_fill(first, thin, first, rep=rep)
    depth = cv2.distanceTransform(np.pad(hole, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    deep = thin & (depth > 1.0)  # (the edge pixels are context for the patches, with the smooth fill's values)
    source_ok = ~hole if source_ok is None else source_ok & ~hole
    patch = grain_inpaint(smooth, deep, source_ok=source_ok, seed=seed, patch_size=patchmatch.GRAIN_PATCH,
                          iters=options.get("em_iters") or patchmatch.GRAIN_ITERS) if deep.any() else None
    if patch is None:  # all edge, or no whole patch fits in the known area: the smooth fill alone
        return smooth
    # the smooth fill above _THIN_SIGMA px, the patches' detail below it (smooth+detail's, both blurs done once)
    low, blurred = cv2.GaussianBlur(smooth, (0, 0), _THIN_SIGMA), cv2.GaussianBlur(patch, (0, 0), _THIN_SIGMA)
    gain = _thin_gain(low, patch, blurred, hole, thin)
    grain = np.clip(low[deep] + gain * (patch[deep] - blurred[deep]), 0.0, 1.0)
    w = np.clip(depth - 1.0, 0.0, 1.0)[deep][:, None]  # 0 on the edge, 1 from 2 px in
    out = smooth
    out[deep] = smooth[deep] * (1.0 - w) + grain * w
    return out


def _lum(img):
    """The mean of the channels (H, W), in one pass."""
    import cv2

    if img.shape[2] != 3:
        return img.mean(axis=2, dtype=np.float32)
    return cv2.transform(img, np.full((1, 3), 1.0 / 3.0, np.float32))


def _thin_gain(low, patch, blurred, hole, thin):
    """The gain on PatchMatch's detail that gives the thin fill _THIN_DETAIL of the gradient energy of the intact
    pixels around it: energy(low + g * detail) = target is a quadratic in g (luminance Sobel, as _grad_energy).
    low: the smooth fill blurred by _THIN_SIGMA; blurred: the patch fill blurred by it."""
    import cv2

    near = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ring = (cv2.dilate(thin.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0) & ~near
    inner = cv2.erode(thin.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    inner = inner if inner.sum() >= 16 else thin
    if not ring.any():
        return 1.0
    lum = _lum(patch)
    band = lum - _lum(blurred)
    low = _lum(low)
    gl = np.stack([cv2.Sobel(low, cv2.CV_32F, 1, 0), cv2.Sobel(low, cv2.CV_32F, 0, 1)])[:, inner]
    gd = np.stack([cv2.Sobel(band, cv2.CV_32F, 1, 0), cv2.Sobel(band, cv2.CV_32F, 0, 1)])[:, inner]
    a, b, c = float((gl * gl).sum(0).mean()), float((gl * gd).sum(0).mean()), float((gd * gd).sum(0).mean())
    energy = cv2.Sobel(lum, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(lum, cv2.CV_32F, 0, 1) ** 2  # (_grad_energy's)
    target = _THIN_DETAIL * float(energy[ring].mean())
    if c <= 1e-12:
        return 1.0
    return float(np.clip((np.sqrt(max(b * b - c * (a - target), 0.0)) - b) / c, 0.5, _GAIN_MAX))


def _split(hole):
    """auto's thin and large parts: thin_and_large's, with the small compact holes (not scratches) made large."""
    dist = _hole_depth(hole)
    thin, large = thin_and_large(hole, dist=dist)
    small = _small_holes(thin, hole, dist=dist)
    return thin & ~small, large | small


def _hole_depth(hole):
    """Each hole pixel's distance to the nearest pixel outside the hole (the picture's edge is outside)."""
    import cv2

    return cv2.distanceTransform(cv2.copyMakeBorder(hole.view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0),
                                 cv2.DIST_L2, 5)[1:-1, 1:-1]


def _small_holes(thin, hole, dist=None):
    """The thin parts that are small compact holes or wide strokes, not scratches (see _COMPACT and _WIDE_MEAN), as a
    mask: they go with the large holes. dist: _hole_depth(hole), if known."""
    import cv2

    if not thin.any():
        return np.zeros_like(thin)
    dist = _hole_depth(hole) if dist is None else dist
    n, labels = cv2.connectedComponents(thin.view(np.uint8), connectivity=8)
    ys, xs = np.nonzero(thin)
    lab, d = labels[ys, xs], dist[ys, xs]
    widest = np.zeros(n)
    np.maximum.at(widest, lab, d)
    area = np.bincount(lab, minlength=n)
    mean = np.bincount(lab, d, minlength=n) / np.maximum(area, 1)
    wide = (widest > _SCRATCH_RADIUS) & ((area <= _COMPACT * np.pi * widest ** 2) | (mean > _WIDE_MEAN))
    wide[0] = False
    out = np.zeros_like(thin)
    pick = wide[lab]
    out[ys[pick], xs[pick]] = True
    return out


def _candidates(base, both, source_ok, seed, sigma, rep, test, **options):
    """The fills `auto` chooses between, on `both` (the holes to fill and the test copies); the patch fill on the
    copies `test` alone, started from the smooth one."""
    options = dict(options, em_iters=options.get("em_iters") or _CHOICE_EM)
    # (a candidate only: fewer conjugate-gradient steps than the smooth method's; the large-scale shading has
    # converged by then)
    smooth = _smooth(base, both, solve=both, max_iter=_CHOICE_CG)
    patch = _patch(smooth, test, seed=seed, source_ok=source_ok, rep=rep, **options)
    return {"patch": patch, "smooth": smooth, "smooth+detail": _with_detail(smooth, patch, sigma)}


def _choose(fills, truth_img, owner, labels_n, test):
    """Per large hole, the fill that came closest on its test copies (see _auto)."""
    import cv2

    energy = {k: _grad_energy(f) for k, f in fills.items()}
    truth = _grad_energy(truth_img)
    inner = cv2.erode(test.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    # per hole sums over its copies' pixels, all holes in one pass per fill (not a pass over the picture per hole)
    ys, xs = np.nonzero(owner)
    lab = owner[ys, xs]
    count = np.bincount(lab, minlength=labels_n)
    sse = {k: np.bincount(lab, np.square(f[ys, xs] - truth_img[ys, xs]).sum(axis=1, dtype=np.float64),
                          minlength=labels_n) for k, f in fills.items()}
    core = inner[ys, xs]
    core_n = np.bincount(lab[core], minlength=labels_n)
    core_truth = np.bincount(lab[core], truth[ys, xs][core], minlength=labels_n)
    core_energy = {k: np.bincount(lab[core], e[ys, xs][core], minlength=labels_n) for k, e in energy.items()}
    channels = truth_img.shape[2]
    picks = {}
    for i in range(1, labels_n):
        pick = "patch"
        if count[i]:
            db = {k: -10 * np.log10(max(float(sse[k][i] / (count[i] * channels)), 1e-10)) for k in fills}
            # a fill must bring back at least half the detail the intact copy area has (a blur in grass is
            # wrong however close its average is); among those the closest wins, detail first on a near tie
            ref = float(core_truth[i] / core_n[i]) if core_n[i] else 0.0
            ok = [k for k in _CHOICES if ref <= 1e-8 or core_energy[k][i] / max(core_n[i], 1) >= _MIN_DETAIL * ref]
            if ok:
                top = max(db[k] for k in ok)
                pick = next(k for k in ok if db[k] >= top - _DETAIL_MARGIN[k])
        picks[i] = pick
    return picks


def _auto(rgb, hole, *, seed=0, rep=None, info=None, keep_out=None, scratch=False, **options):
    """Per hole: thin parts get the smooth fill with PatchMatch's grain; each large one the fill that wins on its
    test copies.

    A large hole is copied onto intact pixels nearby (where the answer is known); at half size, every candidate
    fill (PatchMatch; the smooth fill; the smooth fill with PatchMatch's fine detail added) fills the holes and
    the copies in one run, and the hole gets the fill that came closest on its copies, with a small allowance
    for fills with more detail (a hole without room for a copy gets PatchMatch). Then the chosen fills run at
    full size on the holes alone: the choice costs a fraction of a fill, not a second one.
    keep_out: damage that is not this call's to fill (another window's): left as it is, never a source of patches,
    never under a test copy. scratch: `rgb` (float32, C-contiguous) is the caller's scratch copy, whose hole pixels
    the patch fill may overwrite (no copy of the window for it).
    """
    import cv2

    keep = np.zeros_like(hole) if keep_out is None else np.asarray(keep_out, bool) & ~hole
    thin, large = _split(hole)
    rep = reporter(rep)
    sub = rep.sub
    out = _thin_fill(rgb, hole, thin, seed, sub(0.0, 0.25) if large.any() else rep, source_ok=~keep,
                     **options) if thin.any() else None  # (None: rgb's copy is made once the large fills are done)
    counts = {"thin": _count(thin)}
    chosen = {c: 0 for c in _CHOICES}
    if large.any():
        n, labels = cv2.connectedComponents(large.astype(np.uint8), connectivity=8)
        radius = max(1, int(options.get("patch_size") or 7) // 2)
        test, owner = _test_copies(large, hole | keep, labels, n, margin=2 * radius + 2, per_hole=_COPIES)
        # large holes are filled with the repair of the scratches as context, but patches are never copied
        # from any damaged pixel nor from the test copies
        # (the thin fill itself: its large pixels are all replaced at the end; without thin parts, the picture)
        base = out if thin.any() else rgb
        if thin.any():
            base[large] = rgb[large]
        picks = {i: "patch" for i in range(1, n)}
        smooth_half = None
        if test.any():
            # the choice, at half size: the holes and the copies filled in one run, each copy scored against
            # the intact picture under it
            small_hole, small_test = _half_mask(hole), _half_mask(test)
            small_test &= ~small_hole
            small_owner = owner[::2, ::2].copy()
            small_owner[~small_test] = 0
            fills = _candidates(_half(base, hole | test), _half_mask(large) | small_test,
                                ~(small_hole | small_test | _half_mask(keep)), seed, _DETAIL_SIGMA / 2,
                                sub(0.25, 0.45), small_test, **options)
            picks = _choose(fills, _half(base, hole | keep), small_owner, n, small_test)
            smooth_half = fills["smooth"]
            fills = owner = small_owner = None  # (not held during the full-size fill)
        # each hole's pick as a code per label (_CHOICES' order; 0 the background), looked up per pixel
        code = np.full(n, -1, np.int8)
        for i, pick in picks.items():
            code[i] = _CHOICES.index(pick)
        code = code[labels]
        need = (code >= 0) & (code != _CHOICES.index("patch"))  # the holes that take the smooth fill,
        patched = (code >= 0) & (code != _CHOICES.index("smooth"))  # and those that take the patch fill
        smooth = None

        def smooth_fill():
            # started from the half-size solution (which has the large-scale shading), a few conjugate-gradient
            # steps at full size converge; from Telea's fill they would need hundreds
            up = cv2.resize(smooth_half, hole.shape[::-1], interpolation=cv2.INTER_LINEAR)
            return _smooth(base, large, solve=need, init=up, max_iter=100)

        if (need & ~patched).any():  # (else it comes after the patch fill: not held through it)
            smooth = smooth_fill()
        # the patch fill only where a pick uses it (on bench/scaling.py's 4K scratches 3 small holes in 4 take the
        # smooth fill alone); the holes that take the smooth fill are context for it with that fill, never a source
        patch = None
        if patched.any():
            ctx = base
            if (need & ~patched).any():
                ctx = base.copy()
                ctx[need & ~patched] = smooth[need & ~patched]
            # (the fill written into its context: a copy made here, or the caller's scratch copy of the window; the
            # smooth fill that may come after reads none of the hole's pixels: Telea's fill, then the solve, never do)
            mine = ctx is not base or (scratch and not thin.any())
            patch = _patch(ctx, patched, seed=seed, source_ok=~(hole | keep), rep=sub(0.45, 0.95), overwrite=mine,
                           **options)
            del ctx
        if smooth is None and need.any():
            smooth = smooth_fill()
        out = rgb.copy() if out is None else out
        for pick in picks.values():
            chosen[pick] += 1
        for c, pick in enumerate(_CHOICES):
            part = code == c
            if not part.any():
                continue
            if pick == "patch":
                out[part] = patch[part]
            elif pick == "smooth":
                out[part] = smooth[part]
            else:
                out[part] = _with_detail(smooth, patch, _DETAIL_SIGMA)[part]
    if info is not None:
        thin_n = counts["thin"]
        parts = [f"{thin_n} thin hole{'s' * (thin_n != 1)} smooth+detail"] if thin_n else []
        parts += [f"{v} large hole{'s' * (v != 1)} {k}" for k, v in chosen.items() if v]
        info["note"] = "auto: " + (", ".join(parts) or "nothing to fill")
        info["holes"] = dict(chosen, thin=counts["thin"])
    return rgb.copy() if out is None else out


# windows: damage closer than _JOIN px is one sub-problem, filled in a window of the picture around it that reaches
# _THIN_MARGIN px beyond its damage, or _LARGE_MARGIN times the size of its large part beyond it when it has one
# (the surroundings its patches come from, and room for auto's test copies)
_JOIN = 8
_THIN_MARGIN = 24
_LARGE_MARGIN = 2.0
# overlapping windows merge up to this many pixels
_WINDOW_AREA = 1536 * 1536


def _windows(hole, large=None):
    """The sub-problems of a hole mask, one at a time: (ys, xs, own), a window (slices of the picture) and the
    hole pixels it fills there (damage closer than _JOIN px to each other; the window's other damage belongs to
    other windows). `large`: the large parts, which widen their windows (see _LARGE_MARGIN).

    Costs a few passes over the picture (a distance transform, connected components), whatever the damage.
    """
    import cv2

    h, w = hole.shape
    near = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3) <= _JOIN / 2
    n, labels, stats, _ = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
    del near
    size = np.zeros(n, np.int64)
    if large is not None and large.any():
        ys, xs = np.nonzero(large)
        lab = labels[ys, xs]
        lo_y, lo_x = np.full(n, h, np.int64), np.full(n, w, np.int64)
        hi_y, hi_x = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        np.minimum.at(lo_y, lab, ys)
        np.minimum.at(lo_x, lab, xs)
        np.maximum.at(hi_y, lab, ys)
        np.maximum.at(hi_x, lab, xs)
        size = np.maximum(np.maximum(hi_y - lo_y, hi_x - lo_x) + 1, 0)
    boxes, inner = [], {}
    for i in range(1, n):
        x, y, bw, bh = (int(v) for v in stats[i, :4])
        margin = max(_THIN_MARGIN, int(np.ceil(_LARGE_MARGIN * size[i])))
        boxes.append([max(0, y - margin), min(h, y + bh + margin), max(0, x - margin), min(w, x + bw + margin), [i]])
        half = margin // 2
        inner[i] = (max(0, y - half), min(h, y + bh + half), max(0, x - half), min(w, x + bw + half))
    # windows that overlap are one while their union stays within _WINDOW_AREA: the damage in the overlap is filled
    # once, and a few calls on larger windows cost less than many on small ones
    groups = []
    for b in sorted(boxes, key=lambda b: (b[0], b[2])):
        for g in groups:
            y0, y1, x0, x1 = min(g[0], b[0]), max(g[1], b[1]), min(g[2], b[2]), max(g[3], b[3])
            if b[0] < g[1] and g[0] < b[1] and b[2] < g[3] and g[2] < b[3] and (y1 - y0) * (x1 - x0) <= _WINDOW_AREA:
                g[:4] = y0, y1, x0, x1
                g[4] += b[4]
                break
        else:
            groups.append(b)
    done = np.zeros(n, bool)
    for y0, y1, x0, x1, ids in groups:
        ys, xs = slice(y0, y1), slice(x0, x1)
        # damage of other windows that lies in this one with half its own margin around it is filled here too
        seen = np.flatnonzero(np.bincount(labels[ys, xs].ravel(), minlength=n))
        ids = [i for i in ids if not done[i]] + [
            int(i) for i in seen if i and not done[i] and i not in ids and y0 <= inner[i][0] and inner[i][1] <= y1
            and x0 <= inner[i][2] and inner[i][3] <= x1]
        if not ids:
            continue
        done[ids] = True
        member = np.zeros(n, bool)
        member[ids] = True
        yield ys, xs, member[labels[ys, xs]] & hole[ys, xs]


# auto's large pass: windows of at most _TILE_AREA px whose damage keeps _TILE_EDGE px from the picture's edge (specks,
# small holes) are filled together, their crops side by side in one picture of up to _MOSAIC_AREA px, each crop
# framed by _SEAM px kept out of the fill (never a source, never under a test copy: what one crop's fill sees is its
# own window, as alone). A call on a speck's window costs ~40 ms whatever its size (the patch fills' and the choice's
# fixed work); the 4K scratches of bench/scaling.py have ~200 such windows
_TILE_AREA = 160 * 160
_TILE_EDGE = 8
_MOSAIC_AREA = 512 * 512
_SEAM = 2


def _tile(win):
    """Whether a window (ys, xs, own) goes into a mosaic (see _TILE_AREA)."""
    own = win[2]
    h, w = own.shape
    if h * w > _TILE_AREA:
        return False
    e = _TILE_EDGE
    rows, cols = own.any(axis=1), own.any(axis=0)
    return not (rows[:e].any() or rows[h - e:].any() or cols[:e].any() or cols[w - e:].any())


def _mosaics(wins):
    """Windows grouped for mosaics: in their order, up to _MOSAIC_AREA px of crops a group."""
    groups, total = [], _MOSAIC_AREA + 1
    for win in wins:
        area = (win[2].shape[0] + _SEAM) * (win[2].shape[1] + _SEAM)
        if total + area > _MOSAIC_AREA:
            groups.append([])
            total = 0
        groups[-1].append(win)
        total += area
    return groups


def _mosaic(crops):
    """Crops [(img, own, keep_out), ...] laid side by side in one picture (shelves of rows, tallest first), each
    framed by _SEAM px kept out: (img, own, keep_out, boxes), boxes[i] the slices of crop i in it."""
    sizes = [c[0].shape[:2] for c in crops]
    width = max(max(w for _, w in sizes) + 2 * _SEAM,
                int(np.ceil(np.sqrt(1.2 * sum((h + _SEAM) * (w + _SEAM) for h, w in sizes)))))
    boxes, y, x, row = [None] * len(crops), _SEAM, _SEAM, 0
    for i in sorted(range(len(crops)), key=lambda i: -sizes[i][0]):
        h, w = sizes[i]
        if x + w + _SEAM > width and x > _SEAM:
            y, x, row = y + row + _SEAM, _SEAM, 0
        boxes[i] = (slice(y, y + h), slice(x, x + w))
        x, row = x + w + _SEAM, max(row, h)
    img = np.full((y + row + _SEAM, width) + crops[0][0].shape[2:], 0.5, np.float32)
    own = np.zeros(img.shape[:2], bool)
    keep = np.ones(img.shape[:2], bool)
    for (c, o, k), box in zip(crops, boxes, strict=True):
        img[box], own[box], keep[box] = c, o, k
    return img, own, keep, boxes


# auto's thin parts: the picture in tiles of _THIN_TILE px; a tile's window is the box of its thin damage grown by
# _THIN_MARGIN px. Everything damaged in the window is filled there (the neighbouring tiles' damage as context: the
# smooth fill and the patches never read damaged pixels), only the tile's own thin damage is kept. So each pixel is
# filled once and the windows overlap by their margins only: the windows of _windows (damage closer than _JOIN px
# together) covered bench/scaling.py's 4K picture of dense scratches 1.73 times (14.4M px for 8.3M), tiles of 1024 px
# 1.07 times. There, tiles of 512 px against 1024: thin pass CPU -5 to -9 %, PSNR on the scratches +0.56 dB (the
# detail's gain measured nearer the scratches it is for: fewer dark and coloured specks along them); the whole fill
# 41.98 -> 43.02 dB. bench/inpaint_scale.py --thin-grid: median against Telea +1.47 -> +1.54 dB, worst decile -0.22
# either way (its 512 px pictures are one tile in both)
_THIN_TILE = 512


def _thin_windows(thin):
    """The thin pass's windows (see _THIN_TILE): (ys, xs, own), own the tile's thin damage in window coordinates."""
    h, w = thin.shape
    t, e = _THIN_TILE, _THIN_MARGIN
    for y0 in range(0, h, t):
        for x0 in range(0, w, t):
            tile = thin[y0:y0 + t, x0:x0 + t]
            rows, cols = np.flatnonzero(tile.any(axis=1)), np.flatnonzero(tile.any(axis=0))
            if not rows.size:
                continue
            ys = slice(max(0, y0 + rows[0] - e), min(h, y0 + rows[-1] + 1 + e))
            xs = slice(max(0, x0 + cols[0] - e), min(w, x0 + cols[-1] + 1 + e))
            own = thin[ys, xs].copy()  # (only the tile's part of it)
            own[:max(0, y0 - ys.start)] = False
            own[max(0, y0 + t - ys.start):] = False
            own[:, :max(0, x0 - xs.start)] = False
            own[:, max(0, x0 + t - xs.start):] = False
            yield ys, xs, own


class _Filled:
    """The result of a windowed fill: `rgb` and the filled pixels, kept window by window (their positions and values)
    until the copy of the picture is made, at the end (not held through the fills: at 4K a copy is 100 MB)."""

    def __init__(self, rgb):
        self.rgb, self.parts = rgb, []

    def put(self, got, m, ys, xs, where):
        """Blend a window's fill in at `where` (window coordinates) by the weight min(1, 2 * mask)."""
        rgb = self.rgb
        wgt = np.clip(m[ys, xs][where] * 2.0, 0.0, 1.0)[:, None]
        vals = rgb[ys, xs][where] * (1.0 - wgt) + np.clip(got[where], 0.0, 1.0) * wgt
        py, px = np.nonzero(where)
        self.parts.append((ys.start + py.astype(np.int32), xs.start + px.astype(np.int32), vals,
                           (ys.start, ys.stop, xs.start, xs.stop)))

    def crop(self, ys, xs):
        """rgb[ys, xs] with the pixels filled so far (a copy)."""
        out = self.rgb[ys, xs].copy()
        for py, px, vals, (y0, y1, x0, x1) in self.parts:
            if y0 < ys.stop and ys.start < y1 and x0 < xs.stop and xs.start < x1:
                sel = (py >= ys.start) & (py < ys.stop) & (px >= xs.start) & (px < xs.stop)
                out[py[sel] - ys.start, px[sel] - xs.start] = vals[sel]
        return out

    def result(self):
        out = self.rgb.copy()
        for py, px, vals, _ in self.parts:
            out[py, px] = vals
        return out


def _windowed(name, rgb, hole, m, seed, rep, info, options):
    """Fill `hole` window by window (see _windows) with method `name`; returns rgb with the filled pixels blended
    in by min(1, 2 * m) (a copy). A window's fill never reads the other windows' damage: it is not a source of
    patches, and it lies beyond the reach of the smooth fill's stencil and of Telea's radius.

    auto: first the thin parts, window by window (the large parts next to them are context, as in _auto), then
    each large part in its own window of the picture with the thin parts repaired; a large part's window is
    filled by _auto, with the other large damage in it kept out (not filled there, never a source, never under a
    test copy)."""
    from . import patchmatch

    token = patchmatch.distance_ref.set(float(np.hypot(*hole.shape)))  # a window's holes as in the whole picture
    try:
        return _windowed_fill(name, rgb, hole, m, seed, rep, info, options)
    finally:
        patchmatch.distance_ref.reset(token)


def _windowed_fill(name, rgb, hole, m, seed, rep, info, options):
    thin, large = _split(hole) if name == "auto" else thin_and_large(hole) if name in ("patch", "structure") \
        else (hole, None)
    if name != "auto":
        wins = list(_windows(hole, large))
        filled = _Filled(rgb)
        for k, (ys, xs, own) in enumerate(wins):
            sub = rep.sub(k / len(wins), (k + 1) / len(wins))
            crop = rgb[ys, xs] if name == "patch" else rgb[ys, xs].copy()  # (patch_inpaint never writes its input)
            if name == "smooth":
                got = _smooth(crop, own, rep=sub)
            elif name == "telea":
                got = _telea(crop, own)
            elif name == "ns":
                got = _ns(crop, own)
            elif name == "structure":
                got = _structure(crop, own, seed=seed, source_ok=~(hole[ys, xs] & ~own), rep=sub, **options)
            else:
                got = _patch(crop, own, seed=seed, source_ok=~(hole[ys, xs] & ~own), rep=sub, **options)
            filled.put(got, m, ys, xs, own)
            del got, crop  # (not held while the next window is filled)
        return filled.result()
    filled = _Filled(rgb)
    thin_n, chosen = 0, {c: 0 for c in _CHOICES}
    split = 0.25 if large.any() else 1.0
    if thin.any():
        wins = list(_thin_windows(thin))
        for k, (ys, xs, part) in enumerate(wins):
            sub = rep.sub(split * k / len(wins), split * (k + 1) / len(wins))
            crop = rgb[ys, xs].copy()
            # all the window's damage is filled (the neighbouring tiles' as context), the tile's own part is kept
            got = _thin_fill(crop, hole[ys, xs], thin[ys, xs], seed, sub, source_ok=~hole[ys, xs], **options)
            filled.put(got, m, ys, xs, part)
        thin_n = _count(thin)
    if large.any():
        wins = list(_windows(large, large))
        todo = large.copy()  # large damage not filled yet
        # the small windows (specks) are filled together, side by side in mosaics; the others one by one
        calls = [[w] for w in wins if not _tile(w)] + _mosaics([w for w in wins if _tile(w)])
        for k, group in enumerate(calls):
            sub = rep.sub(split + (1 - split) * k / len(calls), split + (1 - split) * (k + 1) / len(calls))
            # the damage of windows already done is filled (their final fill, as the thin parts are); the rest of
            # the window's damage is other windows' to fill: left as it is, never a source (keep_out)
            crops = []
            for ys, xs, own in group:
                fill = todo[ys, xs]
                crop = filled.crop(ys, xs)
                crop[fill] = rgb[ys, xs][fill]
                crops.append((crop, own, fill & ~own))
            img, own, keep, boxes = _mosaic(crops) if len(group) > 1 else crops[0] + ([(slice(None),) * 2],)
            said = {}
            got = _auto(img, own, seed=seed, rep=sub, info=said, keep_out=keep, scratch=True, **options)
            for (ys, xs, own), box in zip(group, boxes, strict=True):
                filled.put(got[box], m, ys, xs, own)
                todo[ys, xs] &= ~own
            del got, img  # (not held while the next window is filled)
            for c in _CHOICES:
                chosen[c] += said.get("holes", {}).get(c, 0)
            thin_n += said.get("holes", {}).get("thin", 0)
    if info is not None:
        parts = [f"{thin_n} thin hole{'s' * (thin_n != 1)} smooth+detail"] if thin_n else []
        parts += [f"{v} large hole{'s' * (v != 1)} {k}" for k, v in chosen.items() if v]
        info["note"] = "auto: " + (", ".join(parts) or "nothing to fill")
        info["holes"] = dict(chosen, thin=thin_n)
    return filled.result()


def _binary_ints(mask):
    """An integer mask holding only 0 and 1 (a label image) means 0/1, not 0/255."""
    if mask is not None and not isinstance(mask, np.ndarray | float):
        mask = np.asarray(mask)
    if isinstance(mask, np.ndarray) and np.issubdtype(mask.dtype, np.integer) and mask.size and mask.max() == 1:
        return mask.astype(np.float32)
    return mask


# the methods that fill each damaged area in a window of the picture around it (see _windows)
_WINDOWED = ("smooth", "telea", "ns", "patch", "structure", "auto")


def inpaint(image, mask, *, method: str = "auto", device: str = "auto", progress=None, cancel=None,
            info: dict | None = None, **options):
    """Fill where `mask` is white; everything where the mask is 0 stays exactly as it was.

    method: "smooth" (biharmonic fill, numpy; best on thin scratches and text, blurs large holes),
    "telea" / "ns" (OpenCV, fast, for thin scratches), "patch" (multi-scale PatchMatch, large
    holes get texture), "structure" (the edges entering a hole continued first, in isophote order, then
    PatchMatch: holes across a rim, a horizon, a frame), "dip" (Deep Image Prior, torch, `steps`), "lama"
    (LaMa weights from the model store), "auto" (per connected hole: thin -> the smooth fill with PatchMatch's
    fine detail; large -> whichever of PatchMatch, the smooth fill and the smooth fill with PatchMatch's fine
    detail does best on copies of that hole moved onto intact pixels).
    options: `steps` (dip), `seed` (patch, dip), `models_dir` (lama), `patch_size` (patch).
    info: a dict that gets "method" (what ran) and "note" (for auto, what each hole got, e.g.
    "auto: 3 thin holes smooth+detail, 2 large holes patch, 1 large hole smooth").

    Defined behaviour:
    - mask and image of different sizes -> InputError naming both sizes;
    - an empty mask -> the input is returned unchanged (as float32 in [0, 1]);
    - a mask covering every pixel -> InputError (there is nothing to copy from);
    - integer masks holding only 0 and 1 mean 0 / 1 (not 0 / 255);
    - soft masks: pixels with mask > 1/255 are filled, and the result is blended with weight
      min(1, 2 * mask), so anything at 0.5 or above is fully replaced and mask 0 is untouched;
    - NaN / inf in float images become 0 / clipped (core.as_image) before filling;
    - alpha passes through unchanged; grey images come back grey.
    """
    img = as_image(image, "image", copy=False)  # (read only: the result is a new array)
    m = as_mask(_binary_ints(mask), img.shape, "mask")
    if m is None:
        raise InputError("mask: no mask given; paint one, or detect damage first (detect_damage / --detect)")
    record, options = _methods.check("inpaint", method, options)  # unknown options and bad values refused
    name = record.name
    check_work_memory("inpaint", img.shape, "image", method=name)
    options = _methods.used(record, options)
    rep = reporter(progress, cancel)
    if info is not None:
        info["method"] = name
        info["note"] = ""
    hole = m > HOLE_LEVEL
    if not hole.any():
        rep(1.0, "nothing to fill")
        return img.copy()
    if hole.all():
        raise InputError("mask: it covers the whole image, so there is nothing to copy from; "
                         "leave the undamaged parts black in the mask")
    rgb, alpha = split_alpha(img)
    rgb = np.ascontiguousarray(rgb)
    seed = int(options.pop("seed", 0) or 0)
    rep(0.0, f"inpainting ({name})")
    if name in _WINDOWED:
        out = _windowed(name, rgb, hole, m, seed, rep, info, options)
    else:
        if name == "dip":
            from .dip import dip_inpaint

            filled = dip_inpaint(rgb, hole, device=device, seed=seed, rep=rep, **options)
        else:
            from .lama import lama_inpaint

            filled = lama_inpaint(rgb, hole, device=device, rep=rep, **options)
        out = rgb.copy()
        w = np.clip(m[hole] * 2.0, 0.0, 1.0)[:, None]
        out[hole] = rgb[hole] * (1.0 - w) + np.clip(filled[hole], 0.0, 1.0) * w
    from ..core import finite_result

    out = finite_result(out, f"inpaint ({name})")
    rep(1.0, "done")
    if alpha is None and img.shape[2] == 3:  # (out is a new float32 array in [0, 1]: no second copy of it)
        return out
    return merge_alpha(out, alpha, like=img)
