"""Rendering with stylization: `render_frames` (the `render` CLI command, batch render steps) and the
stylize-on-render handler.

`render_frames` renders a .blend's frames to DIR/raw/0001.png and stylizes them to DIR/stylized/0001.png,
skipping finished frames, so it resumes after a crash and splits across a farm with `chunk=(I, N)`. With
`temporal` the Vector pass is rendered too (kept as DIR/vector/0001.exr) and drives the motion compensation of
`stylize_sequence`.

The handler stylizes each frame Blender writes (F12 with a write, `-a`, the Render Animation menu) and saves
`<frame>_stylized.<ext>` beside it; the written frame itself is never touched.

Both stylize through the job runner's engine call (`FrameStylizer`): in this process when it has what the
method needs, else in the engine worker with the PyTorch Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import bpy
import numpy as np

from .. import methods
from ..errors import ArtAIError, InputError
from ..imageio import IMAGE_EXTENSIONS
from .scene_io import image_format, open_blend, scene_frames, stdout_to_stderr, written_frame
from .scene_io import render_started as _render_started
from .scene_io import say as _say

# ---------------------------------------------------------------------------------------------
# Settings and the engine call


@dataclass
class RenderSettings:
    """The stylize options of a render: what `render` and batch render steps take."""

    style: list = field(default_factory=list)  # style image paths (none and no model: only raw frames)
    method: str = "auto"
    strength: float = 1.0
    preserve_color: bool = False
    model: str | None = None  # fast-style checkpoint (a path or a name in the model store); carries its style
    steps: int | None = None
    seed: int | None = None
    temporal: bool = False
    device: str = "auto"
    options: dict = field(default_factory=dict)  # any other stylize method option (methods.OPTIONS["stylize"])
    layers: list = field(default_factory=list)  # style layers: {"target", "style", "method", "strength"}
    keep_edges: float = 0.0
    depth_scale: bool = False
    keyframes: dict = field(default_factory=dict)  # {frame number: painted image path}: keyframe propagation
    upscale: float = 1.0  # "Render Smaller, Upscale": render at 1/upscale of the output size, then upscale
    upscale_method: str = "auto"

    @property
    def stylizes(self) -> bool:
        return bool(self.style) or bool(self.model) or bool(self.layers) or bool(self.keyframes)

    @property
    def layered(self) -> bool:
        return bool(self.layers) or self.keep_edges > 0 or self.depth_scale

    def layer_list(self) -> list[dict]:
        """The style layers, with `--style` as the layer for everything else, each with the run's defaults."""
        from .style_layers import REST, parse_target

        layers = [dict(la) for la in self.layers]
        if self.style:
            if any(parse_target(la.get("target", REST))[0] == "rest" for la in layers):
                raise InputError("--style and a layer for * (everything else) both style the rest of the frame; "
                                 "give one of them")
            layers.append({"target": REST, "style": self.style[0]})
        extra = {k: getattr(self, k) for k in ("steps", "seed") if getattr(self, k) is not None}
        for la in layers:
            la.setdefault("method", self.method)
            la.setdefault("strength", self.strength)
            la.setdefault("preserve_color", self.preserve_color)
            for k, v in {**self.options, **extra}.items():
                la.setdefault(k, v)
        return layers

    def engine_kwargs(self) -> dict:
        kwargs = dict(method=self.method, strength=self.strength, preserve_color=self.preserve_color,
                      device=self.device)
        for key in ("model", "steps", "seed"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        kwargs.update(self.options)
        return kwargs


def engine_config() -> dict:
    """Threads, models folder and PyTorch Python for engine calls made from Blender's process (the add-on
    preferences when the extension is enabled; the environment variable in any case)."""
    from . import props
    from .runner import torch_python

    prefs = None
    try:
        prefs = props.preferences()
    except Exception:  # noqa: BLE001 - no preferences when running from the repository
        prefs = None
    if prefs is None:
        python, _ = torch_python("", None)
        return {"threads": 0, "models_dir": None, "python": python}
    settings = props.engine_settings()
    return {"threads": 0, "models_dir": settings["models_dir"], "python": settings["python"]}


class FrameStylizer:
    """Stylizes frames (alone, or as a sequence) through the job runner's engine call."""

    def __init__(self, style, kwargs: dict, config: dict | None = None, log=None):
        self.style = style  # an image, a list of images, or None (a fast model)
        self.kwargs = dict(kwargs)
        self.config = engine_config() if config is None else config
        self.log = log
        self._where: dict[str, str] = {}
        self._said: set[str] = set()  # notes (quality lost, ...) are said once per run, not once per frame

    def _run(self, task: str, kwargs: dict, progress):
        from .runner import EngineCall, execute, plan

        call = EngineCall(task, kwargs, method=self.kwargs.get("method"), config=self.config)
        if task not in self._where:
            python = self.config.get("python")
            # the sequence task needs what its method needs (plus OpenCV for the motion)
            where = plan(EngineCall("stylize", {}, method=call.method), python)
            if task == "stylize_sequence" and where == "process" and python and not methods.importable("cv2"):
                where = "worker"
            self._where[task] = where
        call.where = self._where[task]
        value, info = execute(call, progress, None)
        if info.get("note") and self.log is not None and info["note"] not in self._said:
            self._said.add(info["note"])
            self.log(info["note"])
        return value

    def frame(self, content, progress=None):
        return self._run("stylize", dict(self.kwargs, content=content, style=self.style), progress)

    def sequence(self, content, state=None, flow=None, progress=None):
        """(result, state) of one frame of a sequence."""
        kwargs = dict(self.kwargs, content=content, style=self.style, previous_state=state)
        if flow is not None:
            kwargs["flow"] = flow
        result, state = self._run("stylize_sequence", kwargs, progress)
        return result, state

    def restylize(self, content):
        """The sequence state of a frame before a run (its result is not kept): for `temporal.warm_start`."""
        return self.sequence(content)[1]


def layers_method(layers) -> str:
    """The method whose needs decide where a layered call runs: the first that needs more than numpy."""
    for la in layers:
        m = str(la.get("method") or "auto").lower()
        if m != "color":
            return m
    return "color"


class LayerStylizer(FrameStylizer):
    """Stylizes frames by style layers (`stylize_layers`), alone or as a sequence."""

    def __init__(self, layers: list[dict], extras: dict, config: dict | None = None, log=None):
        super().__init__(None, {"method": layers_method(layers)}, config, log)
        self.layers, self.extras = layers, extras

    def _call(self, task: str, content, frame_layers, passes: dict, progress, **more):
        kwargs = dict(content=content, layers=frame_layers, keep_edges=self.extras.get("keep_edges", 0.0),
                      depth_scale=self.extras.get("depth_scale", False), device=self.extras.get("device", "auto"),
                      depth=passes.get("depth"), normal=passes.get("normal"), **more)
        return self._run(task, kwargs, progress)

    def frame_layers(self, content, frame_layers, passes, progress=None):
        return self._call("stylize_layers", content, frame_layers, passes, progress)

    def sequence_layers(self, content, frame_layers, passes, state=None, flow=None, progress=None):
        more = {"previous_state": state}
        if flow is not None:
            more["flow"] = flow
        return self._call("stylize_layers_sequence", content, frame_layers, passes, progress, **more)


class KeyframeStylizer(FrameStylizer):
    """Carries painted keyframes to each frame (`propagate_frame`), one frame at a time."""

    def __init__(self, keyframes: dict, config: dict | None = None, log=None):
        super().__init__(None, {"method": "auto"}, config, log)
        self.keyframes = keyframes  # {frame: painted array}
        self.keys: dict | None = None

    def frame_from_keys(self, number: int, content, guide: dict, keys: dict, progress=None):
        from .runner import EngineCall, execute

        call = EngineCall("propagate_frame", dict(frame=content, number=number, keys=keys, guide=guide),
                          method="auto", config=self.config)
        value, info = execute(call, progress, None)
        if info.get("method") and self.log is not None and info["method"] not in self._said:
            self._said.add(info["method"])
            self.log(f"keyframes carried by {info['method']}")
        return value


def _read_styles(paths) -> object:
    from ..imageio import read_image

    styles = [read_image(s, what="style") for s in (paths or [])]
    return (styles[0] if len(styles) == 1 else styles) if styles else None


# ---------------------------------------------------------------------------------------------
# Render output


def _save_render(scene, path: Path, kind: str) -> Path:
    """Save the Render Result under a temporary name, then rename (never half a file under the real name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    rr = bpy.data.images["Render Result"]
    with image_format(scene.render.image_settings, kind):
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
# render_frames


class _Shot:
    """One render job's folders and passes: DIR/raw, DIR/stylized, DIR/vector."""

    def __init__(self, scene, out: Path, temporal: bool, progress, passes: bool | str = False):
        if out.exists() and not out.is_dir():
            raise InputError(f"-o: {out} is a file, expected a folder")
        self.scene, self.progress = scene, progress
        self.raw_dir, self.sty_dir, self.vec_dir = out / "raw", out / "stylized", out / "vector"
        self.pass_dir = out / "passes"
        self.use_passes = passes
        if passes:
            from .style_layers import turn_on_passes

            turn_on_passes(scene, extra=passes == "keyframes")  # the scene is never saved: on for this job only
        self.use_vectors = False
        if temporal:
            if scene.render.use_motion_blur:
                _say(progress, "motion blur is on, so the renderer gives no Vector pass: motion comes from optical "
                               "flow")
            else:
                for layer in scene.view_layers:
                    layer.use_pass_vector = True
                self.use_vectors = True

    def raw(self, frame: int) -> Path:
        return self.raw_dir / f"{frame:04d}.png"

    def stylized(self, frame: int) -> Path:
        return self.sty_dir / f"{frame:04d}.png"

    def vector(self, frame: int) -> Path:
        return self.vec_dir / f"{frame:04d}.exr"

    def passes(self, frame: int) -> Path:
        return self.pass_dir / f"{frame:04d}.exr"

    upscale: tuple = (1.0, "auto")  # (factor, method): render smaller, then upscale the raw frame to full size

    def render(self, frame: int) -> Path:
        """Render `frame` to its raw PNG (and its Vector pass when temporal)."""
        with stdout_to_stderr():
            self.scene.frame_set(frame)
            from ..upscale.files import render_smaller

            with render_smaller(self.scene, *self.upscale) as full_size:
                bpy.ops.render.render(write_still=False)
                _save_render(self.scene, self.raw(frame), "PNG")
            if full_size is not None:  # here, or in the engine worker where this Blender has no PyTorch
                from .render_upscale import upscale_file

                upscale_file(self.raw(frame), full_size.size, full_size.scale, full_size.method)
            if self.use_passes:
                _save_render(self.scene, self.passes(frame), "EXR")
            got = _render_vector(self.scene, self.vector(frame)) is not None if self.use_vectors else False
        if self.use_vectors and not got:
            _say(self.progress, "the render engine gave no Vector pass: motion comes from optical flow")
            self.use_vectors = False
        return self.raw(frame)

    def flow(self, frame: int, previous: int | None, shape) -> dict | None:
        """Backward (and forward) motion from the Vector passes, or None (optical flow then)."""
        from ..stylize.temporal import vector_pass_to_flow

        cur = read_vector(self.vector(frame)) if self.use_vectors else None
        if cur is None or cur.shape[:2] != tuple(shape[:2]):
            return None
        backward, _ = vector_pass_to_flow(cur)
        prev = read_vector(self.vector(previous)) if previous is not None else None
        forward = vector_pass_to_flow(prev)[1] if prev is not None and prev.shape == cur.shape else None
        return {"backward": backward, "forward": forward}


def _frame_list(scene, frames) -> list[int]:
    if frames is None or isinstance(frames, tuple) and len(frames) == 2:
        return scene_frames(scene, frames)
    return [int(f) for f in frames]


class _Styling:
    """Stylizes a shot's raw frames in order; temporal runs carry the sequence state from frame to frame."""

    def __init__(self, shot: _Shot, stylizer: FrameStylizer, frames: list[int], temporal: bool, progress):
        self.shot, self.stylizer, self.frames, self.temporal, self.progress = shot, stylizer, frames, temporal, \
            progress
        self.state: dict | None = None
        self.state_frame: int | None = None

    def __call__(self, frame: int, prog) -> Path:
        from ..imageio import read_image, write_image

        content = read_image(self.shot.raw(frame), what="raw frame")
        if isinstance(self.stylizer, KeyframeStylizer):
            result = self._propagated(frame, content, prog.sub(0.3, 1.0))
        elif self.temporal:
            result = self._next(frame, content, prog.sub(0.3, 1.0))
        elif isinstance(self.stylizer, LayerStylizer):
            result = self.stylizer.frame_layers(content, *self._layers(frame, content), prog.sub(0.3, 1.0))
        else:
            result = self.stylizer.frame(content, prog.sub(0.3, 1.0))
        return write_image(self.shot.stylized(frame), result)

    def _propagated(self, frame: int, content, prog):
        from ..imageio import read_image
        from ..passes import read_passes
        from ..stylize.keyframes import guide_from_passes

        stylizer = self.stylizer
        assert isinstance(stylizer, KeyframeStylizer)
        if stylizer.keys is None:
            stylizer.keys = {k: {"plain": read_image(self.shot.raw(k), what=f"raw frame {k}"), "painted": painted,
                                 "guide": guide_from_passes(read_passes(self.shot.passes(k), masks=()))}
                             for k, painted in stylizer.keyframes.items()}
        guide = guide_from_passes(read_passes(self.shot.passes(frame), masks=()))
        return stylizer.frame_from_keys(frame, content, guide, stylizer.keys, prog)

    def _layers(self, frame: int, content) -> tuple[list, dict]:
        """This frame's layers (mattes from its passes file) and its passes."""
        from ..passes import read_passes
        from .style_layers import engine_layers, mask_keys

        stylizer = self.stylizer
        assert isinstance(stylizer, LayerStylizer)
        keys = {k for la in stylizer.layers for k in (mask_keys(self.shot.scene, la.get("target", "*")) or [])}
        passes = read_passes(self.shot.passes(frame), masks=keys)
        return engine_layers(self.shot.scene, stylizer.layers, passes, content.shape), passes

    def _sequence(self, frame: int, content, state, flow, prog):
        if isinstance(self.stylizer, LayerStylizer):
            layers, passes = self._layers(frame, content)
            return self.stylizer.sequence_layers(content, layers, passes, state, flow, prog)
        return self.stylizer.sequence(content, state, flow, prog)

    def _restylize_frame(self, frame: int):
        def restylize(content):
            return self._sequence(frame, content, None, None, None)[1]
        return restylize

    def _next(self, frame: int, content, prog):
        """One frame of the sequence: from the state of the frame before (this run's, or from disk)."""
        from ..stylize.temporal import warm_start

        i = self.frames.index(frame)
        previous = self.frames[i - 1] if i > 0 else None
        if previous is None:
            self.state = None
        elif self.state is None or self.state_frame != previous:
            if not self.shot.raw(previous).exists() or (self.shot.use_passes
                                                        and not self.shot.passes(previous).exists()):
                # a farm chunk that starts mid-shot before the chunk with the frame before has rendered it: render
                # that frame too (the same file that chunk writes), so the sequence carries on as in one run
                _say(self.progress, f"frame {previous}: rendering it to carry the sequence across the chunk start")
                self.shot.render(previous)
            self.state = warm_start(self.shot.raw(previous), self._restylize_frame(previous),
                                    result_path=self.shot.stylized(previous),
                                    say=lambda msg: _say(self.progress, f"frame {previous}: {msg}"))
        result, self.state = self._sequence(frame, content, self.state,
                                            self.shot.flow(frame, previous, content.shape), prog)
        self.state_frame = frame
        return result


def render_frames(blend, out_dir, frames=None, settings: RenderSettings | None = None, *, force: bool = False,
                  progress=None, chunk=None, written=None) -> list[Path]:
    """Render (and stylize) frames of `blend` into `out_dir`; finished frames are skipped unless `force`.

    frames: None (the scene's range), (A, B) (in the scene's frame step) or a list of frame numbers; `chunk`
    (I, N) keeps the I-th of N slices of them. `written(path)` is called for every file written (the CLI prints
    them). Returns the files written.
    """
    from ..core import reporter
    from ..progress import chunk_slice

    settings = settings or RenderSettings()
    stylizer: FrameStylizer | None = None
    layers = settings.layer_list() if settings.layered else []
    if layers:
        for la in layers:
            la["style"] = _read_styles([la["style"]])
        stylizer = LayerStylizer(layers, {"keep_edges": settings.keep_edges, "depth_scale": settings.depth_scale,
                                          "device": settings.device}, log=lambda msg: _say(progress, msg))
    elif settings.keyframes:
        from ..imageio import read_image

        if settings.style or settings.model:
            raise InputError("--keyframe carries the painted keyframes' look; it does not take --style or --model")
        stylizer = KeyframeStylizer({int(k): read_image(p, what=f"keyframe {k}") for k, p in
                                     settings.keyframes.items()}, log=lambda msg: _say(progress, msg))
    elif settings.stylizes:
        stylizer = FrameStylizer(_read_styles(settings.style), settings.engine_kwargs(),
                                 log=lambda msg: _say(progress, msg))
    try:
        scene = open_blend(blend)
    except InputError as exc:
        raise InputError(f"SCENE.blend: {exc}") from None
    if layers:
        from .style_layers import check_targets

        check_targets(scene, layers)  # unknown targets are refused before anything renders
    sequence = _frame_list(scene, frames)
    if settings.keyframes:
        _check_keyframes(scene, settings.keyframes, sequence)  # before anything renders
    shot = _Shot(scene, Path(out_dir), settings.temporal and stylizer is not None and not settings.keyframes,
                 progress, passes="keyframes" if settings.keyframes else bool(layers))
    shot.upscale = (settings.upscale, settings.upscale_method)
    if settings.upscale > 1 and shot.use_passes:  # the passes would be at the small size, the frames at the full
        raise InputError("--upscale renders smaller: it does not go with --layer, --keep-edges, --depth-scale or "
                         "--keyframe, which read the render's passes at the frame's size")
    styling = _Styling(shot, stylizer, sequence, settings.temporal, progress) if stylizer is not None else None
    mine = chunk_slice(sequence, chunk)
    if not mine:
        _say(progress, "no frames in this chunk")
    for k in sorted(settings.keyframes) if mine else ():  # every chunk needs the keyframes' renders and passes
        if force or not shot.raw(k).exists() or not shot.passes(k).exists():
            _say(progress, f"frame {k}: rendering the keyframe's render and passes")
            out_k = shot.render(k)
            if k in mine:
                _emit(out_k, written)
    out: list[Path] = []
    for k, frame in enumerate(mine):
        prog = reporter(progress.item(f"[frame {frame} {k + 1}/{len(mine)}] ") if hasattr(progress, "item")
                        else progress)
        raw, sty = shot.raw(frame), shot.stylized(frame)
        if sty.exists() and settings.keyframes and sty.stat().st_mtime < max(
                Path(p).stat().st_mtime for p in settings.keyframes.values()):
            sty.unlink()  # our own output, propagated from paint the artist has changed since: made again below
        if raw.exists() and (styling is None or sty.exists()) and not force:
            _say(progress, f"frame {frame}: already done, skipped ({raw})")
            continue
        if force or not raw.exists() or (shot.use_passes and not shot.passes(frame).exists()):
            prog(0.0, "render")
            out.append(_emit(shot.render(frame), written))
        if styling is not None:
            out.append(_emit(styling(frame, prog), written))
        prog(1.0, "done")
    return out


def _check_keyframes(scene, keyframes: dict, sequence: list[int]) -> None:
    """Keyframes inside the frames rendered and of the render's size (from their headers)."""
    from ..stylize.keyframes import picture_size

    w = scene.render.resolution_x * scene.render.resolution_percentage // 100
    h = scene.render.resolution_y * scene.render.resolution_percentage // 100
    for k, path in keyframes.items():
        if k not in sequence:
            raise InputError(f"--keyframe {k}: frame {k} is not among the frames rendered "
                             f"({sequence[0]}..{sequence[-1]})" if sequence else f"--keyframe {k}: no frames")
        size = picture_size(path, f"keyframe {k}")
        if tuple(size) != (h, w):
            raise InputError(f"keyframe {k}: {Path(path).name} is {size[1]}x{size[0]}, the render is {w}x{h}; "
                             "paint over the rendered frame at its own size")


def _emit(path: Path, written) -> Path:
    if written is not None:
        written(path)
    return path


# ---------------------------------------------------------------------------------------------
# Stylize on render


_sequences: dict = {}  # output folder -> (frame, state) for temporal stylize-on-render
_BLENDER_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
                    ".exr": "OPEN_EXR", ".bmp": "BMP", ".webp": "WEBP"}


