"""The demo: build a small scene, render it with Cycles headless (bpy module), run every feature on it through the
installed extension's operators and the Python API, and write the results to a folder (paths on stdout).

    .venv/bin/python scripts/demo.py --out out
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ADDON = "bl_ext.user_default.art_ai"


def painted_style(size=256, seed=7):
    """A procedural 'painting': thick oriented brush strokes in a warm/cool palette (no downloads)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    palette = np.array([[0.95, 0.78, 0.25], [0.85, 0.35, 0.15], [0.15, 0.3, 0.6], [0.1, 0.55, 0.55],
                        [0.97, 0.93, 0.8], [0.35, 0.15, 0.35]], np.float32)
    img = np.full((size, size, 3), 0.2, np.float32)
    for _ in range(900):
        x, y = rng.integers(0, size, 2)
        angle = np.sin(x / 40.0) + np.cos(y / 33.0) + rng.normal(0, 0.2)
        length = rng.integers(6, 22)
        dx, dy = int(np.cos(angle) * length), int(np.sin(angle) * length)
        color = palette[rng.integers(len(palette))] * rng.uniform(0.8, 1.1)
        cv2.line(img, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)), color.tolist(),
                 int(rng.integers(2, 6)), cv2.LINE_AA)
    return np.clip(cv2.GaussianBlur(img, (3, 3), 0), 0, 1)


