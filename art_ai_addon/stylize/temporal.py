"""Temporal coherence for stylized frame sequences.

Stylizing frames one by one flickers: every frame lands in a slightly different optimum or picks up its own
render noise. Each new frame is therefore blended with (and, for optimisation methods, started from) the
previous stylized frame warped along the motion between the two content frames. Motion comes from Blender's
Vector pass when the caller has it (`flow=`), else from dense optical flow (OpenCV DIS, Farneback as a
fallback). Where the motion is not trustworthy (disocclusions, where forward and backward motion disagree,
or where the warped previous frame does not match the current one) the fresh result is used as it is, so
stale pixels are never dragged along.

Flow convention used throughout: `flow[y, x] = (dx, dy)` in pixels, rows top-first, meaning that the pixel
(x, y) of frame A shows what is at (x + dx, y + dy) in frame B. The "backward" flow of frame t points into
frame t-1, the "forward" flow of frame t-1 points into frame t.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..core import as_image, as_mask, blend_masked, grey8, reporter
from ..errors import InputError

# methods whose result is an optimisation that can start from a given image
_INIT_METHODS = ("gatys",)


# ---------------------------------------------------------------------------------------------
# Flow


def _cv2():
    from ..imageio import _cv2 as get

    return get()


def optical_flow(frame_a: np.ndarray, frame_b: np.ndarray, *, algorithm: str = "dis") -> np.ndarray:
    """Dense flow (H, W, 2) float32 such that frame_a(x) ~ frame_b(x + flow(x))."""
    cv2 = _cv2()
    a, b = grey8(frame_a), grey8(frame_b)
    if algorithm == "dis":
        try:
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            # small frames need small patches, else the coarsest pyramid level is empty
            if min(a.shape) < 96:
                dis.setPatchSize(6)
                dis.setPatchStride(3)
            return dis.calc(a, b, None).astype(np.float32)
        except (cv2.error, AttributeError):
            pass
    levels = max(1, min(5, int(np.log2(max(8, min(a.shape)) / 8))))
    return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, levels, 15, 3, 5, 1.2, 0).astype(np.float32)


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """out(x) = img(x + flow(x)), bilinear, edges repeated (use `inside(flow)` to know what was outside)."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + flow[:, :, 0]
    my = gy + flow[:, :, 1]
    src = np.ascontiguousarray(img, dtype=np.float32)
    out = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if out.ndim == 2 and img.ndim == 3:
        out = out[:, :, None]
    return out.astype(np.float32)


def inside(flow: np.ndarray) -> np.ndarray:
    """Boolean (H, W): x + flow(x) lands inside the image."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx + flow[:, :, 0]
    my = gy + flow[:, :, 1]
    return (mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)


def flow_confidence(backward: np.ndarray, current: np.ndarray, previous: np.ndarray, *,
                    forward: np.ndarray | None = None, error_low: float = 0.03, error_high: float = 0.10,
                    dilate: int = 1) -> np.ndarray:
    """How much to trust the previous frame warped by `backward`, per pixel in [0, 1].

    Zero where the warped pixel comes from outside the frame, where the forward motion does not lead back
    (occlusion / disocclusion), and where the warped previous content differs from the current content
    (a changed pixel, a shadow, a wrong flow vector); the distrusted areas grow by `dilate` pixels so
    object edges do not bleed.
    """
    cv2 = _cv2()
    ok = inside(backward).astype(np.float32)
    if forward is not None:
        f_at = warp(forward, backward)  # forward flow at the point each pixel came from
        diff = backward + f_at
        mag = (backward ** 2).sum(2) + (f_at ** 2).sum(2)
        ok *= ((diff ** 2).sum(2) <= 0.01 * mag + 0.5).astype(np.float32)
    cur = current[:, :, :3] if current.ndim == 3 else current[:, :, None]
    prev_w = warp(previous[:, :, :3] if previous.ndim == 3 else previous[:, :, None], backward)
    err = np.abs(cur - prev_w).max(axis=2)
    err = cv2.GaussianBlur(err, (3, 3), 0)
    ok *= np.clip((error_high - err) / max(error_high - error_low, 1e-6), 0.0, 1.0)
    if dilate > 0:
        ok = cv2.erode(ok, np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8))
    return ok.astype(np.float32)


def vector_pass_to_flow(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender's Vector pass (H, W, 4), rows top-first, to (backward, forward) flow in our convention.

    Blender stores, in pixels with Y up, the offset from a pixel to where it was in the previous frame in
    XY and the offset from where it will be in the next frame back to it in ZW (checked against Cycles
    renders of a moving object: warping by these flows matches the next/previous frame).
    """
    v = np.asarray(vector, dtype=np.float32)
    if v.ndim != 3 or v.shape[2] < 4:
        raise InputError(f"vector pass: expected (H, W, 4) speed vectors, got shape {v.shape}")
    v = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    backward = np.stack([v[:, :, 0], -v[:, :, 1]], axis=2)
    forward = np.stack([-v[:, :, 2], v[:, :, 3]], axis=2)
    return np.ascontiguousarray(backward), np.ascontiguousarray(forward)


