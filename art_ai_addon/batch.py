"""`batch JOB.toml`: run a list of `[[step]]` tables (stylize, texture, seamless, pbr, detect, inpaint, render).

A job is checked completely before anything runs, so a typo on line 40 does not surface after an hour of
frames. Every step expands into items (one per file, or one per frame for `render`); an item whose outputs
exist and are newer than its inputs and the job file is skipped, so a crashed or re-queued job resumes.
`--chunk I/N` runs the I-th slice of every step's items, which is all a farm manager needs to split a job.
Temporal stylize steps carry the sequence state from item to item; a slice that does not start at the
first frame re-stylizes the frame before it (without writing it), so chunks join without a visible jump.

Relative paths in a job file are relative to the job file's folder, so a job runs the same from any
working directory (as farm workers do).
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
import io
import sys
import time
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArtAIError, Cancelled, InputError, NotAvailableError
from .imageio import IMAGE_EXTENSIONS
from .cli import read_input

TASKS = ("stylize", "texture", "seamless", "pbr", "detect", "inpaint", "render")
DEVICES = ("auto", "cuda", "mps", "cpu")
STYLIZE_METHODS = ("auto", "gatys", "fast", "adain", "color")
TEXTURE_METHODS = ("auto", "patch", "neural", "gan")
INPAINT_METHODS = ("auto", "telea", "ns", "patch", "dip", "lama")

# Option kinds: path (one file/folder), paths (one or a list), str, bool, int, float, unit (0..1), size, frames,
# floats, pathflag (bool or a folder), and ("choice", values).
_COMMON = {"task": "str", "name": "str", "input": "paths", "output": "path"}
OPTIONS: dict[str, dict] = {
    "stylize": {"style": "paths", "style_weight": "floats", "method": ("choice", STYLIZE_METHODS),
                "strength": "unit", "preserve_color": "bool", "mask": "path", "model": "str", "encoder": "path",
                "decoder": "path", "models_dir": "path", "steps": "int", "seed": "int", "temporal": "bool",
                "device": ("choice", DEVICES)},
    "texture": {"size": "size", "method": ("choice", TEXTURE_METHODS), "seed": "int", "steps": "int",
                "tileable": "bool", "pbr": "pathflag", "models_dir": "path", "device": ("choice", DEVICES)},
    "seamless": {"seed": "int"},
    "pbr": {"strength": "float", "directx": "bool"},
    "detect": {"reference": "path", "sensitivity": "unit"},
    "inpaint": {"mask": "path", "detect": "bool", "reference": "path", "sensitivity": "unit",
                "method": ("choice", INPAINT_METHODS), "steps": "int", "seed": "int", "models_dir": "path",
                "device": ("choice", DEVICES)},
    "render": {"frames": "frames", "style": "paths", "method": ("choice", STYLIZE_METHODS), "strength": "unit",
               "preserve_color": "bool", "model": "str", "steps": "int", "seed": "int", "temporal": "bool",
               "device": ("choice", DEVICES)},
}
PBR_KEYS = ("height", "normal", "roughness", "ao")
CPU_METHODS = {"color", "patch", "telea", "ns"}  # need no GPU: no GPU is requested from Ray for them


@dataclass
class Step:
    number: int  # 1-based, as the user counts them
    task: str
    opts: dict  # validated, paths absolute
    items: list = field(default_factory=list)

    @property
    def label(self) -> str:
        name = self.opts.get("name")
        return f"step {self.number} ({self.task}{': ' + name if name else ''})"

    @property
    def sequential(self) -> bool:
        """Items depend on the one before (temporal stylize, or frames of one render)."""
        return self.task == "render" or (self.task == "stylize" and bool(self.opts.get("temporal")))


@dataclass
class Item:
    step: int
    index: int  # position in the step's full item list (before --chunk)
    label: str
    sources: list  # files the outputs are made from (mtime check)
    outputs: list  # files this item writes
    params: dict  # what the runner needs: plain, picklable data


# ---------------------------------------------------------------------------------------------
# Validation


class _Where:
    """Builds the one-line error `JOB.toml: step 2 (stylize): key: what is wrong`."""

    def __init__(self, job: Path, number: int | None = None, task: str | None = None):
        self.prefix = f"{job.name}: " + (f"step {number}" + (f" ({task})" if task else "") + ": "
                                         if number is not None else "")

    def error(self, key: str, message: str) -> InputError:
        return InputError(f"{self.prefix}{key}: {message}")


def _type_name(v) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(v), type(v).__name__)


def _check_value(where: _Where, key: str, kind, value, base: Path):
    """The value converted for the runner (paths absolute), or an InputError naming the key."""
    from .cli import parse_frames, parse_size

    def bad(expected):
        return where.error(key, f"expected {expected}, got {_type_name(value)} {value!r}")

    if isinstance(kind, tuple):
        if not isinstance(value, str) or value.lower() not in kind[1]:
            raise where.error(key, f"{value!r} is not one of {', '.join(kind[1])}")
        return value.lower()
    if kind == "str":
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind == "path":
        if not isinstance(value, str) or not value:
            raise bad("a path (string)")
        return str(_abs(value, base))
    if kind == "paths":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise bad("a path or a list of paths")
        return [str(_abs(v, base)) for v in values]
    if kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        if value < 0:
            raise where.error(key, f"must be 0 or more, got {value}")
        return value
    if kind in ("float", "unit"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        if kind == "unit" and not 0.0 <= value <= 1.0:
            raise where.error(key, f"{value} is outside 0..1")
        return float(value)
    if kind == "floats":
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise bad("a number or a list of numbers")
        return [float(v) for v in values]
    if kind == "pathflag":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value:
            return str(_abs(value, base))
        raise bad("true/false or a folder")
    if kind in ("size", "frames"):
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              for v in value):
            text = f"{value[0]}x{value[1]}" if kind == "size" else f"{value[0]}-{value[1]}"
        elif isinstance(value, int) and not isinstance(value, bool):
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            raise bad("'WxH', N or [W, H]" if kind == "size" else "'A-B', N or [A, B]")
        import argparse

        try:
            return parse_size(text) if kind == "size" else parse_frames(text)
        except argparse.ArgumentTypeError as exc:
            raise where.error(key, str(exc)) from None
    raise AssertionError(kind)  # pragma: no cover


def _abs(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def load_job(path) -> dict:
    """The parsed TOML; exit-2 errors for a missing file or bad syntax."""
    import tomllib

    p = Path(path)
    if not p.is_file():
        raise InputError(f"JOB.toml: {p} does not exist" if not p.exists() else f"JOB.toml: {p} is not a file")
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{p.name}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{p.name}: not valid TOML: the file is not UTF-8 text") from None


def validate(job_path, data: dict) -> list[Step]:
    """Check every step's task, option names, types and ranges; returns the steps with absolute paths."""
    job = Path(job_path)
    base = job.resolve().parent
    where = _Where(job)
    for key in data:
        if key != "step":
            raise where.error(key, "unknown top-level key; a job is a list of [[step]] tables")
    steps_raw = data.get("step")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise where.error("step", "no [[step]] tables in the job file")
    steps = []
    for n, raw in enumerate(steps_raw, start=1):
        w = _Where(job, n)
        if not isinstance(raw, dict):
            raise w.error("step", "must be a [[step]] table")
        task = raw.get("task")
        if task is None:
            raise w.error("task", f"missing; use one of {', '.join(TASKS)}")
        if task not in TASKS:
            hint = difflib.get_close_matches(str(task), TASKS, 1)
            raise w.error("task", f"unknown task {task!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; use one of {', '.join(TASKS)}")
        w = _Where(job, n, task)
        known = {**_COMMON, **OPTIONS[task]}
        opts = {}
        for key, value in raw.items():
            if key not in known:
                hint = difflib.get_close_matches(key, known, 1)
                raise w.error(key, "unknown option" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                              + f"; {task} takes {', '.join(k for k in known if k != 'task')}")
            opts[key] = _check_value(w, key, known[key], value, base)
        for key in ("input", "output"):
            if key not in opts:
                raise w.error(key, "missing")
        if task == "stylize" and not opts.get("style") and not opts.get("model"):
            raise w.error("style", "missing (give a style image, or a fast-style `model`)")
        if task == "inpaint" and bool(opts.get("mask")) == bool(opts.get("detect")):
            raise w.error("mask", "give either `mask` or `detect = true`")
        if task == "render" and len(opts["input"]) != 1:
            raise w.error("input", "render takes one .blend file")
        if opts.get("style_weight") and len(opts["style_weight"]) != len(opts.get("style", [])):
            raise w.error("style_weight", "needs one weight per style image")
        steps.append(Step(n, task, opts))
    return steps


