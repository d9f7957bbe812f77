"""Run inside a fresh Python as a stock Blender is: the real bpy module, and OpenCV, PyTorch, SciPy and
scikit-image blocked in sys.modules (Blender's own Python has numpy and the standard library only).

`python stock_blender.py ZIP OUT_DIR [--worker PYTHON] [--steps a,b,...]` installs the zip into the throw-away
BLENDER_USER_RESOURCES that the caller set, enables it, runs the steps and writes OUT_DIR/report.json (plus the
arrays it compares as .npy). The test (tests/test_stock_blender.py) asserts on the report.
"""

from __future__ import annotations

import sys

import importlib.abc  # noqa: E402
import os  # noqa: E402

BLOCKED = ("cv2", "torch", "torchvision", "scipy", "skimage", "onnx", "onnxruntime")
BUNDLED_CV2 = "--bundled-cv2" in sys.argv  # the platform build: OpenCV only from the wheel the extension bundles


class _OnlyBundled(importlib.abc.MetaPathFinder):
    """cv2 may load only from Blender's extension folder (where the platform zip's wheel lands), not from this venv."""

    def find_spec(self, name, path, target=None):
        if name != "cv2":
            return None  # cv2's own submodules are found inside whichever cv2 package loaded
        from importlib.machinery import PathFinder

        user = os.environ["BLENDER_USER_RESOURCES"]
        spec = PathFinder.find_spec(name, [p for p in sys.path if p.startswith(user)], target)
        if spec is None:
            raise ImportError("cv2 is blocked here: only the extension's bundled wheel counts")
        return spec


for _name in BLOCKED:
    if _name == "cv2" and BUNDLED_CV2:
        sys.meta_path.insert(0, _OnlyBundled())
        continue
    sys.modules[_name] = None  # type: ignore[assignment]  # `import cv2` now raises ImportError

import json  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ADDON = "bl_ext.user_default.art_ai"
report: dict = {"steps": {}}


def step(name):
    def wrap(fn):
        def run(*args):
            try:
                report["steps"][name] = {"ok": True, **(fn(*args) or {})}
            except BaseException as exc:  # noqa: BLE001 - recorded for the test to show
                report["steps"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                         "traceback": traceback.format_exc()[-3000:]}
        run.__name__ = name
        return run
    return wrap


def new_image(bpy, name, top_down, float_buffer=False):
    h, w, _ = top_down.shape
    img = bpy.data.images.new(name, w, h, alpha=True, float_buffer=float_buffer)
    img.pixels.foreach_set(np.ascontiguousarray(top_down[::-1]).ravel())
    return img


