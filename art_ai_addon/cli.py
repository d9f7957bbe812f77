"""One CLI for `python -m art_ai_addon` and `blender -b --command art_ai`.

Errors are one line on stderr: exit 2 for usage mistakes, 1 for a failed run; progress goes to stderr,
output paths to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import methods
from .errors import ArtAIError, Cancelled, InputError
from .args import parse_chunk, parse_frames, parse_layer, parse_size, unit_float
from .progress import StderrProgress, chunk_slice

PROG = "python -m art_ai_addon"


# ---------------------------------------------------------------------------------------------
# Helpers shared by the sub-commands


def expand_inputs(paths: list[str], what: str = "input") -> list[Path]:
    from .imageio import as_path, list_images

    out: list[Path] = []
    for raw in paths:
        p = as_path(raw, what)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise InputError(f"{what}: folder {p} holds no images")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{what}: {p} does not exist")
    return out


def output_for(inputs: list[Path], out: str, index: int, suffix: str | None = None) -> Path:
    """With one input, OUT is the file; with several, OUT is a folder and names follow the inputs."""
    o = Path(out)
    if len(inputs) == 1 and not o.is_dir():
        return o
    name = inputs[index].name if suffix is None else inputs[index].stem + suffix
    return o / name


def read_input(path, what, data=False):
    """An input image file; errors name the input (`what`)."""
    from .imageio import read_image

    return read_image(path, data=data, what=what)


def _write(path, img, data=False):
    from .imageio import write_image

    p = write_image(path, img, data=data)
    print(str(p), flush=True)
    return p


# ---------------------------------------------------------------------------------------------
# Sub-commands


def cmd_stylize(args, progress) -> int:
    from .stylize import stylize

    inputs = expand_inputs(args.content, "content")
    from .imageio import as_path

    if len(inputs) > 1 and as_path(args.output, "-o").exists() and not Path(args.output).is_dir():
        raise InputError(f"-o: with several inputs the output must be a folder, and {args.output} is a file")
    from .validate import check_args

    check_args(args, inputs)
    everything = inputs  # output names follow the whole list, so a one-frame chunk still writes into the folder
    first = (len(inputs) * (args.chunk[0] - 1) // args.chunk[1]) if args.chunk else 0
    inputs = chunk_slice(inputs, args.chunk)
    styles = [read_input(s, "style") for s in args.style]
    style = styles[0] if len(styles) == 1 else styles
    mask = read_input(args.mask, "mask") if args.mask else None
    options = method_options(args, "stylize")
    if args.temporal:
        options["temporal"] = True
        from .stylize import stylize_sequence  # noqa: F401  (raises NotAvailable until it exists)
    failed = 0
    previous = None
    if args.temporal and first > 0 and inputs:  # a later chunk: carry on from the frame before it (not written)
        from .stylize.temporal import stylize_sequence, warm_start

        previous = warm_start(everything[first - 1], lambda content: stylize_sequence(
            content, style, None, method=args.method, strength=args.strength, preserve_color=args.preserve_color,
            mask=mask, device=args.device, **options)[1], say=lambda msg: print(f"art_ai: {msg}", file=sys.stderr))
    for k, path in enumerate(inputs):
        prog = progress.item(f"[{k + 1}/{len(inputs)}] " if len(inputs) > 1 else "")
        try:
            content = read_input(path, "content")
            info: dict = {}
            if args.temporal:
                from .stylize import stylize_sequence

                result, previous = stylize_sequence(content, style, previous, method=args.method,
                                                    strength=args.strength, preserve_color=args.preserve_color,
                                                    mask=mask, device=args.device, progress=prog, info=info,
                                                    **options)
            else:
                result = stylize(content, style, method=args.method, strength=args.strength,
                                 preserve_color=args.preserve_color, mask=mask, device=args.device,
                                 progress=prog, info=info, **options)
            if info.get("note"):
                print(f"art_ai: {info['note']}", file=sys.stderr)
            _write(output_for(everything, args.output, first + k), result)
        except ArtAIError as exc:
            if len(everything) == 1:
                raise
            failed += 1
            print(f"art_ai: error: {path}: {exc}", file=sys.stderr)
    return 1 if failed else 0


def cmd_train_style(args, progress) -> int:
    from .stylize import train_fast_style

    images = expand_inputs(args.images, "training image")
    from .validate import check_args

    check_args(args, images)
    path = train_fast_style(args.style, [str(p) for p in images], steps=args.steps, name=args.name,
                            models_dir=args.models_dir, progress=progress, device=args.device, size=args.size,
                            batch_size=args.batch_size, seed=args.seed, init_model=args.init_model)
    print(str(path), flush=True)
    return 0


def cmd_texture(args, progress) -> int:
    from .texture import pbr_maps, synthesize_texture
    from .validate import check_args

    check_args(args)
    exemplar = read_input(args.exemplar, "exemplar")
    options = method_options(args, "texture")
    size = args.size or (exemplar.shape[0] * 2, exemplar.shape[1] * 2)
    info: dict = {}
    result = synthesize_texture(exemplar, size=size, method=args.method, tileable=not args.no_tileable,
                                seed=args.seed, device=args.device, progress=progress, info=info, **options)
    if info.get("note"):
        print(f"art_ai: {info['note']}", file=sys.stderr)
    _write(args.output, result)
    if args.pbr:
        _write_pbr(pbr_maps(result, tileable=not args.no_tileable), Path(args.pbr))
    return 0


def _write_pbr(maps: dict, folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--pbr/-o: {folder} is a file, expected a folder")
    for key in ("height", "normal", "roughness", "ao"):
        if key in maps:
            _write(folder / f"{key}.png", maps[key], data=True)


def cmd_seamless(args, progress) -> int:
    from .texture import make_seamless
    from .validate import check_args

    check_args(args)
    info: dict = {}
    _write(args.output, make_seamless(read_input(args.image, "image"), progress=progress, info=info))
    if info.get("note"):
        print(f"art_ai: {info['note']}", file=sys.stderr)
    return 0


def cmd_pbr(args, progress) -> int:
    from .texture import pbr_maps
    from .validate import check_args

    check_args(args)
    maps = pbr_maps(read_input(args.image, "image"), strength=args.strength, directx=args.directx, progress=progress)
    _write_pbr(maps, Path(args.output))
    return 0


def cmd_detect(args, progress) -> int:
    from .repair import detect_damage
    from .validate import check_args

    check_args(args)
    image = read_input(args.image, "image")
    reference = read_input(args.reference, "reference") if args.reference else None
    mask = detect_damage(image, reference=reference, sensitivity=args.sensitivity, progress=progress)
    _write(args.output, mask, data=True)
    return 0


def cmd_inpaint(args, progress) -> int:
    from .repair import detect_damage, inpaint
    from .validate import check_args

    check_args(args)
    image = read_input(args.image, "image")
    if args.mask:
        mask = read_input(args.mask, "mask", data=True)
    else:
        reference = read_input(args.reference, "reference") if args.reference else None
        mask = detect_damage(image, reference=reference, sensitivity=args.sensitivity, progress=progress)
    options = method_options(args, "inpaint")
    info: dict = {}
    result = inpaint(image, mask, method=args.method, device=args.device, progress=progress, info=info, **options)
    if info.get("note"):
        print(f"art_ai: {info['note']}", file=sys.stderr)
    _write(args.output, result)
    return 0


def cmd_render(args, progress) -> int:
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise ArtAIError("`render` needs Blender's Python module: `pip install bpy==5.0.1`, or run it as "
                         "`blender -b --command art_ai render ...`") from None
    from .blender.render import RenderSettings, render_frames

    settings = RenderSettings(style=args.style or [], method=args.method, strength=args.strength,
                              preserve_color=args.preserve_color, model=args.model, steps=args.steps,
                              seed=args.seed, temporal=args.temporal, device=args.device, layers=args.layer or [],
                              keep_edges=args.keep_edges, depth_scale=args.depth_scale,
                              keyframes=dict(args.keyframe or []), upscale=args.upscale,
                              upscale_method=args.upscale_method)
    if settings.layered and not (settings.layers or settings.style):
        raise InputError("--keep-edges and --depth-scale shape a stylization: give --style or --layer")
    if len(settings.style) > 1 and settings.layered:
        raise InputError("with --layer, --keep-edges or --depth-scale, --style takes one image (the layer for "
                         "everything else)")
    from .validate import check_image_inputs, check_output_dir, check_steps

    check_image_inputs([la["style"] for la in settings.layers], "--layer style")
    check_image_inputs(settings.style, "--style")
    check_image_inputs(list(settings.keyframes.values()), "--keyframe")
    check_output_dir(args.output, "-o")  # a folder it cannot write is refused before the first frame renders
    if args.steps is not None:
        check_steps(args.steps, "--steps")
    render_frames(args.scene, args.output, args.frames, settings, force=args.force, progress=progress,
                  chunk=args.chunk, written=lambda path: print(str(path), flush=True))
    return 0


def cmd_propagate(args, progress) -> int:
    from .stylize.keyframes import propagate_files

    frames = expand_inputs(args.frames, "frames")
    keyframes = dict(args.keyframe)
    options = {"seed": args.seed} if args.seed is not None else {}
    info: dict = {}
    propagate_files(frames, keyframes, args.output, passes_dir=args.passes, method=args.method, force=args.force,
                    progress=progress, written=lambda p: print(str(p), flush=True), info=info, **options)
    if info.get("method"):
        print(f"art_ai: propagated by {info['method']}", file=sys.stderr)
    return 0


def cmd_upscale(args, progress) -> int:
    from .upscale.files import upscale_files

    upscale_files(expand_inputs(args.image, "image"), args.output, args.scale, method=args.method,
                  tileable=args.tileable, pbr=args.pbr, device=args.device, force=args.force, chunk=args.chunk,
                  overwrite=args.overwrite, progress=progress,
                  written=lambda p: print(str(p), flush=True), say=lambda m: print(f"art_ai: {m}", file=sys.stderr),
                  **method_options(args, "upscale"))
    return 0


def cmd_batch(args, progress) -> int:
    from .batch import run_batch

    return run_batch(args, progress)


def cmd_worker(args, progress) -> int:
    from .worker import main as worker_main

    return worker_main()


# ---------------------------------------------------------------------------------------------
# Parser


_TYPES = {"int": int, "float": float, "unit": unit_float, "floats": float}


def add_method_args(p, feature: str) -> None:
    """--method and the feature's options, from the method table (art_ai_addon/methods.py)."""
    p.add_argument("--method", default="auto", choices=methods.names(feature),
                   help="; ".join(f"{m.name}: {m.description}" for m in methods.of(feature)))
    for opt in methods.cli_options(feature):
        kw: dict = {"dest": opt.name, "help": opt.help or None}
        if opt.kind == "bool":
            kw["action"] = "store_true"
            kw["default"] = None
        elif opt.kind == "floats":
            kw.update(action="append", type=float)
        else:
            kw["type"] = _TYPES.get(opt.kind, str)
        p.add_argument(opt.flag, **kw)


