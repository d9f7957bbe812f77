"""inpaint(): fill the masked parts of an image; the method is chosen per call or per hole ("auto")."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from ..core import as_image, as_mask, merge_alpha, reporter, split_alpha
from ..errors import InputError

METHODS = ("auto", "smooth", "telea", "ns", "patch", "dip", "lama")

# a hole whose widest point is at most this many pixels from its edge is a "thin" scratch (~8 px wide)
THIN_RADIUS = 4.0
# mask values above this count as damaged (a little above 0 so 8-bit noise in painted masks is ignored)
HOLE_LEVEL = 1.0 / 255.0


def _opencv(rgb, hole, flag, radius=3):
    """OpenCV's inpainting per channel in float32, so 16-bit and float images keep their precision."""
    m = hole.astype(np.uint8)
    out = np.empty_like(rgb)
    for ch in range(rgb.shape[2]):
        # OpenCV's float path assumes 0..255 values (in 0..1 it diverges), so scale around the call
        out[:, :, ch] = cv2.inpaint(np.ascontiguousarray(rgb[:, :, ch] * 255.0), m, radius, flag)
    return np.clip(out / 255.0, 0.0, 1.0)


def _telea(rgb, hole, **_):
    return _opencv(rgb, hole, cv2.INPAINT_TELEA)


def _ns(rgb, hole, **_):
    return _opencv(rgb, hole, cv2.INPAINT_NS)


def _smooth(rgb, hole, *, solve=None, rep=None, **_):
    """Biharmonic fill started from Telea's: continues gradients, not just values (+2 dB on scratches).

    solve: the part of the hole to solve for (default all of it); the rest keeps Telea's fill and serves
    as boundary, so scratches running into a large hole need not wait for the slow solve of the hole.
    """
    from .smooth import biharmonic_fill

    telea = _telea(rgb, hole)
    return biharmonic_fill(telea, hole if solve is None else solve, telea, rep=rep)


def _patch(rgb, hole, *, seed=0, patch_size=7, source_ok=None, rep=None, **_):
    from .patchmatch import patch_inpaint

    out = patch_inpaint(rgb, hole, source_ok=source_ok, patch_size=patch_size, seed=seed, progress=rep)
    if out is None:
        warnings.warn("patch inpainting: the known area is too small for a single patch; used Telea instead",
                      RuntimeWarning, stacklevel=3)
        return _telea(rgb, hole)
    return out


def thin_and_large(hole: np.ndarray, thin_radius: float = THIN_RADIUS):
    """Split a hole mask into thin parts (scratches, text) and large ones (blobs, missing areas).

    Decided per connected component by its widest point (distance-transform maximum); a component that
    is mostly thin but has a wide part (a scratch running into a blob) is split: the wide part, grown by
    its own radius, is large, the rest stays thin.
    """
    dist = cv2.distanceTransform(np.pad(hole, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    core = (dist > thin_radius).astype(np.uint8)
    # a few wide pixels where scratches cross are not a hole
    n, labels, stats, _ = cv2.connectedComponentsWithStats(core, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= 2 * thin_radius * thin_radius
    keep[0] = False
    core = keep[labels].astype(np.uint8)
    if not core.any():
        return hole.copy(), np.zeros_like(hole)
    grow = int(np.ceil(dist.max())) + 1
    large = (cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1,) * 2)) > 0) & hole
    return hole & ~large, large


def _auto(rgb, hole, *, seed=0, rep=None, **options):
    """Thin components get the biharmonic smooth fill (continues lines and shading); large ones PatchMatch."""
    thin, large = thin_and_large(hole)
    if thin.any():
        out = _smooth(rgb, hole, solve=thin, rep=rep.sub(0.0, 0.2) if large.any() and rep is not None else rep)
    else:
        out = rgb.copy()
    if large.any():
        # large holes are filled with the repair of the scratches as context, but patches are never
        # copied from any damaged pixel
        base = out.copy()
        base[large] = rgb[large]
        filled = _patch(base, large, seed=seed, source_ok=~hole, rep=rep.sub(0.2, 1.0) if rep is not None else rep,
                        **options)
        out[large] = filled[large]
    return out


def _binary_ints(mask):
    """An integer mask holding only 0 and 1 (a label image) means 0/1, not 0/255."""
    if mask is not None and not isinstance(mask, np.ndarray | float):
        mask = np.asarray(mask)
    if isinstance(mask, np.ndarray) and np.issubdtype(mask.dtype, np.integer) and mask.size and mask.max() == 1:
        return mask.astype(np.float32)
    return mask


def inpaint(image, mask, *, method: str = "auto", device: str = "auto", progress=None, cancel=None, **options):
    """Fill where `mask` is white; everything where the mask is 0 stays exactly as it was.

    method: "smooth" (biharmonic fill, numpy; best on thin scratches and text, blurs large holes),
    "telea" / "ns" (OpenCV, fast, for thin scratches), "patch" (multi-scale PatchMatch, large
    holes get texture), "dip" (Deep Image Prior, torch, `steps`), "lama" (LaMa weights from the model
    store), "auto" (per connected hole: thin -> smooth, large -> PatchMatch).
    options: `steps` (dip), `seed` (patch, dip), `models_dir` (lama), `patch_size` (patch).

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
    img = as_image(image, "image")
    m = as_mask(_binary_ints(mask), img.shape, "mask")
    if m is None:
        raise InputError("mask: no mask given; paint one, or detect damage first (detect_damage / --detect)")
    name = (method or "auto").lower()
    if name not in METHODS:
        raise InputError(f"method: unknown inpainting method {method!r}; use one of {', '.join(METHODS)}")
    rep = reporter(progress, cancel)
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
    if name == "smooth":
        filled = _smooth(rgb, hole, rep=rep)
    elif name == "telea":
        filled = _telea(rgb, hole)
    elif name == "ns":
        filled = _ns(rgb, hole)
    elif name == "patch":
        filled = _patch(rgb, hole, seed=seed, rep=rep, **options)
    elif name == "auto":
        filled = _auto(rgb, hole, seed=seed, rep=rep, **options)
    elif name == "dip":
        from .dip import dip_inpaint

        filled = dip_inpaint(rgb, hole, device=device, seed=seed, progress=rep, **options)
    else:
        from .lama import lama_inpaint

        filled = lama_inpaint(rgb, hole, device=device, progress=rep, **options)
    weight = np.clip(m * 2.0, 0.0, 1.0)
    weight[~hole] = 0.0
    w3 = weight[:, :, None]
    out = rgb * (1.0 - w3) + np.clip(filled, 0.0, 1.0) * w3
    out[~hole] = rgb[~hole]
    rep(1.0, "done")
    return merge_alpha(out, alpha, like=img)