def stylized_path(path) -> Path:
    p = Path(path)
    return p.with_name(f"{p.stem}_stylized{p.suffix}")


def _read_frame(path: Path, what: str) -> np.ndarray:
    """An image file: with OpenCV where this Python has it, else with Blender's own loader (a stock Blender)."""
    if methods.importable("cv2"):
        from ..imageio import read_image

        return read_image(path, what=what)
    from ..imageio import check_image_file
    from .bridge import image_to_array

    check_image_file(path, what)  # the header's size first: no decompression bomb reaches Blender's loader
    try:
        img = bpy.data.images.load(str(path), check_existing=False)
    except RuntimeError as exc:
        raise InputError(f"{what}: Blender cannot read {path}: {str(exc).strip()}") from None
    try:
        return np.array(image_to_array(img), dtype=np.float32)
    finally:
        bpy.data.images.remove(img)


def _write_frame(path: Path, arr: np.ndarray) -> Path:
    """Write an image file atomically: with OpenCV where this Python has it, else with Blender's image saving."""
    if methods.importable("cv2"):
        from ..imageio import write_image

        return write_image(path, arr)
    from ..core import as_image, srgb_to_linear

    a = as_image(arr, "stylized frame")
    h, w, c = a.shape
    is_float = path.suffix.lower() == ".exr"
    rgba = np.ones((h, w, 4), np.float32)
    rgba[:, :, :3] = a[:, :, :3] if c >= 3 else a[:, :, :1]
    if c in (2, 4):
        rgba[:, :, 3] = a[:, :, -1]
    if is_float:
        rgba[:, :, :3] = srgb_to_linear(rgba[:, :, :3])
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    img = bpy.data.images.new(f".art_ai_{path.stem}", w, h, alpha=c in (2, 4), float_buffer=is_float)
    try:
        img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).reshape(-1))  # type: ignore[attr-defined]
        img.file_format = _BLENDER_FORMATS[path.suffix.lower()]  # type: ignore[assignment]
        img.filepath_raw = str(tmp.resolve())
        img.save()
    finally:
        bpy.data.images.remove(img)
    if not tmp.exists():
        raise ArtAIError(f"stylize on render: Blender did not write {tmp}")
    os.replace(tmp, path)
    return path


