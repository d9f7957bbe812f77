"""Upscaling files: what the `upscale` command, the batch step and the render option share.

A 16-bit PNG/TIFF comes back 16-bit; a float EXR is read with its values above 1 (scene-linear, encoded to sRGB
past 1 for the engine, so the HDR path keeps highlights) and written back as float EXR, linear. A folder of frames
goes into a folder under the same names; frames already written are skipped (resumable, like `render`) unless
`force`. Every file is written under a temporary name and renamed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import linear_to_srgb, reporter, srgb_to_linear
from ..errors import ArtAIError, InputError


def read_for_upscale(path, *, data: bool = False, what: str = "image") -> tuple[np.ndarray, int]:
    """(picture, bits: 8, 16 or 32 for float EXR). EXR keeps values above 1 (sRGB-encoded past 1 unless `data`)."""
    from ..imageio import _cv2, check_image_file, check_input_file, quiet_stderr, read_image

    p = check_input_file(path, what)
    header = check_image_file(p, what)
    if p.suffix.lower() != ".exr":
        img = read_image(p, data=data, what=what)
        return img, 16 if header is not None and header.bytes_per_channel == 2 else 8
    cv2 = _cv2()
    with quiet_stderr():
        raw = cv2.imdecode(np.fromfile(str(p), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{what}: cannot read {p}: not an EXR OpenCV can decode")
    raw = np.nan_to_num(raw.astype(np.float32), nan=0.0, posinf=65504.0, neginf=0.0)
    if raw.ndim == 2:
        raw = raw[:, :, None]
    elif raw.shape[2] == 3:
        raw = raw[:, :, ::-1]
    elif raw.shape[2] == 4:
        raw = raw[:, :, [2, 1, 0, 3]]
    if not data:
        n = min(raw.shape[2], 3)
        raw[:, :, :n] = linear_to_srgb(raw[:, :, :n])
    return np.ascontiguousarray(raw, dtype=np.float32), 32


def write_upscaled(path, img: np.ndarray, bits: int = 8, *, data: bool = False) -> Path:
    """Write a result: EXR as float (linear unless `data`, values above 1 kept), PNG/TIFF 16-bit when `bits` is
    16 or more (an HDR picture written to PNG is clipped to 1), else 8-bit."""
    from ..imageio import _cv2, as_path, write_bytes_atomic, write_image

    p = as_path(path, "output")
    if p.suffix.lower() != ".exr":
        return write_image(p, np.clip(img, 0.0, 1.0), data=data, bits=16 if bits >= 16 else None)
    out = np.array(img, dtype=np.float32)
    if not data:
        n = min(out.shape[2], 3)
        out[:, :, :n] = srgb_to_linear(out[:, :, :n])
    if out.shape[2] == 3:
        out = out[:, :, ::-1]
    elif out.shape[2] == 4:
        out = out[:, :, [2, 1, 0, 3]]
    ok, encoded = _cv2().imencode(".exr", np.ascontiguousarray(out[:, :, 0] if out.shape[2] == 1 else out))
    if not ok:
        raise ArtAIError(f"output: OpenCV could not encode {p.name} as EXR")
    return write_bytes_atomic(p, encoded.tobytes())


def outputs_for(inputs: list[Path], output, *, folder: bool | None = None) -> list[Path]:
    """Where each input goes: one input and a file name -> that file; else OUT is a folder, same names."""
    o = Path(output)
    if folder is None:
        folder = len(inputs) > 1 or o.is_dir() or (not o.suffix and not o.exists())
    if not folder:
        return [o]
    return [o / p.name for p in inputs]


def upscale_files(inputs, output, scale: float = 4, *, method: str = "auto", tileable: bool = False,
                  pbr: bool = False, device: str = "auto", force: bool = False, progress=None, cancel=None,
                  written=None, say=None, overwrite: bool = False, chunk=None, **options) -> list[Path]:
    """Upscale image files into `output` (a file for one input, else a folder); returns the paths written.

    With `pbr`, the inputs are one texture set: colour maps go through `method`, normal and other data maps are
    resized as data (see `upscale_maps`). Outputs that exist are skipped unless `force`."""
    from ..validate import check_output_image
    from . import map_kind, upscale, upscale_maps

    ins = [Path(p) for p in inputs]
    if not ins:
        raise InputError("upscale: no input images")
    outs = outputs_for(ins, output)
    for dst in outs:
        check_output_image(dst, ins, overwrite, "-o")
    if len({str(d.resolve()) for d in outs}) != len(outs):
        raise InputError("-o: several inputs have the same file name; upscale them into different folders")
    if chunk:  # the I-th of N slices (a render farm's share); names still follow the whole list
        from ..progress import chunk_slice

        pairs = chunk_slice(list(zip(ins, outs)), chunk)
        ins, outs = [a for a, _ in pairs], [b for _, b in pairs]
    rep = reporter(progress, cancel)
    done: list[Path] = []
    todo = [(s, d) for s, d in zip(ins, outs) if force or not d.exists()]
    for d in outs:
        if not force and d.exists() and say is not None:
            say(f"{d}: already upscaled, skipped (--force redoes it)")
    if pbr:
        maps, bits = {}, {}
        for s, _ in todo:
            maps[s.name], bits[s.name] = read_for_upscale(s, data=map_kind(s.name) != "color", what=f"map {s.name}")
        res = upscale_maps(maps, scale, method=method, tileable=tileable, device=device, progress=rep, **options)
        for s, d in todo:
            p = write_upscaled(d, res[s.name], bits[s.name], data=map_kind(s.name) != "color")
            done.append(p)
            if written is not None:
                written(p)
        return done
    for k, (s, d) in enumerate(todo):
        sub = rep.sub(k / len(todo), (k + 1) / len(todo))
        img, bits = read_for_upscale(s, what="image")
        info: dict = {}
        res = upscale(img, scale, method=method, tileable=tileable, device=device, progress=sub, info=info,
                      **options)
        if info.get("note") and say is not None and k == 0:
            say(info["note"])
        p = write_upscaled(d, res, bits)
        done.append(p)
        if written is not None:
            written(p)
    return done


class _FullSize:
    """What `render_smaller` yields: the output size asked for (h, w), the factor and the method to reach it."""

    def __init__(self, size: tuple[int, int], scale: float, method: str):
        self.size, self.scale, self.method = size, scale, method


def render_smaller(scene, scale: float = 1.0, method: str = "auto"):
    """Context manager for "Render Smaller, Upscale": inside it the scene renders at 1/`scale` of its output size
    (its resolution setting is restored on leaving); it yields a `_FullSize` (the full size, the factor, the method:
    render.py upscales the written frame with them), or None when `scale` is 1."""
    import contextlib

    from .. import methods as _m

    @contextlib.contextmanager
    def cm():
        s = _m.check_number(scale, "upscale", 1.0, 8.0, hint="render at 1/S of the size, then upscale S times")
        _mark(scene, True)  # the add-on's own Render Smaller handler leaves this render alone
        try:
            if s <= 1.0:
                yield None
                return
            r = scene.render
            saved = (r.resolution_x, r.resolution_y, r.resolution_percentage)
            full_w = r.resolution_x * r.resolution_percentage // 100
            full_h = r.resolution_y * r.resolution_percentage // 100
            try:
                r.resolution_x, r.resolution_y = max(1, round(full_w / s)), max(1, round(full_h / s))
                r.resolution_percentage = 100
                yield _FullSize((full_h, full_w), s, method)
            finally:
                r.resolution_x, r.resolution_y, r.resolution_percentage = saved
        finally:
            _mark(scene, False)

    return cm()


MARK = "_art_ai_render_smaller"  # a scene ID property while render_smaller is rendering it


def _mark(scene, on: bool) -> None:
    try:
        if on:
            scene[MARK] = 1
        elif MARK in scene:
            del scene[MARK]
    except (TypeError, AttributeError, KeyError):  # not a Blender ID (the tests' stand-in scene)
        pass
