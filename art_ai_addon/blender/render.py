"""Rendering with stylization: the `render` CLI command and the stylize-on-render handler.

`render` renders a .blend's frames to DIR/raw/0001.png and stylizes them to DIR/stylized/0001.png, skipping
finished frames, so it resumes after a crash and splits across a farm with `--chunk I/N`. With
`--temporal` the Vector pass is rendered too (kept as DIR/vector/0001.exr) and drives the motion
compensation of `stylize_sequence`.

The handler stylizes each frame Blender writes (F12 with a write, `-a`, the Render Animation menu) and
saves `<frame>_stylized.<ext>` beside it; the written frame itself is never touched.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np

from ..errors import ArtAIError, InputError

# ---------------------------------------------------------------------------------------------
# Output formats


@contextmanager
def _image_format(settings, kind: str):
    """Temporarily switch the scene's output format (PNG 8 bit, or uncompressed 32-bit multilayer EXR)."""
    keys = ("media_type", "file_format", "color_mode", "color_depth", "exr_codec")
    saved = {k: getattr(settings, k) for k in keys if hasattr(settings, k)}
    try:
        if kind == "PNG":
            if hasattr(settings, "media_type"):
                settings.media_type = "IMAGE"
            mode = saved.get("color_mode", "RGBA")
            settings.file_format = "PNG"
            settings.color_mode = mode if mode in ("BW", "RGB", "RGBA") else "RGBA"
            settings.color_depth = "8"
        else:
            if hasattr(settings, "media_type"):  # Blender 5: multilayer is a media type of its own
                settings.media_type = "MULTI_LAYER_IMAGE"
            settings.file_format = "OPEN_EXR_MULTILAYER"
            settings.color_depth = "32"
            settings.exr_codec = "ZIP"
        yield settings
    finally:
        for k, v in saved.items():
            try:
                setattr(settings, k, v)
            except (TypeError, AttributeError, ValueError):
                pass


@contextmanager
def _stdout_to_stderr():
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


