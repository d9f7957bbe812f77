"""Inpainting benchmark: our methods against pypatchmatch (the C++ PatchMatch of IOPaint / lama-cleaner), OpenCV
Telea / NS and scikit-image's inpaint_biharmonic.

Same images and masks for every method, in four classes: thin damage (scratches 1-3 px + text) on photos; large
blobs (~10 % of the image) on textures; five elliptic holes (~5 % of the image in all) on textures and on photos.
Quality inside the mask against the clean image: PSNR, SSIM, and detail = gradient energy of the fill / of the
clean image inside the hole (1.0 = as much detail as the original; a blur scores near 0). Ratios are against
pypatchmatch (patch size 7, measured in the same run); without it, against OpenCV Telea. A LaMa row is added when
big-lama is in the model store.

    python bench/inpaint.py [--size 256] [--dip-steps 300] [--dip] [--only auto,patch] [--seed 0]
    python bench/inpaint.py --only auto,pypatchmatch --kinds holes --cases coffee,brick   # a quick look

The grid (issue 33: a bench that cannot be tuned to): 16 pictures (skimage photos and textures, synthetic pictures
whose right fill is known: straight and curved edges, tiles, stripes; Cycles renders of the demo scenes, rendered
once with bpy into ~/.cache/art_ai/bench_renders), three hole shapes (ellipses, blobs, brush strokes), three sizes
(radius 2-4, 4-7 and 7-10 % of the short side; five holes a picture), five mask seeds each. Per class (kind of
picture x shape x size) it prints the median and the worst decile of (method - pypatchmatch) in PSNR on the hole
pixels, the median detail ratio (method / pypatchmatch's) and the time ratio:

    python bench/inpaint.py --grid [--quick] [--only auto,patch] [--seeds 5] [--jobs 1] [--csv out.csv]
                                   [--peer-cache ~/.cache/art_ai/grid_peer]   # pypatchmatch's figures kept
    python bench/inpaint.py --collapse        # astronaut, five holes of radius 6 %, 512 px: auto / patch / peers
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from art_ai_addon.repair import inpaint  # noqa: E402

PEER = "pypatchmatch"
CASES = [("camera", "thin"), ("astronaut", "thin"), ("brick", "blobs"), ("gravel", "blobs"), ("grass", "blobs"),
         ("brick", "holes"), ("gravel", "holes"), ("grass", "holes"),
         ("astronaut", "holes"), ("coffee", "holes"), ("chelsea", "holes")]
TEXTURES = {"brick", "gravel", "grass"}


def photo(name, size):
    import skimage.data as sd

    img = getattr(sd, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.resize(img[:, :, :3], (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def thin_mask(size, rng):
    m = np.zeros((size, size), np.uint8)
    for _ in range(8):
        pts = [rng.integers(0, size, 2)]
        for _ in range(rng.integers(2, 5)):
            pts.append(np.clip(pts[-1] + rng.integers(-size // 3, size // 3 + 1, 2), 0, size - 1))
        cv2.polylines(m, [np.array(pts, np.int32)], False, 1, int(rng.integers(1, 4)))
    cv2.putText(m, "ART AI 2024", (8, size // 2), cv2.FONT_HERSHEY_SIMPLEX, size / 300.0, 1, 2)
    return m.astype(bool)


def blob_mask(size, rng, cover=0.10):
    m = np.zeros((size, size), np.uint8)
    r0, r1 = size // 24, size // 12
    while m.mean() < cover:
        cy, cx = rng.integers(r1, size - r1, 2)
        cv2.circle(m, (int(cx), int(cy)), int(rng.integers(r0, r1 + 1)), 1, -1)
    return m.astype(bool)


def ellipse_mask(size, rng, n=5, cover=0.05):
    """n separate ellipses (axis ratio 0.5-1, any angle) covering `cover` of the picture together."""
    m = np.zeros((size, size), np.uint8)
    area = cover * size * size / n
    placed = 0
    while placed < n:
        ratio = rng.uniform(0.5, 1.0)
        a = np.sqrt(area / (np.pi * ratio))
        cy, cx = (int(v) for v in rng.integers(int(a) + 2, size - int(a) - 2, 2))
        one = np.zeros_like(m)
        cv2.ellipse(one, (cx, cy), (int(round(a)), int(round(a * ratio))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
        if (cv2.dilate(m, np.ones((9, 9), np.uint8)) & one).any():
            continue
        m |= one
        placed += 1
    return m.astype(bool)


def damage(img, mask, rng):
    out = img.copy()
    n, lab = cv2.connectedComponents(mask.astype(np.uint8))
    for i in range(1, n):
        out[lab == i] = 1.0 if rng.random() < 0.5 else 0.05
    return out


def psnr(a, b, m):
    return 10 * np.log10(1.0 / max(float(np.mean((a[m] - b[m]) ** 2)), 1e-12))


def ssim_in(a, b, m):
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(a, b, channel_axis=2, data_range=1.0, full=True)
    return float(full.mean(axis=2)[m].mean())


def grad_energy(img, m):
    g = img.mean(axis=2)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1)
    return float(np.mean((gx * gx + gy * gy)[m]))


def pypatchmatch_fill(img, m, patch_size=7, seed=0):
    """pypatchmatch on 8-bit RGB (what it takes); its result back in float."""
    from patchmatch import patch_match

    patch_match.set_random_seed(seed)
    u8 = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return patch_match.inpaint(u8, m.astype(np.uint8), patch_size=patch_size).astype(np.float32) / 255.0


def peers(seed=0):
    def telea(img, m):
        return inpaint(img, m, method="telea")

    def ns(img, m):
        return inpaint(img, m, method="ns")

    def biharmonic(img, m):
        from skimage.restoration import inpaint_biharmonic

        return inpaint_biharmonic(img, m, channel_axis=-1).astype(np.float32)

    out = {"opencv-telea": telea, "opencv-ns": ns, "skimage-biharmonic": biharmonic}
    try:
        from patchmatch import patch_match

        if patch_match.patchmatch_available:
            out[PEER] = lambda img, m: pypatchmatch_fill(img, m, seed=seed)
        else:
            print("note: pypatchmatch is installed but its native library did not load; no pypatchmatch rows",
                  file=sys.stderr)
    except ImportError:
        print("note: pypatchmatch is not installed (pip install pypatchmatch==2.2.0); ratios are against "
              "opencv-telea", file=sys.stderr)
    return out


def lama_available():
    try:
        from art_ai_addon.models.store import find
        from art_ai_addon.repair.lama import MODEL_NAME

        found = find(MODEL_NAME)
    except Exception as exc:  # noqa: BLE001 - any failure means "no LaMa row", said once
        print(f"note: no LaMa row ({exc})", file=sys.stderr)
        return False
    if found is None:
        print("note: no LaMa row: big-lama is not in the model store (python -m art_ai_addon models import ...)",
              file=sys.stderr)
    return found is not None


# -- the grid -----------------------------------------------------------------------------------------------------

GRID_PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "rocket", "motorcycle")
GRID_TEXTURES = ("brick", "grass", "gravel")
GRID_SYNTHETIC = ("edges", "rings", "tiles", "stripes")
GRID_RENDERS = ("scene", "scene_side", "stones")
SHAPES = ("ellipse", "blob", "stroke")
SIZES = {"small": (0.02, 0.04), "medium": (0.04, 0.07), "large": (0.07, 0.10)}
RENDER_CACHE = Path.home() / ".cache" / "art_ai" / "bench_renders"

_RENDER_CODE = """
import importlib.util, math, sys
import bpy
spec = importlib.util.spec_from_file_location("demo_scene", sys.argv[1])
sm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sm)
out, size = sys.argv[2], int(sys.argv[3])
def shoot(scene, name):
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = f"{out}/{name}.png"
    bpy.ops.render.render(write_still=True)