def picture(size=64, seed=0):
    """A procedural test picture: smooth colour gradients, stripes and discs (structure for every method)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rng = np.random.default_rng(seed)
    r = 0.5 + 0.4 * np.sin(6 * x + 2 * y)
    g = 0.5 + 0.4 * np.cos(5 * y - 3 * x)
    b = 0.3 + 0.3 * ((x * 8).astype(int) % 2)
    img = np.stack([r, g, b], axis=2)
    for _ in range(4):
        cy, cx, rad = rng.random(3) * [size, size, size / 5]
        disc = (np.mgrid[0:size, 0:size][0] - cy) ** 2 + (np.mgrid[0:size, 0:size][1] - cx) ** 2 < rad ** 2
        img[disc] = rng.random(3)
    return np.clip(img, 0, 1).astype(np.float32)


def rgba(rgb):
    return np.dstack([rgb, np.ones(rgb.shape[:2], np.float32)]).astype(np.float32)


def arrays(bpy, name):
    from importlib import import_module

    bridge = import_module(f"{ADDON}.art_ai_addon.blender.bridge")
    return bridge.image_to_array(bpy.data.images[name]).copy()


def run_op(fn, **kw):
    """(result set, error text) of a bpy.ops call: an operator that reports an error raises RuntimeError."""
    try:
        return sorted(fn(**kw)), ""
    except RuntimeError as exc:
        return ["CANCELLED"], str(exc)


class StubLayout:
    """A layout that records what a panel draws and checks every property and operator against Blender's RNA."""

    def __init__(self, problems: list, calls: list):
        self.problems, self.calls = problems, calls
        self.enabled = self.active = self.use_property_split = True
        self.scale_y = 1.0

    def _sub(self, *_a, **_k):
        return StubLayout(self.problems, self.calls)

    row = column = box = split = column_flow = grid_flow = _sub

    def label(self, text="", **_k):
        self.calls.append(("label", text))

    def separator(self, **_k):
        pass

    def progress(self, **_k):
        self.calls.append(("progress", _k.get("text", "")))

    def _check_prop(self, data, prop):
        if data is None or prop not in data.bl_rna.properties:
            self.problems.append(f"prop {prop!r} not on {data!r}")

    def prop(self, data, prop, **_k):
        self._check_prop(data, prop)
        self.calls.append(("prop", prop))

    def prop_search(self, data, prop, search_data, search_prop, **_k):
        self._check_prop(data, prop)
        if not hasattr(search_data, search_prop):
            self.problems.append(f"prop_search source {search_prop!r}")

    def template_ID(self, data, prop, **_k):
        self._check_prop(data, prop)

    def template_list(self, listtype, list_id, data, prop, active_data, active_prop, **_k):
        import bpy

        self._check_prop(data, prop)
        self._check_prop(active_data, active_prop)
        if not hasattr(bpy.types, listtype):
            self.problems.append(f"UI list {listtype!r} is not registered")
        self.calls.append(("template_list", listtype))

    def operator(self, idname, **_k):
        import bpy

        group, _, name = idname.partition(".")
        op = getattr(getattr(bpy.ops, group), name)
        try:
            rna = op.get_rna_type()
        except KeyError:
            self.problems.append(f"operator {idname} is not registered")
            return _OpProps(set(), idname, self.problems)
        self.calls.append(("operator", idname))
        return _OpProps({p.identifier for p in rna.properties}, idname, self.problems)


class _OpProps:
    def __init__(self, names, idname, problems):
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_id", idname)
        object.__setattr__(self, "_problems", problems)

    def __setattr__(self, key, value):
        if key not in self._names:
            self._problems.append(f"{self._id} has no property {key!r}")