# ---------------------------------------------------------------------------------------------
# Planning: steps -> items


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


def _expand(where: _Where, key: str, patterns: list[str], planned: list[Path], *, images: bool = True) -> list[Path]:
    """Files for each entry of `input`: a file, a folder (its images), or a glob; files that earlier steps of
    this job will write count as if they were there already (so chunks of a chained job agree)."""
    out: list[Path] = []
    for raw in patterns:
        p = Path(raw)
        if glob.has_magic(raw):
            found = {Path(q) for q in glob.glob(raw) if Path(q).is_file()}
            found |= {q for q in planned if fnmatch.fnmatch(str(q), raw)}
            found = {q for q in found if not images or _is_image(q)}
            if not found:
                raise where.error(key, f"{raw} matches no files")
            out.extend(sorted(found))
        elif p.is_dir() or any(q.parent == p for q in planned):
            found = {q for q in p.iterdir() if q.is_file() and _is_image(q)} if p.is_dir() else set()
            found |= {q for q in planned if q.parent == p}
            if not found:
                raise where.error(key, f"folder {p} holds no images")
            out.extend(sorted(found))
        elif p.exists() or p in planned:
            out.append(p)
        else:
            raise where.error(key, f"{p} does not exist")
    return out


def _companion(where: _Where, key: str, value: str | None, item: Path, planned: list[Path]) -> str | None:
    """A per-item file (mask, reference): a file for every item, or a folder with one of the same name."""
    if not value:
        return None
    p = Path(value)
    if p.is_dir():
        for q in [p / item.name, *sorted(p.glob(item.stem + ".*"))]:
            if q.is_file():
                return str(q)
        raise where.error(key, f"folder {p} has no file named like {item.name}")
    if p.exists() or p in planned:
        return str(p)
    raise where.error(key, f"{p} does not exist")


