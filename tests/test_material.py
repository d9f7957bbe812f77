"""build_pbr_material with the real bpy: node graph, colour spaces, box projection, Cycles render, save+reload."""

from __future__ import annotations

import numpy as np
import skimage.data

from art_ai_addon.texture import make_seamless, pbr_maps


def _bpy_image(bpy, name, arr, data=False):
    """numpy (H, W, C) row 0 top -> a new bpy image (Blender stores rows bottom-up, RGBA)."""
    h, w = arr.shape[:2]
    rgba = np.ones((h, w, 4), np.float32)
    rgba[:, :, :3] = arr[:, :, :3] if arr.shape[2] >= 3 else arr[:, :, :1]
    img = bpy.data.images.new(name, w, h, alpha=False, float_buffer=False, is_data=data)
    img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())
    img.update()
    return img


def _textures(bpy, tag):
    gravel = skimage.data.gravel()[:96, :96].astype(np.float32) / 255.0
    tint = np.array([0.9, 0.55, 0.3], np.float32)  # a warm colour so the texture also shows in the render's hue
    albedo = make_seamless(gravel[:, :, None] * tint)
    maps = pbr_maps(albedo, tileable=True)
    a = _bpy_image(bpy, f"{tag}.albedo", albedo)
    m = {k: _bpy_image(bpy, f"{tag}.{k}", v, data=True) for k, v in maps.items()}
    return a, m


def _links_into(mat, node, socket):
    return [lk.from_node for lk in mat.node_tree.links if lk.to_node == node and lk.to_socket.name == socket]


def _scene(bpy, name, *, uv=True):
    scene = bpy.data.scenes.new(name)
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = 64
    scene.render.resolution_percentage = 100
    mesh = bpy.data.meshes.new(name + ".mesh")
    verts = [(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)]
    mesh.from_pydata(verts, [], [(0, 1, 2, 3)])
    if uv:
        layer = mesh.uv_layers.new(name="UVMap")
        for loop, (x, y, _z) in zip(layer.data, verts):
            loop.uv = ((x + 1) / 2, (y + 1) / 2)
    mesh.update()
    obj = bpy.data.objects.new(name + ".plane", mesh)
    scene.collection.objects.link(obj)
    cam_data = bpy.data.cameras.new(name + ".cam")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = 2.0
    cam = bpy.data.objects.new(name + ".cam", cam_data)
    cam.location = (0, 0, 3)
    scene.collection.objects.link(cam)
    scene.camera = cam
    light_data = bpy.data.lights.new(name + ".sun", "SUN")
    light_data.energy = 3.0
    light = bpy.data.objects.new(name + ".sun", light_data)
    light.rotation_euler = (0.5, 0.3, 0.0)
    scene.collection.objects.link(light)
    return scene, obj


def _render(bpy, scene, path):
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    bpy.ops.render.render(write_still=True, scene=scene.name)
    from art_ai_addon.imageio import read_image

    return read_image(path)[:, :, :3]


