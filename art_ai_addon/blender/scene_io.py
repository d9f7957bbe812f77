"""Scenes and render output on disk: opening a .blend to render it, the scene's output format for a moment,
Blender's own log lines kept off stdout. Used by `render`, batch planning and the image bridge."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import bpy

from ..errors import InputError

_FORMAT_KEYS = ("media_type", "file_format", "color_mode", "color_depth", "exr_codec")


@contextmanager
def image_format(settings, kind: str, *, color_mode: str | None = None):
    """Switch image settings (`scene.render.image_settings`) for the block, then put every field back.

    kind "PNG": 8-bit PNG, in `color_mode` (default: the scene's own BW/RGB/RGBA, else RGBA);
    kind "EXR": 32-bit ZIP multilayer EXR (all passes in one file).
    """
    saved = {k: getattr(settings, k) for k in _FORMAT_KEYS if hasattr(settings, k)}
    try:
        if kind == "PNG":
            if hasattr(settings, "media_type"):
                settings.media_type = "IMAGE"
            mode = color_mode or saved.get("color_mode", "RGBA")
            settings.file_format = "PNG"
            settings.color_mode = mode if mode in ("BW", "RGB", "RGBA") else "RGBA"
            settings.color_depth = "8"
        elif kind == "EXR":
            if hasattr(settings, "media_type"):  # Blender 5: multilayer is a media type of its own
                settings.media_type = "MULTI_LAYER_IMAGE"
            settings.file_format = "OPEN_EXR_MULTILAYER"
            settings.color_depth = "32"
            settings.exr_codec = "ZIP"
        else:  # pragma: no cover - a programming error
            raise ValueError(kind)
        yield settings
    finally:
        for k, v in saved.items():
            try:
                setattr(settings, k, v)
            except (TypeError, AttributeError, ValueError):
                pass


@contextmanager
def stdout_to_stderr():
    """Blender's own log lines go to the C-level stdout; keep stdout for output paths only."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):  # no real file descriptors (embedded consoles): leave them alone
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        try:
            sys.stdout.flush()
        except ValueError:
            pass
        os.dup2(saved, 1)
        os.close(saved)


def open_blend(path):
    """Open a .blend to render it and return its scene; InputError (without a prefix: the caller names the input)
    when it is missing, not a .blend, unreadable, or its scene has no camera."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist")
    if p.is_dir() or p.suffix.lower() != ".blend":
        raise InputError(f"{p} is not a .blend file")
    try:
        with stdout_to_stderr():
            bpy.ops.wm.open_mainfile(filepath=str(p.resolve()))
    except RuntimeError as exc:
        raise InputError(f"Blender cannot open {p}: {str(exc).strip()}") from None
    scene = bpy.context.scene
    if scene.camera is None:
        raise InputError(f"scene {scene.name!r} in {p} has no camera; set one to render")
    return scene


def scene_frames(scene, frames=None) -> list[int]:
    """The frames to render: `frames` (A, B) or the scene's range, in the scene's frame step."""
    a, b = frames if frames else (scene.frame_start, scene.frame_end)
    return list(range(a, b + 1, max(1, scene.frame_step)))


render_started: dict = {}  # scene name -> time the render started (to find the file this render wrote)


def say(progress, msg: str) -> None:
    """A line on stderr for the artist or the farm log (unless the progress says to be quiet)."""
    if not getattr(progress, "quiet", False):
        print(f"art_ai: {msg}", file=sys.stderr, flush=True)


def written_frame(scene) -> Path | None:
    """The file this render just wrote: the animation's frame path, or a still's (F12 with a write), whichever was
    written since the render started."""
    import re

    frame = scene.frame_current
    candidates = [Path(bpy.path.abspath(scene.render.frame_path(frame=frame)))]
    still = bpy.path.abspath(scene.render.filepath)
    still = re.sub(r"#+", lambda m: f"{frame:0{len(m.group(0))}d}", still)
    ext = scene.render.file_extension
    if scene.render.use_file_extension and not still.lower().endswith(ext.lower()):
        still += ext
    candidates.append(Path(still))
    started = render_started.get(scene.name, 0.0)
    found = [(c.stat().st_mtime, c) for c in candidates if c.is_file() and c.stat().st_mtime >= started]
    return max(found)[1] if found else None