def damaged(img, seed=3, rng=None):
    """The render with synthetic scratches and a blob (what the repair feature is for)."""
    import cv2
    import numpy as np

    rng = rng if rng is not None else np.random.default_rng(seed)
    out = img.copy()
    mask = np.zeros(img.shape[:2], np.uint8)
    h, w = mask.shape
    for _ in range(4):
        pts = np.cumsum(rng.normal(0, w / 10, (5, 2)), axis=0) + (w / 2, h / 2)
        cv2.polylines(mask, [pts.astype(np.int32)], False, 255, int(rng.integers(1, 3)))
    cv2.circle(mask, (int(w * 0.7), int(h * 0.3)), max(3, w // 30), 255, -1)
    out[mask > 0, :3] = 0.95
    return out, mask.astype(np.float32) / 255.0


def install_extension(bpy, tool):
    dist = Path(tempfile.mkdtemp(prefix="art_ai_dist_"))
    subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(ROOT), "--output-dir", str(dist)],
                   check=True, capture_output=True)
    zip_path = next(dist.glob("art_ai-*.zip"))
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    assert ADDON in bpy.context.preferences.addons, "the extension did not enable"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out")
    parser.add_argument("--size", type=int, default=192, help="render size in pixels")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60, help="Gatys optimisation steps")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="art_ai_demo_user_"))  # before bpy
    # the model store scripts/setup_env.sh filled (Magenta's arbitrary-style networks), not the throw-away
    # extension folder's empty one
    store = os.environ.get("ART_AI_MODELS") or str(Path.home() / ".cache" / "art_ai" / "models")

    import importlib.util

    wheel = Path(importlib.util.find_spec("bpy").origin).parent  # before the import replaces the module
    tool = wheel / "5.0" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    import bpy
    import numpy as np

    install_extension(bpy, tool)
    bpy.context.preferences.addons[ADDON].preferences.models_dir = store
    import importlib

    art = importlib.import_module(f"{ADDON}.art_ai_addon")
    demo_scene = importlib.import_module(f"{ADDON}.art_ai_addon.blender.demo_scene")
    bridge = importlib.import_module(f"{ADDON}.art_ai_addon.blender.bridge")

    written: list[Path] = []
    skipped: list[str] = []

    def save(name, img, data=False):
        p = art.write_image(out / name, img, data=data)
        written.append(p)
        print(p, flush=True)

    def step(label, fn):
        t = time.perf_counter()
        try:
            fn()
            print(f"demo: {label}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
        except art.NotAvailableError as exc:
            skipped.append(f"{label}: {exc}")
            print(f"demo: {label}: skipped ({exc})", file=sys.stderr)

    t0 = time.perf_counter()
    swatch_scene = demo_scene.build_swatch_scene(size=128, samples=args.samples)
    demo_scene.render_still(swatch_scene)
    exemplar = bridge.image_to_array(bpy.data.images["Render Result"], swatch_scene)[:, :, :3].copy()
    save("texture_exemplar.png", exemplar)
    scene = demo_scene.build_demo_scene(size=args.size, samples=args.samples)
    demo_scene.render_still(scene)
    render = bridge.image_to_array(bpy.data.images["Render Result"], scene).copy()
    print(f"demo: Cycles renders: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    save("render.png", render)
    style = painted_style()
    save("style.png", style)
    style_img = bridge.array_to_image(style, "style")

    def stylize_color():
        assert bpy.ops.art_ai.stylize(image="Render Result", style=style_img.name, method="COLOR") == {"FINISHED"}
        save("stylized_color.png", bridge.image_to_array(bpy.data.images["Render Result.stylized"]))

    def stylize_arbitrary():
        # through the operator as an artist runs it: the PyTorch method goes to the engine worker (this venv's Python)
        os.environ.setdefault("ART_AI_TORCH_PYTHON", sys.executable)
        result = bpy.ops.art_ai.stylize(image="Render Result", style=style_img.name, method="ARBITRARY",
                                        output="Render Result.arbitrary")
        assert result == {"FINISHED"}, result
        save("stylized_arbitrary.png", bridge.image_to_array(bpy.data.images["Render Result.arbitrary"]))

    def stylize_gatys():
        save("stylized_gatys.png", art.stylize(render, style, method="gatys", steps=args.steps, seed=0))

    def stylize_layers():
        # Render Properties > Art AI Stylize as an artist fills it: a style for the sphere, another for the floor's
        # material (strokes shrinking with depth), edges kept; the cube and the sky stay exactly as rendered
        second = bridge.array_to_image(painted_style(seed=11)[:, :, [2, 1, 0]], "style.blue")
        s = scene.art_ai
        for kind, target, img in (("OBJECT", "Sphere", second), ("MATERIAL", "Floor", style_img)):
            assert bpy.ops.art_ai.style_layer_add(target_kind=kind, target=target) == {"FINISHED"}
            s.style_layers[-1].style_image = img
            s.style_layers[-1].method = "ARBITRARY"
        s.keep_edges, s.depth_scale = 0.7, True
        demo_scene.render_still(scene)  # again, now with the Cryptomatte, Depth and Normal passes the layers need
        os.environ.setdefault("ART_AI_TORCH_PYTHON", sys.executable)
        result = bpy.ops.art_ai.stylize(image="Render Result", use_layers=True, output="Render Result.layers")
        assert result == {"FINISHED"}, result
        save("stylized_layers.png", bridge.image_to_array(bpy.data.images["Render Result.layers"]))
        s.style_layers.clear()

    def keyframes():
        # paint one frame of a short animation (procedural strokes standing in for the artist), then Propagate: the
        # strokes follow the moving cube, the camera and the floor it uncovers
        import cv2

        anim = demo_scene.build_keyframe_scene(size=args.size // 2 + 32, samples=args.samples, frames=6)
        anim.frame_set(1)
        assert bpy.ops.art_ai.keyframe_paint() == {"FINISHED"}
        key = anim.art_ai.keyframes[0].image
        img = bridge.image_to_array(key).copy()
        rng = np.random.default_rng(5)
        h, w = img.shape[:2]
        strokes = img[:, :, :3].copy()
        for _ in range(2500):  # an impressionist repaint: short strokes in each spot's own colour, a little bolder
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            ang, length = rng.normal(0.6, 0.35), int(rng.integers(2, 6))
            dx, dy = int(np.cos(ang) * length), int(np.sin(ang) * length)
            base = img[y, x, :3]
            color = np.clip(base.mean() + (base - base.mean()) * 1.8 * rng.uniform(0.8, 1.3)
                            + rng.normal(0, 0.04, 3), 0, 1)
            cv2.line(strokes, (x - dx, y - dy), (x + dx, y + dy), color.tolist(), int(rng.integers(1, 3)),
                     cv2.LINE_AA)
        img[:, :, :3] = strokes
        key.pixels.foreach_set(np.ascontiguousarray(img[::-1]).ravel())
        key.update()
        save("keyframe_painted_0001.png", img)
        assert bpy.ops.art_ai.propagate(output_dir=str(out / "keyframes")) == {"FINISHED"}
        frames = [art.read_image(out / "keyframes" / "stylized" / f"{f:04d}.png") for f in (1, 3, 6)]
        raws = [art.read_image(out / "keyframes" / "raw" / f"{f:04d}.png") for f in (1, 3, 6)]
        save("keyframes_strip.png", np.concatenate([np.concatenate(raws, 1), np.concatenate(frames, 1)], 0))

    def texture():
        tex = art.synthesize_texture(exemplar, size=(256, 256), method="patch", seed=1)
        save("texture_patch.png", tex)
        save("texture_patch_tiled2x2.png", np.tile(tex, (2, 2, 1)))
        save("exemplar_seamless.png", art.make_seamless(exemplar))
        for key, value in art.pbr_maps(tex, tileable=True).items():
            save(f"pbr_{key}.png", value, data=True)
        # the one-click material on the floor, rendered again with Cycles
        tex_img = bridge.array_to_image(tex, "stones.texture")
        floor = bpy.data.objects["Plane"]
        for obj in bpy.context.view_layer.objects:
            obj.select_set(obj == floor)
        bpy.context.view_layer.objects.active = floor
        assert bpy.ops.art_ai.create_pbr_material(image=tex_img.name, name="Stones") == {"FINISHED"}
        floor.data.uv_layers.active.data.foreach_set(
            "uv", np.array([uv.uv[:] for uv in floor.data.uv_layers.active.data], np.float32).ravel() * 3)
        demo_scene.render_still(scene)
        save("material_render.png", bridge.image_to_array(bpy.data.images["Render Result"], scene))

    def repair():
        broken, truth_mask = damaged(render)
        save("damaged.png", broken)
        mask = art.detect_damage(broken, sensitivity=0.5)
        save("damage_mask.png", mask, data=True)
        save("repaired.png", art.inpaint(broken, mask, method="auto"))
        save("repaired_with_true_mask.png", art.inpaint(broken, truth_mask, method="auto"))

    def upscale():
        # the render through the operator (Real-ESRGAN in the engine worker), and the seamless texture, tileable
        os.environ.setdefault("ART_AI_TORCH_PYTHON", sys.executable)
        assert bpy.ops.art_ai.upscale(image="Render Result", scale=2, method="ESRGAN",
                                      output="render.upscaled") == {"FINISHED"}
        save("render_upscaled_x2.png", bridge.image_to_array(bpy.data.images["render.upscaled"]))
        seamless = art.read_image(out / "exemplar_seamless.png")
        up = art.upscale(seamless, 2, method="auto", tileable=True, models_dir=store)
        save("texture_upscaled_x2.png", up)
        save("texture_upscaled_tiled_2x2.png", np.tile(up, (2, 2, 1)))

    step("stylize (colour, operator on Render Result)", stylize_color)
    step("stylize (arbitrary, Magenta's networks, operator + engine worker)", stylize_arbitrary)
    step("stylize (gatys, built-in encoder)", stylize_gatys)
    step("stylize by layers (sphere, floor material with depth scale, keep edges; operator + engine worker)",
         stylize_layers)
    step("textures (patch synthesis, seamless, PBR maps)", texture)
    step("repair (detect + inpaint)", repair)
    step("upscale (Real-ESRGAN: the render x2 through the operator, the seamless texture x2 tileable)", upscale)
    step("keyframes (Paint This Frame, procedural strokes, Propagate over 6 frames; a new scene)", keyframes)
    print(f"demo: {len(written)} files in {out}/ in {time.perf_counter() - t0:.1f} s"
          + (f"; skipped: {'; '.join(skipped)}" if skipped else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