def _check_file(where: _Where, key: str, value) -> list[str]:
    files = value if isinstance(value, list) else ([value] if value else [])
    for f in files:
        if not Path(f).is_file():
            raise where.error(key, f"{f} does not exist" if not Path(f).exists() else f"{f} is not a file")
    return list(files)


def _single_output(where: _Where, out: Path, inputs: list[Path]) -> bool:
    """`output` is one file (it has an image extension) or a folder; a file only works with one input."""
    if _is_image(out) and not out.is_dir():
        if len(inputs) > 1:
            raise where.error("output", f"{len(inputs)} inputs need a folder, and {out.name} names a file")
        return True
    if out.exists() and not out.is_dir():
        raise where.error("output", f"{out} is a file, expected a folder")
    return False


def _scene_frames(where: _Where, blend: Path, frames) -> list[int]:
    if not blend.is_file() or blend.suffix.lower() != ".blend":
        raise where.error("input", f"{blend} is not a .blend file")
    try:
        import bpy
    except ImportError:
        raise NotAvailableError(f"{where.prefix}render needs Blender's Python module: `pip install bpy==5.0.1`, "
                                "or run the job with `blender -b --command art_ai batch JOB.toml`") from None
    from .blender.render import _stdout_to_stderr

    try:
        with _stdout_to_stderr():
            bpy.ops.wm.open_mainfile(filepath=str(blend))
    except RuntimeError as exc:
        raise where.error("input", f"Blender cannot open {blend}: {str(exc).strip()}") from None
    scene = bpy.context.scene
    if scene.camera is None:
        raise where.error("input", f"scene {scene.name!r} in {blend} has no camera")
    a, b = frames if frames else (scene.frame_start, scene.frame_end)
    return list(range(a, b + 1, max(1, scene.frame_step)))