def method_options(args, feature: str) -> dict:
    """The method options the user gave (None = not given: the method's default)."""
    return {o.name: getattr(args, o.name) for o in methods.cli_options(feature) if getattr(args, o.name, None)
            is not None}


def _device(p):
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")


def _add_stylize(sub) -> None:
    p = sub.add_parser("stylize", help="give images the look of a style image",
                       description="Stylize one image, several, or a folder of frames (in name order).")
    p.add_argument("content", nargs="+", help="image file(s) or a folder")
    p.add_argument("--style", action="append", required=True, help="style image (repeat for several styles)")
    p.add_argument("-o", "--output", required=True, help="output file, or a folder for several inputs")
    add_method_args(p, "stylize")
    p.add_argument("--strength", type=unit_float, default=1.0, help="0 = unchanged, 1 = full effect")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--mask", help="stylize only where this image is white")
    p.add_argument("--temporal", action="store_true", help="reduce flicker across frames (optical flow)")
    p.add_argument("--chunk", type=parse_chunk, help="I/N: only the I-th of N slices of the inputs")
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an input file")
    _device(p)
    p.set_defaults(func=cmd_stylize)


def _add_train_style(sub) -> None:
    p = sub.add_parser("train-style", help="train a fast-style model for a style on your own images",
                       description="Train a fast_neural_style TransformerNet and save it in the model store.")
    p.add_argument("images", nargs="+", help="training images (renders, photos) or a folder")
    p.add_argument("--style", required=True, help="style image")
    p.add_argument("--name", required=True, help="model name in the store (use it with stylize --model NAME)")
    p.add_argument("--steps", type=int, default=2000, help="training steps (thousands for good quality)")
    p.add_argument("--size", type=int, default=256, help="training crop size in pixels")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init-model", help="continue from this checkpoint (path or store name)")
    p.add_argument("--models-dir", help="model store folder")
    _device(p)
    p.set_defaults(func=cmd_train_style)