# ---------------------------------------------------------------------------------------------
# Reading passes from (multi-part, multi-layer) OpenEXR files, as Blender writes them


_EXR_TYPES = {0: np.dtype("<u4"), 1: np.dtype("<f2"), 2: np.dtype("<f4")}
_EXR_LINES = {0: 1, 2: 1, 3: 16}  # NONE, ZIPS, ZIP


def _exr_headers(data: bytes):
    magic, version = struct.unpack_from("<ii", data, 0)
    if magic != 20000630:
        raise InputError("not an OpenEXR file")
    multipart = bool(version & 0x1000)
    if version & 0x200:
        raise InputError("tiled OpenEXR files are not supported here; write scanline EXR")
    pos, headers = 8, []
    while True:
        hdr = {}
        while True:
            end = data.index(b"\0", pos)
            name = data[pos:end].decode("latin-1")
            pos = end + 1
            if not name:
                break
            end = data.index(b"\0", pos)
            typ = data[pos:end].decode("latin-1")
            size = struct.unpack_from("<i", data, end + 1)[0]
            pos = end + 5
            hdr[name] = (typ, data[pos:pos + size])
            pos += size
        if not hdr:
            break
        headers.append(hdr)
        if not multipart:
            break
    return headers, pos, multipart


def _exr_channels(raw: bytes):
    chans, pos = [], 0
    while raw[pos:pos + 1] not in (b"\0", b""):
        end = raw.index(b"\0", pos)
        name = raw[pos:end].decode("latin-1")
        ptype = struct.unpack_from("<i", raw, end + 1)[0]
        chans.append((name, ptype))
        pos = end + 1 + 16
    return chans


def _unzip_exr(block: bytes, size: int) -> bytes:
    """Undo OpenEXR's ZIP coding: zlib, then a byte-delta predictor, then two interleaved halves."""
    d = np.frombuffer(zlib.decompress(block), dtype=np.uint8).astype(np.int64)
    if len(d) != size:
        raise InputError("corrupt ZIP block in OpenEXR file")
    d[1:] -= 128
    t = (np.cumsum(d) & 0xFF).astype(np.uint8)
    half = (len(t) + 1) // 2
    out = np.empty(len(t), dtype=np.uint8)
    out[0::2] = t[:half]
    out[1::2] = t[half:]
    return out.tobytes()