shoot(sm.build_swatch_scene(size=size, samples=32), "stones")
scene = sm.build_demo_scene(size=size, samples=32)
shoot(scene, "scene")
scene.camera.location = (4.5, -4.5, 3.0)
scene.camera.rotation_euler = (math.radians(62), 0, math.radians(45))
shoot(scene, "scene_side")
"""


def _square(img, size):
    """The centre square of a picture, resized to `size` (no squashing)."""
    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return cv2.resize(img[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)


def _renders(size):
    """The Cycles renders of the grid, rendered once with bpy (a separate process) into RENDER_CACHE."""
    import subprocess

    folder = RENDER_CACHE / str(size)
    names = GRID_RENDERS
    if not all((folder / f"{n}.png").exists() for n in names):
        folder.mkdir(parents=True, exist_ok=True)
        scene_py = Path(__file__).resolve().parents[1] / "art_ai_addon" / "blender" / "demo_scene.py"
        print(f"rendering the grid's Cycles scenes into {folder} (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", _RENDER_CODE, str(scene_py), str(folder), str(size)], check=True,
                       stdout=subprocess.DEVNULL)
    return {n: cv2.cvtColor(cv2.imread(str(folder / f"{n}.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0
            for n in names}


def synthetic(name, size, seed=0):
    """Pictures whose right fill is known: structure (edges, curves, a grid, stripes) plus fine grain."""
    rng = np.random.default_rng(100 + seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    if name == "edges":  # three straight edges at odd angles between flat colour regions
        lab = np.zeros((size, size), np.int32)
        for k, (a, c) in enumerate(((0.35, 0.3), (1.9, 0.55), (2.8, 0.7))):
            lab += ((np.cos(a) * xx + np.sin(a) * yy) > c * (np.cos(a) + np.sin(a))).astype(np.int32) << k
        pal = rng.uniform(0.1, 0.9, (8, 3))
        img = pal[lab]
    elif name == "rings":  # curved edges: concentric rings around an off-centre point
        r = np.hypot(yy - 0.4, xx - 0.55)
        band = (r * 9).astype(np.int32)
        pal = rng.uniform(0.1, 0.9, (16, 3))
        img = pal[band % 16]
    elif name == "tiles":  # a regular grid: tiles with dark joints, tone per tile
        p = size // 8
        iy, ix = np.mgrid[:size, :size]
        joints = ((iy % p) < 3) | ((ix % p) < 3)
        tone = rng.uniform(0.45, 0.8, (size // p + 1, size // p + 1, 3))[iy // p, ix // p]
        img = np.where(joints[:, :, None], 0.15, tone)
    else:  # stripes: a slanted periodic pattern (a fence, a shirt)
        t = (np.cos(0.5) * xx + np.sin(0.5) * yy) * 14
        img = np.where(((t % 1.0) < 0.4)[:, :, None], np.array([0.8, 0.7, 0.3]), np.array([0.2, 0.25, 0.5]))
    img = img + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def grid_pictures(size, quick=False):
    """name -> (kind, picture) for every picture of the grid."""
    import skimage.data as sd

    pics = {}
    for name in GRID_PHOTOS[:3] if quick else GRID_PHOTOS:
        img = sd.stereo_motorcycle()[0] if name == "motorcycle" else getattr(sd, name)()
        img = np.stack([img] * 3, axis=-1) if img.ndim == 2 else img[:, :, :3]
        pics[name] = ("photo", _square(img, size).astype(np.float32) / 255.0)
    for name in GRID_TEXTURES[:2] if quick else GRID_TEXTURES:
        img = getattr(sd, name)()
        pics[name] = ("texture", np.repeat(_square(img, size)[:, :, None], 3, axis=2).astype(np.float32) / 255.0)
    for name in GRID_SYNTHETIC[:2] if quick else GRID_SYNTHETIC:
        pics[name] = ("synthetic", synthetic(name, size))
    try:
        renders = _renders(size)
    except Exception as exc:  # noqa: BLE001 - no bpy: the grid runs without the render rows, and says so
        print(f"note: no Cycles renders in the grid ({exc})", file=sys.stderr)
        renders = {}
    for name, img in list(renders.items())[:2] if quick else renders.items():
        pics[name] = ("render", img)
    return pics


def shape_mask(shape, size, rng, radii, n=5):
    """n separate holes of one shape; radii: (lo, hi) as a fraction of the side. A blob is a union of a few discs
    around a centre; a stroke a brush line of width one radius, a few radii long, bent once."""
    m = np.zeros((size, size), np.uint8)
    placed = tries = 0
    while placed < n and tries < 500:
        tries += 1
        r = rng.uniform(*radii) * size
        one = np.zeros_like(m)
        c = rng.uniform(r + 2, size - r - 2, 2)
        if shape == "ellipse":
            ratio = rng.uniform(0.5, 1.0)
            cv2.ellipse(one, (int(c[1]), int(c[0])), (int(round(r)), max(1, int(round(r * ratio)))),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1)
        elif shape == "blob":
            for _ in range(4):
                d = rng.normal(0, 0.45 * r, 2)
                cv2.circle(one, (int(c[1] + d[1]), int(c[0] + d[0])), int(max(2, rng.uniform(0.45, 0.7) * r)), 1, -1)
        else:
            a = rng.uniform(0, np.pi)
            pts = [c - 1.5 * r * np.array([np.sin(a), np.cos(a)])]
            for _ in range(2):
                a += rng.uniform(-0.8, 0.8)
                pts.append(pts[-1] + 1.5 * r * np.array([np.sin(a), np.cos(a)]))
            pts = np.clip(np.array(pts), 0, size - 1)
            cv2.polylines(one, [pts[:, ::-1].astype(np.int32)], False, 1, max(2, int(round(r))))
        if (cv2.dilate(m, np.ones((9, 9), np.uint8)) & one).any() or one.sum() == 0:
            continue
        m |= one
        placed += 1
    return m.astype(bool)


def _grid_case(task):
    """One grid case: every method on one picture and mask (runs in a worker process with --jobs)."""
    name, kind, img, shape, size_name, seed, methods, cache = task
    cv2.setNumThreads(1)
    rng = np.random.default_rng([seed, SHAPES.index(shape), list(SIZES).index(size_name),
                                 sum(map(ord, name))])
    mask = shape_mask(shape, img.shape[0], rng, SIZES[size_name])
    bad = damage(img, mask, rng)
    interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    e_clean = grad_energy(img, interior)
    fns = grid_methods(seed)
    res = {}
    for meth in methods:
        # the peers are deterministic: with --peer-cache their figures are read back (a grid of our method alone then
        # runs in a fifth of the time); the key holds everything the case depends on
        key = cache / f"{meth}_{img.shape[0]}_{name}_{shape}_{size_name}_{seed}.json" if cache and meth.startswith(
            PEER) else None
        if key is not None and key.exists():
            res[meth] = json.loads(key.read_text())
            continue
        t = time.perf_counter()
        out = fns[meth](bad, mask)
        dt = time.perf_counter() - t
        res[meth] = dict(psnr=psnr(out, img, mask), detail=grad_energy(out, interior) / max(e_clean, 1e-12), time=dt)
        if key is not None:
            key.write_text(json.dumps(res[meth]))
    return dict(name=name, kind=kind, shape=shape, size=size_name, seed=seed, hole=100 * mask.mean(), res=res)


def grid_methods(seed):
    """The grid's methods. "structure": auto's structure candidate on every hole (the greedy fill in isophote
    order, art_ai_addon/repair/structure.py, refined by a one-level PatchMatch); "structure-coarse": the plain
    patch fill started from the greedy fill at its coarsest level (measured: behind "patch", so unused)."""
    from art_ai_addon.repair.inpaint import _structure
    from art_ai_addon.repair.patchmatch import patch_inpaint
    from art_ai_addon.repair.structure import structure_fill

    fns = {"structure": lambda img, m: _structure(img, m, seed=seed, source_ok=~m),
           "structure-coarse": lambda img, m: patch_inpaint(img, m, seed=seed, coarse_init=structure_fill),
           "auto": lambda img, m: inpaint(img, m, method="auto", seed=seed),
           "patch": lambda img, m: inpaint(img, m, method="patch", seed=seed),
           "opencv-telea": lambda img, m: inpaint(img, m, method="telea"),
           PEER: lambda img, m: pypatchmatch_fill(img, m, seed=seed),
           # the peer against itself: another fill seed, the same picture and mask (how far apart two equally good
           # fills are on this measure: the noise floor of a median and a worst decile of differences)
           PEER + "-reseed": lambda img, m: pypatchmatch_fill(img, m, seed=seed + 1000)}
    return fns


def run_grid(args):
    methods = [m for m in (args.only.split(",") if args.only else ["auto"]) if m != PEER] + [PEER]
    pics = grid_pictures(args.size, args.quick)
    seeds = range(2 if args.quick and args.seeds == 5 else args.seeds)
    # seed by seed, so that an interrupted run (its --csv is written case by case) still covers every class
    cache = Path(args.peer_cache) if args.peer_cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    tasks = [(name, kind, img, shape, size_name, seed, methods, cache) for seed in seeds
             for name, (kind, img) in pics.items() for shape in SHAPES for size_name in SIZES]
    print(f"grid: {len(pics)} pictures x {len(SHAPES)} shapes x {len(SIZES)} sizes x {len(seeds)} seeds = "
          f"{len(tasks)} cases; methods {', '.join(methods)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    rows = []
    out = open(args.csv, "w") if args.csv else None
    if out:
        out.write("picture,kind,shape,size,seed,hole_pct,method,psnr,detail,time\n")

    def done(i, r):
        rows.append(r)
        if out:
            for meth, v in r["res"].items():
                out.write(f"{r['name']},{r['kind']},{r['shape']},{r['size']},{r['seed']},{r['hole']:.2f},{meth},"
                          f"{v['psnr']:.3f},{v['detail']:.4f},{v['time']:.4f}\n")
            out.flush()
        if i % 20 == 19:
            print(f"  {i + 1}/{len(tasks)} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    if args.jobs > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(args.jobs) as pool:
            for i, r in enumerate(pool.imap(_grid_case, tasks)):
                done(i, r)
    else:
        for i, task in enumerate(tasks):
            done(i, _grid_case(task))
    if out:
        out.close()
    print_grid(rows, methods, args, time.perf_counter() - t0)


def grid_from_csv(args):
    """The grid's table again from a --csv file (also from an interrupted run: the cases it finished)."""
    import csv

    cases = {}
    for row in csv.DictReader(open(args.summary)):
        key = (row["picture"], row["shape"], row["size"], row["seed"])
        r = cases.setdefault(key, dict(name=row["picture"], kind=row["kind"], shape=row["shape"], size=row["size"],
                                       seed=int(row["seed"]), res={}))
        r["res"][row["method"]] = dict(psnr=float(row["psnr"]), detail=float(row["detail"]), time=float(row["time"]))
    rows = [r for r in cases.values() if PEER in r["res"]]
    methods = [m for m in dict.fromkeys(k for r in rows for k in r["res"]) if m != PEER] + [PEER]
    print(f"{len(rows)} cases from {args.summary}, seeds {sorted({r['seed'] for r in rows})}")
    print_grid(rows, methods, args, float("nan"))