def main(argv):
    zip_path, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    worker = argv[argv.index("--worker") + 1] if "--worker" in argv else None
    wanted = set(argv[argv.index("--steps") + 1].split(",")) if "--steps" in argv else None
    path_before = list(sys.path)
    import bpy

    report["path_before_enable"] = list(sys.path)
    res = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default",
                                                   enable_on_install=True)
    report["install"] = sorted(res)
    report["enabled"] = ADDON in bpy.context.preferences.addons
    report["sys_path_unchanged"] = list(sys.path) == report["path_before_enable"]
    report["sys_path_added"] = [p for p in sys.path if p not in report["path_before_enable"]]
    del path_before
    report["blocked_loaded"] = [m for m in BLOCKED if sys.modules.get(m) is not None]
    if not report["enabled"]:
        return

    def want(name):
        return wanted is None or name in wanted

    @step("draw_panels")
    def draw_panels():
        from importlib import import_module

        panels = import_module(f"{ADDON}.art_ai_addon.blender.panels")
        prefs_mod = import_module(f"{ADDON}.art_ai_addon.blender.preferences")
        problems: list = []
        drawn = []
        ctx = _Ctx(bpy)
        for cls in list(panels.classes) + [prefs_mod.ArtAIPreferences]:
            calls: list = []
            fake = _Panel(StubLayout(problems, calls))
            if cls is prefs_mod.ArtAIPreferences:
                fake = bpy.context.preferences.addons[ADDON].preferences
                cls.draw(_PrefsSelf(fake, StubLayout(problems, calls)), ctx)
            else:
                for attr in ("draw_header", "draw"):
                    if hasattr(cls, attr):
                        getattr(cls, attr)(fake, ctx)
            drawn.append((cls.__name__, len(calls)))
        return {"problems": problems, "drawn": drawn,
                "heavy_after_draw": [m for m in BLOCKED if sys.modules.get(m) is not None]}

    @step("color_byte")
    def color_byte():
        new_image(bpy, "content", rgba(picture(64, 1)))
        new_image(bpy, "style", rgba(picture(48, 2)[:, ::-1, ::-1]))
        result, err = run_op(bpy.ops.art_ai.stylize, image="content", style="style", method="COLOR")
        img = bpy.data.images.get("content.stylized")
        if img is not None:
            np.save(out / "color_byte.npy", arrays(bpy, "content.stylized"))
        np.save(out / "color_byte_in.npy", arrays(bpy, "content"))
        np.save(out / "color_byte_style.npy", arrays(bpy, "style"))
        return {"result": result, "error": err, "made": img is not None}

    @step("color_render")
    def color_render():
        from importlib import import_module

        demo = import_module(f"{ADDON}.art_ai_addon.blender.demo_scene")
        sc = demo.build_demo_scene(size=64, samples=2)
        demo.render_still(sc)
        if "style" not in bpy.data.images:
            new_image(bpy, "style", rgba(picture(48, 2)[:, ::-1, ::-1]))
        with bpy.context.temp_override(scene=sc):
            result, err = run_op(bpy.ops.art_ai.stylize, image="Render Result", style="style", method="COLOR")
        img = bpy.data.images.get("Render Result.stylized")
        return {"result": result, "error": err, "made": img is not None,
                "size": list(img.size) if img is not None else None,
                "std": float(arrays(bpy, "Render Result.stylized")[:, :, :3].std()) if img is not None else 0.0}

    @step("layers_f12")
    def layers_f12():
        """Style layers on F12 with a write, in Blender's own process: the handler turns the passes on, reads them
        (OpenImageIO or the engine's own EXR reader), stylizes the sphere by colour and leaves the rest."""
        from importlib import import_module

        demo = import_module(f"{ADDON}.art_ai_addon.blender.demo_scene")
        sc = demo.build_demo_scene(size=64, samples=2)
        if "style" not in bpy.data.images:
            new_image(bpy, "style", rgba(picture(48, 2)[:, ::-1, ::-1]))
        with bpy.context.temp_override(scene=sc):
            result, err = run_op(bpy.ops.art_ai.style_layer_add, target_kind="OBJECT", target="Sphere")
        sc.art_ai.style_layers[-1].style_image = bpy.data.images["style"]
        sc.art_ai.style_layers[-1].method = "COLOR"
        for vl in sc.view_layers:
            vl.use_pass_cryptomatte_object = vl.use_pass_z = False  # the handler turns them on for the render
        sc.art_ai.stylize_on_render = True
        sc.render.filepath = str(out / "still")
        bpy.ops.render.render(write_still=True)
        made = (out / "still_stylized.png").is_file()
        info = {"result": result, "error": err, "made": made,
                "heavy": [m for m in BLOCKED if sys.modules.get(m) is not None]}
        if made:
            raw = bpy.data.images.load(str(out / "still.png"))
            sty = bpy.data.images.load(str(out / "still_stylized.png"))
            a, b = arrays(bpy, raw.name)[:, :, :3], arrays(bpy, sty.name)[:, :, :3]
            same = np.abs(a - b).max(axis=2) <= 1 / 255
            info.update({"unchanged": float(same.mean()), "changed": float((~same).mean())})
        return info

    @step("torch_refused")
    def torch_refused():
        os.environ.pop("ART_AI_TORCH_PYTHON", None)
        if "content" not in bpy.data.images:
            new_image(bpy, "content", rgba(picture(64, 1)))
            new_image(bpy, "style", rgba(picture(48, 2)))
        result, err = run_op(bpy.ops.art_ai.stylize, image="content", style="style", method="GATYS", steps=2,
                             output="refused")
        return {"result": result, "error": err, "made": "refused" in bpy.data.images}

    @step("opencv_inprocess")
    def opencv_inprocess():
        os.environ.pop("ART_AI_TORCH_PYTHON", None)
        if "content" not in bpy.data.images:
            new_image(bpy, "content", rgba(picture(64, 1)))
        mask = np.zeros((64, 64, 4), np.float32)
        mask[..., 3] = 1.0
        mask[30:33, 4:60, :3] = 1.0
        new_image(bpy, "cvmask", mask)
        result, err = run_op(bpy.ops.art_ai.inpaint, image="content", mask="cvmask", method="TELEA", output="cv.telea")
        made = "cv.telea" in bpy.data.images
        if made:
            np.save(out / "cv_telea.npy", arrays(bpy, "cv.telea"))
            np.save(out / "cv_in.npy", arrays(bpy, "content"))
            np.save(out / "cv_mask.npy", arrays(bpy, "cvmask"))
        cv2 = sys.modules.get("cv2")
        return {"result": result, "error": err, "made": made,
                "cv2_file": getattr(cv2, "__file__", None) if cv2 is not None else None,
                "torch_loaded": sys.modules.get("torch") is not None}

    @step("worker_methods")
    def worker_methods():
        os.environ["ART_AI_TORCH_PYTHON"] = worker
        if "content" not in bpy.data.images:
            new_image(bpy, "content", rgba(picture(64, 1)))
            new_image(bpy, "style", rgba(picture(48, 2)))
        np.save(out / "content.npy", arrays(bpy, "content"))
        np.save(out / "style.npy", arrays(bpy, "style"))
        mask = np.zeros((64, 64, 4), np.float32)
        mask[..., 3] = 1.0
        mask[20:24, 5:60, :3] = 1.0
        new_image(bpy, "mask", mask)
        np.save(out / "mask.npy", arrays(bpy, "mask"))
        got = {}
        for label, fn, kw in (
                ("gatys", bpy.ops.art_ai.stylize, dict(image="content", style="style", method="GATYS", steps=3,
                                                       output="w.gatys")),
                ("patch", bpy.ops.art_ai.generate_texture, dict(image="content", method="PATCH", width=96,
                                                                height=80, seed=3, output="w.patch")),
                ("telea", bpy.ops.art_ai.inpaint, dict(image="content", mask="mask", method="TELEA",
                                                       output="w.telea"))):
            t = time.monotonic()
            result, err = run_op(fn, **kw)
            made = kw["output"] in bpy.data.images
            if made:
                np.save(out / f"worker_{label}.npy", arrays(bpy, kw["output"]))
            got[label] = {"result": result, "error": err, "made": made, "seconds": time.monotonic() - t}
        return {"methods": got}

    @step("worker_killed")
    def worker_killed():
        from importlib import import_module

        worker_mod = import_module(f"{ADDON}.art_ai_addon.worker")
        os.environ["ART_AI_TORCH_PYTHON"] = worker
        client = worker_mod.client(worker)
        client.start()
        pid = client.proc.pid

        def kill_soon():
            time.sleep(2.0)
            if client.proc is not None:
                client.proc.kill()

        threading.Thread(target=kill_soon, daemon=True).start()
        before = set(bpy.data.images.keys())
        result, err = run_op(bpy.ops.art_ai.stylize, image="content", style="style", method="GATYS", steps=5000,
                             output="killed")
        return {"result": result, "error": err, "made": "killed" in bpy.data.images,
                "new_images": sorted(set(bpy.data.images.keys()) - before), "pid": pid}

    @step("unregister")
    def unregister():
        from importlib import import_module

        worker_mod = import_module(f"{ADDON}.art_ai_addon.worker")
        os.environ["ART_AI_TORCH_PYTHON"] = worker
        client = worker_mod.client(worker)
        client.start()
        proc = client.proc
        bpy.ops.preferences.addon_disable(module=ADDON)
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            pass
        return {"worker_exit": proc.poll(), "classes_left": [c for c in dir(bpy.types) if c.startswith("ARTAI_")],
                "sys_path_unchanged": list(sys.path) == report["path_before_enable"]}

    upscale_store = argv[argv.index("--upscale-store") + 1] if "--upscale-store" in argv else None

    @step("upscale")
    def upscale():
        """Lanczos in Blender's process (no worker), then Real-ESRGAN through the worker, then a material's textures."""
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.models_dir = upscale_store
        os.environ.pop("ART_AI_TORCH_PYTHON", None)
        src = rgba(picture(24, 5))
        src[:, :, 3] = np.clip(np.mgrid[0:24, 0:24][1] / 12.0, 0, 1)  # alpha falls to 0 on the left
        new_image(bpy, "small", src)
        np.save(out / "upscale_in.npy", arrays(bpy, "small"))
        got = {}
        for label, kw in (("lanczos", dict(image="small", method="LANCZOS", scale=2.0)),
                          ("esrgan", dict(image="small", method="ESRGAN", scale=2.0, output="small.esrgan"))):
            if label == "esrgan":
                os.environ["ART_AI_TORCH_PYTHON"] = worker
            result, err = run_op(bpy.ops.art_ai.upscale, **kw)
            name = kw.get("output") or "small.upscaled"
            made = name in bpy.data.images
            if made:
                np.save(out / f"upscale_{label}.npy", arrays(bpy, name))
            got[label] = {"result": result, "error": err, "made": made,
                          "torch_here": sys.modules.get("torch") is not None}
        # a material with a colour texture and a normal map: upscaled copies, nodes re-pointed, sources kept
        mat = bpy.data.materials.new("brick")
        mat.use_nodes = True
        nodes = mat.node_tree.nodes
        col = nodes.new("ShaderNodeTexImage")
        col.image = new_image(bpy, "brick_col", rgba(picture(16, 7)))
        nrm = nodes.new("ShaderNodeTexImage")
        flat = np.dstack([np.full((16, 16), 0.5), np.full((16, 16), 0.5), np.ones((16, 16)), np.ones((16, 16))])
        nrm.image = new_image(bpy, "brick_nrm", flat.astype(np.float32))
        nrm.image.colorspace_settings.name = "Non-Color"
        nmap = nodes.new("ShaderNodeNormalMap")
        mat.node_tree.links.new(nrm.outputs["Color"], nmap.inputs["Color"])
        result, err = run_op(bpy.ops.art_ai.upscale_material, material="brick", scale=2.0, method="LANCZOS")
        got["material"] = {"result": result, "error": err,
                           "images": [n.image.name for n in (col, nrm)],
                           "sizes": [list(n.image.size) for n in (col, nrm)],
                           "colorspace": nrm.image.colorspace_settings.name,
                           "sources": [list(bpy.data.images[n].size) for n in ("brick_col", "brick_nrm")]}
        return got

    for fn in (draw_panels, color_byte, color_render, layers_f12, torch_refused, opencv_inprocess):
        if want(fn.__name__):
            fn()
    if worker and upscale_store and want("upscale"):
        upscale()
    if worker:
        for fn in (worker_methods, worker_killed, unregister):
            if want(fn.__name__):
                fn()


class _Panel:
    def __init__(self, layout):
        self.layout = layout


class _PrefsSelf:
    """The preferences' own properties with a recording layout (AddonPreferences.layout is read-only)."""

    def __init__(self, prefs, layout):
        object.__setattr__(self, "_prefs", prefs)
        object.__setattr__(self, "layout", layout)

    def __getattr__(self, key):
        return getattr(self._prefs, key)


class _Ctx:
    """bpy.context for draw(): the real scene and preferences, an Image Editor-like space with an image."""

    def __init__(self, bpy):
        self.scene = bpy.context.scene
        self.preferences = bpy.context.preferences
        self.window_manager = bpy.context.window_manager
        img = next(iter(bpy.data.images), None)
        self.space_data = type("Space", (), {"type": "IMAGE_EDITOR", "image": img, "tree_type": "ShaderNodeTree"})()
        self.active_node = None
        self.selected_objects = []


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    finally:
        out_dir = Path(sys.argv[2])
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=str))
        os._exit(0)  # bpy's atexit can hang in a blocked-module process; the report is written
