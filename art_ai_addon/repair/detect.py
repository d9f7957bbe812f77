"""detect_damage(): scratches, cracks, spots, flat holes and streaks, alone or against another version.

Alone, damage is what does not look like the picture: thin bright or dark structures that morphological
top-hats at a few sizes isolate, that are long and straight enough to survive an opening with a line
segment in some direction (texture grain is short), and that stand out from the local contrast (so a
busy texture needs a stronger scratch than a smooth sky). Flat patches of a single colour in an
otherwise noisy image are holes; lines of clipped colour are dead-pixel streaks.

With a reference, the reference is aligned to the image (ORB features + RANSAC homography, refined with
ECC), its exposure matched by per-channel quantile mapping, and the mask marks differences beyond the
noise; a small shift tolerance absorbs sub-pixel misalignment at edges, and the band along the borders
where the warped reference has no data is ignored.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import as_image, luminance, reporter, split_alpha
from ..errors import InputError

_ANGLES = 16
_PCT = 75
_BLOCK = 6


def _line_kernels(length: int, offset: int):
    """Normalised averaging kernels along a line of `length` px at _ANGLES orientations: the centre line and
    the two parallel lines `offset` px to either side (cached)."""
    cache = _line_kernels.__dict__.setdefault("cache", {})
    key = (length, offset)
    if key not in cache:
        half = length // 2
        size = 2 * (half + offset) + 1
        c = size // 2
        out = []
        for i in range(_ANGLES):
            a = np.pi * i / _ANGLES
            dx, dy = np.cos(a) * half, np.sin(a) * half
            nx, ny = -np.sin(a) * offset, np.cos(a) * offset
            trio = []
            for sgn in (0, -1, 1):
                k = np.zeros((size, size), np.float32)
                p0 = (c - dx + sgn * nx, c - dy + sgn * ny)
                p1 = (c + dx + sgn * nx, c + dy + sgn * ny)
                sh = 4  # sub-pixel endpoints, anti-aliased
                cv2.line(k, (int(round(p0[0] * 16)), int(round(p0[1] * 16))),
                         (int(round(p1[0] * 16)), int(round(p1[1] * 16))), 1.0, 1, cv2.LINE_AA, sh)
                trio.append(k / max(float(k.sum()), 1e-6))
            out.append(trio)
        cache[key] = out
    return cache[key]


def _local_scale(resp: np.ndarray, block: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Local typical response: a percentile over blocks, smoothly interpolated.

    A percentile, not an RMS, so sparse scratches barely raise it; `exclude` (damage found in a first
    pass) is left out, so dense damage does not hide itself either.
    """
    h, w = resp.shape
    nby, nbx = max(1, h // block), max(1, w // block)
    bh, bw = h // nby, w // nbx
    crop = resp[: nby * bh, : nbx * bw]
    if exclude is not None and exclude.any():
        crop = np.where(exclude[: nby * bh, : nbx * bw], np.nan, crop)
        blocks = crop.reshape(nby, bh, nbx, bw)
        med = np.nanpercentile(blocks, _PCT, axis=(1, 3))
        med = np.where(np.isfinite(med), med, np.nanmedian(med) if np.isfinite(med).any() else 0.0)
    else:
        med = np.percentile(crop.reshape(nby, bh, nbx, bw), _PCT, axis=(1, 3))
    # a block is as busy as its busiest neighbour: texture edges must not look like damage
    med = cv2.dilate(med.astype(np.float32), np.ones((3, 3), np.uint8))
    return cv2.resize(med, (w, h), interpolation=cv2.INTER_LINEAR)


def _linear_response(chan: np.ndarray, lengths, offsets):
    """How much a thin line is brighter (or darker) than BOTH parallel lines beside it, at the best angle
    (raw responses per offset and polarity). Requiring both sides rejects edges; averaging along a long
    line rejects grain, which is short; _normalised then puts them in local units, so a busy texture
    needs a stronger scratch."""
    soft = cv2.GaussianBlur(chan, (0, 0), 0.7)
    raw = []
    for length in lengths:
        kernels = {off: _line_kernels(length, off) for off in offsets}
        bright = {off: np.full_like(chan, -1.0) for off in offsets}
        dark = {off: np.full_like(chan, -1.0) for off in offsets}
        for ai in range(_ANGLES):
            c = cv2.filter2D(soft, -1, kernels[offsets[0]][ai][0], borderType=cv2.BORDER_REFLECT)
            for off in offsets:
                _, kl, kr = kernels[off][ai]
                left = cv2.filter2D(soft, -1, kl, borderType=cv2.BORDER_REFLECT) - c
                right = cv2.filter2D(soft, -1, kr, borderType=cv2.BORDER_REFLECT) - c
                np.maximum(bright[off], -np.maximum(left, right), out=bright[off])
                np.maximum(dark[off], np.minimum(left, right), out=dark[off])
        for off in offsets:
            raw.append(np.maximum(bright[off], 0.0))
            raw.append(np.maximum(dark[off], 0.0))
    return raw


def _normalised(raws, block, exclude=None, floor=0.01):
    """Each raw line response in units of its local typical level; the best of them per pixel."""
    best = np.zeros_like(raws[0])
    for r in raws:
        np.maximum(best, r / (_local_scale(r, block, exclude) + floor), out=best)
    return best


def _spot_response(chan: np.ndarray):
    """Top-hat / black-hat (small bright or dark specks) in local-contrast units."""
    h, w = chan.shape
    block = max(32, min(h, w) // _BLOCK)
    best = np.zeros_like(chan)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        r = cv2.morphologyEx(chan, op, disk, borderType=cv2.BORDER_REFLECT)
        np.maximum(best, r / (_local_scale(r, block) + 0.015), out=best)
    return best


def _hysteresis(strong: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Keep the weak components that contain at least one strong pixel."""
    n, labels = cv2.connectedComponents(weak.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(weak, bool)
    keep = np.zeros(n, bool)
    keep[np.unique(labels[strong & weak])] = True
    keep[0] = False
    return keep[labels]


def _drop_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels]


def _flat_holes(rgb: np.ndarray, min_area: int) -> np.ndarray:
    """Patches of one exact colour, sharply different from their surroundings, in an image that is otherwise
    textured or noisy (lost or blanked areas). Smooth 8-bit skies are flat too, but blend into their rim."""
    h, w = rgb.shape[:2]
    k = 5
    mean = cv2.blur(rgb, (k, k))
    var = cv2.blur(rgb * rgb, (k, k)) - mean * mean
    local = np.sqrt(np.maximum(var.max(axis=2), 0.0))
    flat = local < 0.5 / 255.0
    out = np.zeros((h, w), bool)
    if flat.mean() > 0.5:
        return out  # a clean render or graphic: flat colour is part of the picture
    flat = cv2.dilate(flat.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:200] + 1
    ring_k = np.ones((5, 5), np.uint8)
    for i in order:
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            break
        x, y, bw, bh = stats[i, :4]
        x0, y0, x1, y1 = max(0, x - 3), max(0, y - 3), min(w, x + bw + 3), min(h, y + bh + 3)
        comp = labels[y0:y1, x0:x1] == i
        ring = (cv2.dilate(comp.astype(np.uint8), ring_k) > 0) & ~comp
        if not ring.any():
            continue
        sub = rgb[y0:y1, x0:x1]
        inner = np.median(sub[comp], axis=0)
        rim = sub[ring]
        step = np.abs(rim - inner).max(axis=1)
        if np.median(step) > 0.12:
            out[y0:y1, x0:x1] |= comp
    return out


def _streaks(rgb: np.ndarray, sensitivity: float) -> np.ndarray:
    """Rows or columns of clipped, out-of-place colour (dead pixels, transmission errors, render fireflies)."""
    h, w = rgb.shape[:2]
    clipped = ((rgb >= 0.995) | (rgb <= 0.005)).any(axis=2)
    out = np.zeros((h, w), bool)
    for axis in (0, 1):
        # difference to the neighbours across the streak direction
        a = rgb
        prev = np.roll(a, 1, axis=1 - axis)
        nxt = np.roll(a, -1, axis=1 - axis)
        odd = np.abs(a - 0.5 * (prev + nxt)).max(axis=2) > 0.25
        cand = clipped & odd
        frac = cand.mean(axis=axis)  # per column (axis 0) or per row (axis 1)
        lines = frac > (0.5 - 0.3 * sensitivity)
        if lines.any():
            if axis == 0:
                out[:, lines] |= cand[:, lines]
            else:
                out[lines, :] |= cand[lines, :]
    return out


def _detect_alone(rgb: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    h, w = rgb.shape[:2]
    lum = luminance(rgb)
    # the image is analysed at up to 768 px; the mask is scaled back up
    scale = min(1.0, 768.0 / max(h, w))
    if scale < 1.0:
        small = cv2.resize(rgb, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(_detect_alone(small, sensitivity, rep).astype(np.uint8), (w, h),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    s = float(sensitivity)
    hi = 7.0 - 4.0 * s           # seed threshold in local-contrast units (s=0.5 -> 5)
    lo = 0.55 * hi               # growth threshold
    lengths = (int(round(31 - 16 * s)) | 1,)
    offsets = (2, 4)
    channels = [lum]
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    if float(np.percentile(chroma, 90)) > 0.05:  # colourful: also look at colour-only lines
        channels.append(np.ascontiguousarray(chroma))
    block = max(32, min(h, w) // _BLOCK)
    raws = []
    for i, ch in enumerate(channels):
        rep(0.1 + 0.6 * i / len(channels), "looking for scratches")
        weight = 1.0 if i == 0 else 0.85  # colour-only structures must be a little stronger
        raws += [r * weight for r in _linear_response(ch, lengths, offsets)]
    line_resp = _normalised(raws, block)
    scratches = _hysteresis(line_resp > hi, line_resp > lo)
    if scratches.any():  # second pass: local contrast measured without what the first pass found
        found = cv2.dilate(scratches.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        line_resp = _normalised(raws, block, found)
        scratches = _hysteresis(line_resp > hi, line_resp > lo)
    scratches = _drop_small(scratches, max(6, lengths[0] // 2))
    # compact spots (dust, specks): far stronger than anything around them, and small
    spot = _spot_response(lum)
    spots = spot > hi * 3.0
    spots = _drop_small(spots, 3) & ~_drop_small(spots, 100)
    rep(0.8, "looking for holes and streaks")
    holes = _flat_holes(rgb, max(16, int(64 * (1.0 - s))))
    streaks = _streaks(rgb, s)
    return scratches | spots | holes | streaks


# ---------------------------------------------------------------------------------------------
# Against a reference


def _grey8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(luminance(rgb) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _feature_homography(img8: np.ndarray, ref8: np.ndarray):
    """Homography mapping reference pixels onto image pixels from ORB (then AKAZE) matches; None if too few."""
    for make in (lambda: cv2.ORB_create(nfeatures=4000, fastThreshold=10), cv2.AKAZE_create):
        det = make()
        k1, d1 = det.detectAndCompute(ref8, None)
        k2, d2 = det.detectAndCompute(img8, None)
        if d1 is None or d2 is None or len(k1) < 8 or len(k2) < 8:
            continue
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        pairs = matcher.knnMatch(d1, d2, k=2)
        good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
        if len(good) < 12:
            continue
        src = np.float32([k1[m.queryIdx].pt for m in good])
        dst = np.float32([k2[m.trainIdx].pt for m in good])
        hmat, inl = cv2.findHomography(src, dst, cv2.RANSAC, 3.0)
        if hmat is not None and inl is not None and inl.sum() >= 10:
            return hmat
    return None


def _align(rgb: np.ndarray, ref: np.ndarray):
    """Warp `ref` onto `rgb`; returns (warped ref, valid-pixel mask)."""
    h, w = rgb.shape[:2]
    if ref.shape[:2] != (h, w):
        # another resolution of the same picture: bring it to the same size first
        ref = cv2.resize(ref, (w, h), interpolation=cv2.INTER_AREA)
    hmat = _feature_homography(_grey8(rgb), _grey8(ref))
    if hmat is None:
        hmat = np.eye(3)
    # ECC refinement on a smaller copy (it is slow and does not need every pixel)
    s = min(1.0, 512.0 / max(h, w))
    smat = np.diag([s, s, 1.0])
    img_s = cv2.resize(luminance(rgb), (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    ref_s = cv2.resize(luminance(ref), (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)
    warp = (smat @ np.linalg.inv(hmat) @ np.linalg.inv(smat)).astype(np.float32)  # image -> reference coords
    warp /= warp[2, 2]
    try:
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6)
        _, warp = cv2.findTransformECC(img_s, ref_s, warp, cv2.MOTION_HOMOGRAPHY, crit, None, 5)
    except cv2.error:
        pass  # ECC did not converge: keep the feature estimate
    full = np.linalg.inv(smat) @ warp.astype(np.float64) @ smat
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(ref, full, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if warped.ndim == 2:
        warped = warped[:, :, None]
    valid = cv2.warpPerspective(np.ones((h, w), np.float32), full, (w, h), flags=flags,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0.999
    return warped, valid


def _match_exposure(src: np.ndarray, dst: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per-channel quantile mapping of `src` onto `dst` over the valid pixels (exposure, gamma, white balance)."""
    out = np.empty_like(src)
    q = np.linspace(0.0, 100.0, 257)
    for c in range(src.shape[2]):
        a = src[:, :, c][valid]
        b = dst[:, :, c][valid]
        qa = np.percentile(a, q)
        qb = np.percentile(b, q)
        qa = np.maximum.accumulate(qa + np.arange(qa.size) * 1e-7)
        out[:, :, c] = np.interp(src[:, :, c], qa, qb)
    return out


def _detect_reference(rgb: np.ndarray, ref: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    rep(0.1, "aligning the reference")
    warped, valid = _align(rgb, ref)
    rep(0.6, "comparing")
    band = max(3, int(0.01 * max(rgb.shape[:2])))
    valid = cv2.erode(valid.astype(np.uint8), np.ones((2 * band + 1,) * 2, np.uint8),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    if valid.mean() < 0.2:
        raise InputError("reference: could not align it with the image (too different, or another picture); "
                         "use a version of the same picture")
    matched = _match_exposure(warped, rgb, valid)
    # difference that tolerates a misalignment of up to two pixels: how far the image is outside the local range
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    hi = cv2.dilate(matched, k)
    lo = cv2.erode(matched, k)
    if hi.ndim == 2:
        hi, lo = hi[:, :, None], lo[:, :, None]
    diff = np.maximum(np.maximum(rgb - hi, lo - rgb), 0.0).max(axis=2)
    diff = cv2.GaussianBlur(diff, (0, 0), 0.7)
    d = diff[valid]
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) + float(np.median(d))
    s = float(sensitivity)
    t_hi = max(noise * (10.0 - 6.0 * s), 0.12 - 0.08 * s)
    t_lo = 0.5 * t_hi
    mask = _hysteresis(diff > t_hi, diff > t_lo) & valid
    return _drop_small(mask, 4)


def detect_damage(image, *, reference=None, sensitivity: float = 0.5, progress=None, cancel=None, **options):
    """Float mask (H, W) in [0, 1], 1 where the image looks damaged; paint over it to correct it.

    sensitivity 0..1: higher finds fainter and shorter damage (more recall), lower marks only clear
    damage (more precision). With `reference` (another version of the same picture, may be shifted,
    slightly rotated or scaled, differently exposed) the mask marks where the two differ beyond noise.
    options: `grow` (pixels to widen the mask by, default 1, so anti-aliased scratch edges are covered).
    Alpha is ignored; NaN / inf pixels are treated as 0 / clipped (core.as_image).
    """
    img = as_image(image, "image")
    s = float(sensitivity)
    if not 0.0 <= s <= 1.0:
        raise InputError(f"sensitivity: {sensitivity} is outside 0..1")
    rep = reporter(progress, cancel)
    rgb, _ = split_alpha(img)
    rgb = np.ascontiguousarray(rgb)
    if reference is not None:
        ref, _ = split_alpha(as_image(reference, "reference"))
        mask = _detect_reference(rgb, np.ascontiguousarray(ref), s, rep)
    else:
        mask = _detect_alone(rgb, s, rep)
    grow = int(options.get("grow", 1))
    if grow > 0 and mask.any():
        mask = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0
    rep(1.0, "done")
    return mask.astype(np.float32)