def plan(job_path, steps: list[Step]) -> None:
    """Fill every step's full item list; inputs, styles, masks and references must exist (or be made earlier)."""
    job = Path(job_path)
    planned: list[Path] = []
    for step in steps:
        w = _Where(job, step.number, step.task)
        o = step.opts
        common = [f for key in ("style", "encoder", "decoder") for f in _check_file(w, key, o.get(key))]
        if o.get("model") and Path(o["model"]).suffix:  # a path, not a name in the model store
            model = _abs(o["model"], job.resolve().parent)
            common += _check_file(w, "model", str(model))
            o["model"] = str(model)
        out = Path(o["output"])
        if step.task == "render":
            blend = Path(o["input"][0])
            if not blend.exists():
                raise w.error("input", f"{blend} does not exist")
            if out.exists() and not out.is_dir():
                raise w.error("output", f"{out} is a file, expected a folder")
            styled = bool(o.get("style") or o.get("model"))
            for k, frame in enumerate(_scene_frames(w, blend, o.get("frames"))):
                outs = [out / "raw" / f"{frame:04d}.png"] + ([out / "stylized" / f"{frame:04d}.png"] if styled else [])
                step.items.append(Item(step.number, k, f"frame {frame}", [str(blend), *common],
                                       [str(p) for p in outs], {"frame": frame}))
        else:
            inputs = _expand(w, "input", o["input"], planned)
            single = _single_output(w, out, inputs)
            for k, src in enumerate(inputs):
                params = {"input": str(src)}
                sources = [str(src), *common]
                if step.task in ("stylize", "inpaint", "detect"):
                    for key in ("mask", "reference"):
                        if key in OPTIONS[step.task]:
                            params[key] = _companion(w, key, o.get(key), src, planned)
                            if params[key]:
                                sources.append(params[key])
                if step.task == "pbr":
                    folder = out if single or len(inputs) == 1 else out / src.stem
                    outs = [folder / f"{key}.png" for key in PBR_KEYS]
                else:
                    name = src.stem + ".png" if step.task in ("detect", "texture") else src.name
                    outs = [out if single else out / name]
                    if step.task == "texture" and o.get("pbr"):
                        if o["pbr"] is True:
                            folder = outs[0].with_name(outs[0].stem + "_pbr")
                        else:
                            folder = Path(o["pbr"]) if len(inputs) == 1 else Path(o["pbr"]) / src.stem
                        outs += [folder / f"{key}.png" for key in PBR_KEYS]
                if any(Path(q) == src for q in outs):
                    raise w.error("output", f"would overwrite its input {src}; write somewhere else")
                params["outputs"] = [str(q) for q in outs]
                step.items.append(Item(step.number, k, src.name, sources, [str(q) for q in outs], params))
        planned.extend(Path(q) for it in step.items for q in it.outputs)


# ---------------------------------------------------------------------------------------------
# Resume


def _mtime(path) -> int | None:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return None


def _stale(item: Item, job_path) -> bool:
    """Some output is there but older than an input: it must be redone, not kept."""
    outs = [t for t in (_mtime(p) for p in item.outputs) if t is not None]
    if not outs or job_path is None:
        return False
    newest = max([t for t in (_mtime(p) for p in [*item.sources, job_path]) if t is not None], default=0)
    return min(outs) < newest


def up_to_date(item: Item, job_path) -> bool:
    """Outputs all there and none older than an input or the job file."""
    outs = [_mtime(p) for p in item.outputs]
    if any(t is None for t in outs):
        return False
    newest = max([t for t in (_mtime(p) for p in [*item.sources, job_path]) if t is not None], default=0)
    return min(outs) >= newest


