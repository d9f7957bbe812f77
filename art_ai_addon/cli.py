"""One CLI for `python -m art_ai_addon` and `blender -b --command art_ai`.

Errors are one line on stderr: exit 2 for usage mistakes, 1 for a failed run; progress goes to stderr,
output paths to stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .errors import ArtAIError, Cancelled, InputError

PROG = "python -m art_ai_addon"


# ---------------------------------------------------------------------------------------------
# Helpers shared by the sub-commands


class StderrProgress:
    """Prints 'art_ai: 42% message' lines, at most every few percent, so logs stay readable on farms."""

    def __init__(self, quiet: bool = False, prefix: str = ""):
        self.quiet = quiet
        self.prefix = prefix
        self._last = (-1, "")
        self._t = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.quiet:
            return
        pct = int(round(100 * fraction))
        now = time.monotonic()
        if message == self._last[1] and pct - self._last[0] < 5 and pct != 100 and now - self._t < 5:
            return
        self._last = (pct, message)
        self._t = now
        print(f"art_ai: {self.prefix}{pct:3d}% {message}", file=sys.stderr, flush=True)

    def item(self, prefix: str) -> StderrProgress:
        return StderrProgress(self.quiet, prefix)


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' or 'N' to (h, w)."""
    try:
        if "x" in text.lower():
            w, h = (int(v) for v in text.lower().split("x", 1))
        else:
            w = h = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH (e.g. 1024x1024), got {text!r}") from None
    if w < 8 or h < 8 or w > 16384 or h > 16384:
        raise argparse.ArgumentTypeError(f"size {text!r} out of range (8 to 16384 pixels per side)")
    return h, w


