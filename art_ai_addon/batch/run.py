"""Running items: one function per task (engine calls through art_ai_addon/tasks.py, plain data in, written
paths out, so the same code runs here and inside Ray workers), sequences with their warm start, and the local
runner. Temporal stylize steps carry the sequence state from item to item; a run that does not start at the
first frame starts from the frame before it (its result when this job wrote it, else re-stylized, not written).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .. import tasks
from ..errors import ArtAIError, Cancelled
from .plan import Item, groups, mtime, stale, up_to_date
from .schema import PBR_KEYS, Step

_styles_cache: dict = {}


def _read(path, what: str, data: bool = False):
    from ..imageio import read_image

    return read_image(path, what=what, data=data)


def _style(opts: dict):
    """The style image(s), read once per process."""
    files = opts.get("style") or []
    if not files:
        return None
    key = tuple((f, mtime(f)) for f in files)
    if key not in _styles_cache:
        _styles_cache.clear()
        imgs = [_read(f, "style") for f in files]
        _styles_cache[key] = imgs[0] if len(imgs) == 1 else imgs
    return _styles_cache[key]


def _say(progress, msg: str) -> None:
    if progress is not None and not getattr(progress, "quiet", False):
        print(f"art_ai: {msg}", file=sys.stderr, flush=True)


def _engine(task: str, kwargs: dict, progress):
    value, info = tasks.run(task, kwargs, progress)
    if info.get("note"):
        _say(progress, info["note"])
    return value


def stylize_kwargs(step: Step, params: dict) -> dict:
    """The keyword arguments of stylize / stylize_sequence for one item (without content and progress)."""
    o = step.opts
    mask = _read(params["mask"], "mask") if params.get("mask") else None
    return dict(style=_style(o), method=o.get("method", "auto"), strength=o.get("strength", 1.0),
                preserve_color=o.get("preserve_color", False), mask=mask, device=o.get("device", "auto"),
                **step.engine_options())


# Every task: (step, item params, progress, sequence state) -> ([(image, is data) per output], state)


def _stylize(step: Step, p: dict, progress, state):
    kwargs = dict(stylize_kwargs(step, p), content=_read(p["input"], "content"))
    if step.opts.get("temporal"):
        result, state = _engine("stylize_sequence", dict(kwargs, previous_state=state), progress)
    else:
        result = _engine("stylize", kwargs, progress)
    return [(result, False)], state


def _texture(step: Step, p: dict, progress, state):
    o = step.opts
    exemplar = _read(p["input"], "exemplar")
    tileable = o.get("tileable", True)
    result = _engine("synthesize_texture", dict(
        exemplar=exemplar, size=o.get("size") or (exemplar.shape[0] * 2, exemplar.shape[1] * 2),
        method=o.get("method", "auto"), tileable=tileable, seed=o.get("seed", 0), device=o.get("device", "auto"),
        **step.engine_options()), progress)
    out = [(result, False)]
    if o.get("pbr"):
        maps = _engine("pbr_maps", dict(albedo=result, tileable=tileable), None)
        out += [(maps[key], True) for key in PBR_KEYS]
    return out, state


def _seamless(step: Step, p: dict, progress, state):
    return [(_engine("make_seamless", dict(image=_read(p["input"], "image"), seed=step.opts.get("seed", 0)),
                     progress), False)], state


def _pbr(step: Step, p: dict, progress, state):
    maps = _engine("pbr_maps", dict(albedo=_read(p["input"], "image"), strength=step.opts.get("strength", 1.0),
                                    directx=step.opts.get("directx", False)), progress)
    return [(maps[key], True) for key in PBR_KEYS], state


def _repair_inputs(step: Step, p: dict) -> dict:
    return dict(image=_read(p["input"], "image"),
                reference=_read(p["reference"], "reference") if p.get("reference") else None,
                sensitivity=step.opts.get("sensitivity", 0.5))


def _detect(step: Step, p: dict, progress, state):
    return [(_engine("detect_damage", _repair_inputs(step, p), progress), True)], state


def _inpaint(step: Step, p: dict, progress, state):
    o = step.opts
    mask = _read(p["mask"], "mask", data=True) if p.get("mask") else None
    result = _engine("repair", dict(_repair_inputs(step, p), mask=mask, method=o.get("method", "auto"),
                                    device=o.get("device", "auto"), **step.engine_options()), progress)
    return [(result, False)], state


def _propagate(step: Step, params: dict, progress, state):
    """One frame of a propagate step; the keyframes (and their passes) are read once per run of frames."""
    from ..imageio import read_image
    from ..passes import read_passes
    from ..stylize.keyframes import _passes_file, frame_numbers, guide_from_passes
    from ..stylize.propagate import Propagator, _with_alpha, has_uv

    o = step.opts
    method = o.get("method") or "auto"
    frames = [Path(it.params["input"]) for it in step.items]
    numbers = frame_numbers(frames)
    by_number = dict(zip(numbers, frames))
    passes = Path(o["passes"]) if o.get("passes") else None

    def guide(n):
        if passes is None:
            return None
        f = _passes_file(passes, by_number[n], n)
        return guide_from_passes(read_passes(f, masks=())) if f is not None else None

    if state is None or state.get("step") != step.number:
        keys = {n: (read_image(by_number[n], what=f"frame {n}"), read_image(p, what=f"keyframe {n}"), guide(n))
                for n, p in o["keyframes"].items()}
        use_uv = method in ("auto", "guided") and has_uv([g for _, _, g in keys.values()])
        state = {"step": step.number, "keys": keys, "prop": Propagator(keys, use_uv=use_uv,
                                                                        seed=int(o.get("seed") or 0))}
    n = numbers[frames.index(Path(params["input"]))]
    if n in state["keys"]:
        return [(state["keys"][n][1], False)], state
    plain = read_image(params["input"], what=f"frame {n}")
    g = guide(n) if state["prop"].use_uv else None
    res, _ = state["prop"].frame(n, plain, g)
    return [(_with_alpha(res, plain), False)], state


def _upscale(step: Step, p: dict, progress, state):
    """One picture (or, with pbr, one map of a texture set, by its name); bit depth and float EXR kept."""
    from ..upscale import map_kind
    from ..upscale.files import read_for_upscale

    o = step.opts
    name = Path(p["input"]).name
    data = bool(o.get("pbr")) and map_kind(name) != "color"
    img, bits = read_for_upscale(p["input"], data=data, what="image")
    kwargs = dict(scale=o.get("scale", 4.0), method=o.get("method", "auto"), tileable=o.get("tileable", False),
                  device=o.get("device", "auto"), **step.engine_options())
    if o.get("pbr"):
        result = _engine("upscale_maps", dict(kwargs, maps={name: img}), progress)[name]
    else:
        result = _engine("upscale", dict(kwargs, image=img), progress)
    return [(result, data, bits)], state


RUNNERS = {"stylize": _stylize, "texture": _texture, "seamless": _seamless, "pbr": _pbr, "detect": _detect,
           "inpaint": _inpaint, "propagate": _propagate, "upscale": _upscale}


def run_item(step: Step, item: Item, progress=None, state=None):
    """Do one item; returns (written paths, sequence state for temporal stylize)."""
    from ..imageio import write_image

    images, state = RUNNERS[step.task](step, item.params, progress, state)
    for path, (image, data, *bits) in zip(item.outputs, images, strict=True):
        if bits:  # (image, data, bits): 16-bit PNG/TIFF and float EXR kept (upscale)
            from ..upscale.files import write_upscaled

            write_upscaled(path, image, bits[0], data=data)
        else:
            write_image(path, image, data=data)
    return list(item.outputs), state


def warm_state(step: Step, item: Item, from_disk: bool, progress=None):
    """Sequence state of the item before a run of pending temporal frames (see temporal.warm_start)."""
    from ..stylize.temporal import stylize_sequence, warm_start

    kwargs = stylize_kwargs(step, item.params)

    def restylize(content):
        return stylize_sequence(content, kwargs.pop("style"), None, **kwargs)[1]

    return warm_start(item.params["input"], restylize, result_path=item.outputs[0] if from_disk else None,
                      say=lambda msg: _say(progress, msg))


def run_render(step: Step, items: list[Item], force: bool, progress) -> None:
    """Render (and stylize) a contiguous run of frames with the `render` command's own engine."""
    from ..blender.render import RenderSettings, render_frames

    o = step.opts
    options = step.engine_options()
    settings = RenderSettings(style=o.get("style") or [], method=o.get("method", "auto"),
                              strength=o.get("strength", 1.0), preserve_color=o.get("preserve_color", False),
                              model=options.pop("model", None), steps=options.pop("steps", None),
                              seed=options.pop("seed", None), temporal=o.get("temporal", False),
                              device=o.get("device", "auto"), options=options, layers=o.get("layers") or [],
                              keep_edges=o.get("keep_edges", 0.0), depth_scale=o.get("depth_scale", False),
                              keyframes=o.get("keyframes") or {}, upscale=o.get("upscale", 1.0),
                              upscale_method=o.get("upscale_method", "auto"))
    render_frames(o["input"][0], o["output"], [it.params["frame"] for it in items], settings, force=force,
                  progress=progress)


