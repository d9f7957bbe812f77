"""Inpainting at production sizes: time, CPU time, peak memory and PSNR on the hole pixels from 512² to 4K.

Ours through the public API (auto, patch, smooth, telea) against OpenCV Telea (cv2.inpaint on the 8-bit RGB
picture, radius 3) and pypatchmatch (the C++ PatchMatch of IOPaint / lama-cleaner, patch size 7, on 8-bit RGB).
Every measurement runs in its own subprocess (this script with --one), which makes the picture and the mask,
then times the call: wall time, CPU time (user + system of the call), and the process's peak resident memory
(VmHWM, picture included: the same pictures are made in every process). Methods are interleaved: for each
repeat, every method of a case runs once before the next repeat starts; the best of the repeats is kept.

The damage is drawn at the same pixel sizes at every resolution, with a density per area, so a larger picture
has more damage (what a scan at a higher resolution has):
- scratches: per 512x512 of picture area, 8 polylines of 2-4 segments, each segment's end up to 170 px away in
  x and y from its start, 1-3 px wide (cv2.polylines, uniform widths); the count is round(8 * H * W / 512²);
- holes: per 512x512 of picture area, 5 ellipses (axis ratio 0.5-1, any angle) of 2,600 px each (a disc of
  ~29 px radius; 0.01 of a 512² picture), kept 4 px apart; the count is round(5 * H * W / 512²).
Each damaged component is set to white or black (as bench/inpaint.py does). Seeded by the case and the size.
Pictures: scikit-image photos (astronaut, coffee) and a texture (brick), resized to the size (INTER_CUBIC up,
INTER_AREA down) — upscaled photos are smoother than real 4K photos, so PSNR is high for every method.
Slope = log(t_4K / t_1080p) / log(px_4K / px_1080p) per (case, method), from the best times, of the wall time
and of the CPU time (on a busy machine the wall time says more about the load than about the method).

    python bench/inpaint_scale.py [--sizes 512 1080p 4K] [--repeat 3] [--repeat-4k 1] [--methods auto,patch,...]
                                  [--cases scratches/astronaut,holes/astronaut,holes/brick]

--thin-grid: the quality of `auto` on scratches (the thin fill: smooth fill plus grain) on many pictures, against
OpenCV Telea (8-bit, radius 3): 9 pictures (six skimage photos, three textures; the centre square, resized) x sizes
(default 512 and 1024 px) x seeds (default 2), scratches as above (the same pixel sizes and density); per case the
PSNR on the hole pixels of auto, of our smooth method and of Telea, and the detail: the gradient energy of auto's
fill over the original's on the hole pixels 2 px and more from the edge (1.0 = as much detail as the original; the
smooth fill scores 0.3-0.6). Prints the median, the worst decile and the worst of auto - Telea in dB:

    python bench/inpaint_scale.py --thin-grid [--grid-sizes 512 1024] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"512": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}
CASES = ("scratches/astronaut", "holes/astronaut", "holes/brick")
OURS = ("auto", "patch", "smooth", "telea")
PEERS = ("opencv-telea", "pypatchmatch")
# methods per kind of damage: PatchMatch methods are for large holes, not 1-px scratches (pypatchmatch's
# fill of a scratch is as good as any, so it stays as the second peer there too)
METHODS = {"scratches": ("auto", "smooth", "telea", "opencv-telea", "pypatchmatch"),
           "holes": ("auto", "patch", "smooth", "telea", "opencv-telea", "pypatchmatch")}
AREA = 512 * 512


def picture(name, h, w):
    import cv2
    import numpy as np
    import skimage.data as sd

    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[:, :, :3]
    interp = cv2.INTER_CUBIC if h * w > img.shape[0] * img.shape[1] else cv2.INTER_AREA
    return np.clip(cv2.resize(img, (w, h), interpolation=interp).astype(np.float32) / 255.0, 0.0, 1.0)


def scratch_mask(h, w, rng):
    import cv2
    import numpy as np

    m = np.zeros((h, w), np.uint8)
    for _ in range(max(1, round(8 * h * w / AREA))):
        pts = [rng.integers(0, [w, h])]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-170, 171, 2), 0, [w - 1, h - 1]))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, int(rng.integers(1, 4)))
    return m.astype(bool)


def hole_mask(h, w, rng, area=2600.0, gap=4):
    import cv2
    import numpy as np

    m = np.zeros((h, w), np.uint8)
    n = max(1, round(5 * h * w / AREA))
    placed = tries = 0
    while placed < n and tries < 50 * n:
        tries += 1
        ratio = rng.uniform(0.5, 1.0)
        a = np.sqrt(area / (np.pi * ratio))
        cy, cx = int(rng.integers(int(a) + 2, h - int(a) - 2)), int(rng.integers(int(a) + 2, w - int(a) - 2))
        box = (slice(max(cy - int(a) - 1 - gap, 0), cy + int(a) + 2 + gap),
               slice(max(cx - int(a) - 1 - gap, 0), cx + int(a) + 2 + gap))
        one = np.zeros((box[0].stop - box[0].start, box[1].stop - box[1].start), np.uint8)
        cv2.ellipse(one, (cx - box[1].start, cy - box[0].start), (int(round(a)), int(round(a * ratio))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
        one = one[:m[box].shape[0], :m[box].shape[1]]
        if (cv2.dilate(m[box], np.ones((2 * gap + 1,) * 2, np.uint8)) & one).any():
            continue
        m[box] |= one
        placed += 1
    return m.astype(bool)


def make_case(case, size):
    """The clean picture, the damaged one and the mask of a case ("scratches/astronaut") at a size ("4K")."""
    import zlib

    import cv2
    import numpy as np

    kind, name = case.split("/")
    h, w = SIZES[size]
    rng = np.random.default_rng(zlib.crc32(f"{case}/{size}".encode()))
    clean = picture(name, h, w)
    mask = (scratch_mask if kind == "scratches" else hole_mask)(h, w, rng)
    bad = clean.copy()
    n, lab = cv2.connectedComponents(mask.astype(np.uint8))
    value = np.where(rng.random(n) < 0.5, 1.0, 0.0).astype(np.float32)
    bad[mask] = value[lab[mask]][:, None]
    return clean, bad, mask


def _peak_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def one(case, size, method, seed=0):
    """Run one method on one case in this process; returns the measurement (a dict)."""
    import resource

    import cv2
    import numpy as np

    cv2.setNumThreads(2)
    clean, bad, mask = make_case(case, size)
    if method == "opencv-telea":
        u8 = (bad * 255.0 + 0.5).astype(np.uint8)

        def fn():
            return cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    elif method == "pypatchmatch":
        from patchmatch import patch_match

        patch_match.set_random_seed(seed)
        u8 = (bad * 255.0 + 0.5).astype(np.uint8)

        def fn():
            return patch_match.inpaint(u8, mask.astype(np.uint8), patch_size=7).astype(np.float32) / 255.0
    else:
        sys.path.insert(0, str(ROOT))
        from art_ai_addon.repair import inpaint

        opts = {"seed": seed} if method in ("auto", "patch") else {}

        def fn():
            return inpaint(bad, mask, method=method, **opts)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    mse = float(np.mean((out[mask] - clean[mask]) ** 2))
    return dict(feature="inpaint", case=case, size=size, method=method, seconds=dt,
                cpu_seconds=(r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), peak_mb=_peak_mb(),
                quality=10 * np.log10(1.0 / max(mse, 1e-12)), hole_pct=100.0 * float(mask.mean()))


def _measure(case, size, method, seed=0, timeout=1800):
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", case, size, method, str(seed)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{case} {size} {method} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(sizes=("512", "1080p", "4K"), repeat=3, *, cases=CASES, methods=None, repeat_4k=None, log=None):
    """Every method on every case and size, interleaved, best of `repeat` (of `repeat_4k` at 4K when given).

    Returns one dict per (case, size, method): feature, case, size, method, seconds, cpu_seconds, peak_mb (the
    largest over the repeats), quality (PSNR in dB on the hole pixels), hole_pct."""
    rows = []
    for size in sizes:
        for case in cases:
            kind = case.split("/")[0]
            meths = [m for m in METHODS[kind] if methods is None or m in methods]
            reps = repeat_4k if (size == "4K" and repeat_4k) else repeat
            got = {m: [] for m in meths}
            for _ in range(reps):
                for m in meths:
                    r = _measure(case, size, m)
                    got[m].append(r)
                    if log:
                        log(f"  {case} {size} {m}: {r['seconds']:.2f} s, {r['peak_mb']:.0f} MB, "
                            f"{r['quality']:.2f} dB")
            for m in meths:
                best = min(got[m], key=lambda r: r["seconds"])
                rows.append(dict(best, peak_mb=max(r["peak_mb"] for r in got[m]), repeats=reps))
    return rows


def slope(rows, case, method, a="1080p", b="4K", key="seconds"):
    import math

    ta = next((r for r in rows if r["case"] == case and r["method"] == method and r["size"] == a), None)
    tb = next((r for r in rows if r["case"] == case and r["method"] == method and r["size"] == b), None)
    if ta is None or tb is None:
        return None
    pa, pb = SIZES[a][0] * SIZES[a][1], SIZES[b][0] * SIZES[b][1]
    return math.log(tb[key] / ta[key]) / math.log(pb / pa)


def table(rows):
    lines = []
    hdr = (f"{'case':20s} {'size':>5s} {'method':13s} {'time s':>8s} {'cpu s':>7s} {'peak MB':>8s} {'PSNR':>6s} "
           f"{'x telea':>8s} {'x pm t':>7s} {'x pm mem':>8s} {'dB vs pm':>8s}")
    lines += [hdr, "-" * len(hdr)]
    for r in rows:
        peer = {p: next((x for x in rows if x["case"] == r["case"] and x["size"] == r["size"] and x["method"] == p),
                        None) for p in PEERS}
        tel, pm = peer["opencv-telea"], peer["pypatchmatch"]
        lines.append(f"{r['case']:20s} {r['size']:>5s} {r['method']:13s} {r['seconds']:8.2f} {r['cpu_seconds']:7.2f} "
                     f"{r['peak_mb']:8.0f} {r['quality']:6.2f} "
                     + (f"{r['seconds'] / tel['seconds']:8.1f} " if tel else f"{'':8s} ")
                     + (f"{r['seconds'] / pm['seconds']:7.2f} {r['peak_mb'] / pm['peak_mb']:8.2f} "
                        f"{r['quality'] - pm['quality']:+8.2f}" if pm else ""))
    lines.append("")
    lines.append("slope 1080p -> 4K (log time ratio / log pixel ratio), of the wall time / of the CPU time:")
    for case in dict.fromkeys(r["case"] for r in rows):
        parts = []
        for m in dict.fromkeys(r["method"] for r in rows if r["case"] == case):
            s = slope(rows, case, m)
            if s is not None:
                parts.append(f"{m} {s:.2f} / {slope(rows, case, m, key='cpu_seconds'):.2f}")
        if parts:
            lines.append(f"  {case:20s} " + ", ".join(parts))
    return "\n".join(lines)


GRID_PICTURES = ("astronaut", "coffee", "chelsea", "camera", "rocket", "immunohistochemistry", "brick", "gravel",
                 "grass")


def _square_picture(name, size):
    import cv2
    import numpy as np
    import skimage.data as sd

    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[:, :, :3]
    h, w = img.shape[:2]
    m = min(h, w)
    img = img[(h - m) // 2:(h - m) // 2 + m, (w - m) // 2:(w - m) // 2 + m]
    interp = cv2.INTER_CUBIC if size > m else cv2.INTER_AREA
    return cv2.resize(img, (size, size), interpolation=interp).astype(np.float32) / 255.0


def thin_grid(sizes=(512, 1024), seeds=2, log=print):
    """auto and smooth against OpenCV Telea on scratches over GRID_PICTURES x sizes x seeds (see --thin-grid)."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from art_ai_addon.repair import inpaint

    cv2.setNumThreads(2)

    def psnr(a, b, m):
        return 10 * np.log10(1.0 / max(float(np.mean((a[m] - b[m]) ** 2)), 1e-12))

    def energy(img, m):
        g = img.mean(axis=2)
        gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
        return float(np.mean((gx * gx + gy * gy)[m]))

    rows = []
    for size in sizes:
        for name in GRID_PICTURES:
            clean = _square_picture(name, size)
            for seed in range(seeds):
                rng = np.random.default_rng(1000 * seed + size)
                mask = scratch_mask(size, size, rng)
                n, lab = cv2.connectedComponents(mask.astype(np.uint8))
                value = np.where(rng.random(n) < 0.5, 1.0, 0.0).astype(np.float32)
                bad = clean.copy()
                bad[mask] = value[lab[mask]][:, None]
                u8 = (bad * 255.0 + 0.5).astype(np.uint8)
                telea = cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
                t0 = time.process_time()
                auto = inpaint(bad, mask, method="auto", seed=seed)
                cpu = time.process_time() - t0
                smooth = inpaint(bad, mask, method="smooth")
                inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
                ref = max(energy(clean, inner), 1e-9)
                r = dict(size=size, picture=name, seed=seed, auto=psnr(auto, clean, mask),
                         smooth=psnr(smooth, clean, mask), telea=psnr(telea, clean, mask),
                         detail=energy(auto, inner) / ref, smooth_detail=energy(smooth, inner) / ref, cpu=cpu)
                rows.append(r)
                log(f"{size:5d} {name:22s} {seed}  auto {r['auto']:6.2f}  smooth {r['smooth']:6.2f}  telea "
                    f"{r['telea']:6.2f}  auto-telea {r['auto'] - r['telea']:+6.2f} dB  detail {r['detail']:.2f} "
                    f"(smooth {r['smooth_detail']:.2f})  {cpu:.2f} s")
    d = np.array([r["auto"] - r["telea"] for r in rows])
    ds = np.array([r["smooth"] - r["telea"] for r in rows])
    det = np.array([r["detail"] for r in rows])
    print(f"\nthin grid, {len(rows)} cases: auto - Telea median {np.median(d):+.2f} dB, worst decile "
          f"{np.percentile(d, 10):+.2f}, worst {d.min():+.2f}; smooth - Telea median {np.median(ds):+.2f}; auto's "
          f"detail median {np.median(det):.2f}, worst decile {np.percentile(det, 10):.2f}; auto's CPU time "
          f"{sum(r['cpu'] for r in rows):.1f} s")
    return rows


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        case, size, method = sys.argv[2:5]
        seed = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        print(json.dumps(one(case, size, method, seed)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-4k", type=int, default=None, help="repeats at 4K (default: --repeat)")
    ap.add_argument("--methods", default="", help="comma-separated methods (ours and peers by name)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--json", default="", help="also write the rows to this file")
    ap.add_argument("--thin-grid", action="store_true", help="auto's quality on scratches against Telea (see above)")
    ap.add_argument("--grid-sizes", nargs="+", type=int, default=[512, 1024])
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    if args.thin_grid:
        rows = thin_grid(args.grid_sizes, args.seeds)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
        return
    rows = run(args.sizes, args.repeat, cases=args.cases.split(","),
               methods=set(args.methods.split(",")) if args.methods else None, repeat_4k=args.repeat_4k,
               log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\ninpaint at scale: 2 threads, best of {args.repeat} ({args.repeat_4k or args.repeat} at 4K), each run "
          "in its own process; x telea / x pm: time against OpenCV Telea / pypatchmatch, x pm mem: peak memory\n")
    print(table(rows))


if __name__ == "__main__":
    main()
