"""detect_damage(): scratches, cracks, spots, flat holes and streaks, alone or against another version.

Alone, a scratch is a thin line that differs from BOTH sides of it (edges do not), consistently along
~15 px (grain does not), at one of 16 orientations; scored in absolute luminance contrast, weighted towards
neutral lines near white or black (print scratches are paper or emulsion; mortar and rims are mid-tones).
Seeds must beat a threshold that drops in smooth surroundings (per-pixel median of the response over a
31 px window, so busy blocks do not spread onto smooth neighbours); weak responses are grown from the seeds
(hysteresis, limited to a few px from a strong pixel) and components shorter than ~15 % of the image side
are dropped (natural texture responses are short and fragmented); bright and dark lines are traced separately
(the gap between two bright scratches must not read as a dark one), and only pixels that stand out of an
opening / closing are kept, so the mask is the line itself. Compact uniform specks are found by
top-hats; flat patches of a single colour in an otherwise noisy image are holes; lines of clipped colour
are dead-pixel streaks. The mask is finally widened by 1 px (`grow`) so it covers the anti-aliased edges.

With a reference, the reference is aligned to the image (ORB features + RANSAC homography, refined with
ECC), its exposure matched by per-channel quantile mapping, and the mask marks differences beyond the
noise; a small shift tolerance absorbs sub-pixel misalignment at edges, and the band along the borders
where the warped reference has no data is ignored.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core import as_image, grey8, luminance, reporter, split_alpha
from ..errors import InputError

_ANGLES = 16
_LENGTH = 15      # px along a scratch the line detector averages over (at the analysis resolution)
_OFFSETS = (2, 4)  # px to the side lines: 2 for 1-2 px scratches, 4 for 3 px ones
_SEED = 0.3
_SMOOTH = 0.5
_BUSY = 12.0
_STRONG_FRAC = 0.25
_REACH = 6
_EXT_B = 0.65
_EXT_D = 0.35
_GROW = 0.6
_MINLEN = 0.15
_HAT = 7
_CORE = 0.35


def _line_kernel(length: int, angle: float) -> np.ndarray:
    """Normalised averaging kernel along a segment of `length` px at `angle` (anti-aliased, cached)."""
    cache = _line_kernel.__dict__.setdefault("cache", {})
    key = (length, round(angle, 6))
    if key not in cache:
        size = length | 1
        c = size // 2
        half = (length - 1) / 2.0
        dx, dy = np.cos(angle) * half, np.sin(angle) * half
        k = np.zeros((size, size), np.float32)
        cv2.line(k, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
                 (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 1.0, 1, cv2.LINE_AA, 4)
        cache[key] = k / max(float(k.sum()), 1e-6)
    return cache[key]


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """img moved by a sub-pixel (dx, dy): out(x, y) = img(x - dx, y - dy)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def _line_contrast(lum: np.ndarray, chroma: np.ndarray, length: int = _LENGTH):
    """Oriented line detector: for each pixel and each of _ANGLES directions, the mean along a `length`-px
    segment (c) against the means of the two parallel segments `offset` px to either side (the same
    filtered image shifted across the line). Bright contrast = min(c - left, c - right): a thin line must
    differ from BOTH sides, which rejects edges; averaging along the segment rejects grain, which is short.

    Returns, per polarity (bright, dark), the best contrast over angles and offsets, the line's own value
    there (mean along the segment of the 3x3 max / min, so a 1 px line is not diluted by the blur) and its
    mean chroma (synthetic or real print scratches are neutral: paper or emulsion).
    """
    soft = cv2.GaussianBlur(lum, (0, 0), 0.5)
    box = np.ones((3, 3), np.uint8)
    peaks = (cv2.dilate(lum, box), cv2.erode(lum, box))
    out = []
    for _ in range(2):
        out.append([np.full_like(lum, -1.0), np.zeros_like(lum), np.zeros_like(lum)])
    for ai in range(_ANGLES):
        a = np.pi * ai / _ANGLES
        k = _line_kernel(length, a)
        c = cv2.filter2D(soft, -1, k, borderType=cv2.BORDER_REFLECT)
        nx, ny = -np.sin(a), np.cos(a)
        bright = np.full_like(c, -1.0)
        dark = np.full_like(c, -1.0)
        for off in _OFFSETS:
            left = _shift(c, off * nx, off * ny) - c
            right = _shift(c, -off * nx, -off * ny) - c
            np.maximum(bright, -np.maximum(left, right), out=bright)
            np.maximum(dark, np.minimum(left, right), out=dark)
        cc = cv2.filter2D(chroma, -1, k, borderType=cv2.BORDER_REFLECT)
        for (best, val, chr_), r, peak in zip(out, (bright, dark), peaks, strict=True):
            better = r > best
            best[better] = r[better]
            val[better] = cv2.filter2D(peak, -1, k, borderType=cv2.BORDER_REFLECT)[better]
            chr_[better] = cc[better]
    return out