# ---------------------------------------------------------------------------------------------
# Running one item (also inside Ray workers: plain data in, written paths out)


_styles_cache: dict = {}


def _style(opts: dict):
    """The style image(s), read once per process."""
    files = opts.get("style") or []
    if not files:
        return None
    key = tuple((f, _mtime(f)) for f in files)
    if key not in _styles_cache:
        _styles_cache.clear()
        imgs = [read_input(f, "style") for f in files]
        _styles_cache[key] = imgs[0] if len(imgs) == 1 else imgs
    return _styles_cache[key]


def _engine_options(opts: dict, keys) -> dict:
    out = {k: opts[k] for k in keys if opts.get(k) is not None}
    if opts.get("style_weight"):
        out["style_weights"] = opts["style_weight"]
    return out


STYLIZE_KEYS = ("steps", "seed", "model", "models_dir", "encoder", "decoder")


def _stylize_args(opts: dict, params: dict) -> dict:
    mask = read_input(params["mask"], "mask") if params.get("mask") else None
    return dict(method=opts.get("method", "auto"), strength=opts.get("strength", 1.0),
                preserve_color=opts.get("preserve_color", False), mask=mask, device=opts.get("device", "auto"),
                **_engine_options(opts, STYLIZE_KEYS))


def _note(info: dict, progress) -> None:
    if info.get("note") and not getattr(progress, "quiet", False):
        print(f"art_ai: {info['note']}", file=sys.stderr, flush=True)


def run_item(task: str, opts: dict, item: Item, progress=None, state=None):
    """Do one item; returns (written paths, sequence state for temporal stylize)."""
    from .imageio import write_image

    p = item.params
    outs = [Path(q) for q in item.outputs]
    if task == "stylize":
        from .stylize import stylize, stylize_sequence

        content = read_input(p["input"], "content")
        info: dict = {}
        if opts.get("temporal"):
            result, state = stylize_sequence(content, _style(opts), state, progress=progress, info=info,
                                             **_stylize_args(opts, p))
        else:
            result = stylize(content, _style(opts), progress=progress, info=info, **_stylize_args(opts, p))
        _note(info, progress)
        write_image(outs[0], result)
    elif task == "texture":
        from .texture import pbr_maps, synthesize_texture

        exemplar = read_input(p["input"], "exemplar")
        size = opts.get("size") or (exemplar.shape[0] * 2, exemplar.shape[1] * 2)
        tileable = opts.get("tileable", True)
        result = synthesize_texture(exemplar, size=size, method=opts.get("method", "auto"), tileable=tileable,
                                    seed=opts.get("seed", 0), device=opts.get("device", "auto"), progress=progress,
                                    **_engine_options(opts, ("steps", "models_dir")))
        write_image(outs[0], result)
        if len(outs) > 1:
            maps = pbr_maps(result, tileable=tileable)
            for key, q in zip(PBR_KEYS, outs[1:]):
                write_image(q, maps[key], data=True)
    elif task == "seamless":
        from .texture import make_seamless

        image = read_input(p["input"], "image")
        write_image(outs[0], make_seamless(image, seed=opts.get("seed", 0), progress=progress))
    elif task == "pbr":
        from .texture import pbr_maps

        maps = pbr_maps(read_input(p["input"], "image"), strength=opts.get("strength", 1.0),
                        directx=opts.get("directx", False), progress=progress)
        for key, q in zip(PBR_KEYS, outs):
            write_image(q, maps[key], data=True)
    elif task in ("detect", "inpaint"):
        from .repair import detect_damage, inpaint

        image = read_input(p["input"], "image")
        if task == "inpaint" and p.get("mask"):
            mask = read_input(p["mask"], "mask", data=True)
        else:
            reference = read_input(p["reference"], "reference") if p.get("reference") else None
            mask = detect_damage(image, reference=reference, sensitivity=opts.get("sensitivity", 0.5),
                                 progress=progress)
        if task == "detect":
            write_image(outs[0], mask, data=True)
        else:
            result = inpaint(image, mask, method=opts.get("method", "auto"), device=opts.get("device", "auto"),
                             progress=progress, **_engine_options(opts, ("steps", "seed", "models_dir")))
            write_image(outs[0], result)
    else:  # pragma: no cover - render items run in groups, see run_render
        raise AssertionError(task)
    return [str(q) for q in outs], state