def _handler_kwargs(settings: dict) -> dict:
    kwargs: dict = dict(method=str(settings.get("method") or "auto").lower(),
                        strength=float(settings.get("strength", 1.0)),
                        preserve_color=bool(settings.get("preserve_color", False)),
                        mask=settings.get("mask"), device=str(settings.get("device") or "auto").lower())
    for key in ("steps", "seed"):
        if settings.get(key):
            kwargs[key] = int(settings[key])
    if settings.get("model"):
        kwargs["model"] = settings["model"]
    return kwargs


def stylize_frame_file(path, settings: dict, layered: tuple | None = None) -> Path:
    """Stylize the frame file at `path` into `<stem>_stylized<ext>` beside it; the frame itself is untouched.

    settings: "style" (an image array) or "style_path", "method", "strength", "preserve_color", and
    optionally "steps", "seed", "model", "device", "mask" (array), "temporal" with "frame".
    layered: (engine layers with their mattes, passes, {"keep_edges", "depth_scale"}) to stylize by style layers.
    """
    p = Path(path)
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"stylize on render: cannot stylize {p.name}; render to image files (PNG, EXR, ...), "
                         "not a movie")
    style = settings.get("style")
    if style is None and settings.get("style_path") and layered is None:
        style = _read_frame(Path(settings["style_path"]), "style image")
    if style is None and not settings.get("model") and layered is None:
        raise InputError("stylize on render: no style image; pick one in Render Properties > Art AI")
    out = stylized_path(p)
    if out.resolve() == p.resolve():  # cannot happen with the suffix, but never overwrite the render
        raise InputError(f"stylize on render: {out} would replace the rendered frame")
    content = _read_frame(p, "rendered frame")
    if layered is not None:
        specs, passes, extras = layered
        kw = _handler_kwargs(settings)
        for spec in specs:
            for key in ("steps", "seed"):
                if key in kw:
                    spec.setdefault(key, kw[key])
        lstylizer = LayerStylizer(specs, dict(extras, device=kw["device"]), log=lambda msg: _say(None, msg))
        if any(passes.get(k) is not None and passes[k].shape[:2] != content.shape[:2] for k in ("depth", "normal")):
            raise InputError("stylize on render: the passes and the written frame differ in size")
    else:
        stylizer = FrameStylizer(style, _handler_kwargs(settings), log=lambda msg: _say(None, msg))
    if settings.get("temporal"):
        key = str(p.parent.resolve())
        frame = settings.get("frame")
        last = _sequences.get(key)
        prev = last[1] if last and frame is not None and last[0] == frame - 1 else None
        if layered is not None:
            result, state = lstylizer.sequence_layers(content, specs, passes, prev)
        else:
            result, state = stylizer.sequence(content, prev)
        _sequences[key] = (frame, state)
    elif layered is not None:
        result = lstylizer.frame_layers(content, specs, passes)
    else:
        result = stylizer.frame(content)
    return _write_frame(out, result)


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


