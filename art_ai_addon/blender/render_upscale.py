"""Render Smaller, Upscale (Render Properties > Art AI): render at 1/S of the output size, upscale to the full size.

`scene.art_ai.render_upscale` S > 1: when a render starts (render_init, before Blender reads the resolution) the
scene's resolution is set to 1/S of the output size; each frame written to a file (animation, `blender -b -a`,
F12 with a write) is upscaled in place to the full output size before anything else reads it (our render_write
handler runs first, so "Stylize on Render" sees the full-size frame); when the render ends or is cancelled the
resolution setting comes back, unchanged. An F12 still that writes no file gets `Render Result.upscaled` (the
Upscale operator, on the main thread). Lanczos runs here; the networks run in the engine worker.
"""

from __future__ import annotations

import threading

import bpy

_saved: dict = {}  # scene name -> (resolution_x, resolution_y, resolution_percentage, scale, method)
_wrote: set = set()  # scenes whose current render wrote a frame file


def _settings(scene) -> tuple[float, str]:
    props = getattr(scene, "art_ai", None)
    scale = float(getattr(props, "render_upscale", 1.0) or 1.0)
    return scale, str(getattr(props, "render_upscale_method", "AUTO")).lower()


@bpy.app.handlers.persistent
def on_init(scene, *args):
    from ..upscale.files import MARK

    scale, method = _settings(scene)
    if scale <= 1.0 or scene.name in _saved or scene.get(MARK):  # `render` (render_frames) does its own
        return
    r = scene.render
    _saved[scene.name] = (r.resolution_x, r.resolution_y, r.resolution_percentage, scale, method)
    full_w, full_h = r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100
    r.resolution_x, r.resolution_y = max(1, round(full_w / scale)), max(1, round(full_h / scale))
    r.resolution_percentage = 100
    _wrote.discard(scene.name)


def full_size(scene) -> tuple[int, int] | None:
    saved = _saved.get(scene.name)
    if saved is None:
        return None
    x, y, pct = saved[:3]
    return y * pct // 100, x * pct // 100


def upscale_file(path, size: tuple[int, int], scale: float, method: str) -> None:
    """The frame file at `path` upscaled in place to `size` (h, w): Lanczos here, the networks in the worker."""
    from ..upscale.files import read_for_upscale, write_upscaled
    from .props import call_config, engine_settings
    from .runner import EngineCall, plan

    img, bits = read_for_upscale(path, what="rendered frame")
    settings = engine_settings()
    call = EngineCall("upscale", {"image": img, "scale": scale, "method": method, "device": settings["device"],
                                  "models_dir": settings["models_dir"]}, method=method,
                      config=call_config(settings))
    call.where = plan(call, settings.get("python"))
    out = call(None, threading.Event())
    if out.shape[:2] != tuple(size):
        from ..upscale import lanczos

        out = lanczos.resize(out, size, clip=False)
    write_upscaled(path, out, bits)


@bpy.app.handlers.persistent
def on_write(scene, *args):
    saved = _saved.get(scene.name)
    if saved is None:
        return
    from .scene_io import say as _say, written_frame

    path, size = written_frame(scene), full_size(scene)
    if path is None or size is None:
        return
    _wrote.add(scene.name)
    try:
        upscale_file(path, size, saved[3], saved[4])
    except Exception as exc:  # noqa: BLE001 - a render handler must not raise into Blender
        _say(None, f"render smaller, upscale: {path.name}: {exc}")


@bpy.app.handlers.persistent
def on_done(scene, *args):
    saved = _saved.pop(scene.name, None)
    if saved is None:
        return
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = saved[:3]
    if scene.name in _wrote or bpy.app.background:
        _wrote.discard(scene.name)
        return
    name, scale, method = scene.name, saved[3], saved[4]
    bpy.app.timers.register(lambda: upscale_render_result(name, scale, method), first_interval=0.1)


def upscale_render_result(scene_name: str, scale: float, method: str, mode: str = "INVOKE_DEFAULT") -> None:
    """An F12 still that wrote no file: the Render Result upscaled into `Render Result.upscaled` by the Upscale
    operator (on the main thread, from a timer: progress and cancel as for any other job)."""
    target = bpy.data.scenes.get(scene_name)
    if target is not None:
        with bpy.context.temp_override(scene=target):
            bpy.ops.art_ai.upscale(mode, image="Render Result", scale=scale, method=method.upper(),
                                   output="Render Result.upscaled")
    return None


def register_handlers(registered: list) -> None:
    """Our handlers first in each list (the frame is full size before Stylize on Render reads it)."""
    for lst, fn in ((bpy.app.handlers.render_init, on_init), (bpy.app.handlers.render_write, on_write),
                    (bpy.app.handlers.render_complete, on_done), (bpy.app.handlers.render_cancel, on_done)):
        lst.insert(0, fn)
        registered.append((lst, fn))