def warm_state(opts: dict, item: Item, from_disk: bool, progress=None):
    """Sequence state of the item before a run of pending temporal frames: its written result when allowed and
    there, else its content re-stylized (not written). None when its frame does not exist."""
    from .stylize.temporal import make_state, stylize_sequence

    src = Path(item.params["input"])
    if not src.is_file():
        return None
    content = read_input(src, "previous frame")
    if from_disk and Path(item.outputs[0]).is_file():
        try:
            return make_state(content, read_input(item.outputs[0], "previous stylized frame"))
        except ArtAIError:
            pass
    if progress is not None and not getattr(progress, "quiet", False):
        print(f"art_ai: re-stylizing {src.name} so the sequence stays coherent across the chunk boundary",
              file=sys.stderr, flush=True)
    _, state = stylize_sequence(content, _style(opts), None, **_stylize_args(opts, item.params))
    return state


def run_render(opts: dict, items: list[Item], force: bool, progress) -> None:
    """Render (and stylize) a contiguous run of frames with the `render` command's own engine."""
    import argparse

    from .blender.render import render_command

    frames = [it.params["frame"] for it in items]
    args = argparse.Namespace(
        scene=opts["input"][0], output=opts["output"], frames=(frames[0], frames[-1]), chunk=None,
        style=opts.get("style"), method=opts.get("method", "auto"), strength=opts.get("strength", 1.0),
        preserve_color=opts.get("preserve_color", False), model=opts.get("model"), steps=opts.get("steps"),
        seed=opts.get("seed"), temporal=opts.get("temporal", False), force=force, device=opts.get("device", "auto"))
    with redirect_stdout(io.StringIO()):  # output paths are printed by the batch driver, once
        render_command(args, progress)


def _groups(pending: list[Item]) -> list[list[Item]]:
    """Split items into runs of consecutive indices (each run continues one sequence)."""
    runs: list[list[Item]] = []
    for it in pending:
        if runs and runs[-1][-1].index == it.index - 1:
            runs[-1].append(it)
        else:
            runs.append([it])
    return runs


def run_segment(task: str, opts: dict, items: list[Item], before: Item | None, before_done: bool, force: bool,
                progress, job_path=None, total: int | None = None) -> list[tuple[int, str | None]]:
    """Run consecutive items of one step; returns (index, error or None) per item. Used locally and by Ray."""
    results: list[tuple[int, str | None]] = []
    if task == "render":
        stale = force or any(_stale(it, job_path) for it in items)
        err = None
        try:
            run_render(opts, items, stale, progress if progress is None else _ItemProgress(
                f"[step {items[0].step}] ", bool(getattr(progress, "quiet", False)), every=5.0))
        except (ArtAIError, RuntimeError, OSError) as exc:
            err = str(exc)
        for it in items:
            ok = all(Path(q).is_file() for q in it.outputs) and (job_path is None or up_to_date(it, job_path))
            results.append((it.index, None if ok else (err or "the render wrote no output")))
        return results
    state = None
    for k, it in enumerate(items):
        prog = _item_progress(progress, it, total)
        try:
            if task == "stylize" and opts.get("temporal") and state is None and (k or before is not None):
                prev = items[k - 1] if k else before
                state = warm_state(opts, prev, from_disk=bool(k) or before_done, progress=prog)
            _, state = run_item(task, opts, it, prog, state)
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


class _ItemProgress:
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

    def item(self, prefix: str):  # the `render` command asks for per-frame reporters
        return _ItemProgress(self.prefix + prefix, self.quiet, self.every)

    def done(self) -> None:
        if not self.quiet:
            print(f"art_ai: {self.prefix}done in {time.monotonic() - self.started:.1f} s", file=sys.stderr,
                  flush=True)