def _add_texture(sub) -> None:
    p = sub.add_parser("texture", help="synthesize a larger, tileable texture from an exemplar",
                       description="Synthesize a texture of any size from one exemplar photo.")
    p.add_argument("exemplar")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--size", type=parse_size, help="WxH (default: twice the exemplar)")
    add_method_args(p, "texture")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-tileable", action="store_true", help="do not make the result wrap around")
    p.add_argument("--pbr", metavar="DIR", help="also write height/normal/roughness/ao maps into DIR")
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an input file")
    _device(p)
    p.set_defaults(func=cmd_texture)


def _add_seamless(sub) -> None:
    p = sub.add_parser("seamless", help="make an image tile without seams, same size",
                       description="Make an image tileable, keeping its look and size.")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an input file")
    p.set_defaults(func=cmd_seamless)


def _add_pbr(sub) -> None:
    p = sub.add_parser("pbr", help="derive height, normal, roughness and AO maps",
                       description="Write height.png normal.png roughness.png ao.png into DIR.")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--strength", type=float, default=1.0, help="normal map strength")
    p.add_argument("--directx", action="store_true", help="DirectX normal convention (-Y) instead of OpenGL")
    p.add_argument("--overwrite", action="store_true", help="allow the maps to replace an input file")
    p.set_defaults(func=cmd_pbr)