def _run_render_segment(step: Step, items: list[Item], force: bool, progress, job_path):
    stale_ = force or any(stale(it, job_path) for it in items)
    err = None
    try:
        run_render(step, items, stale_, progress if progress is None else ItemProgress(
            f"[step {items[0].step}] ", bool(getattr(progress, "quiet", False)), every=5.0))
    except (ArtAIError, RuntimeError, OSError) as exc:
        err = str(exc)
    results = []
    for it in items:
        ok = all(Path(q).is_file() for q in it.outputs) and (job_path is None or up_to_date(it, job_path))
        results.append((it.index, None if ok else (err or "the render wrote no output")))
    return results


def run_segment(step: Step, items: list[Item], before: Item | None, before_done: bool, force: bool, progress,
                job_path=None, total: int | None = None) -> list[tuple[int, str | None]]:
    """Run consecutive items of one step; returns (index, error or None) per item. Used locally and by Ray."""
    if step.task == "render":
        return _run_render_segment(step, items, force, progress, job_path)
    results: list[tuple[int, str | None]] = []
    state = None
    for k, it in enumerate(items):
        prog = item_progress(progress, it, total)
        try:
            if step.opts.get("temporal") and state is None and (k or before is not None):
                prev = items[k - 1] if k else before
                state = warm_state(step, prev, from_disk=bool(k) or before_done, progress=prog)
            _, state = run_item(step, it, prog, state)
            results.append((it.index, None))
            if prog is not None:
                prog.done()
        except Cancelled:
            raise
        except Exception as exc:  # one bad item must not stop the others
            state = None
            msg = str(exc) if isinstance(exc, ArtAIError) else f"{type(exc).__name__}: {exc}"
            results.append((it.index, msg))
    return results