def read_exr_channels(path) -> dict[str, np.ndarray]:
    """All channels of a scanline OpenEXR file (single- or multi-part, NONE/ZIPS/ZIP) as float32 (H, W) arrays.

    Keys are full channel names as stored, e.g. "ViewLayer.Vector.X". OpenCV reads only RGBA of the
    default layer, so Blender's multilayer files (all passes in one file) need this.
    """
    p = Path(path)
    data = p.read_bytes()
    headers, pos, multipart = _exr_headers(data)
    out: dict[str, np.ndarray] = {}
    tables = []
    for hdr in headers:
        x0, y0, x1, y1 = struct.unpack("<4i", hdr["dataWindow"][1])
        comp = hdr["compression"][1][0]
        if comp not in _EXR_LINES:
            raise InputError(f"{p.name}: OpenEXR compression {comp} is not supported here (use none, zip or zips)")
        lines = _EXR_LINES[comp]
        n_chunks = (y1 - y0) // lines + 1
        if "chunkCount" in hdr:
            n_chunks = struct.unpack("<i", hdr["chunkCount"][1])[0]
        offsets = struct.unpack_from(f"<{n_chunks}Q", data, pos)
        pos += 8 * n_chunks
        tables.append((hdr, offsets, (x0, y0, x1, y1), comp, lines))
    for hdr, offsets, (x0, y0, x1, y1), comp, lines in tables:
        w, h = x1 - x0 + 1, y1 - y0 + 1
        chans = _exr_channels(hdr["channels"][1])
        arrays = {name: np.zeros((h, w), np.float32) for name, _ in chans}
        for off in offsets:
            q = off + (4 if multipart else 0)
            y, size = struct.unpack_from("<ii", data, q)
            block = data[q + 8:q + 8 + size]
            n_lines = min(lines, y1 - y + 1)
            expected = sum(_EXR_TYPES[t].itemsize for _, t in chans) * w * n_lines
            if comp != 0 and size < expected:
                block = _unzip_exr(block, expected)
            bpos = 0
            for row in range(n_lines):
                for name, t in chans:
                    dt = _EXR_TYPES[t]
                    vals = np.frombuffer(block, dtype=dt, count=w, offset=bpos)
                    arrays[name][y - y0 + row] = vals.astype(np.float32)
                    bpos += w * dt.itemsize
        prefix = hdr["name"][1].decode("latin-1").rstrip("\0") + "." if "name" in hdr else ""
        for name, arr in arrays.items():
            full = name if not prefix or name.startswith(prefix) else prefix + name
            out[full] = arr
    return out


def read_vector_pass(path) -> np.ndarray | None:
    """The Vector pass (H, W, 4) of a Blender multilayer EXR, or None when the file has none."""
    chans = read_exr_channels(path)
    for key in chans:
        if key.endswith("Vector.X"):
            base = key[:-1]
            return np.stack([chans[base + c] for c in "XYZW"], axis=2)
    return None


# ---------------------------------------------------------------------------------------------
# Sequence


