"""Stylize benchmarks.

(a) The fast network (Johnson TransformerNet) at 512x512 and 1920x1080 on this CPU: ours
    (inference_mode, fused upsample+conv phases, budgeted tiles) against a plain eager forward of the same
    architecture written as pytorch/examples' fast_neural_style does (nn.InstanceNorm2d, ReflectionPad2d,
    Upsample, torch.no_grad), with the same weights, in the same run.
(b) gatys seconds per optimisation step at 256 and 512 px, built-in encoder and VGG19 (VGG19 timed with
    random weights in torchvision's layout: the speed does not depend on the values).
(c) frames per second of `render --style` (section kept for the render helper).

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip", default="", help="comma list of sections to skip: a,b,c")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
