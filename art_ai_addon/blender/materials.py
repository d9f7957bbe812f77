"""One-click PBR material: albedo + height/normal/roughness/AO images wired into a Principled BSDF.

Works with Blender 4.2 and newer (5.x materials always have nodes; `use_nodes` is only set before 5.0).
"""

from __future__ import annotations

import bpy


def pack_or_keep(image) -> None:
    """Make sure the image survives save + reload: pack it into the .blend (generated pixels included).

    If packing is impossible (a movie or sequence source) the image keeps pointing at its file, which must then
    exist; anything else raises so the caller can report it instead of silently losing the image.
    """
    if image is None or image.packed_file is not None:
        return
    if image.source in {"MOVIE", "SEQUENCE"}:
        path = bpy.path.abspath(image.filepath)
        if not path:
            raise RuntimeError(f"image {image.name!r} is a {image.source.lower()} without a file; save it first")
        return
    if image.is_float and image.file_format not in {"OPEN_EXR", "OPEN_EXR_MULTILAYER"}:
        image.file_format = "OPEN_EXR"  # keep float precision inside the .blend
    image.pack()


def _socket(sockets, identifier: str):
    """Socket by identifier (the Mix node repeats names like 'A' for each data type)."""
    for s in sockets:
        if s.identifier == identifier:
            return s
    return sockets[identifier]


def _has_uv(obj) -> bool:
    data = getattr(obj, "data", None)
    uv = getattr(data, "uv_layers", None)
    return uv is not None and len(uv) > 0


def build_pbr_material(name: str, albedo, maps: dict, *, normal_strength: float = 1.0, displacement: bool = False,
                       objects=(), scale: float = 1.0, ao_factor: float = 0.5):
    """A Principled BSDF material from `albedo` (sRGB) and data `maps` (Non-Color); assigned to `objects`.

    Layout: Texture Coordinate -> one Mapping (scale) -> every Image Texture. Albedo (x AO, multiplied in at
    `ao_factor`) -> Base Color; roughness -> Roughness; normal -> Normal Map -> Normal; height -> Displacement
    (only when `displacement`). When some object has no UV map, the images use box projection on Object
    coordinates, and the relief comes from a Bump node on the height map (tangent-space normals need UVs).
    """
    objects = [o for o in objects if o is not None and getattr(o, "type", "") in {"MESH", "CURVE", "SURFACE",
                                                                                      "META", "FONT"}]
    box = any(not _has_uv(o) for o in objects)
    mat, bsdf, out = _empty_material(name)
    tex = _texture_factory(mat.node_tree, scale, box)
    _wire_colour(mat.node_tree, bsdf, tex, albedo, maps, ao_factor)
    if maps.get("roughness") is not None:
        mat.node_tree.links.new(tex(maps["roughness"], "Roughness", 100, True).outputs["Color"],
                                bsdf.inputs["Roughness"])
    height = tex(maps["height"], "Height", -500, True) if maps.get("height") is not None else None
    _wire_relief(mat.node_tree, bsdf, tex, maps, height, normal_strength, box)
    if displacement and height is not None:
        _wire_displacement(mat, out, height)
    _assign(mat, objects)
    return mat


def _empty_material(name: str):
    """(material, Principled BSDF, output) with nothing else in its tree."""
    mat = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for n in list(nodes):
        nodes.remove(n)
    out = nodes.new("ShaderNodeOutputMaterial")
    out.location = (900, 0)
    bsdf = nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.location = (550, 0)
    links.new(bsdf.outputs["BSDF"], out.inputs["Surface"])
    return mat, bsdf, out


def _texture_factory(nt, scale: float, box: bool):
    """tex(image, label, y, data) -> an Image Texture node fed by one shared Mapping node."""
    nodes, links = nt.nodes, nt.links
    coord = nodes.new("ShaderNodeTexCoord")
    coord.location = (-900, 0)
    mapping = nodes.new("ShaderNodeMapping")
    mapping.location = (-700, 0)
    mapping.inputs["Scale"].default_value = (scale, scale, scale)
    links.new(coord.outputs["Object" if box else "UV"], mapping.inputs["Vector"])

    def tex(image, label: str, y: float, data: bool):
        node = nodes.new("ShaderNodeTexImage")
        node.name = node.label = label
        node.location = (-400, y)
        node.image = image
        if image is not None:
            # pack first: changing the colour space of an unsaved (generated) image regenerates it blank,
            # while a packed one is re-read from its packed bytes
            pack_or_keep(image)
            space = "Non-Color" if data else "sRGB"
            if image.colorspace_settings.name != space:
                image.colorspace_settings.name = space
        node.interpolation = "Linear"
        if box:
            node.projection = "BOX"
            node.projection_blend = 0.2
        links.new(mapping.outputs["Vector"], node.inputs["Vector"])
        return node

    return tex


def _wire_colour(nt, bsdf, tex, albedo, maps: dict, ao_factor: float) -> None:
    nodes, links = nt.nodes, nt.links
    base = tex(albedo, "Albedo", 400, False)
    color_out = base.outputs["Color"]
    if maps.get("ao") is not None:
        ao = tex(maps["ao"], "AO", 700, True)
        mix = nodes.new("ShaderNodeMix")
        mix.name = mix.label = "AO Multiply"
        mix.location = (150, 500)
        mix.data_type = "RGBA"
        mix.blend_type = "MULTIPLY"
        _socket(mix.inputs, "Factor_Float").default_value = ao_factor
        links.new(base.outputs["Color"], _socket(mix.inputs, "A_Color"))
        links.new(ao.outputs["Color"], _socket(mix.inputs, "B_Color"))
        color_out = _socket(mix.outputs, "Result_Color")
    links.new(color_out, bsdf.inputs["Base Color"])


def _wire_relief(nt, bsdf, tex, maps: dict, height, normal_strength: float, box: bool) -> None:
    """Tangent-space normal map with UVs; a Bump node on the height map under box projection."""
    nodes, links = nt.nodes, nt.links
    if maps.get("normal") is not None and not box:
        nrm = tex(maps["normal"], "Normal", -200, True)
        nmap = nodes.new("ShaderNodeNormalMap")
        nmap.location = (150, -200)
        nmap.inputs["Strength"].default_value = normal_strength
        links.new(nrm.outputs["Color"], nmap.inputs["Color"])
        links.new(nmap.outputs["Normal"], bsdf.inputs["Normal"])
    elif height is not None and box:
        bump = nodes.new("ShaderNodeBump")
        bump.location = (150, -200)
        bump.inputs["Strength"].default_value = min(1.0, 0.5 * normal_strength)
        links.new(height.outputs["Color"], bump.inputs["Height"])
        links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


def _wire_displacement(mat, out, height) -> None:
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    disp = nodes.new("ShaderNodeDisplacement")
    disp.location = (550, -500)
    disp.inputs["Midlevel"].default_value = 0.5
    disp.inputs["Scale"].default_value = 0.05
    links.new(height.outputs["Color"], disp.inputs["Height"])
    links.new(disp.outputs["Displacement"], out.inputs["Displacement"])
    target = mat if hasattr(mat, "displacement_method") else getattr(mat, "cycles", None)
    if target is not None and hasattr(target, "displacement_method"):
        target.displacement_method = "BOTH"


def _assign(mat, objects) -> None:
    for obj in objects:
        if len(obj.material_slots) == 0:
            obj.data.materials.append(mat)
        else:  # replace the active slot, whether it is linked to the object or to its data
            idx = obj.active_material_index if obj.active_material_index < len(obj.material_slots) else 0
            obj.material_slots[idx].material = mat