def _color_part(img: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if img.shape[2] in (2, 4):
        return img[:, :, :-1], img[:, :, -1:]
    return img, None


def _split_flow(flow):
    if flow is None:
        return None, None
    if isinstance(flow, dict):
        return flow.get("backward"), flow.get("forward")
    if isinstance(flow, (tuple, list)):
        return flow[0], (flow[1] if len(flow) > 1 else None)
    return flow, None


def _check_flow(f, shape, what):
    if f is None:
        return None
    f = np.asarray(f, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] < 2 or f.shape[:2] != tuple(shape[:2]):
        raise InputError(f"flow: {what} flow must be (H, W, 2) matching the {shape[1]}x{shape[0]} frame, "
                         f"got {f.shape}")
    return np.ascontiguousarray(f[:, :, :2])


def stylize_sequence(content, style, previous_state=None, *, method="auto", strength: float = 1.0,
                     preserve_color: bool = False, mask=None, device: str = "auto", progress=None, cancel=None,
                     info: dict | None = None, flow=None, temporal_weight: float = 0.7,
                     occlusion: bool = True, **options):
    """Stylize one frame of a sequence coherently with the previous one; returns (result, state).

    Call with `previous_state=None` for the first frame and then with the state the previous call returned.
    `flow` is optional motion from the renderer: a backward flow (H, W, 2), or a dict/tuple with
    "backward" and "forward" (see the module docstring); without it, optical flow is estimated.
    `temporal_weight` (0..1) is how much of the warped previous result is kept where motion is trusted:
    higher is steadier, lower follows changes in the frame more quickly. `method` may also be a callable
    `method(content, style, **kwargs) -> image` for custom engines.
    """
    from .engine import stylize

    options.pop("temporal", None)  # the CLI marks temporal runs this way; it is what this function does
    rep = reporter(progress, cancel)
    img = as_image(content, "content")
    m = as_mask(mask, img.shape, "mask")
    weight = float(np.clip(temporal_weight, 0.0, 0.98))
    state = previous_state if isinstance(previous_state, dict) else None
    if state is not None and (state.get("content") is None or state["content"].shape != img.shape):
        state = None  # a new shot or a new size: start again

    run_info: dict = {}
    engine = method if callable(method) else stylize
    kwargs = dict(strength=strength, preserve_color=preserve_color, mask=mask, device=device,
                  progress=rep.sub(0.15, 0.95), cancel=cancel, **options)
    if not callable(method):
        kwargs.update(method=method, info=run_info)

    if state is None:
        rep(0.0, "stylize (first frame)")
        result = as_image(engine(img, style, **kwargs), "stylized frame")
        coverage = 0.0
    else:
        rep(0.0, "motion")
        prev_content = state["content"]
        backward, forward = _split_flow(flow)
        backward = _check_flow(backward, img.shape, "backward")
        forward = _check_flow(forward, img.shape, "forward")
        if backward is None:
            backward = optical_flow(img, prev_content)
            if occlusion and forward is None:
                forward = optical_flow(prev_content, img)
        prev_styl = state["stylized"]
        warped = warp(prev_styl, backward)
        if occlusion:
            conf = flow_confidence(backward, _color_part(img)[0], _color_part(prev_content)[0], forward=forward)
        else:
            conf = np.ones(img.shape[:2], np.float32)
        coverage = float(conf.mean())
        rep(0.15, "stylize")
        used = state.get("method")
        if used in _INIT_METHODS and not callable(method):
            wc = _color_part(warped)[0]
            ic = _color_part(img)[0]
            init = ic + conf[:, :, None] * (wc - ic)
            try:
                result = engine(img, style, init=np.clip(init, 0.0, 1.0), **kwargs)
            except (TypeError, ValueError):  # an engine that cannot start from an image: blend afterwards
                result = engine(img, style, **kwargs)
        else:
            result = engine(img, style, **kwargs)
        result = as_image(result, "stylized frame")
        if result.shape == warped.shape:
            rc, ra = _color_part(result)
            wc = _color_part(warped)[0]
            k = (weight * conf)[:, :, None]
            blended = rc + k * (wc - rc)
            if m is not None:
                blended = blend_masked(_color_part(img)[0], blended, m)
            result = np.concatenate([blended, ra], axis=2) if ra is not None else blended
            result = np.clip(result, 0.0, 1.0).astype(np.float32)
    rep(1.0, "done")
    used = run_info.get("method", getattr(method, "__name__", "custom") if callable(method) else method)
    if info is not None:
        info.update(run_info)
        info["temporal_coverage"] = coverage
    new_state = {"content": img, "stylized": result, "method": used,
                 "frame": (state.get("frame", 0) + 1) if state else 0}
    return result, new_state


def make_state(content, stylized, method: str | None = None) -> dict:
    """A sequence state from frames on disk (resuming a sequence, or a chunk starting mid-way)."""
    img = as_image(content, "previous frame")
    res = as_image(stylized, "previous stylized frame")
    if res.shape != img.shape:
        raise InputError(f"previous stylized frame: size/channels {res.shape} differ from its frame's {img.shape}")
    return {"content": img, "stylized": res, "method": method, "frame": 0}


def warm_start(content_path, restylize, *, result_path=None, say=None) -> dict | None:
    """The sequence state of the frame before a run of frames to stylize (a farm chunk, a resumed render).

    From the frame's stylized result on disk (`result_path`) when it is there and fits; else its content is
    re-stylized with `restylize(content) -> state` (nothing is written), and `say` is told so. None when the
    frame itself does not exist (the run then starts the sequence afresh).
    """
    from ..errors import ArtAIError
    from ..imageio import read_image

    src = Path(content_path)
    if not src.is_file():
        return None
    content = read_image(src, what="previous frame")
    if result_path is not None and Path(result_path).is_file():
        try:
            return make_state(content, read_image(result_path, what="previous stylized frame"))
        except ArtAIError:
            pass
    if say is not None:
        say(f"re-stylizing {src.name} so the sequence stays coherent across the chunk boundary")
    return restylize(content)