def _scratch_score(rgb: np.ndarray, length: int = _LENGTH):
    """How much each pixel looks like part of a bright / a dark scratch (two maps), in luminance contrast.

    Measured on photos and textures, local-contrast normalisation (dividing by a local median or percentile
    of the response) made damage LESS separable from natural lines: strong natural lines sit in smooth
    surroundings, which the division inflates. The absolute contrast is kept, weighted by two priors of
    real print damage: scratches are near the ends of the tonal range (paper white or emulsion black, so a
    mid-grey mortar line or a soft rim counts less) and neutral in colour.
    """
    lum = luminance(rgb)
    chroma = np.ascontiguousarray(rgb.max(axis=2) - rgb.min(axis=2)) if rgb.shape[2] >= 3 else np.zeros_like(lum)
    (rb, vb, cb), (rd, vd, cd) = _line_contrast(lum, chroma, length)
    ext_b = np.clip((vb - _EXT_B) / (0.95 - _EXT_B), 0.0, 1.0)
    ext_d = np.clip((_EXT_D - vd) / (_EXT_D - 0.1), 0.0, 1.0)
    sb = np.maximum(rb, 0.0) * (0.3 + 0.7 * ext_b) - 0.5 * cb
    sd = np.maximum(rd, 0.0) * (0.3 + 0.7 * ext_d) - 0.5 * cd
    # between two bright scratches a dark background reads as a dark line (and beside a dark one, vice
    # versa): a polarity counts only where it beats the other polarity's response nearby
    near = np.ones((2 * _OFFSETS[-1] + 1,) * 2, np.uint8)
    sb_ok = np.where(sb >= cv2.dilate(sd, near), sb, 0.0)
    sd_ok = np.where(sd >= cv2.dilate(sb, near), sd, 0.0)
    return np.maximum(sb_ok, 0.0), np.maximum(sd_ok, 0.0)


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
        # different all around: a natural flat shadow or clipped sky merges into its surroundings somewhere
        if np.percentile(step, 20) > 0.12:
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


