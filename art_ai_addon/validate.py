"""Checks of arguments and paths that run before any work starts, so a mistake costs a second, not an hour.

Each raises InputError with one sentence naming the argument, what is wrong and what to do. No OpenCV, no
torch: the CLI, the batch runner, the API and the Blender layer all call these.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError
from .imageio import as_path, check_input_file  # noqa: F401  (the file checks live with the readers)
from .methods import check_number  # the one number check (with the option table: methods is stdlib-only)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _check_creatable(folder: Path, what: str, shown: Path) -> None:
    """`folder` exists as a writable folder, or can be made (its first existing parent is a writable folder)."""
    q = folder if str(folder) else Path(".")
    while not q.exists():
        if q.is_symlink():
            raise InputError(f"{what}: {shown}: {q} is a broken link")
        if q.parent == q:
            break
        q = q.parent
    if not q.is_dir():
        raise InputError(f"{what}: cannot write {shown}: {q} is a file, not a folder")
    if not os.access(q, os.W_OK | os.X_OK):
        raise InputError(f"{what}: cannot write {shown}: no permission to write in {q}")


def check_output_image(path, inputs=(), overwrite: bool = False, what: str = "-o") -> Path:
    """An image file name the writer can produce: known extension, not a folder, its folder exists or can be
    made, and not one of `inputs` (resolved: links, ./a.png vs a.png) unless `overwrite`."""
    from .imageio import IMAGE_EXTENSIONS

    p = as_path(path, what)
    if p.is_dir():
        raise InputError(f"{what}: {p} is a folder, expected an image file name")
    if p.suffix.lower() not in IMAGE_EXTENSIONS:
        raise InputError(f"{what}: {p.name} has no image extension; use one of {', '.join(IMAGE_EXTENSIONS)}")
    if p.exists() and not p.is_file():
        raise InputError(f"{what}: {p} exists and is not a regular file")
    _check_creatable(p.parent, what, p)
    if not overwrite:
        for src in inputs or ():
            if src is not None and _same_file(p, as_path(src)):
                raise InputError(f"{what}: {p} is the input {src}; write somewhere else, or add --overwrite to "
                                 "replace it")
    return p


def check_output_dir(path, what: str = "-o") -> Path:
    """A folder that exists or can be made (not a file)."""
    p = as_path(path, what)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what}: {p} is a file, expected a folder")
    _check_creatable(p, what, p)
    return p


def check_models_dir(path, what: str = "--models-dir") -> Path | None:
    """None, or a model-store folder that exists or can be made."""
    if path is None:
        return None
    return check_output_dir(path, what)


def check_model_name(name, what: str = "--name") -> str:
    """A name for the model store: letters, digits, '.', '_', '-' (no folders, no '..')."""
    from .models.store import _check_name

    if not isinstance(name, str):
        raise InputError(f"{what}: expected a model name (text), got {type(name).__name__}")
    try:
        return _check_name(name)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def check_steps(steps, what: str = "steps") -> int:
    """A whole number of iterations, 1 or more."""
    return int(check_number(steps, what, 1, whole=True))


def check_image_inputs(paths, what: str) -> None:
    """Every file exists, is a regular file and fits the image size limit (headers only, nothing decoded)."""
    from .imageio import check_image_file

    for p in [paths] if isinstance(paths, (str, bytes, os.PathLike)) else (paths or ()):
        if p is not None:
            check_image_file(p, what)


def upright_size(header) -> tuple[int, int]:
    """(width, height) of an image as it is read (EXIF orientations 5-8 turn it a quarter)."""
    w, h = header.width, header.height
    return (h, w) if getattr(header, "orientation", 1) in (5, 6, 7, 8) else (w, h)


def check_image_sizes(image, header, *, mask=None, mask_header=None, method=None, styles=(), what="content"):
    """What the headers already say, before any work: the mask has the image's size, and the image (and each
    style) is as large as the method needs (`Method.min_side`). Headers may be None (a format not read, or a file
    an earlier step of a job makes): that check is then left to the engine."""
    name = Path(image).name
    if header is not None and mask_header is not None and upright_size(mask_header) != upright_size(header):
        mw, mh = upright_size(mask_header)
        iw, ih = upright_size(header)
        raise InputError(f"mask: {Path(mask).name} is {mw}x{mh} but the input {name} is {iw}x{ih}; a mask must have "
                         "its image's size")
    need = getattr(method, "min_side", 0)
    if not need:
        return
    for label, path, head in [(what, image, header), *(("style", p, h) for p, h in styles)]:
        if head is not None and min(upright_size(head)) < need:
            w, h = upright_size(head)
            raise InputError(f"{label}: {Path(path).name} is {w}x{h} pixels, too small for {method.name}, which needs "
                             f"at least {need} pixels on each side; give a larger image or another method")


def _name_key(name: str) -> str:
    """Two names that are one file in a folder (macOS and Windows fold case)."""
    import sys

    return name.casefold() if sys.platform in ("darwin", "win32") else name


def check_distinct_names(folder, names, named_after, what: str = "-o") -> None:
    """Outputs named after their inputs go into one folder: two inputs with one file name (d1/f.png, d2/f.png,
    or one input given twice) would write one file, the second replacing the first, so they are refused."""
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        first = seen.setdefault(_name_key(name), k)
        if first != k:
            raise InputError(f"{what}: {named_after[first]} and {named_after[k]} would both be written as "
                             f"{Path(folder) / name}; rename one, or run them into separate output folders")


def _check_outputs_in_folder(folder, names, inputs, overwrite: bool, what: str = "-o", named_after=None) -> None:
    """Files `names` in `folder`: the folder can be made, no two names are one file (`named_after`: the input each
    name follows, for the message), and none is an input unless `overwrite`."""
    out = check_output_dir(folder, what)
    check_distinct_names(folder, names, named_after or names, what)
    if overwrite:
        return
    for name in names:
        target = out / name
        for src in inputs:
            if src is not None and _same_file(target, as_path(src)):
                raise InputError(f"{what}: writing {target} would replace the input {src}; write into another "
                                 "folder, or add --overwrite")


def check_args(args, inputs=None) -> None:
    """Everything a CLI sub-command was given, checked before any work: input files (headers), output paths
    (extension, folder, not an input unless --overwrite), steps, sizes, model names and the model folder.
    `inputs`: the expanded content files (stylize, train-style)."""
    cmd = args.command
    overwrite = bool(getattr(args, "overwrite", False))
    steps = getattr(args, "steps", None)
    if steps is not None:
        check_steps(steps, "--steps")
    if getattr(args, "seed", None) is not None:
        from .methods import SEED_MAX

        check_number(args.seed, "--seed", 0, SEED_MAX, whole=True)
    check_models_dir(getattr(args, "models_dir", None))
    for w in getattr(args, "style_weight", None) or ():
        check_number(w, "--style-weight", 0.0)
    if getattr(args, "strength", None) is not None:
        check_number(args.strength, "--strength", 0.0)
    if cmd == "stylize":
        styles = list(args.style or ())
        check_image_inputs(styles, "style")
        check_image_inputs(args.mask, "mask")
        check_image_inputs(inputs, "content")
        for key in ("encoder", "decoder"):
            value = getattr(args, key, None)
            if value and str(value).lower() not in ("auto", "vgg19", "builtin"):
                check_input_file(value, f"--{key}")
        _check_sizes("stylize", args.method, inputs, args.mask, styles, "content")
        sources = [*inputs, *styles, args.mask]
        out = as_path(args.output, "-o")
        if len(inputs) == 1 and not out.is_dir():
            check_output_image(out, sources, overwrite)
        else:
            _check_outputs_in_folder(out, [p.name for p in inputs], sources, overwrite,
                                     named_after=[str(p) for p in inputs])
    elif cmd == "train-style":
        check_model_name(args.name)
        check_image_inputs(args.style, "style")
        check_image_inputs(inputs, "training image")
        check_number(args.size, "--size", 32, 4096, whole=True, hint="pixels of training crop; 256 is usual")
        check_number(args.batch_size, "--batch-size", 1, whole=True, hint="images per step")
    elif cmd == "texture":
        check_image_inputs(args.exemplar, "exemplar")
        check_output_image(args.output, [args.exemplar], overwrite)
        if args.pbr:
            _check_outputs_in_folder(args.pbr, [f"{k}.png" for k in _PBR_MAPS], [args.exemplar, args.output],
                                     overwrite, "--pbr")
    elif cmd in ("seamless", "detect"):
        check_image_inputs(args.image, "image")
        check_image_inputs(getattr(args, "reference", None), "reference")
        check_work_memory_of_file("make_seamless" if cmd == "seamless" else "detect_damage", args.image, "image")
        check_output_image(args.output, [args.image, getattr(args, "reference", None)], overwrite)
    elif cmd == "pbr":
        check_image_inputs(args.image, "image")
        check_work_memory_of_file("pbr_maps", args.image, "image")
        _check_outputs_in_folder(args.output, [f"{k}.png" for k in _PBR_MAPS], [args.image], overwrite)
    elif cmd == "inpaint":
        if args.mask and args.reference:
            raise InputError("--reference: only used with --detect (it finds the damage by comparing); with --mask "
                             "the mask says what to fill: give one of them")
        check_image_inputs(args.image, "image")
        check_image_inputs(args.mask, "mask")
        check_image_inputs(args.reference, "reference")
        _check_sizes("inpaint", args.method, [args.image], args.mask, (), "image")
        if args.detect:
            check_work_memory_of_file("detect_damage", args.image, "image")
        check_work_memory_of_file("inpaint", args.image, "image", args.method)
        check_output_image(args.output, [args.image, args.mask, args.reference], overwrite)


def check_work_memory_of_file(task: str, path, what: str, method: str | None = None) -> None:
    """core.check_work_memory from the file's header (nothing decoded); formats without a read header pass."""
    from .core import check_work_memory
    from .imageio import read_header

    header = read_header(path) if path else None
    if header is not None:
        check_work_memory(task, (header.height, header.width, header.channels), what, method)


def _check_sizes(feature: str, method: str, inputs, mask, styles, what: str) -> None:
    """check_image_sizes for every input of a command (the files exist and their headers were checked)."""
    from .imageio import read_header
    from .methods import get

    record = get(feature, method)
    mask_header = read_header(mask) if mask else None
    style_headers = [(s, read_header(s)) for s in styles] if record.min_side else []
    for p in inputs:
        check_image_sizes(p, read_header(p), mask=mask, mask_header=mask_header, method=record, styles=style_headers,
                          what=what)


_PBR_MAPS = ("height", "normal", "roughness", "ao")
