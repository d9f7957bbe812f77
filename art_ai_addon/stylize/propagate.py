"""Paint one frame, the animation follows: keyframe propagation guided by the renderer's own passes.

What is carried is the artist's change, D = painted - rendered, not the painted pixels: each frame is its own render
plus the change carried to it, so the paint stays on the surface while that frame's own light, shadows and
highlights stay as rendered, and whatever the artist did not paint (D = 0) stays exactly as rendered.

How D reaches frame t from keyframe k (Jamriška et al. 2019, "Stylizing Video by Example", guide their patch
synthesis with estimated motion and positions; the renderer knows them exactly):

- `guided` (the UV and object passes): each object's keyframe pixels are scattered into an atlas over the object's
  UV space that stores, per texel, where on the keyframe that surface point was seen. A pixel of frame t looks up its
  own (object, UV) there and samples D at that keyframe position. Exact under any motion of objects or camera, with
  no drift over long gaps; a lookup is accepted only where the atlas saw that surface and the keyframe pixel found is
  the same object at the same UV (so a surface hidden in the keyframe is never given another one's paint).
- motion (the Vector pass, chained frame to frame; or optical flow when there are no passes) for what has no UV:
  the world background, objects without a UV map, or `method="flow"`.
- Surfaces that no keyframe saw (disoccluded, or coming into view) get their paint synthesized from the carried
  paint around them by patch-based inpainting of D (PatchMatch), not smeared or left bare.
- Between two keyframes D is the blend of both carried changes by temporal distance, so the look crosses over
  without a jump; before the first and after the last keyframe the nearest one holds.
"""

from __future__ import annotations

import numpy as np

from .. import methods as _methods
from ..core import as_image, reporter, split_alpha
from ..errors import InputError

GUIDE_KEYS = ("vector", "uv", "position", "object")


# ---------------------------------------------------------------------------------------------
# Inputs


def _check(frames, keyframes, guides):
    if not isinstance(frames, (list, tuple)) or not frames:
        raise InputError("frames: expected a list of the rendered frames")
    imgs = [as_image(f, f"frame {i}") for i, f in enumerate(frames)]
    shape = imgs[0].shape
    for i, f in enumerate(imgs):
        if f.shape[:2] != shape[:2]:
            raise InputError(f"frame {i}: {f.shape[1]}x{f.shape[0]}, frame 0 is {shape[1]}x{shape[0]}; every frame "
                             "must have the same size")
    if not isinstance(keyframes, dict) or not keyframes:
        raise InputError("keyframes: expected {frame index: painted image}, at least one")
    keys = {}
    for k, painted in keyframes.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise InputError(f"keyframes: the key {k!r} is not a frame index (a whole number)")
        if not 0 <= int(k) < len(imgs):
            raise InputError(f"keyframe {k}: outside the frames (0..{len(imgs) - 1})")
        p = as_image(painted, f"keyframe {k}")
        if p.shape[:2] != shape[:2]:
            raise InputError(f"keyframe {k}: the painted image is {p.shape[1]}x{p.shape[0]}, the frames are "
                             f"{shape[1]}x{shape[0]}; paint over the frame at its own size")
        keys[int(k)] = p
    gl = None
    if guides is not None:
        if not isinstance(guides, (list, tuple)) or len(guides) != len(imgs):
            raise InputError(f"guides: expected one dict per frame ({len(imgs)}), got "
                             f"{len(guides) if isinstance(guides, (list, tuple)) else type(guides).__name__}")
        gl = []
        for i, g in enumerate(guides):
            g = dict(g or {})
            for key, val in g.items():
                if key not in GUIDE_KEYS:
                    raise InputError(f"guides[{i}]: unknown guide {key!r}; use {', '.join(GUIDE_KEYS)}")
                a = np.asarray(val)
                if a.shape[:2] != shape[:2]:
                    raise InputError(f"guides[{i}]['{key}']: {a.shape[1] if a.ndim > 1 else '?'}x{a.shape[0]}, the "
                                     f"frames are {shape[1]}x{shape[0]}")
            gl.append(g)
    return imgs, keys, gl


def _rgb(img):
    rgb = split_alpha(img)[0]
    return np.repeat(rgb, 3, axis=2) if rgb.shape[2] == 1 else rgb