def print_grid(rows, methods, args, wall):
    kinds = [k for k in ("photo", "texture", "synthetic", "render") if any(r["kind"] == k for r in rows)]
    print(f"\ninpaint grid, {args.size}x{args.size}, CPU, 1 thread per process; {len(rows)} cases in {wall:.0f} s; "
          f"d = method - {PEER} on the same picture and mask (PSNR on the hole pixels), x = ratio to {PEER}\n")
    ours = [m for m in methods if m != PEER]
    hdr = (f"{'class':26s} {'n':>3s} {'peer dB':>7s}" + "".join(
        f" | {m[:12]:>12s}: {'med d':>6s} {'p10 d':>6s} {'xdet':>5s} {'xtime':>5s}" for m in ours))
    print(hdr)
    print("-" * len(hdr))

    def line(label, sel):
        got = [r for r in rows if sel(r)]
        if not got:
            return
        s = f"{label:26s} {len(got):3d} {np.median([r['res'][PEER]['psnr'] for r in got]):7.2f}"
        for m in ours:
            d = np.array([r["res"][m]["psnr"] - r["res"][PEER]["psnr"] for r in got])
            xd = np.median([r["res"][m]["detail"] / max(r["res"][PEER]["detail"], 1e-9) for r in got])
            xt = np.median([r["res"][m]["time"] / max(r["res"][PEER]["time"], 1e-9) for r in got])
            s += f" | {'':12s}  {np.median(d):+6.2f} {np.percentile(d, 10):+6.2f} {xd:5.2f} {xt:5.1f}"
        print(s)

    for kind in kinds:
        for shape in SHAPES:
            for size_name in SIZES:
                line(f"{kind}/{shape}/{size_name}",
                     lambda r, k=kind, s=shape, z=size_name: (r["kind"], r["shape"], r["size"]) == (k, s, z))
    print()
    for kind in kinds:
        line(f"{kind} (all)", lambda r, k=kind: r["kind"] == k)
    for shape in SHAPES:
        line(f"{shape} (all)", lambda r, s=shape: r["shape"] == s)
    for size_name in SIZES:
        line(f"{size_name} (all)", lambda r, z=size_name: r["size"] == z)
    line("all", lambda r: True)
    print("\nmed d / p10 d: median and worst decile (10th percentile) of the PSNR difference in dB; xdet: median "
          "detail ratio (gradient energy inside the hole, method / peer); xtime: median time ratio")
    worst = sorted(rows, key=lambda r: r["res"][ours[0]]["psnr"] - r["res"][PEER]["psnr"])[:8]
    print(f"worst cases for {ours[0]}: " + ", ".join(
        f"{r['name']}/{r['shape']}/{r['size']}/s{r['seed']} {r['res'][ours[0]]['psnr'] - r['res'][PEER]['psnr']:+.1f}"
        for r in worst))