_pass_restore: dict = {}  # scene name -> [(view layer, flag, value)] while a render runs with passes turned on


def _layers_wanted(scene) -> bool:
    props = getattr(scene, "art_ai", None)
    if props is None or not getattr(props, "stylize_on_render", False):
        return False
    return any(la.enabled for la in getattr(props, "style_layers", ())) or getattr(props, "keep_edges", 0) > 0 \
        or getattr(props, "depth_scale", False)


@bpy.app.handlers.persistent
def on_render_init(scene, *args):
    """render_init: note the start, and turn on the passes style layers need for this render only."""
    import time

    _render_started[scene.name] = time.time() - 1.0
    if not _layers_wanted(scene):
        return
    from .style_layers import _PASS_FLAGS

    saved = []
    for vl in scene.view_layers:
        for flag in _PASS_FLAGS:
            if hasattr(vl, flag) and not getattr(vl, flag):
                saved.append((vl.name, flag))
                setattr(vl, flag, True)
    if saved:
        _pass_restore[scene.name] = saved


@bpy.app.handlers.persistent
def on_render_done(scene, *args):
    """render_complete / render_cancel: the artist's own pass settings come back."""
    for vl_name, flag in _pass_restore.pop(scene.name, []):
        vl = scene.view_layers.get(vl_name)
        if vl is not None:
            try:
                setattr(vl, flag, False)
            except (AttributeError, TypeError):
                pass