def test_node_graph_colour_spaces_and_assignment():
    import bpy

    from art_ai_addon.blender.materials import build_pbr_material

    scene, obj = _scene(bpy, "artai_mat_graph")
    albedo, maps = _textures(bpy, "graph")
    # a data map created with the wrong (sRGB) colour space is switched to Non-Color without losing its pixels
    wrong = maps["roughness"]
    wrong.colorspace_settings.name = "sRGB"
    ramp = np.ones((len(wrong.pixels) // 4, 4), np.float32)
    ramp[:, :3] = np.linspace(0, 1, ramp.shape[0], dtype=np.float32)[:, None]
    wrong.pixels.foreach_set(ramp.ravel())
    wrong.update()
    mat = build_pbr_material("ArtAI Graph", albedo, maps, normal_strength=0.7, objects=[obj])
    nodes = mat.node_tree.nodes
    bsdf = next(n for n in nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    out = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    assert _links_into(mat, out, "Surface") == [bsdf]
    # albedo (sRGB) reaches Base Color (through the AO multiply)
    base_src = _links_into(mat, bsdf, "Base Color")[0]
    feeders = [lk.from_node for lk in mat.node_tree.links if lk.to_node == base_src] + [base_src]
    albedo_nodes = [n for n in feeders if n.bl_idname == "ShaderNodeTexImage" and n.image == albedo]
    assert albedo_nodes and albedo.colorspace_settings.name == "sRGB"
    rough = _links_into(mat, bsdf, "Roughness")[0]
    assert rough.bl_idname == "ShaderNodeTexImage" and rough.image == maps["roughness"]
    px = np.empty(len(wrong.pixels), np.float32)
    wrong.pixels.foreach_get(px)
    assert np.abs(px - ramp.ravel()).max() < 1.5 / 255
    nmap = _links_into(mat, bsdf, "Normal")[0]
    assert nmap.bl_idname == "ShaderNodeNormalMap"
    assert abs(nmap.inputs["Strength"].default_value - 0.7) < 1e-6
    assert _links_into(mat, nmap, "Color")[0].image == maps["normal"]
    for key in ("roughness", "normal", "height", "ao"):
        assert maps[key].colorspace_settings.name == "Non-Color", key
    # one Mapping node feeds every image node; UV coordinates since the plane has UVs
    mappings = [n for n in nodes if n.bl_idname == "ShaderNodeMapping"]
    assert len(mappings) == 1
    for n in nodes:
        if n.bl_idname == "ShaderNodeTexImage":
            assert _links_into(mat, n, "Vector") == mappings
            assert n.projection == "FLAT"
    coord_link = [lk for lk in mat.node_tree.links if lk.to_node == mappings[0]][0]
    assert coord_link.from_socket.name == "UV"
    # displacement is off by default
    assert _links_into(mat, out, "Displacement") == []
    assert obj.active_material == mat
    bpy.data.scenes.remove(scene)


def test_displacement_and_box_projection_without_uvs():
    import bpy

    from art_ai_addon.blender.materials import build_pbr_material

    scene, obj = _scene(bpy, "artai_mat_box", uv=False)
    albedo, maps = _textures(bpy, "box")
    mat = build_pbr_material("ArtAI Box", albedo, maps, displacement=True, objects=[obj])
    nodes = mat.node_tree.nodes
    out = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    disp = _links_into(mat, out, "Displacement")[0]
    assert disp.bl_idname == "ShaderNodeDisplacement"
    assert _links_into(mat, disp, "Height")[0].image == maps["height"]
    images = [n for n in nodes if n.bl_idname == "ShaderNodeTexImage"]
    assert images and all(n.projection == "BOX" for n in images)
    mapping = next(n for n in nodes if n.bl_idname == "ShaderNodeMapping")
    src = [lk.from_socket.name for lk in mat.node_tree.links if lk.to_node == mapping]
    assert src in (["Object"], ["Generated"])
    assert obj.active_material == mat
    bpy.data.scenes.remove(scene)


def test_cycles_render_shows_the_texture(tmp_path):
    import bpy

    from art_ai_addon.blender.materials import build_pbr_material

    scene, obj = _scene(bpy, "artai_mat_render")
    plain = bpy.data.materials.new("ArtAI Plain")
    obj.data.materials.append(plain)
    before = _render(bpy, scene, tmp_path / "plain.png")
    albedo, maps = _textures(bpy, "render")
    build_pbr_material("ArtAI Render", albedo, maps, objects=[obj])
    after = _render(bpy, scene, tmp_path / "textured.png")
    # the textured plane has the texture's spatial detail and its warm tint; the plain one is flat grey
    assert after.std(axis=(0, 1)).mean() > 3 * before.std(axis=(0, 1)).mean() + 0.01
    r, g, b = after.reshape(-1, 3).mean(axis=0)
    assert r > b + 0.05
    pr, pg, pb = before.reshape(-1, 3).mean(axis=0)
    assert abs(pr - pb) < 0.02
    bpy.data.scenes.remove(scene)


def test_images_survive_save_and_reload(tmp_path):
    import bpy

    from art_ai_addon.blender.materials import build_pbr_material, pack_or_keep

    scene, obj = _scene(bpy, "artai_mat_saved")
    albedo, maps = _textures(bpy, "saved")
    mat = build_pbr_material("ArtAI Saved", albedo, maps, objects=[obj])
    names = [albedo.name] + [m.name for m in maps.values()]
    want = {}
    for img in [albedo, *maps.values()]:
        assert img.packed_file is not None
        px = np.empty(len(img.pixels), np.float32)
        img.pixels.foreach_get(px)
        want[img.name] = px
    pack_or_keep(albedo)  # packing twice is harmless
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    assert path.is_file()
    with bpy.data.libraries.load(str(path)) as (src, dst):
        assert set(names) <= set(src.images)
        dst.images = list(names)
        dst.materials = [mat.name]
    for img in dst.images:
        assert img.packed_file is not None
        assert img.colorspace_settings.name == ("sRGB" if img.name.startswith(albedo.name) else "Non-Color")
        px = np.empty(len(img.pixels), np.float32)
        img.pixels.foreach_get(px)
        ref = want[next(n for n in names if img.name.startswith(n))]
        assert px.shape == ref.shape and np.abs(px - ref).max() < 1.5 / 255
    loaded = dst.materials[0]
    assert any(n.bl_idname == "ShaderNodeTexImage" and n.image is not None and n.image.packed_file is not None
               for n in loaded.node_tree.nodes)