def segments(step: Step, pending: list[Item], items: list[Item], parts: int | None = None):
    """(items, the item before them, whether this job made that one) to run as units.

    `items` are this chunk's items. Independent items are one unit (`parts` None) or one unit each; a sequence
    is cut at its gaps, and each run into `parts` segments (None: one). Inside this chunk the frame before a run
    was done by this very job, so its result is reused; before the chunk (the previous chunk's last frame) or
    before a segment running in parallel it is re-stylized, so every chunk gives the same frames alone."""
    if not step.sequential:
        return [(pending, None, False)] if parts is None else [([it], None, False) for it in pending]
    first = items[0].index if items else 0
    by_index = {it.index: it for it in step.items}
    out = []
    for run in groups(pending):
        n = max(1, min(parts or 1, len(run)))
        for k in range(n):
            seg = run[k * len(run) // n:(k + 1) * len(run) // n]
            before = by_index.get(seg[0].index - 1)
            out.append((seg, before, k == 0 and before is not None and before.index >= first))
    return out


class LocalRunner:
    """Runs a step's pending items in this process, in order."""

    def __init__(self, progress):
        self.progress = progress

    def run_step(self, step: Step, pending: list[Item], items: list[Item], force: bool, job_path):
        results = []
        for seg, before, done in segments(step, pending, items):
            results += run_segment(step, seg, before, done, force, self.progress, job_path, len(step.items))
        return results

    def close(self) -> None:
        pass


class ItemProgress:
    """Engine progress of one item, at most one line every `every` seconds: a 2,000-frame log stays readable,
    and a slow item (an optimisation) still shows it is alive."""

    def __init__(self, prefix: str, quiet: bool, every: float = 10.0):
        self.prefix, self.quiet, self.every = prefix, quiet, every
        self.started = self._last = time.monotonic()

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if self.quiet or now - self._last < self.every:
            return
        self._last = now
        print(f"art_ai: {self.prefix}{int(round(100 * fraction)):3d}% {message}", file=sys.stderr, flush=True)

    def item(self, prefix: str):  # render_frames asks for per-frame reporters
        return ItemProgress(self.prefix + prefix, self.quiet, self.every)

    def done(self) -> None:
        if not self.quiet:
            print(f"art_ai: {self.prefix}done in {time.monotonic() - self.started:.1f} s", file=sys.stderr,
                  flush=True)


def item_progress(progress, item: Item, total: int | None = None):
    if progress is None:
        return None
    count = f" {item.index + 1}/{total}" if total else ""
    return ItemProgress(f"[step {item.step}{count} {item.label}] ", bool(getattr(progress, "quiet", False)))
