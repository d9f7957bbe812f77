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
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args()
    cv2.setNumThreads(1)
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