def _add_detect(sub) -> None:
    p = sub.add_parser("detect", help="find scratches, cracks, spots and holes",
                       description="Write a damage mask (white = damaged).")
    p.add_argument("image")
    p.add_argument("--reference", help="another version of the same picture to compare against")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sensitivity", type=unit_float, default=0.5, help="0..1, higher finds more")
    p.set_defaults(func=cmd_detect)


def _add_inpaint(sub) -> None:
    p = sub.add_parser("inpaint", help="fill masked or detected damage",
                       description="Inpaint the white parts of a mask, or detected damage.")
    p.add_argument("image")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="mask image (white = fill)")
    g.add_argument("--detect", action="store_true", help="detect damage first")
    p.add_argument("--reference", help="with --detect: compare against this version")
    p.add_argument("--sensitivity", type=unit_float, default=0.5)
    p.add_argument("-o", "--output", required=True)
    add_method_args(p, "inpaint")
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an input file")
    _device(p)
    p.set_defaults(func=cmd_inpaint)


def _add_models(sub) -> None:
    from .models.cli import add_parser as add_models_parser

    add_models_parser(sub)


def _add_render(sub) -> None:
    p = sub.add_parser("render", help="render a .blend's frames and stylize them (needs bpy)",
                       description="Render frames with the scene's settings into DIR/raw and DIR/stylized.")
    p.add_argument("scene", metavar="SCENE.blend")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--frames", type=parse_frames, help="A-B (default: the scene's range)")
    p.add_argument("--chunk", type=parse_chunk, help="I/N: the I-th of N equal slices of the frame range")
    p.add_argument("--style", action="append", help="style image; without it only raw frames are written")
    p.add_argument("--method", default="auto", choices=methods.names("stylize"))
    p.add_argument("--strength", type=unit_float, default=1.0)
    p.add_argument("--preserve-color", action="store_true")
    p.add_argument("--model")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--temporal", action="store_true")
    p.add_argument("--layer", action="append", type=parse_layer, metavar="TARGET=STYLE[:METHOD[:STRENGTH]]",
                   help="a style for one object, collection:NAME, material:NAME or * (everything else); repeat "
                        "for several")
    p.add_argument("--keep-edges", type=unit_float, default=0.0, metavar="S",
                   help="0..1: keep the render's silhouettes and creases sharp and in place")
    p.add_argument("--depth-scale", action="store_true", help="smaller strokes on far surfaces (arbitrary, gatys)")
    p.add_argument("--keyframe", action="append", type=_keyframe_arg, metavar="N=PAINTED",
                   help="frame N painted by the artist: carried to every frame by the render's UV, object and Vector "
                        "passes (repeat for several keyframes)")
    p.add_argument("--upscale", type=float, default=1.0, metavar="S",
                   help="Render Smaller, Upscale: render at 1/S of the output size (1-8), upscale each frame S times")
    p.add_argument("--upscale-method", default="auto", choices=methods.names("upscale"))
    p.add_argument("--force", action="store_true", help="redo frames that already exist")
    _device(p)
    p.set_defaults(func=cmd_render)


def _keyframe_arg(text: str):
    from .stylize.keyframes import parse_keyframe

    return parse_keyframe(text)


def _add_propagate(sub) -> None:
    from .stylize.keyframes import parse_keyframe

    p = sub.add_parser("propagate", help="carry painted keyframes over an animation's frames",
                       description="Propagate the look painted on keyframes to every frame, guided by Blender's "
                                   "passes (UV, Cryptomatte object, Vector) when --passes gives them, else by "
                                   "optical flow. Frame numbers come from the file names (0001.png is frame 1).")
    p.add_argument("frames", nargs="+", help="the rendered frames (files or a folder, in name order)")
    p.add_argument("--keyframe", action="append", required=True, type=parse_keyframe, metavar="N=PAINTED",
                   help="frame N painted by the artist (repeat for several keyframes)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the propagated frames")
    p.add_argument("--passes", metavar="DIR", help="folder of the frames' multilayer EXR passes (0001.exr, ...)")
    p.add_argument("--method", default="auto", choices=methods.names("propagate"),
                   help="; ".join(f"{m.name}: {m.description}" for m in methods.of("propagate")))
    p.add_argument("--seed", type=int)
    p.add_argument("--force", action="store_true", help="redo frames that already exist")
    p.set_defaults(func=cmd_propagate)


def _add_upscale(sub) -> None:
    p = sub.add_parser("upscale", help="make images, textures or frames 1-8x larger (Real-ESRGAN or Lanczos)",
                       description="Upscale images, a folder of frames (into a folder, resumable) or a PBR texture "
                                   "set. 16-bit PNG/TIFF stay 16-bit, float EXR stays float with its highlights.")
    p.add_argument("image", nargs="+", help="image file(s) or a folder")
    p.add_argument("-o", "--output", required=True, help="output file, or a folder for several inputs")
    p.add_argument("--scale", type=float, default=4.0, help="1 to 8 (default 4)")
    add_method_args(p, "upscale")
    p.add_argument("--tileable", action="store_true", help="the inputs tile: keep them tiling (wrap-around)")
    p.add_argument("--pbr", action="store_true",
                   help="the inputs are one texture set: colour maps by the method, normal maps renormalised, "
                        "height/roughness/AO/metallic as data (by file name)")
    p.add_argument("--chunk", type=parse_chunk, help="I/N: only the I-th of N slices of the inputs")
    p.add_argument("--force", action="store_true", help="redo images whose outputs exist")
    p.add_argument("--overwrite", action="store_true", help="allow -o to replace an input file")
    _device(p)
    p.set_defaults(func=cmd_upscale)


def _add_batch(sub) -> None:
    p = sub.add_parser("batch", help="run a TOML job file", description="Run the steps of a JOB.toml file.")
    p.add_argument("job", metavar="JOB.toml")
    p.add_argument("--force", action="store_true", help="redo items whose outputs exist")
    p.add_argument("--chunk", type=parse_chunk)
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS", help="run items as Ray tasks")
    p.set_defaults(func=cmd_batch)


def _add_worker(sub) -> None:
    p = sub.add_parser("worker", help="the engine worker for Blender (JSON lines on stdin/stdout)",
                       description="Run engine jobs sent as JSON lines on stdin; replies go to stdout "
                                   "(see art_ai_addon/worker.py). Blender's job runner starts it.")
    p.set_defaults(func=cmd_worker)


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Art AI: stylize renders, generate tileable textures and PBR maps, repair damage.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    parser.add_argument("--max-pixels", type=int, metavar="N",
                        help="refuse images that would decode to more than N pixels (default: from the memory "
                             "available, 268 million at most)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_stylize, _add_train_style, _add_texture, _add_seamless,
                _add_pbr, _add_detect, _add_inpaint, _add_models,
                _add_upscale, _add_render, _add_propagate, _add_batch, _add_worker):
        add(sub)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2); never leave Blender
        return int(exc.code or 0)
    progress = StderrProgress(args.quiet)
    if args.max_pixels is not None:
        from .imageio import set_max_pixels

        if args.max_pixels < 1:
            print("art_ai: error: --max-pixels: give a number of pixels, 1 or more", file=sys.stderr)
            return 2
        set_max_pixels(args.max_pixels)
    debug = args.debug or os.environ.get("ART_AI_DEBUG")
    from .progress import pipe_safe_stdout

    try:
        with pipe_safe_stdout():  # `| head -1` must not stop the work
            return int(args.func(args, progress) or 0)
    except Cancelled:
        print("art_ai: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("art_ai: interrupted", file=sys.stderr)
        return 130
    except ArtAIError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"art_ai: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # an internal error: still one line unless --debug
        if debug:
            raise
        print(f"art_ai: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1
