"""Planning a job: every step expands into items (one per file, or one per frame for `render`), and an item
whose outputs exist and are newer than its inputs and the job file is up to date (skipped on a re-run)."""

from __future__ import annotations

import fnmatch
import glob
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, NotAvailableError
from ..imageio import IMAGE_EXTENSIONS
from ..core import check_work_memory
from ..validate import check_image_sizes
from .schema import OPTIONS, PBR_KEYS, Step, Where, absolute, load_job, validate


@dataclass
class Item:
    step: int
    index: int  # position in the step's full item list (before --chunk)
    label: str
    sources: list  # files the outputs are made from (mtime check)
    outputs: list  # files this item writes
    params: dict  # what the runner needs: plain, picklable data


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS


class Planned:
    """The files earlier steps of this job will write, indexed (a set, and by folder) so that looking one up
    does not scan every output planned so far: planning stays linear in the number of steps."""

    def __init__(self):
        self.files: set[Path] = set()
        self.by_folder: dict[Path, set[Path]] = {}

    def add(self, path: Path) -> None:
        self.files.add(path)
        self.by_folder.setdefault(path.parent, set()).add(path)

    def __contains__(self, path) -> bool:
        return path in self.files

    def matching(self, pattern: str) -> set[Path]:
        folder = os.path.dirname(pattern)
        if glob.has_magic(folder):
            return {q for q in self.files if fnmatch.fnmatch(str(q), pattern)}
        return {q for q in self.by_folder.get(Path(folder), ()) if fnmatch.fnmatch(str(q), pattern)}


def _expand(where: Where, key: str, patterns: list[str], planned: Planned, *, images: bool = True) -> list[Path]:
    """Files for each entry of `input`: a file, a folder (its images), or a glob; files that earlier steps of
    this job will write count as if they were there already (so chunks of a chained job agree)."""
    out: list[Path] = []
    for raw in patterns:
        p = Path(raw)
        if glob.has_magic(raw):
            found = {Path(q) for q in glob.glob(raw) if Path(q).is_file()}
            found |= planned.matching(raw)
            found = {q for q in found if not images or _is_image(q)}
            if not found:
                raise where.error(key, f"{raw} matches no files")
            out.extend(sorted(found))
        elif p.is_dir() or p in planned.by_folder:
            found = {q for q in p.iterdir() if q.is_file() and _is_image(q)} if p.is_dir() else set()
            found |= planned.by_folder.get(p, set())
            if not found:
                raise where.error(key, f"folder {p} holds no images")
            out.extend(sorted(found))
        elif p.exists() or p in planned:
            out.append(p)
        else:
            raise where.error(key, f"{p} does not exist")
    return out


def _companion(where: Where, key: str, value: str | None, item: Path, planned: Planned) -> str | None:
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


def _check_file(where: Where, key: str, value) -> list[str]:
    files = value if isinstance(value, list) else ([value] if value else [])
    for f in files:
        if not Path(f).is_file():
            raise where.error(key, f"{f} does not exist" if not Path(f).exists() else f"{f} is not a file")
        _check_header(where, key, Path(f))
    return list(files)


def _check_header(where: Where, key: str, path: Path):
    """An image input that exists now is checked from its header (size limit, readable) before any step runs;
    returns the header (None for a file an earlier step makes, or a format whose header is not read)."""
    if not path.is_file() or not _is_image(path):
        return None  # made by an earlier step: checked when it is read
    from ..errors import InputError
    from ..imageio import check_image_file

    try:
        return check_image_file(path, key)
    except InputError as exc:
        raise where.error(key, str(exc)) from None


def _single_output(where: Where, out: Path, inputs: list[Path]) -> bool:
    """`output` is one file (it has an image extension) or a folder; a file only works with one input."""
    if _is_image(out) and not out.is_dir():
        if len(inputs) > 1:
            raise where.error("output", f"{len(inputs)} inputs need a folder, and {out.name} names a file")
        return True
    if out.exists() and not out.is_dir():
        raise where.error("output", f"{out} is a file, expected a folder")
    return False


def _scene_frames(where: Where, blend: Path, frames, layers=None) -> list[int]:
    if not blend.is_file() or blend.suffix.lower() != ".blend":
        raise where.error("input", f"{blend} is not a .blend file")
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise NotAvailableError(f"{where.prefix}render needs Blender's Python module: `pip install bpy==5.0.1`, "
                                "or run the job with `blender -b --command art_ai batch JOB.toml`") from None
    from ..blender.scene_io import open_blend, scene_frames

    try:
        scene = open_blend(blend)
    except InputError as exc:
        raise where.error("input", str(exc)) from None
    if layers:
        from ..blender.style_layers import check_targets

        try:
            check_targets(scene, layers)  # an unknown target is refused before any step runs
        except InputError as exc:
            raise where.error("layers", str(exc)) from None
    return scene_frames(scene, frames)