def run_collapse(args):
    """The large-hole collapse of issue 33: five holes of radius 6 % of the short side in the astronaut photo."""
    import skimage.data as sd

    size = 512
    img = sd.astronaut().astype(np.float32) / 255.0
    fns = grid_methods(args.seed)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        mask = shape_mask("ellipse", size, rng, (0.06, 0.06))
        bad = damage(img, mask, rng)
        out = []
        for meth in ("auto", "patch", PEER, "opencv-telea"):
            t = time.perf_counter()
            res = fns[meth](bad, mask)
            out.append(f"{meth} {psnr(res, img, mask):5.2f} dB {time.perf_counter() - t:5.1f} s")
        print(f"astronaut 512, 5 holes r 6 %, mask seed {seed}: " + " | ".join(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--dip", action="store_true", help="add Deep Image Prior rows (slow on a CPU)")
    ap.add_argument("--dip-steps", type=int, default=300)
    ap.add_argument("--only", default="", help="comma-separated methods to run (peers included by name)")
    ap.add_argument("--kinds", default="thin,blobs,holes", help="comma-separated case kinds to run")
    ap.add_argument("--cases", default="", help="comma-separated pictures to run (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the fills (ours and pypatchmatch's); the "
                    "images and masks stay the same")
    ap.add_argument("--grid", action="store_true", help="the grid of pictures x hole shapes x sizes x seeds")
    ap.add_argument("--quick", action="store_true", help="with --grid: a subset (fewer pictures, 2 seeds)")
    ap.add_argument("--seeds", type=int, default=5, help="with --grid: mask seeds per picture, shape and size")
    ap.add_argument("--jobs", type=int, default=1, help="with --grid: worker processes (1 thread each)")
    ap.add_argument("--peer-cache", default="", help="with --grid: keep pypatchmatch's figures per case in this folder "
                    "and read them back (it is deterministic; its time ratio is then the first run's)")
    ap.add_argument("--csv", default="", help="with --grid: write every case's figures to this file")
    ap.add_argument("--summary", default="", help="print the grid's table from this --csv file and stop")
    ap.add_argument("--collapse", action="store_true", help="astronaut at 512 px, five holes of radius 6 %%")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if args.summary:
        return grid_from_csv(args)
    if args.grid:
        return run_grid(args)
    if args.collapse:
        return run_collapse(args)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    ours = {"smooth": dict(method="smooth"), "patch": dict(method="patch", seed=args.seed),
            "auto": dict(method="auto", seed=args.seed)}
    if args.dip:
        ours["dip"] = dict(method="dip", steps=args.dip_steps, device="cpu", seed=args.seed)
    if lama_available():
        ours["lama"] = dict(method="lama", device="cpu")
    methods = {**peers(args.seed), **{k: (lambda img, m, o=o: inpaint(img, m, **o)) for k, o in ours.items()}}
    if args.only:
        keep = set(args.only.split(","))
        methods = {k: v for k, v in methods.items() if k in keep}
    ref_name = PEER if PEER in methods else "opencv-telea"
    rows = []
    pictures = set(args.cases.split(",")) if args.cases else {c[0] for c in CASES}
    for name, kind in [c for c in CASES if c[1] in args.kinds.split(",") and c[0] in pictures]:
        rng = np.random.default_rng(7)
        clean = photo(name, args.size)
        mask = {"thin": thin_mask, "blobs": blob_mask, "holes": ellipse_mask}[kind](args.size, rng)
        bad = damage(clean, mask, rng)
        interior = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        e_clean = grad_energy(clean, interior)
        for meth, fn in methods.items():
            t = time.perf_counter()
            out = fn(bad, mask)
            dt = time.perf_counter() - t
            print(f"  {name}/{kind} {meth}: {dt:.2f}s", file=sys.stderr, flush=True)
            rows.append(dict(case=f"{name}/{kind}", kind=kind, texture=name in TEXTURES, method=meth,
                             psnr=psnr(out, clean, mask), ssim=ssim_in(out, clean, mask),
                             detail=grad_energy(out, interior) / max(e_clean, 1e-12), time=dt, hole=100 * mask.mean()))
    print(f"\ninpaint benchmark, {args.size}x{args.size}, CPU, 1 thread, seed {args.seed}; ratios vs {ref_name} on the "
          "same image and mask\n")
    hdr = (f"{'case':18s} {'method':19s} {'hole%':>5s} {'PSNR':>6s} {'dPSNR':>6s} {'SSIM':>5s} {'xSSIM':>6s} "
           f"{'detail':>6s} {'xdet':>5s} {'time s':>7s} {'xtime':>6s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        ref = next((x for x in rows if x["case"] == r["case"] and x["method"] == ref_name), None)
        if ref is None:
            print(f"{r['case']:18s} {r['method']:19s} {r['hole']:5.1f} {r['psnr']:6.2f} {'':6s} {r['ssim']:5.3f} "
                  f"{'':6s} {r['detail']:6.2f} {'':5s} {r['time']:7.2f}")
            continue
        print(f"{r['case']:18s} {r['method']:19s} {r['hole']:5.1f} {r['psnr']:6.2f} {r['psnr'] - ref['psnr']:+6.2f} "
              f"{r['ssim']:5.3f} {r['ssim'] / ref['ssim']:6.2f} {r['detail']:6.2f} "
              f"{r['detail'] / max(ref['detail'], 1e-9):5.2f} {r['time']:7.2f} {r['time'] / ref['time']:6.2f}")
    # per class: mean PSNR and detail of each method; time summed
    classes = [("thin, photos", lambda r: r["kind"] == "thin"), ("blobs, textures", lambda r: r["kind"] == "blobs"),
               ("holes, textures", lambda r: r["kind"] == "holes" and r["texture"]),
               ("holes, photos", lambda r: r["kind"] == "holes" and not r["texture"])]
    print(f"\nper class (mean PSNR / mean detail / total time; d and x against {ref_name})")
    for label, sel in classes:
        ref = [r for r in rows if sel(r) and r["method"] == ref_name]
        for meth in methods:
            got = [r for r in rows if sel(r) and r["method"] == meth]
            if not got or meth == ref_name or not ref:
                continue
            p, d, t = (np.mean([r["psnr"] for r in got]), np.mean([r["detail"] for r in got]),
                       sum(r["time"] for r in got))
            rp, rd, rt = (np.mean([r["psnr"] for r in ref]), np.mean([r["detail"] for r in ref]),
                          sum(r["time"] for r in ref))
            print(f"  {label:16s} {meth:19s} PSNR {p:6.2f} ({p - rp:+5.2f} dB)  "
                  f"detail {d:4.2f} (x{d / max(rd, 1e-9):4.2f})  time {t:6.2f} s (x{t / max(rt, 1e-9):4.2f})")
    print("\ndetail = gradient energy inside the hole / the clean image's there (1.0 = same detail; blur -> 0)")


if __name__ == "__main__":
    main()