def _local_level(score: np.ndarray, k: int = 31) -> np.ndarray:
    """Per-pixel median of the score over a k x k window: how busy the neighbourhood is. A median, so a
    scratch (a few px wide) does not raise it, and per pixel rather than per block, so a busy area next to
    a smooth one does not spread its level over it."""
    q = np.clip(score * 500.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.medianBlur(q, k).astype(np.float32) / 500.0


def _strong_long(score: np.ndarray, hi, lo, min_len: float) -> np.ndarray:
    """Hysteresis by component: the connected regions of weak response (score > lo) that are long (a scratch
    crosses the picture; grain and most natural details do not: the longer side of the bounding box must
    reach `min_len`) and carry strong evidence (at least a tenth of their pixels above `hi`, so one bright
    glint on a natural edge does not make the whole edge damage)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((score > lo).astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(score.shape, bool)
    strong = np.bincount(labels.ravel(), weights=(score > hi).ravel(), minlength=n)
    area = stats[:, cv2.CC_STAT_AREA]
    ext = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    keep = (ext >= min_len) & (strong >= np.maximum(3, _STRONG_FRAC * area))
    keep[0] = False
    kept = keep[labels]
    # weak pixels only near strong ones: a scratch crossing a brick wall must not take the mortar with it
    near = cv2.dilate((kept & (score > hi)).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * _REACH + 1,) * 2)) > 0
    return kept & near


def _spots(rgb: np.ndarray, hi: float) -> np.ndarray:
    """Compact bright or dark specks and drops (dust, small blobs): a top-hat / black-hat much stronger than
    the scratch threshold, in compact, filled, small components."""
    h, w = rgb.shape[:2]
    lum = luminance(rgb)
    d = max(7, min(h, w) // 12) | 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))
    out = np.zeros((h, w), bool)
    for op, ext in ((cv2.MORPH_TOPHAT, np.clip((lum - 0.4) / 0.5, 0, 1)),
                    (cv2.MORPH_BLACKHAT, np.clip((0.6 - lum) / 0.5, 0, 1))):
        r = cv2.morphologyEx(lum, op, disk, borderType=cv2.BORDER_REFLECT) * (0.3 + 0.7 * ext)
        cand = r > 2.0 * hi
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
        if n <= 1:
            continue
        area = stats[:, cv2.CC_STAT_AREA]
        bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
        keep = (area >= 6) & (np.maximum(bw, bh) <= d) & (area >= 0.45 * bw * bh)
        keep[0] = False
        out |= keep[labels]
    return out


def _detect_alone(rgb: np.ndarray, sensitivity: float, rep) -> np.ndarray:
    h, w = rgb.shape[:2]
    # the image is analysed at up to 768 px; the mask is scaled back up
    scale = min(1.0, 768.0 / max(h, w))
    if scale < 1.0:
        small = cv2.resize(rgb, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(_detect_alone(small, sensitivity, rep).astype(np.uint8), (w, h),
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    if rgb.shape[2] == 2:
        rgb = rgb[:, :, :1]
    s = float(sensitivity)
    top = _SEED * (1.6 - 1.2 * s)  # seed threshold in luminance contrast in busy areas (s=0.5 -> _SEED)
    rep(0.1, "looking for scratches")
    bright, dark = _scratch_score(rgb)
    # smooth surroundings (a sky, a render's floor) show fainter scratches: the seed threshold falls to
    # _SMOOTH * top where the neighbourhood's typical line response is low
    hi = np.minimum(top, _SMOOTH * top + _BUSY * _local_level(np.maximum(bright, dark)))
    lo = _GROW * hi               # growth threshold
    lum = luminance(rgb)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_HAT, _HAT))
    scratches = np.zeros((h, w), bool)
    for score, op, sign in ((bright, cv2.MORPH_OPEN, 1.0), (dark, cv2.MORPH_CLOSE, -1.0)):
        found = _strong_long(score, hi, lo, max(12.0, _MINLEN * min(h, w)))
        if found.any():
            # only the line's own pixels: the oriented filter also responds a pixel or two beside the line;
            # a pixel belongs to the scratch when it stands out of an opening (closing) that erases thin lines
            hat = sign * (lum - cv2.morphologyEx(lum, op, disk, borderType=cv2.BORDER_REFLECT))
            scratches |= found & (hat >= _CORE * score)
    rep(0.7, "looking for spots")
    spots = _spots(rgb, top)
    rep(0.8, "looking for holes and streaks")
    holes = _flat_holes(rgb, max(16, int(64 * (1.0 - s))))
    streaks = _streaks(rgb, s)
    return scratches | spots | holes | streaks


# ---------------------------------------------------------------------------------------------
# Against a reference


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
    hmat = _feature_homography(grey8(rgb), grey8(ref))
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
    options: `grow` (pixels to widen the mask by, default 1: a drawn or scanned scratch has soft, anti-aliased
    edges that the line detector's core misses and that would leave a faint ghost after inpainting).
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