def parse_chunk(text: str) -> tuple[int, int]:
    """'I/N' (1-based) to (i, n)."""
    try:
        i, n = (int(v) for v in text.split("/", 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (e.g. 2/4), got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"chunk {text!r}: need 1 <= I <= N")
    return i, n


def parse_frames(text: str) -> tuple[int, int]:
    try:
        if "-" in text:
            a, b = (int(v) for v in text.split("-", 1))
        else:
            a = b = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B (e.g. 1-250), got {text!r}") from None
    if b < a:
        raise argparse.ArgumentTypeError(f"frames {text!r}: the end comes before the start")
    return a, b


def unit_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is outside 0..1")
    return v


def chunk_slice(items: list, chunk) -> list:
    """The I-th of N contiguous, nearly equal slices of items (1-based I)."""
    if not chunk:
        return list(items)
    i, n = chunk
    k = len(items)
    return list(items[(i - 1) * k // n: i * k // n])


def expand_inputs(paths: list[str], what: str = "input") -> list[Path]:
    from .imageio import list_images

    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
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
    if len(inputs) > 1 and Path(args.output).exists() and not Path(args.output).is_dir():
        raise InputError(f"-o: with several inputs the output must be a folder, and {args.output} is a file")
    everything = inputs  # output names follow the whole list, so a one-frame chunk still writes into the folder
    first = (len(inputs) * (args.chunk[0] - 1) // args.chunk[1]) if args.chunk else 0
    inputs = chunk_slice(inputs, args.chunk)
    styles = [read_input(s, "style") for s in args.style]
    style = styles[0] if len(styles) == 1 else styles
    mask = read_input(args.mask, "mask") if args.mask else None
    options = {}
    for key in ("steps", "seed", "model", "models_dir", "encoder", "decoder"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    if args.style_weight:
        options["style_weights"] = args.style_weight
    if args.temporal:
        options["temporal"] = True
        from .stylize import stylize_sequence  # noqa: F401  (raises NotAvailable until it exists)
    failed = 0
    previous = None
    if args.temporal and first > 0 and inputs:  # a later chunk: carry on from the frame before it (not written)
        from .stylize import stylize_sequence

        print(f"art_ai: re-stylizing {everything[first - 1].name} so the sequence stays coherent across the "
              "chunk boundary", file=sys.stderr)
        _, previous = stylize_sequence(read_input(everything[first - 1], "content"), style, None, method=args.method,
                                       strength=args.strength, preserve_color=args.preserve_color, mask=mask,
                                       device=args.device, **options)
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
    path = train_fast_style(args.style, [str(p) for p in images], steps=args.steps, name=args.name,
                            models_dir=args.models_dir, progress=progress, device=args.device, size=args.size,
                            batch_size=args.batch_size, seed=args.seed, init_model=args.init_model)
    print(str(path), flush=True)
    return 0


def cmd_texture(args, progress) -> int:
    from .texture import pbr_maps, synthesize_texture

    exemplar = read_input(args.exemplar, "exemplar")
    options = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.models_dir:
        options["models_dir"] = args.models_dir
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

    _write(args.output, make_seamless(read_input(args.image, "image"), progress=progress))
    return 0


def cmd_pbr(args, progress) -> int:
    from .texture import pbr_maps

    maps = pbr_maps(read_input(args.image, "image"), strength=args.strength, directx=args.directx, progress=progress)
    _write_pbr(maps, Path(args.output))
    return 0


def cmd_detect(args, progress) -> int:
    from .repair import detect_damage

    image = read_input(args.image, "image")
    reference = read_input(args.reference, "reference") if args.reference else None
    mask = detect_damage(image, reference=reference, sensitivity=args.sensitivity, progress=progress)
    _write(args.output, mask, data=True)
    return 0


def cmd_inpaint(args, progress) -> int:
    from .repair import detect_damage, inpaint

    image = read_input(args.image, "image")
    if args.mask:
        mask = read_input(args.mask, "mask", data=True)
    else:
        reference = read_input(args.reference, "reference") if args.reference else None
        mask = detect_damage(image, reference=reference, sensitivity=args.sensitivity, progress=progress)
    options = {}
    for key in ("steps", "seed", "models_dir"):
        value = getattr(args, key, None)
        if value is not None:
            options[key] = value
    result = inpaint(image, mask, method=args.method, device=args.device, progress=progress, **options)
    _write(args.output, result)
    return 0


def cmd_render(args, progress) -> int:
    try:
        import bpy  # noqa: F401
    except ImportError:
        raise ArtAIError("`render` needs Blender's Python module: `pip install bpy==5.0.1`, or run it as "
                         "`blender -b --command art_ai render ...`") from None
    from .blender.render import render_command

    return render_command(args, progress)


def cmd_batch(args, progress) -> int:
    try:
        from .batch import run_batch
    except ImportError:
        from .errors import NotAvailableError

        raise NotAvailableError("`batch` is not available yet in this version") from None
    return run_batch(args, progress)


# ---------------------------------------------------------------------------------------------
# Parser


def _device(p):
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, mps or cpu")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Art AI: stylize renders, generate tileable textures and PBR maps, repair damage.")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("stylize", help="give images the look of a style image",
                       description="Stylize one image, several, or a folder of frames (in name order).")
    p.add_argument("content", nargs="+", help="image file(s) or a folder")
    p.add_argument("--style", action="append", required=True, help="style image (repeat for several styles)")
    p.add_argument("--style-weight", action="append", type=float, help="weight per --style (adain)")
    p.add_argument("-o", "--output", required=True, help="output file, or a folder for several inputs")
    p.add_argument("--method", default="auto", choices=["auto", "gatys", "fast", "adain", "color"])
    p.add_argument("--strength", type=unit_float, default=1.0, help="0 = unchanged, 1 = full effect")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours")
    p.add_argument("--mask", help="stylize only where this image is white")
    p.add_argument("--model", help="fast-style checkpoint: a path or a name in the model store")
    p.add_argument("--encoder", help="AdaIN vgg_normalised.pth")
    p.add_argument("--decoder", help="AdaIN decoder.pth")
    p.add_argument("--models-dir", help="model store folder")
    p.add_argument("--steps", type=int, help="optimisation steps (gatys)")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--temporal", action="store_true", help="reduce flicker across frames (optical flow)")
    p.add_argument("--chunk", type=parse_chunk, help="I/N: only the I-th of N slices of the inputs")
    _device(p)
    p.set_defaults(func=cmd_stylize)

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

    p = sub.add_parser("texture", help="synthesize a larger, tileable texture from an exemplar",
                       description="Synthesize a texture of any size from one exemplar photo.")
    p.add_argument("exemplar")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--size", type=parse_size, help="WxH (default: twice the exemplar)")
    p.add_argument("--method", default="auto", choices=["auto", "patch", "neural", "gan"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="optimisation/training steps (neural, gan)")
    p.add_argument("--no-tileable", action="store_true", help="do not make the result wrap around")
    p.add_argument("--pbr", metavar="DIR", help="also write height/normal/roughness/ao maps into DIR")
    p.add_argument("--models-dir", help="model store folder (trained GANs are kept there)")
    _device(p)
    p.set_defaults(func=cmd_texture)

    p = sub.add_parser("seamless", help="make an image tile without seams, same size",
                       description="Make an image tileable, keeping its look and size.")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(func=cmd_seamless)

    p = sub.add_parser("pbr", help="derive height, normal, roughness and AO maps",
                       description="Write height.png normal.png roughness.png ao.png into DIR.")
    p.add_argument("image")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--strength", type=float, default=1.0, help="normal map strength")
    p.add_argument("--directx", action="store_true", help="DirectX normal convention (-Y) instead of OpenGL")
    p.set_defaults(func=cmd_pbr)

    p = sub.add_parser("detect", help="find scratches, cracks, spots and holes",
                       description="Write a damage mask (white = damaged).")
    p.add_argument("image")
    p.add_argument("--reference", help="another version of the same picture to compare against")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--sensitivity", type=unit_float, default=0.5, help="0..1, higher finds more")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("inpaint", help="fill masked or detected damage",
                       description="Inpaint the white parts of a mask, or detected damage.")
    p.add_argument("image")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="mask image (white = fill)")
    g.add_argument("--detect", action="store_true", help="detect damage first")
    p.add_argument("--reference", help="with --detect: compare against this version")
    p.add_argument("--sensitivity", type=unit_float, default=0.5)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--method", default="auto", choices=["auto", "smooth", "telea", "ns", "patch", "dip", "lama"])
    p.add_argument("--steps", type=int, help="iterations (dip)")
    p.add_argument("--seed", type=int)
    p.add_argument("--models-dir", help="model store folder (lama)")
    _device(p)
    p.set_defaults(func=cmd_inpaint)

    from .models.cli import add_parser as add_models_parser

    add_models_parser(sub)

    p = sub.add_parser("render", help="render a .blend's frames and stylize them (needs bpy)",
                       description="Render frames with the scene's settings into DIR/raw and DIR/stylized.")
    p.add_argument("scene", metavar="SCENE.blend")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.add_argument("--frames", type=parse_frames, help="A-B (default: the scene's range)")
    p.add_argument("--chunk", type=parse_chunk, help="I/N: the I-th of N equal slices of the frame range")
    p.add_argument("--style", action="append", help="style image; without it only raw frames are written")
    p.add_argument("--method", default="auto", choices=["auto", "gatys", "fast", "adain", "color"])
    p.add_argument("--strength", type=unit_float, default=1.0)
    p.add_argument("--preserve-color", action="store_true")
    p.add_argument("--model")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--temporal", action="store_true")
    p.add_argument("--force", action="store_true", help="redo frames that already exist")
    _device(p)
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("batch", help="run a TOML job file", description="Run the steps of a JOB.toml file.")
    p.add_argument("job", metavar="JOB.toml")
    p.add_argument("--force", action="store_true", help="redo items whose outputs exist")
    p.add_argument("--chunk", type=parse_chunk)
    p.add_argument("--ray", nargs="?", const="auto", metavar="ADDRESS", help="run items as Ray tasks")
    p.set_defaults(func=cmd_batch)
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2); never leave Blender
        return int(exc.code or 0)
    progress = StderrProgress(args.quiet)
    debug = args.debug or os.environ.get("ART_AI_DEBUG")
    try:
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