def _files_used(w: Where, step: Step, base: Path) -> dict[str, str]:
    """Style images and weights files every item of the step reads, each with its key (checked here; names in
    the store are not)."""
    o = step.opts
    used = {f: key for key in ("style", "decoder") for f in _check_file(w, key, o.get(key))}
    for la in o.get("layers") or ():
        used.update((f, "layers") for f in _check_file(w, "layers", la["style"]))
    for key in ("model", "encoder"):  # a path, or a name (a store name; auto/vgg19/builtin for the encoder)
        if o.get(key) and Path(o[key]).suffix:
            path = str(absolute(o[key], base))
            used.update((f, key) for f in _check_file(w, key, path))
            o[key] = path
    return used


def _render_items(w: Where, step: Step, common: list[str]) -> None:
    o = step.opts
    out = Path(o["output"])
    blend = Path(o["input"][0])
    if not blend.exists():
        raise w.error("input", f"{blend} does not exist")
    if out.exists() and not out.is_dir():
        raise w.error("output", f"{out} is a file, expected a folder")
    styled = bool(o.get("style") or o.get("model") or o.get("layers"))
    for k, frame in enumerate(_scene_frames(w, blend, o.get("frames"), o.get("layers"))):
        outs = [out / "raw" / f"{frame:04d}.png"] + ([out / "stylized" / f"{frame:04d}.png"] if styled else [])
        step.items.append(Item(step.number, k, f"frame {frame}", [str(blend), *common], [str(p) for p in outs],
                               {"frame": frame}))


def _outputs(step: Step, src: Path, out: Path, single: bool, many: bool) -> list[Path]:
    o = step.opts
    if step.task == "pbr":
        folder = out if single or not many else out / src.stem
        return [folder / f"{key}.png" for key in PBR_KEYS]
    name = src.stem + ".png" if step.task in ("detect", "texture") else src.name
    outs = [out if single else out / name]
    if step.task == "texture" and o.get("pbr"):
        if o["pbr"] is True:
            folder = outs[0].with_name(outs[0].stem + "_pbr")
        else:
            folder = Path(o["pbr"]) if not many else Path(o["pbr"]) / src.stem
        outs += [folder / f"{key}.png" for key in PBR_KEYS]
    return outs


def _memory_tasks(step: Step) -> list[tuple[str, str | None]]:
    """(engine task, method) of a step whose memory need is known (core.WORK_BYTES_PER_PIXEL)."""
    o = step.opts
    return {"seamless": [("make_seamless", None)], "pbr": [("pbr_maps", None)], "detect": [("detect_damage", None)],
            "inpaint": [("detect_damage", None)] * bool(o.get("detect")) + [("inpaint", o.get("method") or "auto")],
            }.get(step.task, [])


def _file_items(w: Where, step: Step, common: list[str], planned: Planned) -> None:
    o = step.opts
    out = Path(o["output"])
    inputs = _expand(w, "input", o["input"], planned)
    single = _single_output(w, out, inputs)
    method = step.method
    styles = [(f, _check_header(w, "style", Path(f))) for f in o.get("style") or []] \
        if getattr(method, "min_side", 0) else []
    for k, src in enumerate(inputs):
        head = _check_header(w, "input", src)
        params = {"input": str(src)}
        sources = [str(src), *common]
        heads = {}
        for key in ("mask", "reference"):
            if key in OPTIONS[step.task]:
                params[key] = _companion(w, key, o.get(key), src, planned)
                if params[key]:
                    sources.append(params[key])
                    heads[key] = _check_header(w, key, Path(params[key]))
        try:  # sizes too: a mask of another size, a picture too small for the method or too large for the memory
            check_image_sizes(src, head, mask=params.get("mask"), mask_header=heads.get("mask"), method=method,
                              styles=styles, what="input")
            if head is not None:
                for task, name in _memory_tasks(step):
                    check_work_memory(task, (head.height, head.width, head.channels), "input", name)
        except InputError as exc:
            raise InputError(f"{w.prefix}{exc}") from None
        outs = _outputs(step, src, out, single, len(inputs) > 1)
        params["outputs"] = [str(q) for q in outs]
        step.items.append(Item(step.number, k, src.name, sources, [str(q) for q in outs], params))
    if step.task == "propagate":
        from ..stylize.keyframes import check_job

        for it in step.items:
            it.sources.extend(o["keyframes"].values())
        if any(not Path(p).is_file() for p in inputs):
            return  # frames an earlier step makes: checked when this step runs
        try:
            check_job(inputs, o["keyframes"], o.get("passes"), o.get("method") or "auto")
        except InputError as exc:
            raise InputError(f"{w.prefix}{exc}") from None


