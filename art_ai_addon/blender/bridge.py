"""Image bridge: any bpy Image to the engine's array and back.

Blender stores rows bottom-up; float buffers hold scene-linear, premultiplied values; byte buffers hold
the values of their colour space (sRGB for colour images) with straight alpha. The engine wants
display-referred sRGB-encoded float32 (H, W, C), row 0 at the top, straight alpha.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import bpy
import numpy as np

from ..core import linear_to_srgb_fast, srgb_to_linear_fast
from ..errors import ArtAIError, InputError

RESULT_TAG = "art_ai_result"


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


def image_to_array(image, scene=None) -> np.ndarray:
    """float32 (H, W, C) as the artist sees it; C is the image's channel count (1, 3 or 4)."""
    if is_render_result(image):
        return render_result_to_array(image, scene or bpy.context.scene)
    w, h = image.size
    if w == 0 or h == 0:
        if image.source == "FILE" and image.filepath:
            raise InputError(f"image {image.name!r}: its file {image.filepath!r} cannot be read (missing or "
                             "not an image); relink it or reload it")
        raise InputError(f"image {image.name!r} has no pixels")
    ch = image.channels
    buf = np.empty(w * h * ch, dtype=np.float32)
    image.pixels.foreach_get(buf)
    arr = buf.reshape(h, w, ch)[::-1]
    if image.is_float and not is_data_image(image):
        return _linear_premul_to_display(arr)
    if image.is_float:  # data maps in float: keep values, but finite and in range
        out = np.ascontiguousarray(arr)
        np.nan_to_num(out, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
        np.clip(out, 0.0, 1.0, out=out)
        return out
    return arr  # a top-down view of the buffer: no copy (byte values are already in [0, 1])


_TORCH_MIN_PIXELS = 1 << 21  # below ~2 MP numpy is as fast and needs no torch import


def _torch_for(pixels: int):
    """torch for whole-frame colour conversion when it is installed (multi-threaded, fused in place)."""
    if pixels < _TORCH_MIN_PIXELS:
        return None
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return torch


def _torch_to_display(torch, arr: np.ndarray) -> np.ndarray:
    out = np.ascontiguousarray(arr, dtype=np.float32).copy()
    t = torch.from_numpy(out)
    t.nan_to_num_(nan=0.0, posinf=1.0, neginf=0.0)
    t.clamp_(min=0.0)
    rgb = t[..., :3] if t.shape[-1] == 4 else t
    if t.shape[-1] == 4:
        a = t[..., 3:].clamp_(max=1.0)
        rgb.div_(a.clamp(min=1e-6)).mul_((a > 1e-6).to(t.dtype))
    rgb.clamp_(max=1.0)
    low = rgb * 12.92
    high = rgb.clamp(min=0.0031308).pow_(1 / 2.4).mul_(1.055).sub_(0.055)
    torch.where(rgb <= 0.0031308, low, high, out=rgb)
    return out


def _torch_to_linear_premul(torch, rgba: np.ndarray) -> None:
    t = torch.from_numpy(rgba)
    rgb = t[..., :3]
    low = rgb / 12.92
    high = rgb.clamp(min=0.04045).add_(0.055).div_(1.055).pow_(2.4)
    torch.where(rgb <= 0.04045, low, high, out=rgb)
    rgb.mul_(t[..., 3:])


def _linear_premul_to_display(arr: np.ndarray) -> np.ndarray:
    """Float buffer (linear, premultiplied, maybe NaN) to sRGB straight alpha, in row blocks that stay in cache."""
    h, w, ch = arr.shape
    torch = _torch_for(h * w)
    if torch is not None:
        return _torch_to_display(torch, arr)
    out = np.empty((h, w, ch), dtype=np.float32)
    step = max(1, (1 << 18) // max(w * ch, 1))
    for y in range(0, h, step):
        blk = out[y:y + step]
        np.fmax(arr[y:y + step], 0.0, out=blk)  # fmax/fmin also turn NaN into 0
        np.fmin(blk, 1.0 if ch != 4 else np.inf, out=blk)
        if ch == 4:
            a = blk[:, :, 3:]
            np.fmin(a, 1.0, out=a)
            inv = np.divide(1.0, a, out=np.zeros_like(a), where=a > 1e-6)
            blk[:, :, :3] *= inv
            alpha = a.copy()
            linear_to_srgb_fast(blk, out=blk)
            blk[:, :, 3:] = alpha
        else:
            linear_to_srgb_fast(blk, out=blk)
    return out


def render_result_to_array(image, scene) -> np.ndarray:
    """Render Result has no readable pixels: save it (view transform applied) to a temporary PNG and load that."""
    tmp = tempfile.mkdtemp(prefix="art_ai_render_")
    path = os.path.join(tmp, "render.png")
    settings = scene.render.image_settings
    saved = {k: getattr(settings, k) for k in ("media_type", "file_format", "color_mode", "color_depth")
             if hasattr(settings, k)}
    loaded = None
    try:
        if hasattr(settings, "media_type"):
            settings.media_type = "IMAGE"
        settings.file_format = "PNG"
        settings.color_mode = "RGBA"
        settings.color_depth = "8"
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
        for k, v in saved.items():
            try:
                setattr(settings, k, v)
            except (TypeError, AttributeError):
                pass
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
    direct = a[::-1]
    if c == 4 and (data or not float_buffer) and direct.flags.c_contiguous:
        img.pixels.foreach_set(direct.reshape(-1))  # a bottom-up buffer already (e.g. image_to_array's view)
        return _tag(img, source)
    rgba = np.empty((h, w, 4), dtype=np.float32)
    flipped = rgba[::-1]
    if c == 4:
        np.copyto(flipped, a)
    elif c >= 3:
        flipped[:, :, :3] = a[:, :, :3]
    else:
        flipped[:, :, :3] = a[:, :, :1]
    if c == 4:
        pass
    elif c == 2:
        flipped[:, :, 3] = a[:, :, 1]
    else:
        rgba[:, :, 3] = 1.0
    torch = _torch_for(h * w) if float_buffer and not data else None
    if torch is not None:
        _torch_to_linear_premul(torch, rgba)
    elif float_buffer and not data:
        step = max(1, (1 << 18) // (w * 4))
        for y in range(0, h, step):
            blk = rgba[y:y + step]
            alpha = blk[:, :, 3:].copy()
            srgb_to_linear_fast(blk, out=blk)
            blk[:, :, :3] *= alpha  # float buffers are premultiplied
            blk[:, :, 3:] = alpha
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
