"""A small procedural scene (floor, sphere, cube, sun, camera) rendered with Cycles on the CPU.

Used by the demo (`scripts/demo.py`) and the tests, so both exercise a real render.
"""

from __future__ import annotations

import math

import bpy


def _material(name, color, noise_scale=None, roughness=0.5, checker=None):
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender < 5 makes materials without nodes
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    if checker:
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = checker
        tex.inputs["Color1"].default_value = (*color, 1.0)
        tex.inputs["Color2"].default_value = (color[0] * 0.3, color[1] * 0.3, color[2] * 0.3, 1.0)
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    elif noise_scale:
        noise = nodes.new("ShaderNodeTexNoise")
        noise.inputs["Scale"].default_value = noise_scale
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = (color[0] * 0.2, color[1] * 0.2, color[2] * 0.2, 1.0)
        ramp.color_ramp.elements[1].color = (*color, 1.0)
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _empty_cycles_scene(size: int, samples: int):
    """An empty file (add-ons stay enabled, unlike factory settings) with Cycles on the CPU, `size` px square."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    return scene


def build_demo_scene(size: int = 128, samples: int = 8, frames: int = 1):
    """Reset to an empty scene and build the demo; returns the scene (Cycles, CPU, `size` px square)."""
    scene = _empty_cycles_scene(size, samples)
    scene.frame_start, scene.frame_end = 1, frames
    world = bpy.data.worlds.new("World")
    if world.node_tree is None:
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.55, 0.65, 0.85, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
    scene.world = world

    bpy.ops.mesh.primitive_plane_add(size=12)
    floor = bpy.context.object
    floor.data.materials.append(_material("Floor", (0.8, 0.75, 0.6), checker=6.0, roughness=0.8))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=1.0, location=(-1.1, 0.3, 1.0), segments=48, ring_count=24)
    sphere = bpy.context.object
    bpy.ops.object.shade_smooth()
    sphere.data.materials.append(_material("Sphere", (0.9, 0.25, 0.1), noise_scale=6.0, roughness=0.3))
    bpy.ops.mesh.primitive_cube_add(size=1.3, location=(1.3, -0.4, 0.65), rotation=(0, 0, math.radians(30)))
    cube = bpy.context.object
    cube.data.materials.append(_material("Cube", (0.15, 0.45, 0.9), roughness=0.4))
    if frames > 1:
        cube.location.x = 1.0
        cube.keyframe_insert("location", frame=1)
        cube.location.x = 1.8
        cube.keyframe_insert("location", frame=frames)

    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(45), 0, math.radians(35)))
    bpy.context.object.data.energy = 3.5
    bpy.ops.object.camera_add(location=(0.0, -6.5, 3.6), rotation=(math.radians(65), 0, 0))
    scene.camera = bpy.context.object
    return scene


def render_still(scene=None):
    """Render the current frame into Render Result (F12 equivalent)."""
    scene = scene or bpy.context.scene
    bpy.ops.render.render(write_still=False)
    return bpy.data.images["Render Result"]


def build_swatch_scene(size: int = 128, samples: int = 8):
    """A top-down render of a procedural stone material: an exemplar for texture synthesis made by Cycles."""
    scene = _empty_cycles_scene(size, samples)
    scene.view_settings.view_transform = "Standard"
    mat = bpy.data.materials.new("Stones")
    if mat.node_tree is None:
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    def op_node(op, a, b):
        node = nodes.new("ShaderNodeMath")
        node.operation = op
        for i, v in enumerate((a, b)):
            if isinstance(v, float):
                node.inputs[i].default_value = v
            else:
                links.new(v, node.inputs[i])
        return node.outputs[0]

    edges = nodes.new("ShaderNodeTexVoronoi")  # cobblestones: dark joints where the distance to an edge is small
    edges.feature = "DISTANCE_TO_EDGE"
    edges.inputs["Scale"].default_value = 6.0
    cells = nodes.new("ShaderNodeTexVoronoi")  # one random shade per stone
    cells.inputs["Scale"].default_value = 6.0
    shade = nodes.new("ShaderNodeRGBToBW")
    links.new(cells.outputs["Color"], shade.inputs["Color"])
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 30.0
    joint = op_node("MINIMUM", op_node("MULTIPLY", edges.outputs["Distance"], 12.0), 1.0)
    value = op_node("MULTIPLY", joint, op_node("ADD", op_node("MULTIPLY", shade.outputs["Val"], 0.5), 0.45))
    value = op_node("ADD", value, op_node("MULTIPLY", noise.outputs["Fac"], 0.15))
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].color = (0.08, 0.06, 0.05, 1.0)
    ramp.color_ramp.elements[1].color = (0.8, 0.62, 0.42, 1.0)
    links.new(value, ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Strength"].default_value = 0.5
    links.new(joint, bump.inputs["Height"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    bpy.ops.mesh.primitive_plane_add(size=2)
    bpy.context.object.data.materials.append(mat)
    bpy.ops.object.light_add(type="SUN", rotation=(math.radians(30), math.radians(20), 0))
    bpy.context.object.data.energy = 3.0
    cam_data = bpy.data.cameras.new("Top")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = 2.0
    cam = bpy.data.objects.new("Top", cam_data)
    cam.location = (0.0, 0.0, 3.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene


def _paint_material(mat, scale: float, seed: float) -> None:
    """A 'painted' version of a material: random-coloured patches and streaks fixed in UV space, mixed into its base
    colour (the ground truth an artist's painted keyframe should carry to every frame)."""
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    base = bsdf.inputs["Base Color"]
    coord = nodes.new("ShaderNodeTexCoord")
    cells = nodes.new("ShaderNodeTexVoronoi")
    cells.inputs["Scale"].default_value = scale
    if "W" in cells.inputs:
        cells.voronoi_dimensions = "4D"
        cells.inputs["W"].default_value = seed
    links.new(coord.outputs["UV"], cells.inputs["Vector"])
    wave = nodes.new("ShaderNodeTexWave")
    wave.inputs["Scale"].default_value = scale * 0.7
    wave.inputs["Distortion"].default_value = 6.0
    links.new(coord.outputs["UV"], wave.inputs["Vector"])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs["Factor"].default_value = 0.55
    if base.links:
        links.new(base.links[0].from_socket, mix.inputs["A"])
    else:
        mix.inputs["A"].default_value = base.default_value
    links.new(cells.outputs["Color"], mix.inputs["B"])
    streak = nodes.new("ShaderNodeMix")
    streak.data_type = "RGBA"
    streak.blend_type = "MULTIPLY"
    streak.inputs["Factor"].default_value = 0.5
    links.new(mix.outputs["Result"], streak.inputs["A"])
    links.new(wave.outputs["Color"], streak.inputs["B"])
    links.new(streak.outputs["Result"], base)


def build_keyframe_scene(size: int = 96, samples: int = 4, frames: int = 8, painted: bool = False):
    """An animated scene for keyframe propagation: the camera dollies, the cube slides (showing floor that was behind
    it) and a cone comes into view. `painted`: the same scene with its materials painted in UV space (the ground
    truth). The Cryptomatte, Depth, Normal, UV, Vector and Position passes are on."""
    scene = build_demo_scene(size=size, samples=samples, frames=frames)
    scene.render.resolution_x = int(round(size * 4 / 3))
    bpy.ops.mesh.primitive_cone_add(radius1=0.6, depth=1.6, location=(4.2, -1.6, 0.8))
    cone = bpy.context.object
    cone.name = "Cone"
    cone.data.materials.append(_material("Cone", (0.2, 0.7, 0.3), roughness=0.5))
    cone.keyframe_insert("location", frame=1)
    cone.location.x = 2.3
    cone.keyframe_insert("location", frame=frames)
    cam = scene.camera
    cam.keyframe_insert("location", frame=1)
    cam.location = (0.6, -6.0, 3.3)
    cam.keyframe_insert("location", frame=frames)
    for obj in (cone, cam, bpy.data.objects["Cube"]):
        if obj.animation_data and obj.animation_data.action:
            for fc in _fcurves(obj.animation_data):
                for kp in fc.keyframe_points:
                    kp.interpolation = "LINEAR"
    if painted:
        for k, (name, scale) in enumerate((("Floor", 40.0), ("Sphere", 9.0), ("Cube", 7.0), ("Cone", 8.0))):
            _paint_material(bpy.data.materials[name], scale, float(k))
    scene.render.use_motion_blur = False
    for vl in scene.view_layers:
        for flag in ("use_pass_cryptomatte_object", "use_pass_z", "use_pass_normal", "use_pass_uv",
                     "use_pass_vector", "use_pass_position"):
            if hasattr(vl, flag):
                setattr(vl, flag, True)
    return scene


def _fcurves(anim):
    """The F-curves of an object's action (Blender 5 keeps them in layered action channelbags)."""
    action = anim.action
    if hasattr(action, "fcurves") and len(getattr(action, "fcurves", ())):
        return list(action.fcurves)
    out = []
    for layer in getattr(action, "layers", ()):
        for strip in layer.strips:
            for bag in getattr(strip, "channelbags", ()):
                out.extend(bag.fcurves)
    return out