def _item_progress(progress, item: Item, total: int | None = None):
    if progress is None:
        return None
    count = f" {item.index + 1}/{total}" if total else ""
    return _ItemProgress(f"[step {item.step}{count} {item.label}] ", bool(getattr(progress, "quiet", False)))


# ---------------------------------------------------------------------------------------------
# The command


class Summary:
    def __init__(self):
        self.written = 0
        self.skipped = 0
        self.failed: list[tuple[int, str, str]] = []

    def ok(self, item: Item, before: dict) -> None:
        """Output paths on stdout: the files this run wrote (a resumed frame may only need its stylized file)."""
        self.written += 1
        for q in item.outputs:
            t = _mtime(q)
            if t is not None and t != before.get(q):
                print(q, flush=True)

    def fail(self, item: Item, msg: str) -> None:
        self.failed.append((item.step, item.label, msg))
        print(f"art_ai: error: step {item.step} {item.label}: {msg}", file=sys.stderr, flush=True)


def _log(progress, msg: str) -> None:
    if not getattr(progress, "quiet", False):
        print(f"art_ai: {msg}", file=sys.stderr, flush=True)


def prepare(job_path, chunk=None):
    """Load, validate and plan a job: (steps, {step number: the items of this chunk})."""
    from .cli import chunk_slice

    steps = validate(job_path, load_job(job_path))
    plan(job_path, steps)
    mine = {s.number: chunk_slice(s.items, chunk) for s in steps}
    return steps, mine


def run_batch(args, progress) -> int:
    """`batch JOB.toml [--force] [--chunk I/N] [--ray [ADDRESS]]`; returns the exit code."""
    job_path = Path(args.job)
    ray_address = getattr(args, "ray", None)
    if ray_address:
        from .batch_ray import require_ray

        require_ray()
    steps, mine = prepare(job_path, args.chunk)
    started = time.monotonic()
    summary = Summary()
    runner = None
    if ray_address:
        from .batch_ray import RayRunner

        runner = RayRunner(ray_address, progress)
    try:
        for step in steps:
            items = mine[step.number]
            pending = items if args.force else [it for it in items if not up_to_date(it, job_path)]
            summary.skipped += len(items) - len(pending)
            _log(progress, f"{step.label}: {len(items)} item(s), {len(items) - len(pending)} up to date, "
                           f"{len(pending)} to do")
            if not pending:
                continue
            before = {q: _mtime(q) for it in pending for q in it.outputs}
            if runner is not None:
                results = runner.run_step(step, pending, items, args.force, job_path)
            else:
                results = _run_local(step, pending, items, args.force, progress, job_path)
            by_index = {it.index: it for it in pending}
            for index, err in results:
                if err is None:
                    summary.ok(by_index[index], before)
                else:
                    summary.fail(by_index[index], err)
    finally:
        if runner is not None:
            runner.close()
    took = time.monotonic() - started
    part = f" chunk {args.chunk[0]}/{args.chunk[1]}" if args.chunk else ""
    _log(progress, f"batch {job_path.name}{part}: "
                   f"{summary.written} done, {summary.skipped} up to date (skipped), {len(summary.failed)} failed "
                   f"in {took:.1f} s")
    for number, label, msg in summary.failed:
        _log(progress, f"  failed: step {number} {label}: {msg}")
    return 1 if summary.failed else 0


def _run_local(step: Step, pending: list[Item], items: list[Item], force: bool, progress, job_path):
    if not step.sequential:
        return run_segment(step.task, step.opts, pending, None, False, force, progress, job_path, len(step.items))
    results = []
    first = items[0].index if items else 0
    by_index = {it.index: it for it in step.items}
    for run in _groups(pending):
        before = by_index.get(run[0].index - 1)
        # inside this slice the frame before was done by this very job: reuse its result; before the slice
        # (the previous chunk's last frame) it is re-stylized, so every chunk gives the same frames alone
        before_done = before is not None and before.index >= first
        results += run_segment(step.task, step.opts, run, before, before_done, force, progress, job_path,
                               len(step.items))
    return results