class _Identity:
    """What a path names on disk, memoized: (device, inode) of an existing file, so hard links, symbolic links,
    `..` and case-folding file systems all agree; else its resolved absolute path (a file not made yet)."""

    def __init__(self):
        self._memo: dict[str, tuple] = {}

    def __call__(self, path) -> tuple:
        text = str(path)
        key = self._memo.get(text)
        if key is None:
            real = os.path.realpath(text)
            try:
                st = os.stat(real)
                key = ("file", st.st_dev, st.st_ino)
            except OSError:
                key = ("path", real)
            self._memo[text] = key
        return key


def _item_sources(step: Step, item: Item, used: dict[str, str]):
    """(file, what it is to the step) for every file the item reads."""
    roles = {item.params[k]: k for k in ("input", "mask", "reference") if item.params.get(k)}
    if step.task == "render":
        roles[item.sources[0]] = "scene"
    for src in item.sources:
        yield src, roles.get(src) or used.get(src, "source")


class _Ticker:
    """A line on stderr every few seconds while a long job is planned (a 10,000-step job must not look hung)."""

    MANY = 200

    def __init__(self, total: int, quiet: bool, every: float = 2.0):
        self.total, self.every = total, every
        self.on = total >= self.MANY and not quiet
        self.last = time.monotonic()
        if self.on:
            print(f"art_ai: planning {total} steps", file=sys.stderr, flush=True)

    def __call__(self, done: int) -> None:
        if self.on and time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            print(f"art_ai: planned {done}/{self.total} steps", file=sys.stderr, flush=True)


def plan(job_path, steps: list[Step], quiet: bool = True) -> None:
    """Fill every step's full item list; inputs, styles, masks and references must exist (or be made earlier).

    One rule keeps users' files: no output of step N may be a file that step N or an earlier step reads (its
    input, style, mask, reference, weights, .blend) or the job file, however the path is spelled (links, `..`,
    hard links). A later step reading an earlier step's output is a chain, and fine. Every lookup is by key in a
    dict or set, so planning is linear in the number of steps."""
    job = Path(job_path)
    base = job.resolve().parent
    planned = Planned()
    ident = _Identity()
    writers: dict[tuple, str] = {}  # output -> "step N (task) for X" that writes it
    read: dict[tuple, str] = {ident(job): f"the job file {job.name}"}  # source -> what it is, and to which step
    tick = _Ticker(len(steps), quiet)
    for step in steps:
        w = Where(job, step.number, step.task)
        used = _files_used(w, step, base)
        common = list(used)
        if step.task == "render":
            _render_items(w, step, common)
        else:
            _file_items(w, step, common, planned)
        for it in step.items:
            for src, role in _item_sources(step, it, used):
                read.setdefault(ident(src), f"the {role} of step {step.number} ({src})")
        for it in step.items:
            for q in it.outputs:
                key = ident(q)
                if key in read:
                    raise w.error("output", f"{q} would replace {read[key]}; write somewhere else")
                if key in writers:
                    raise w.error("output", f"{q} is also written by {writers[key]}; give each its own output")
                writers[key] = f"step {step.number} ({step.task}) for {it.label}"
        for it in step.items:
            for q in it.outputs:
                planned.add(Path(q))
        tick(step.number)


def prepare(job_path, chunk=None, quiet: bool = True):
    """Load, validate and plan a job: (steps, {step number: the items of this chunk})."""
    from ..progress import chunk_slice

    steps = validate(job_path, load_job(job_path))
    plan(job_path, steps, quiet)
    mine = {s.number: chunk_slice(s.items, chunk) for s in steps}
    return steps, mine


def groups(pending: list[Item]) -> list[list[Item]]:
    """Split items into runs of consecutive indices (each run continues one sequence)."""
    runs: list[list[Item]] = []
    for it in pending:
        if runs and runs[-1][-1].index == it.index - 1:
            runs[-1].append(it)
        else:
            runs.append([it])
    return runs


# ---------------------------------------------------------------------------------------------
# Resume


def mtime(path) -> int | None:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return None


def stale(item: Item, job_path) -> bool:
    """Some output is there but older than an input: it must be redone, not kept."""
    outs = [t for t in (mtime(p) for p in item.outputs) if t is not None]
    if not outs or job_path is None:
        return False
    newest = max([t for t in (mtime(p) for p in [*item.sources, job_path]) if t is not None], default=0)
    return min(outs) < newest


def up_to_date(item: Item, job_path) -> bool:
    """Outputs all there and none older than an input or the job file."""
    outs = [mtime(p) for p in item.outputs]
    if any(t is None for t in outs):
        return False
    newest = max([t for t in (mtime(p) for p in [*item.sources, job_path]) if t is not None], default=0)
    return min(outs) >= newest