def _ids(obj) -> np.ndarray:
    a = np.asarray(obj)
    if a.ndim == 3:
        a = a[:, :, 0]
    if a.dtype.kind == "f":
        return np.ascontiguousarray(a.astype(np.float32)).view(np.uint32).astype(np.int64)
    return a.astype(np.int64)


# ---------------------------------------------------------------------------------------------
# UV atlases: where on the keyframe each surface point was seen


def _sample(img: np.ndarray, x: np.ndarray, y: np.ndarray, interp: int, border: int, value=0) -> np.ndarray:
    """img at the points (x, y) (any number: OpenCV's remap takes at most 32767 a row, so they go in rows)."""
    import cv2

    n = len(x)
    width = 4096
    rows = max(1, -(-n // width))
    pad = rows * width - n
    mx = np.pad(np.asarray(x, np.float32), (0, pad)).reshape(rows, width)
    my = np.pad(np.asarray(y, np.float32), (0, pad)).reshape(rows, width)
    out = cv2.remap(img, mx, my, interp, borderMode=border, borderValue=value)
    return out.reshape((rows * width,) + out.shape[2:])[:n]


class _Atlas:
    """One object's UV space, each texel holding the keyframe position (x, y) that showed it.

    A pyramid of texel sizes: a receding floor is seen densely near the camera and sparsely far away, so each
    lookup takes the finest level that has it. A coarser level is allowed only where the keyframe's own pixels
    were that sparse on the surface (their UV footprint), so a hole left by an occluder (dense all around) is never
    bridged by a coarse texel.
    """

    def __init__(self, uv: np.ndarray, ys: np.ndarray, xs: np.ndarray, footprint: np.ndarray):
        import cv2

        from .layers import fill

        u, v = uv[:, 0].astype(np.float64), uv[:, 1].astype(np.float64)
        self.u0, self.v0 = float(u.min()), float(v.min())
        span = max(u.max() - self.u0, v.max() - self.v0, 1e-6)
        fine = float(np.percentile(footprint, 10)) * 0.7
        texel = max(fine, span / 2000.0, 1e-6)
        coarsest = float(np.percentile(footprint, 99)) * 2.0
        self.levels = []
        while True:
            nu = int(np.ceil((u.max() - self.u0) / texel)) + 2
            nv = int(np.ceil((v.max() - self.v0) / texel)) + 2
            iu = np.clip(np.round((u - self.u0) / texel).astype(np.int64), 0, nu - 1)
            iv = np.clip(np.round((v - self.v0) / texel).astype(np.int64), 0, nv - 1)
            cell = iv * nu + iu
            count = np.bincount(cell, minlength=nu * nv).reshape(nv, nu).astype(np.float32)
            stack = np.stack([np.bincount(cell, weights=wt, minlength=nu * nv).reshape(nv, nu)
                              for wt in (xs, ys, footprint)], axis=2) / np.maximum(count, 1)[:, :, None]
            seen = count > 0
            closed = cv2.morphologyEx(seen.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
            data = fill(stack.astype(np.float32), seen.astype(np.float32))
            ok = closed.copy()
            if self.levels:  # coarse texels only where the keyframe saw the surface that sparsely
                ok &= data[:, :, 2] >= 0.5 * texel
            ok &= cv2.erode(ok.astype(np.uint8), np.ones((2, 2), np.uint8), anchor=(0, 0)).astype(bool)
            self.levels.append((texel, np.ascontiguousarray(data[:, :, :2]), ok.astype(np.float32)))
            if texel >= coarsest or len(self.levels) >= 8 or max(nu, nv) <= 4:
                break
            texel *= 2.0

    def lookup(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, valid, texel) on the keyframe for these UVs (N, 2): the finest level that saw each."""
        import cv2

        n = len(uv)
        x = np.full(n, -1.0, np.float32)
        y = np.full(n, -1.0, np.float32)
        valid = np.zeros(n, bool)
        tex = np.zeros(n, np.float32)
        for texel, xy, ok in self.levels:
            todo = ~valid
            if not todo.any():
                break
            fu = (uv[todo, 0] - self.u0) / texel
            fv = (uv[todo, 1] - self.v0) / texel
            got = _sample(xy, fu, fv, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT, (-1, -1))
            good = _sample(ok, fu, fv, cv2.INTER_LINEAR, cv2.BORDER_CONSTANT, 0) >= 0.999
            idx = np.nonzero(todo)[0][good]
            x[idx], y[idx] = got[good, 0], got[good, 1]
            tex[idx] = texel
            valid[idx] = True
        return x, y, valid, tex


def _footprint(uv: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Each pixel's size on its surface in UV units (the larger of its steps to same-object neighbours)."""
    from .layers import _shift

    fp = np.zeros(ids.shape, np.float32)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        same = _shift(ids, dy, dx) == ids
        step = np.abs(_shift(uv, dy, dx)[:, :, :2] - uv[:, :, :2]).max(axis=2)
        fp = np.maximum(fp, np.where(same, step, 0.0))
    return fp


def _interior(ids: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours are the same object (no anti-aliased mix of two surfaces' UVs)."""
    from .layers import _shift

    same = np.ones(ids.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        same &= _shift(ids, dy, dx) == ids
    return same


def _uv_valid(uv: np.ndarray) -> np.ndarray:
    if uv.shape[2] >= 3:
        return uv[:, :, 2] > 0.5
    return np.any(uv[:, :, :2] != 0, axis=2)


class _GuidedKey:
    """A keyframe's change D and its per-object atlases, to carry D to other frames by their UV and object passes."""

    def __init__(self, change: np.ndarray, guide: dict):
        self.change = change
        self.uv = np.asarray(guide["uv"], np.float32)
        self.ids = _ids(guide["object"])
        inner = _interior(self.ids) & _uv_valid(self.uv) & (self.ids != 0)
        self.atlases: dict[int, _Atlas] = {}
        fp = self.fp = _footprint(self.uv, self.ids)
        from .layers import fill

        self.unmixed: dict[int, np.ndarray] = {}  # per object: D from its own interior pixels only (no edge mix)
        for o in np.unique(self.ids[inner]):
            ys, xs = np.nonzero(inner & (self.ids == o))
            if len(ys) >= 4:
                self.unmixed[int(o)] = fill(change, (inner & (self.ids == o)).astype(np.float32))
                self.atlases[int(o)] = _Atlas(self.uv[ys, xs, :2], ys.astype(np.float64), xs.astype(np.float64),
                                              np.maximum(fp[ys, xs], 1e-7).astype(np.float64))

    def carry(self, guide: dict) -> tuple[np.ndarray, np.ndarray]:
        """(D on this frame, where it is known) by UV lookup."""
        import cv2

        uv = np.asarray(guide["uv"], np.float32)
        ids = _ids(guide["object"])
        h, w = ids.shape
        out = np.zeros((h, w, 3), np.float32)
        known = np.zeros((h, w), bool)
        usable = _uv_valid(uv) & (ids != 0) & _interior(ids)  # edge pixels mix two surfaces' UVs: filled after
        for o, atlas in self.atlases.items():
            ys, xs = np.nonzero(usable & (ids == o))
            if len(ys) == 0:
                continue
            kx, ky, ok, tex = atlas.lookup(uv[ys, xs, :2])
            # the keyframe pixel found must show the same object at the same place of its surface
            nx = np.clip(np.round(kx).astype(np.int64), 0, w - 1)
            ny = np.clip(np.round(ky).astype(np.int64), 0, h - 1)
            duv = np.abs(self.uv[ny, nx, :2] - uv[ys, xs, :2]).max(axis=1)
            ok &= (self.ids[ny, nx] == o) & (duv <= 3 * np.maximum(tex, self.fp[ny, nx])) & (kx >= 0) & (ky >= 0)
            if not ok.any():
                continue
            vals = _sample(self.unmixed[o], kx[ok], ky[ok], cv2.INTER_LINEAR, cv2.BORDER_REPLICATE)
            out[ys[ok], xs[ok]] = vals
            known[ys[ok], xs[ok]] = True
        return out, known


# ---------------------------------------------------------------------------------------------
# Motion: the Vector pass chained frame to frame, or optical flow


def _chain(flows: list[np.ndarray]) -> np.ndarray:
    """The flow that goes through `flows` one after the other: total(x) = f1(x) + f2(x + f1(x)) + ..."""
    from .temporal import warp

    total = flows[0].copy()
    for f in flows[1:]:
        total = total + warp(f, total)
    return total


def _carry_by_motion(change, plain_t, plain_k, flow, guide_t, guide_k) -> tuple[np.ndarray, np.ndarray]:
    """D carried from keyframe k by motion: `flow` (t -> k, from the Vector pass) or optical flow between the two
    renders; trusted only where the keyframe shows the same thing there."""
    from .temporal import inside, optical_flow, warp

    if flow is None:
        flow = optical_flow(plain_t, plain_k)
    if guide_t is not None and guide_k is not None and guide_t.get("object") is not None \
            and guide_k.get("object") is not None:
        # each object's change from its own pixels only, so a bilinear sample at an outline takes no other's paint
        from .layers import fill

        ids_t, ids_kk = _ids(guide_t["object"]), _ids(guide_k["object"])
        inner_k = _interior(ids_kk)
        carried = np.zeros_like(change)
        for o in np.unique(ids_t):
            src = inner_k & (ids_kk == o)
            if not src.any():
                continue
            take = ids_t == o
            carried[take] = warp(fill(change, src.astype(np.float32)), flow)[take]
    else:
        carried = warp(change, flow)
    known = inside(flow)
    seen = warp(plain_k, flow)
    known &= np.abs(seen - plain_t).max(axis=2) < 0.12
    if guide_t is not None and guide_k is not None and guide_t.get("object") is not None \
            and guide_k.get("object") is not None:
        import cv2

        ids_k = _ids(guide_k["object"]).astype(np.float64)
        h, w = ids_k.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        at = cv2.remap(ids_k, gx + flow[:, :, 0], gy + flow[:, :, 1], cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_REPLICATE)
        known &= at == _ids(guide_t["object"]).astype(np.float64)
    return carried.astype(np.float32), known


# ---------------------------------------------------------------------------------------------
# Filling what no keyframe saw


def _close_small(change: np.ndarray, known: np.ndarray, ids: np.ndarray | None,
                 radius: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Gaps of a few pixels (anti-aliased edges, lookups that missed by a texel) filled smoothly from the known
    pixels of the same object around them."""
    import cv2

    from .layers import fill

    if known.all() or not known.any():
        return change, known
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    small = ~known & (cv2.erode(cv2.dilate(known.astype(np.uint8), k), k) > 0)
    if not small.any():
        return change, known
    out = change.copy()
    groups = np.zeros(known.shape, np.int64) if ids is None else ids
    done = np.zeros_like(known)
    for o in np.unique(groups[small]):
        mine = groups == o
        src = known & mine
        if not src.any():
            continue
        filled = fill(change, src.astype(np.float32))
        take = small & mine
        out[take] = filled[take]
        done |= take
    return out, known | done


def _synthesize(change: np.ndarray, known: np.ndarray, ids: np.ndarray | None, seed: int, *,
                painted_all: bool = False, rep=None) -> np.ndarray:
    """D where no keyframe saw the surface, synthesized by patch-based inpainting from the carried D of the same
    object (its strokes, not another object's, and nothing where the artist left that object unpainted). An object
    no keyframe showed at all gets strokes from everything carried, but only when the artist painted nearly
    everything (`painted_all`); otherwise it stays as rendered."""
    import cv2

    from ..repair.patchmatch import patch_inpaint
    from .layers import fill

    hole = ~known
    if not hole.any() or not known.any():
        return change
    groups = np.zeros(hole.shape, np.int64) if ids is None else ids
    out = change.copy()
    enc = np.clip(change * 0.5 + 0.5, 0.0, 1.0).astype(np.float32)
    for o in np.unique(groups[hole]):
        mine = groups == o
        h_o = hole & mine
        src = known & mine
        if src.sum() < 16:
            if not painted_all:
                out[h_o] = 0.0
                continue
            src = known & (np.abs(change).max(axis=2) > 2 / 255)
            if src.sum() < 16:
                out[h_o] = 0.0
                continue
        if np.abs(change[src]).max() <= 1 / 255:  # the artist left this object as rendered
            out[h_o] = 0.0
            continue
        box_y, box_x = np.nonzero(h_o | src)
        pad = 8
        y0, y1 = max(0, box_y.min() - pad), min(hole.shape[0], box_y.max() + 1 + pad)
        x0, x1 = max(0, box_x.min() - pad), min(hole.shape[1], box_x.max() + 1 + pad)
        crop_hole, crop_src = h_o[y0:y1, x0:x1], src[y0:y1, x0:x1]
        img = fill(enc[y0:y1, x0:x1], crop_src.astype(np.float32))
        ok = cv2.erode(crop_src.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        try:
            filled = patch_inpaint(img, crop_hole, source_ok=ok if ok.sum() >= 49 else crop_src, patch_size=7,
                                   seed=seed, rep=rep)
        except (InputError, ValueError):
            filled = None
        if filled is None:
            filled = img  # too little to copy patches from: the smooth continuation
        out[y0:y1, x0:x1][crop_hole] = (np.asarray(filled)[crop_hole] - 0.5) * 2.0
    return out


# ---------------------------------------------------------------------------------------------
# The API


class Propagator:
    """The keyframes' changes, ready to be carried to any frame: `frame(t, plain, guide)` one frame at a time (a farm
    chunk needs only its own frames, the keyframes and their passes)."""

    def __init__(self, keys: dict, *, use_uv: bool, seed: int = 0, synthesize: bool = True):
        # keys: {frame number: (plain, painted, guide or None)}
        self.plain = {k: _rgb(as_image(v[0], f"keyframe {k} render")) for k, v in keys.items()}
        self.changes = {k: (_rgb(as_image(v[1], f"keyframe {k}")) - self.plain[k]).astype(np.float32)
                        for k, v in keys.items()}
        self.guides = {k: v[2] for k, v in keys.items()}
        self.use_uv, self.seed, self.synthesize = use_uv, seed, synthesize
        self.guided = {k: _GuidedKey(self.changes[k], self.guides[k]) for k in keys} if use_uv else {}
        self.order = sorted(keys)
        # did the artist paint (nearly) the whole picture, or chosen things? (what an unseen object should get)
        self.painted_all = bool(np.mean([float((np.abs(c).max(axis=2) > 2 / 255).mean())
                                         for c in self.changes.values()]) > 0.6)

    def frame(self, t: int, plain_t: np.ndarray, guide_t: dict | None, motion=None, cancel=None):
        """(result RGB, unseen pixel count) of frame number t. `motion(t, k)`: the flow from t to keyframe k, or
        None for optical flow between the two renders."""
        plain = _rgb(plain_t)
        before = [k for k in self.order if k < t]
        after = [k for k in self.order if k > t]
        near = ([before[-1]] if before else []) + ([after[0]] if after else [])
        if len(near) == 2:
            k1, k2 = near
            weights = {k1: (k2 - t) / (k2 - k1), k2: (t - k1) / (k2 - k1)}
        else:
            weights = {near[0]: 1.0}
        acc = np.zeros_like(plain)
        wsum = np.zeros(plain.shape[:2], np.float32)
        surface = None
        if self.use_uv and guide_t is not None:
            surface = _uv_valid(np.asarray(guide_t["uv"])) & (_ids(guide_t["object"]) != 0)
        for k in sorted(self.order, key=lambda kk: abs(kk - t)):
            if k not in weights and (wsum > 0).all():
                break
            d, known = np.zeros_like(plain), np.zeros(plain.shape[:2], bool)
            if self.use_uv and guide_t is not None:
                d, known = self.guided[k].carry(guide_t)
            if not known.all():
                flow = motion(t, k) if motion is not None else None
                dm, km = _carry_by_motion(self.changes[k], plain, self.plain[k], flow, guide_t, self.guides[k])
                if surface is not None:  # the motion fills only what has no UV (background, objects without one)
                    km &= ~surface
                take = km & ~known
                d[take] = dm[take]
                known |= take
            wk = weights.get(k, 1e-3 / (1 + abs(k - t)))  # far keyframes only where the near ones saw nothing
            wmap = np.where(known, wk, 0.0).astype(np.float32)
            if k not in weights:
                wmap = np.where(wsum > 0, 0.0, wmap).astype(np.float32)
            acc += wmap[:, :, None] * d
            wsum += wmap
        change = acc / np.maximum(wsum, 1e-12)[:, :, None]
        ids_t = _ids(guide_t["object"]) if guide_t is not None and guide_t.get("object") is not None else None
        change, known = _close_small(change, wsum > 0, ids_t)
        unseen = int((~known).sum())
        if self.synthesize:
            change = _synthesize(change, known, ids_t, self.seed + t, painted_all=self.painted_all,
                                 rep=reporter(None, cancel))
        return np.clip(plain + change, 0.0, 1.0).astype(np.float32), unseen


def _with_alpha(res: np.ndarray, src: np.ndarray) -> np.ndarray:
    if src.shape[2] == 4:
        return np.concatenate([res, src[:, :, 3:]], axis=2).astype(np.float32)
    if src.shape[2] == 1:
        return res.mean(axis=2, keepdims=True).astype(np.float32)
    return res


def has_uv(guides) -> bool:
    return guides is not None and all(g.get("uv") is not None and g.get("object") is not None for g in guides)


def propagate_keyframes(frames, keyframes, *, guides=None, method: str = "auto", progress=None, cancel=None,
                        info: dict | None = None, **options) -> list[np.ndarray]:
    """Every frame with the look the artist painted on the keyframes; see the module docstring.

    frames: the plain renders (list of (H, W, C)); keyframes: {frame index: painted (H, W, C)}; guides: None or per
    frame a dict with any of "vector" (Blender's Vector pass, (H, W, 4)), "uv" ((H, W, 2 or 3)), "position",
    "object" ((H, W) ids). method: "auto" (UV where there is one, then motion), "guided", "flow". Options: `seed`,
    `synthesize` (True: fill what no keyframe saw). A keyframe comes back unchanged at its own index.
    """
    record, options = _methods.check("propagate", method, dict(options))
    rep = reporter(progress, cancel)
    info = info if info is not None else {}
    plain_imgs, keys, gl = _check(frames, keyframes, guides)
    use_uv = record.name in ("auto", "guided") and has_uv(gl)
    if record.name == "guided" and not use_uv:
        raise InputError("method guided: needs the UV and object passes of every frame (guides=[{'uv': ..., "
                         "'object': ...}, ...]); use auto or flow without them")
    vectors = gl is not None and all(g.get("vector") is not None for g in gl)
    info["method"] = "guided (UV + object passes)" if use_uv else ("vector pass" if vectors else "optical flow")
    prop = Propagator({k: (plain_imgs[k], p, gl[k] if gl else None) for k, p in keys.items()}, use_uv=use_uv,
                      seed=int(options.get("seed", 0)), synthesize=bool(options.get("synthesize", True)))

    def motion(t, k):
        if not vectors:
            return None
        from .temporal import vector_pass_to_flow

        if k < t:
            steps = [vector_pass_to_flow(gl[i]["vector"])[0] for i in range(t, k, -1)]
        else:
            steps = [vector_pass_to_flow(gl[i]["vector"])[1] for i in range(t, k)]
        return _chain(steps)

    out: list[np.ndarray] = []
    unseen = 0
    n = len(plain_imgs)
    for t in range(n):
        rep(t / n, f"frame {t + 1}/{n}")
        if t in keys:
            out.append(keys[t].copy())
            continue
        res, holes = prop.frame(t, plain_imgs[t], gl[t] if gl else None, motion, cancel)
        unseen += holes
        out.append(_with_alpha(res, plain_imgs[t]))
    info["unseen_pixels"] = unseen
    rep(1.0, "done")
    return out


def propagate_frame(frame, number: int, keys: dict, *, guide=None, method: str = "auto", progress=None,
                    cancel=None, info: dict | None = None, **options) -> np.ndarray:
    """One frame (its frame `number`) propagated from `keys` = {frame number: {"plain", "painted", "guide"}}: the
    engine task of `render --keyframe` and of farm chunks (each needs only its frames and the keyframes)."""
    record, options = _methods.check("propagate", method, dict(options))
    rep = reporter(progress, cancel)
    img = as_image(frame, "frame")
    guides = [guide] + [v.get("guide") for v in keys.values()]
    use_uv = record.name in ("auto", "guided") and has_uv(guides)
    if record.name == "guided" and not use_uv:
        raise InputError("method guided: needs the UV and object passes of the frame and the keyframes")
    if int(number) in keys:
        return as_image(keys[int(number)]["painted"], f"keyframe {number}")
    prop = Propagator({int(k): (v["plain"], v["painted"], v.get("guide")) for k, v in keys.items()}, use_uv=use_uv,
                      seed=int(options.get("seed", 0)), synthesize=bool(options.get("synthesize", True)))
    res, holes = prop.frame(int(number), img, guide, None, cancel)
    if info is not None:
        info["method"] = "guided (UV + object passes)" if use_uv else "optical flow"
        info["unseen_pixels"] = holes
    rep(1.0, "done")
    return _with_alpha(res, img)
