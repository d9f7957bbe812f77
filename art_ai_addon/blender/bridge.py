"""Image bridge: any bpy Image to the engine's array and back.

Blender stores rows bottom-up; float buffers hold scene-linear, premultiplied values; byte buffers hold
the values of their colour space (sRGB for colour images) with straight alpha. The engine wants
display-referred sRGB-encoded float32 (H, W, C), row 0 at the top, straight alpha.

Speed (bench/bridge.py): pixels move with one `foreach_get`/`foreach_set` each way into buffers that are
reused while nobody holds them (no page faults on repeated frames); colour is converted in row blocks that
stay in the cache, with lookup tables indexed by the float's bits (core.srgb_tables), spread over a few
threads (numpy releases the GIL). Only numpy and the standard library: this runs in Blender's own Python.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import bpy
import numpy as np

from .. import core
from ..core import HIGH_HALF, SRGB_DECODE_SHIFT, srgb_tables
from ..errors import ArtAIError, InputError

RESULT_TAG = "art_ai_result"
_BLOCK_VALUES = 1 << 16  # float32 values per block (256 KB): a block's temporaries stay in the L2 cache
_MIN_THREADED = 1 << 20  # values below which one thread is faster than starting more
_buffers: dict[str, np.ndarray] = {}


def _buffer(role: str, shape: tuple) -> np.ndarray:
    """A float32 array for `role`, the one of the last call when nothing outside this module still holds it.

    Reusing it skips the page faults of a fresh 100 MB allocation (as costly as a copy) on every frame."""
    n = int(np.prod(shape))
    buf = _buffers.get(role)
    # references: the dict, `buf`, getrefcount's argument; any view handed out (arr.base) adds one
    if buf is None or buf.size != n or sys.getrefcount(buf) > 3:
        _buffers.pop(role, None)
        buf = np.empty(n, dtype=np.float32)
        _buffers[role] = buf
    return buf.reshape(shape)


def release_buffers() -> None:
    """Forget the reusable pixel buffers (call at the end of a job or in unregister() to give the memory back)."""
    _buffers.clear()


def _threads(values: int) -> int:
    """Threads for a frame: the CPU Threads setting (core.set_threads) or up to 8 cores; one for small images."""
    if values < _MIN_THREADED:
        return 1
    return core.get_threads() or max(1, min(os.cpu_count() or 1, 8))


def _in_row_blocks(fn, h: int, w: int, ch: int) -> None:
    """fn(y0, y1, rows) over [0, h): each thread gets a contiguous band and walks it in cache-sized blocks."""
    rows = max(1, _BLOCK_VALUES // max(1, w * ch))
    n = _threads(h * w * ch)
    if n == 1:
        fn(0, h, rows)
        return
    bands = [(h * i // n, h * (i + 1) // n) for i in range(n)]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="art_ai_bridge") as pool:
        for f in [pool.submit(fn, a, b, rows) for a, b in bands if b > a]:
            f.result()


def is_data_image(image) -> bool:
    cs = image.colorspace_settings
    return bool(getattr(cs, "is_data", False)) or cs.name in {"Non-Color", "Raw", "Generic Data"}


def is_render_result(image) -> bool:
    return image.type in {"RENDER_RESULT", "COMPOSITING"}


def find_image(name: str, what: str = "image"):
    """The datablock called `name`; an error that says what to pick when it is missing."""
    if not name:
        raise InputError(f"{what}: no image chosen; pick one in the Art AI panel or pass {what}='<image name>'")
    image = bpy.data.images.get(name)
    if image is None:
        raise InputError(f"{what}: there is no image called {name!r} in this file")
    return image


def image_to_array(image, scene=None, *, out: np.ndarray | None = None) -> np.ndarray:
    """float32 (H, W, C) as the artist sees it; C is the image's channel count (1, 3 or 4).

    Without `out` the result may be a top-down view of a reused buffer (negative row stride; copy it to keep it
    past the next call only if you also keep the view alive, which keeps the buffer yours). With `out` (a
    C-contiguous float32 (H, W, C) array, e.g. shared memory for the engine worker) the pixels go there."""
    if is_render_result(image):
        arr = render_result_to_array(image, scene or bpy.context.scene)
        if out is not None:
            np.copyto(out, arr)
            return out
        return arr
    w, h = image.size
    if w == 0 or h == 0:
        if image.source == "FILE" and image.filepath:
            raise InputError(f"image {image.name!r}: its file {image.filepath!r} cannot be read (missing or "
                             "not an image); relink it or reload it")
        raise InputError(f"image {image.name!r} has no pixels")
    ch = image.channels
    if out is not None and (out.shape != (h, w, ch) or out.dtype != np.float32):
        raise InputError(f"image {image.name!r}: out must be float32 {(h, w, ch)}, not {out.dtype} {out.shape}")
    buf = _buffer("read", (h, w, ch))
    image.pixels.foreach_get(buf.reshape(-1))
    dst = buf if out is None else out[::-1]  # in Blender's (bottom-up) row order
    if image.is_float and not is_data_image(image):
        _display_from_linear(buf, dst)
    elif image.is_float:  # data maps in float: keep values, but finite and in range
        _clamp_unit(buf, dst)
    elif out is not None:
        np.copyto(dst, buf)  # byte values are in [0, 1] already
    return buf[::-1] if out is None else out


def _display_from_linear(src: np.ndarray, dst: np.ndarray) -> None:
    """Linear premultiplied (maybe NaN/inf) to sRGB-encoded straight alpha in [0, 1]; dst may be src."""
    encode = srgb_tables()[0]
    h, w, ch = src.shape

    def run(y0, y1, rows):
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf in the buffer: the table maps them
            blocks(y0, y1, rows)

    def blocks(y0, y1, rows):
        idx = np.empty((rows, w, ch), np.intp)
        tmp = np.empty((rows, w, ch), np.float32)
        alpha = np.empty((rows, w), np.float32)
        inv = np.empty((rows, w), np.float32)
        keep = np.empty((rows, w), bool)
        # constants as arrays: numpy's SIMD loops for fmax/fmin skip a scalar operand (3x slower)
        zero, one, eps = (np.full((rows, w), v, np.float32) for v in (0.0, 1.0, 1e-6))
        for y in range(y0, y1, rows):
            r = min(rows, y1 - y)
            vals, d = src[y:y + r], dst[y:y + r]
            if ch == 4:
                al = alpha[:r]
                np.copyto(al, vals[..., 3])  # contiguous: the clamps below run at SIMD speed
                np.fmax(al, zero[:r], out=al)  # fmax/fmin also turn NaN into 0
                np.fmin(al, one[:r], out=al)
                if al.min() < 1.0:  # premultiplied: divide by alpha (0 where there is none)
                    iv, k = inv[:r], keep[:r]
                    np.greater(al, eps[:r], out=k)
                    np.fmax(al, eps[:r], out=iv)
                    np.divide(one[:r], iv, out=iv)
                    np.multiply(iv, k, out=iv)
                    t = tmp[:r]
                    for c in range(3):  # per channel: a (..., 4) * (..., 1) broadcast runs 4 values per loop
                        np.multiply(vals[..., c], iv, out=t[..., c])
                    vals = t  # its alpha channel is never read back (the table takes any bits)
            ix = idx[:r]
            np.copyto(ix, vals.view(np.uint16)[..., HIGH_HALF::2], casting="unsafe")  # the table clamps and drops NaN
            if d.flags.c_contiguous:
                np.take(encode, ix, out=d, mode="wrap")
            else:
                np.copyto(d, np.take(encode, ix, out=tmp[:r], mode="wrap"))
            if ch == 4:
                d[..., 3] = al

    _in_row_blocks(run, h, w, ch)


def _clamp_unit(src: np.ndarray, dst: np.ndarray) -> None:
    h, w, ch = src.shape

    def run(y0, y1, rows):
        zero, one = np.zeros((rows, w, ch), np.float32), np.ones((rows, w, ch), np.float32)
        for y in range(y0, y1, rows):
            d = dst[y:y + rows]
            r = d.shape[0]
            np.fmax(src[y:y + r], zero[:r], out=d)  # NaN to 0 too
            np.fmin(d, one[:r], out=d)

    _in_row_blocks(run, h, w, ch)


def _to_blender_rgba(src: np.ndarray, rgba: np.ndarray, colour: bool) -> None:
    """Engine values (h, w, c) in Blender's row order (any strides) into the RGBA buffer; colour: sRGB to linear
    premultiplied (float buffers), else copied (byte buffers take sRGB, data maps their values)."""
    h, w, c = src.shape
    if c == 4 and not colour:
        np.copyto(rgba, src)  # a plain (flipping) copy: one call, memory-bound, nothing to gain from blocks
        return
    decode = srgb_tables()[1]
    k = 3 if c >= 3 else 1

    def run(y0, y1, rows):
        idx = np.empty((rows, w, 4 if c == 4 else k), np.intp)
        tmp = np.empty((rows, w, k), np.float32)
        for y in range(y0, y1, rows):
            r = min(rows, y1 - y)
            s, d = src[y:y + r], rgba[y:y + r]
            alpha = s[..., 3] if c == 4 else s[..., 1] if c == 2 else None
            if colour and c == 4:  # all four through the table into d at once, then alpha over it
                np.right_shift(s.view(np.uint32), SRGB_DECODE_SHIFT, out=idx[:r], casting="unsafe")
                np.take(decode, idx[:r], out=d, mode="wrap")
            elif colour:
                np.right_shift(s[..., :k].view(np.uint32), SRGB_DECODE_SHIFT, out=idx[:r], casting="unsafe")
                d[..., :3] = np.take(decode, idx[:r], out=tmp[:r], mode="wrap")
            else:
                d[..., :3] = s[..., :k]
            if alpha is None:
                d[..., 3] = 1.0
                continue
            d[..., 3] = alpha
            if colour and alpha.min() < 1.0:  # float buffers are premultiplied
                for ch in range(3):
                    np.multiply(d[..., ch], d[..., 3], out=d[..., ch])

    _in_row_blocks(run, h, w, 4)


def render_result_to_array(image, scene) -> np.ndarray:
    """Render Result has no readable pixels: save it (view transform applied) to a temporary PNG and load that."""
    from .scene_io import image_format

    tmp = tempfile.mkdtemp(prefix="art_ai_render_")
    path = os.path.join(tmp, "render.png")
    loaded = None
    try:
        with image_format(scene.render.image_settings, "PNG", color_mode="RGBA"):
            try:
                image.save_render(path, scene=scene)
            except RuntimeError as exc:
                raise InputError("Render Result is empty: render first (F12), then run Art AI on it") from exc
        if not os.path.exists(path):
            raise InputError("Render Result is empty: render first (F12), then run Art AI on it")
        loaded = bpy.data.images.load(path, check_existing=False)
        loaded.colorspace_settings.name = "sRGB"
        return image_to_array(loaded)
    finally:
        if loaded is not None:
            bpy.data.images.remove(loaded)
        shutil.rmtree(tmp, ignore_errors=True)


def _new_or_reuse(name: str, w: int, h: int, float_buffer: bool, data: bool, protect: tuple = ()):
    """Reuse an earlier Art AI result of this name (re-running updates it); never touch anything else."""
    old = bpy.data.images.get(name)
    if old is not None and old.get(RESULT_TAG) and old.name not in protect and old.is_float == float_buffer \
            and old.source == "GENERATED":
        if tuple(old.size) != (w, h):
            old.scale(w, h)
        return old
    img = bpy.data.images.new(name, w, h, alpha=True, float_buffer=float_buffer, is_data=data)
    return img


def array_to_image(arr: np.ndarray, name: str, *, data: bool = False, float_buffer: bool = False,
                   source=None, protect: tuple = ()):
    """A new image (or our earlier result of the same name) holding `arr`; never the source image."""
    a = np.asarray(arr, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    protect = tuple(protect) + ((source.name,) if source is not None else ())
    img = _new_or_reuse(name, w, h, float_buffer, data, protect)
    if data:
        img.colorspace_settings.name = "Non-Color"
    colour = float_buffer and not data
    direct = a[::-1]  # Blender's row order
    if c == 4 and not colour and direct.flags.c_contiguous:
        img.pixels.foreach_set(direct.reshape(-1))  # a bottom-up buffer already (e.g. image_to_array's view)
        return _tag(img, source)
    rgba = _buffer("write", (h, w, 4))
    _to_blender_rgba(direct, rgba, colour)
    img.pixels.foreach_set(rgba.reshape(-1))
    return _tag(img, source)


def _tag(img, source):
    img.update()
    img.use_fake_user = True  # a result with no user yet (not shown anywhere) would be dropped on save
    img[RESULT_TAG] = True
    if source is not None:
        img["art_ai_source"] = source.name
    return img


def pack_results() -> int:
    """Pack Art AI results that live only in memory, so saving the .blend never loses them (save_pre)."""
    n = 0
    for img in bpy.data.images:
        if img.get(RESULT_TAG) and img.source == "GENERATED" and (img.packed_file is None or img.is_dirty):
            try:
                img.pack()
                n += 1
            except RuntimeError:
                pass
    return n


def show_in_editor(context, image) -> None:
    """Show the result in the Image Editor the operator ran from, if any."""
    space = getattr(context, "space_data", None)
    if space is not None and getattr(space, "type", "") == "IMAGE_EDITOR":
        space.image = image


def check_writable_name(name: str, source) -> None:
    if source is not None and name == source.name:
        raise ArtAIError(f"output: {name!r} is the source image; choose another name (the source is never "
                         "overwritten)")