def _save_render(scene, path: Path, kind: str) -> Path:
    """Save the Render Result under a temporary name, then rename (never half a file under the real name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    rr = bpy.data.images["Render Result"]
    with _image_format(scene.render.image_settings, kind):
        rr.save_render(str(tmp), scene=scene)
    if not tmp.exists():
        raise ArtAIError(f"render: Blender did not write {tmp}")
    os.replace(tmp, path)
    return path


def write_vector(path: Path, vector: np.ndarray) -> Path:
    """The Vector pass alone as a float EXR (X, Y, Z, W in R, G, B, A)."""
    from ..imageio import _cv2, write_bytes_atomic

    cv2 = _cv2()
    ok, enc = cv2.imencode(".exr", np.ascontiguousarray(vector[:, :, [2, 1, 0, 3]].astype(np.float32)))
    if not ok:
        raise ArtAIError(f"render: OpenCV could not encode {path.name}")
    return write_bytes_atomic(path, enc.tobytes())


def read_vector(path: Path) -> np.ndarray | None:
    from ..imageio import _cv2

    cv2 = _cv2()
    if not path.exists():
        return None
    img = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        return None
    return img[:, :, [2, 1, 0, 3]].astype(np.float32)


def _render_vector(scene, path: Path) -> np.ndarray | None:
    """Extract the Vector pass of the current Render Result (via a temporary multilayer EXR)."""
    from ..stylize.temporal import read_vector_pass

    tmp = path.with_name(f".{path.stem}.passes.exr")
    try:
        _save_render(scene, tmp, "EXR")
        vec = read_vector_pass(tmp)
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass
    if vec is not None:
        write_vector(path, vec)
    return vec


# ---------------------------------------------------------------------------------------------
# `python -m art_ai_addon render`


_quiet = False


def _log(msg: str) -> None:
    if _quiet:
        return
    print(f"art_ai: {msg}", file=sys.stderr, flush=True)


def _open(path: str):
    p = Path(path)
    if not p.exists():
        raise InputError(f"SCENE.blend: {p} does not exist")
    if p.is_dir() or p.suffix.lower() != ".blend":
        raise InputError(f"SCENE.blend: {p} is not a .blend file")
    try:
        with _stdout_to_stderr():
            bpy.ops.wm.open_mainfile(filepath=str(p.resolve()))
    except RuntimeError as exc:
        raise InputError(f"SCENE.blend: Blender cannot open {p}: {str(exc).strip()}") from None
    scene = bpy.context.scene
    if scene.camera is None:
        raise InputError(f"SCENE.blend: scene {scene.name!r} in {p} has no camera; set one to render")
    return scene


def _frames(scene, args) -> list[int]:
    a, b = args.frames if args.frames else (scene.frame_start, scene.frame_end)
    return list(range(a, b + 1, max(1, scene.frame_step)))


def render_command(args, progress) -> int:
    """Render (and stylize) frames; finished frames are skipped unless --force. Returns the exit code."""
    from ..cli import chunk_slice
    from ..core import reporter
    from ..imageio import read_image, write_image
    from ..stylize import stylize
    from ..stylize.temporal import make_state, stylize_sequence, vector_pass_to_flow

    global _quiet
    _quiet = bool(getattr(progress, "quiet", False))
    styles = [read_image(s, what="style") for s in (args.style or [])]
    style = (styles[0] if len(styles) == 1 else styles) if styles else None
    scene = _open(args.scene)
    frames = _frames(scene, args)
    mine = chunk_slice(frames, args.chunk)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o: {out} is a file, expected a folder")
    raw_dir, sty_dir, vec_dir = out / "raw", out / "stylized", out / "vector"
    do_style = style is not None or bool(getattr(args, "model", None))  # a fast model carries its own style
    temporal = bool(getattr(args, "temporal", False)) and do_style
    use_vectors = False
    if temporal:
        if scene.render.use_motion_blur:
            _log("motion blur is on, so the renderer gives no Vector pass: motion comes from optical flow")
        else:
            for layer in scene.view_layers:
                layer.use_pass_vector = True
            use_vectors = True
    options = {k: getattr(args, k) for k in ("steps", "seed", "model") if getattr(args, k, None) is not None}
    common = dict(method=args.method, strength=args.strength, preserve_color=args.preserve_color,
                  device=args.device, **options)
    step = max(1, scene.frame_step)
    if not mine:
        _log("no frames in this chunk")
        return 0

    def name(frame):
        return f"{frame:04d}"

    def state_from_disk(frame):
        """Sequence state for `frame` (the one before the next to stylize), or None when it was never rendered."""
        raw = raw_dir / f"{name(frame)}.png"
        if frame not in frames or not raw.exists():
            return None
        content = read_image(raw, what="raw frame")
        done = sty_dir / f"{name(frame)}.png"
        if done.exists():
            try:
                return make_state(content, read_image(done, what="stylized frame"))
            except ArtAIError:
                pass
        _log(f"frame {frame}: re-stylizing it so the sequence stays coherent across the chunk boundary")
        _, st = stylize_sequence(content, style, None, **common)
        return st

    state, state_frame = None, None
    n = len(mine)
    for k, frame in enumerate(mine):
        prog = reporter(progress.item(f"[frame {frame} {k + 1}/{n}] ") if hasattr(progress, "item") else progress)
        raw = raw_dir / f"{name(frame)}.png"
        sty = sty_dir / f"{name(frame)}.png"
        vec = vec_dir / f"{name(frame)}.exr"
        finished = raw.exists() and (not do_style or sty.exists())
        if finished and not args.force:
            _log(f"frame {frame}: already done, skipped ({raw})")
            continue
        if args.force or not raw.exists():
            prog(0.0, "render")
            with _stdout_to_stderr():
                scene.frame_set(frame)
                bpy.ops.render.render(write_still=False)
                _save_render(scene, raw, "PNG")
                got_vectors = _render_vector(scene, vec) is not None if use_vectors else False
            if use_vectors and not got_vectors:
                _log("the render engine gave no Vector pass: motion comes from optical flow")
                use_vectors = False
            print(str(raw), flush=True)
        if not do_style:
            prog(1.0, "done")
            continue
        content = read_image(raw, what="raw frame")
        info: dict = {}
        if temporal:
            if state is None or state_frame != frame - step:
                state = state_from_disk(frame - step)
            flow = None
            cur_vec = read_vector(vec) if use_vectors else None
            if cur_vec is not None and cur_vec.shape[:2] == content.shape[:2]:
                backward, _ = vector_pass_to_flow(cur_vec)
                prev_vec = read_vector(vec_dir / f"{name(frame - step)}.exr")
                forward = None
                if prev_vec is not None and prev_vec.shape == cur_vec.shape:
                    forward = vector_pass_to_flow(prev_vec)[1]
                flow = {"backward": backward, "forward": forward}
            result, state = stylize_sequence(content, style, state, progress=prog.sub(0.3, 1.0), info=info,
                                             flow=flow, **common)
            state_frame = frame
        else:
            result = stylize(content, style, progress=prog.sub(0.3, 1.0), info=info, **common)
        if info.get("note"):
            _log(info["note"])
        write_image(sty, result)
        print(str(sty), flush=True)
        prog(1.0, "done")
    return 0


# ---------------------------------------------------------------------------------------------
# Stylize on render


_sequences: dict = {}  # output folder -> (frame, state) for temporal stylize-on-render


def stylized_path(path) -> Path:
    p = Path(path)
    return p.with_name(f"{p.stem}_stylized{p.suffix}")


def stylize_frame_file(path, settings: dict) -> Path:
    """Stylize the frame file at `path` into `<stem>_stylized<ext>` beside it; the frame itself is untouched.

    settings: "style" (an image array) or "style_path", "method", "strength", "preserve_color", and
    optionally "steps", "seed", "model", "device", "mask" (array), "temporal" with "frame".
    """
    from ..imageio import read_image, write_image
    from ..stylize import stylize
    from ..stylize.temporal import stylize_sequence

    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".exr", ".bmp", ".webp"):
        raise InputError(f"stylize on render: cannot stylize {p.name}; render to image files (PNG, EXR, ...), "
                         "not a movie")
    style = settings.get("style")
    if style is None and settings.get("style_path"):
        style = read_image(settings["style_path"], what="style image")
    if style is None and not settings.get("model"):
        raise InputError("stylize on render: no style image; pick one in Render Properties > Art AI")
    content = read_image(p, what="rendered frame")
    out = stylized_path(p)
    if out.resolve() == p.resolve():  # cannot happen with the suffix, but never overwrite the render
        raise InputError(f"stylize on render: {out} would replace the rendered frame")
    kwargs: dict = dict(method=str(settings.get("method") or "auto").lower(),
                  strength=float(settings.get("strength", 1.0)),
                  preserve_color=bool(settings.get("preserve_color", False)),
                  mask=settings.get("mask"), device=str(settings.get("device") or "auto").lower())
    for key in ("steps", "seed"):
        if settings.get(key):
            kwargs[key] = int(settings[key])
    if settings.get("model"):
        kwargs["model"] = settings["model"]
    if settings.get("temporal"):
        key = str(p.parent.resolve())
        frame = settings.get("frame")
        last = _sequences.get(key)
        prev = last[1] if last and frame is not None and last[0] == frame - 1 else None
        result, state = stylize_sequence(content, style, prev, **kwargs)
        _sequences[key] = (frame, state)
    else:
        result = stylize(content, style, **kwargs)
    return write_image(out, result)


def settings_from_scene(scene) -> dict:
    """The plain settings dict for `stylize_frame_file` from `scene.art_ai` (defaults where a field is missing)."""
    props = getattr(scene, "art_ai", None)
    settings = {
        "method": getattr(props, "stylize_method", getattr(props, "method", "AUTO")),
        "strength": getattr(props, "strength", 1.0),
        "preserve_color": getattr(props, "preserve_color", False),
        "steps": getattr(props, "steps", 0),
        "seed": getattr(props, "seed", 0),
        "model": bpy.path.abspath(getattr(props, "model", "")) if getattr(props, "model", "") else "",
        "temporal": getattr(props, "temporal", False),
        "frame": scene.frame_current,
    }
    image = getattr(props, "style_image", None)
    path = getattr(props, "style_path", "")
    if image is not None:
        file = bpy.path.abspath(image.filepath) if image.filepath else ""
        if file and os.path.exists(file) and not image.is_dirty:
            settings["style_path"] = file
        else:
            from .bridge import image_to_array

            settings["style"] = image_to_array(image)
    elif path:
        settings["style_path"] = bpy.path.abspath(path)
    try:
        from .props import preferences

        prefs = preferences()
        if prefs is not None:
            settings["device"] = getattr(prefs, "device", "AUTO").lower()
    except Exception:  # preferences are optional here (running from the repository)
        pass
    return settings


@bpy.app.handlers.persistent
def on_render_write(scene, *args):
    """render_write handler: stylize the frame just written when `scene.art_ai.stylize_on_render` is on."""
    props = getattr(scene, "art_ai", None)
    if props is None or not getattr(props, "stylize_on_render", False):
        return
    path = Path(bpy.path.abspath(scene.render.frame_path(frame=scene.frame_current)))
    if not path.exists():
        _log(f"stylize on render: the rendered frame {path} was not found; nothing stylized")
        return
    try:
        out = stylize_frame_file(path, settings_from_scene(scene))
    except ArtAIError as exc:
        _log(f"stylize on render: {exc}")
        return
    except Exception as exc:  # never break the user's render because of the add-on
        _log(f"stylize on render failed: {type(exc).__name__}: {exc}")
        return
    _log(f"stylized frame saved: {out}")


def _is_ours(fn) -> bool:
    return fn is on_render_write or (getattr(fn, "__name__", "") == "on_render_write"
                                     and getattr(fn, "__module__", "") == __name__)


def register_handlers() -> None:
    unregister_handlers()
    bpy.app.handlers.render_write.append(on_render_write)


def unregister_handlers() -> None:
    handlers = bpy.app.handlers.render_write
    for fn in [f for f in handlers if _is_ours(f)]:
        handlers.remove(fn)
    _sequences.clear()