@bpy.app.handlers.persistent
def on_render_write(scene, *args):
    """render_write handler: stylize the frame just written when `scene.art_ai.stylize_on_render` is on."""
    props = getattr(scene, "art_ai", None)
    if props is None or not getattr(props, "stylize_on_render", False):
        return
    path = written_frame(scene)
    if path is None:
        _say(None, f"stylize on render: the rendered frame {scene.render.frame_path(frame=scene.frame_current)} "
                   "was not found; nothing stylized")
        return
    try:
        settings = settings_from_scene(scene)
        layered = None
        if _layers_wanted(scene):
            from .style_layers import engine_layers, read_render_passes, scene_style_layers

            layers = scene_style_layers(scene, base=settings)
            if layers:
                passes = read_render_passes(scene, layers)
                content_shape = (passes["depth"].shape if passes.get("depth") is not None
                                 else (scene.render.resolution_y, scene.render.resolution_x))
                specs = engine_layers(scene, layers, passes, content_shape)
                layered = (specs, passes, {"keep_edges": float(props.keep_edges),
                                           "depth_scale": bool(props.depth_scale)})
        out = stylize_frame_file(path, settings, layered)
    except ArtAIError as exc:
        _say(None, f"stylize on render: {exc}")
        return
    except Exception as exc:  # never break the user's render because of the add-on
        _say(None, f"stylize on render failed: {type(exc).__name__}: {exc}")
        return
    _say(None, f"stylized frame saved: {out}")


_HANDLERS = (("render_write", on_render_write), ("render_init", on_render_init), ("render_complete", on_render_done),
             ("render_cancel", on_render_done))


def _is_ours(fn) -> bool:
    return any(fn is h or (getattr(fn, "__name__", "") == h.__name__ and getattr(fn, "__module__", "") == __name__)
               for _, h in _HANDLERS)


def register_handlers() -> None:
    unregister_handlers()
    for kind, fn in _HANDLERS:
        getattr(bpy.app.handlers, kind).append(fn)


def unregister_handlers() -> None:
    for kind, _ in _HANDLERS:
        handlers = getattr(bpy.app.handlers, kind)
        for fn in [f for f in handlers if _is_ours(f)]:
            handlers.remove(fn)
    _sequences.clear()
    _pass_restore.clear()
    _render_started.clear()
