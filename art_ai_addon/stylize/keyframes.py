"""Keyframe propagation on files: the `propagate` command and batch step (frames on disk, painted keyframes, an
optional folder of Blender's multilayer EXR passes), checked completely before any work.

Frame numbers: the last run of digits in each frame's file name (0001.png, shot_0048.exr -> 1, 48); where the
names carry no numbers, the frames' positions in name order, from 1. `--keyframe N=PAINTED` names frame N.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputError


def frame_numbers(paths: list[Path]) -> list[int]:
    nums = []
    for p in paths:
        found = re.findall(r"\d+", p.stem)
        nums.append(int(found[-1]) if found else None)
    if any(n is None for n in nums) or len(set(nums)) != len(nums):
        return list(range(1, len(paths) + 1))
    return nums  # type: ignore[return-value]


def parse_keyframe(text: str) -> tuple[int, str]:
    """'N=PAINTED' -> (N, path)."""
    import argparse

    n, sep, path = str(text).partition("=")
    try:
        frame = int(n)
    except ValueError:
        frame = None
    if not sep or frame is None or not path:
        raise argparse.ArgumentTypeError(f"expected N=PAINTED (a frame number and the painted image, e.g. "
                                         f"1=painted_0001.png), got {text!r}")
    return frame, path


def _passes_file(folder: Path, frame: Path, number: int) -> Path | None:
    for cand in (folder / (frame.stem + ".exr"), folder / f"{number:04d}.exr"):
        if cand.is_file():
            return cand
    found = [p for p in sorted(folder.glob("*.exr")) if re.findall(r"\d+", p.stem)
             and int(re.findall(r"\d+", p.stem)[-1]) == number]
    return found[0] if len(found) == 1 else None


def guide_from_passes(passes: dict) -> dict:
    g = {}
    if passes.get("uv") is not None:
        g["uv"] = passes["uv"]
    if passes.get("object_id") is not None:
        g["object"] = passes["object_id"]
    if passes.get("vector") is not None:
        g["vector"] = passes["vector"]
    if passes.get("position") is not None:
        g["position"] = passes["position"]
    return g


def picture_size(path, what: str) -> tuple[int, int]:
    """(height, width) as the picture will be read (EXIF rotation applied), from its header where possible."""
    from ..imageio import check_image_file, read_image

    hdr = check_image_file(path, what)
    if hdr is None:
        return read_image(path, what=what).shape[:2]
    return (hdr.width, hdr.height) if hdr.orientation in (5, 6, 7, 8) else (hdr.height, hdr.width)


def check_job(frames: list[Path], keyframes: dict[int, str], passes_dir=None, method: str = "auto") -> dict:
    """Everything checked from headers before any pixel is read: keyframes in range and of the frames' size,
    passes present for every frame with what the method needs. Returns the plan."""
    if not frames:
        raise InputError("frames: no frames given")
    numbers = frame_numbers(frames)
    sizes = {}
    for p in frames:
        sizes[p] = picture_size(p, f"frame {p.name}")
    first = sizes[frames[0]]
    for p in frames:
        if sizes[p][:2] != first[:2]:
            raise InputError(f"frame {p.name}: {sizes[p][1]}x{sizes[p][0]}, {frames[0].name} is "
                             f"{first[1]}x{first[0]}; every frame must have the same size")
    if not keyframes:
        raise InputError("--keyframe: give at least one N=PAINTED")
    for n, path in keyframes.items():
        if n not in numbers:
            raise InputError(f"--keyframe {n}: no frame {n} among the frames ({min(numbers)}..{max(numbers)})")
        size = picture_size(path, f"keyframe {n}")
        if size[:2] != first[:2]:
            raise InputError(f"keyframe {n}: {Path(path).name} is {size[1]}x{size[0]}, the frames are "
                             f"{first[1]}x{first[0]}; paint over the frame at its own size")
    passes = None
    if passes_dir is not None:
        folder = Path(passes_dir)
        if not folder.is_dir():
            raise InputError(f"--passes: {folder} is not a folder")
        passes = []
        for p, n in zip(frames, numbers):
            f = _passes_file(folder, p, n)
            if f is None:
                raise InputError(f"--passes: no passes file for frame {n} ({p.name}) in {folder}; expected "
                                 f"{p.stem}.exr or {n:04d}.exr")
            passes.append(f)
    if method == "guided" and passes is None:
        raise InputError("--method guided: needs --passes (the UV and Cryptomatte object passes of every frame)")
    return {"numbers": numbers, "passes": passes}


def load_guides(plan: dict, method: str) -> list[dict] | None:
    """The guides of every frame from its passes file; a pass the method needs and a file lacks is refused."""
    from ..passes import read_passes

    if plan["passes"] is None:
        return None
    guides = []
    for f in plan["passes"]:
        g = guide_from_passes(read_passes(f, masks=()))
        if method == "guided" and ("uv" not in g or "object" not in g):
            missing = [name for k, name in (("uv", "UV"), ("object", "Cryptomatte Object")) if k not in g]
            raise InputError(f"--passes: {f.name} has no {' and no '.join(missing)} pass, which method guided "
                             "needs; render with those passes on (View Layer Properties > Passes)")
        guides.append(g)
    if method == "auto" and not all("uv" in g and "object" in g for g in guides):
        return [{k: v for k, v in g.items() if k == "vector"} for g in guides]  # motion only
    return guides


def propagate_files(frames: list[Path], keyframes: dict[int, str], out_dir, *, passes_dir=None, method="auto",
                    force: bool = False, progress=None, cancel=None, written=None, **options) -> list[Path]:
    """Propagate painted keyframes over frame files into `out_dir` (same names); finished frames are skipped."""
    from ..core import reporter
    from ..imageio import read_image, write_image
    from .propagate import propagate_keyframes

    rep = reporter(progress, cancel)
    plan = check_job(frames, keyframes, passes_dir, method)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"-o: {out} is a file, expected a folder")
    targets = [out / p.name for p in frames]
    src = {Path(p).resolve() for p in [*frames, *keyframes.values()]}
    for t in targets:
        if t.resolve() in src:
            raise InputError(f"-o: writing {t} would replace an input; write into another folder")
    if not force and all(t.exists() for t in targets):
        rep(1.0, "already done")
        return []
    guides = load_guides(plan, method)
    numbers = plan["numbers"]
    index = {n: i for i, n in enumerate(numbers)}
    plain = [read_image(p, what="frame") for p in frames]
    painted = {index[n]: read_image(path, what=f"keyframe {n}") for n, path in keyframes.items()}
    results = propagate_keyframes(plain, painted, guides=guides, method=method, progress=rep.sub(0.05, 0.95),
                                  cancel=cancel, **options)
    done = []
    for t, res in zip(targets, results):
        if t.exists() and not force:
            continue
        p = write_image(t, np.asarray(res))
        done.append(p)
        if written is not None:
            written(p)
    rep(1.0, "done")
    return done
