"""The one method table (art_ai_addon/methods.py) and every front-end derived from it: the API, the CLI, the
Blender enums, batch job files and the docs accept the same methods with the same options, and refuse unknown
options the same way."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, addon_module

from art_ai_addon import methods

API = {
    "stylize": lambda m, **o: __import__("art_ai_addon").stylize(_img(), _img(1), method=m, **o),
    "texture": lambda m, **o: __import__("art_ai_addon").synthesize_texture(_img(), size=(16, 16), method=m, **o),
    "inpaint": lambda m, **o: __import__("art_ai_addon").inpaint(_img(), _mask(), method=m, **o),
    "upscale": lambda m, **o: __import__("art_ai_addon").upscale(_img(), 2, method=m, **o),
    "propagate": lambda m, **o: __import__("art_ai_addon").propagate_keyframes([_img(), _img(1)], {0: _img(2)},
                                                                               method=m, **o),
}
ALL = [(m.feature, m.name) for m in methods.METHODS]


def _img(seed=0):
    return np.random.default_rng(seed).random((24, 24, 3)).astype(np.float32)


def _mask():
    m = np.zeros((24, 24), np.float32)
    m[10:12, 4:20] = 1
    return m


@pytest.mark.parametrize("feature,name", ALL)
def test_the_api_refuses_an_unknown_option_for_every_method(feature, name):
    from art_ai_addon.errors import InputError

    with pytest.raises(InputError, match=r"^pach_size: not an option"):
        API[feature](name, pach_size=3)


@pytest.mark.parametrize("feature,name", ALL)
def test_the_api_refuses_another_methods_option(feature, name):
    """An option that belongs to another method of the feature is refused, naming the method's own options."""
    from art_ai_addon.errors import InputError

    record = methods.get(feature, name)
    foreign = [o for o in methods.OPTIONS[feature] if not record.accepts(o)]
    if not foreign:  # auto takes every option of its feature (and every method, where all options are common)
        assert name == "auto" or set(methods.OPTIONS[feature]) <= methods.COMMON[feature]
        return
    with pytest.raises(InputError, match=f"^{foreign[0]}: not an option of {feature} method '{name}'"):
        API[feature](name, **{foreign[0]: 1})


def test_option_values_are_checked_from_the_table():
    from art_ai_addon.errors import InputError

    with pytest.raises(InputError, match="steps: -1 is out of range"):
        methods.check("stylize", "gatys", {"steps": -1})
    with pytest.raises(InputError, match="seed: expected a whole number"):
        methods.check("inpaint", "patch", {"seed": "x"})
    with pytest.raises(InputError, match="not a finite number"):
        methods.check("texture", "neural", {"memory_mb": float("nan")})
    record, opts = methods.check("stylize", "GATYS", {"steps": 5.0})
    assert record.name == "gatys" and opts == {"steps": 5} and isinstance(opts["steps"], int)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "art_ai_addon", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


@pytest.mark.parametrize("command,feature", [("stylize", "stylize"), ("texture", "texture"),
                                             ("inpaint", "inpaint")])
def test_the_cli_offers_exactly_the_table(command, feature):
    text = _cli(command, "--help").stdout
    choices = re.search(r"--method \{([^}]*)\}", text).group(1).split(",")
    assert choices == list(methods.names(feature))
    for opt in methods.cli_options(feature):
        assert opt.flag in text, opt.flag
    hidden = [o for o in methods.OPTIONS[feature].values() if not o.cli]
    for opt in hidden:
        assert not re.search(re.escape(opt.flag) + r"(?![\w-])", text), opt.flag  # internal knobs: API only


def test_the_cli_refuses_unknown_options_and_methods(tmp_path):
    p = _cli("inpaint", "x.png", "--detect", "-o", str(tmp_path / "o.png"), "--pach-size", "3")
    assert p.returncode == 2 and "unrecognized arguments: --pach-size" in p.stderr
    p = _cli("inpaint", "x.png", "--detect", "-o", str(tmp_path / "o.png"), "--method", "nope")
    assert p.returncode == 2 and "invalid choice: 'nope'" in p.stderr


def test_blender_enums_are_the_table(blender):
    bpy = blender
    props = addon_module("art_ai_addon.blender.props")
    for feature, op, prop in (("stylize", "stylize", "method"), ("texture", "generate_texture", "method"),
                              ("inpaint", "inpaint", "method")):
        ids = [m.ui for m in methods.of(feature)]
        rna = getattr(bpy.ops.art_ai, op).get_rna_type().properties[prop]
        assert [e.identifier for e in rna.enum_items] == ids
        scene_prop = {"stylize": "stylize_method", "texture": "texture_method", "inpaint": "inpaint_method"}[feature]
        scene_rna = props.ArtAISettings.bl_rna.properties[scene_prop]
        assert [e.identifier for e in scene_rna.enum_items] == ids


def test_every_method_is_in_the_docs():
    text = (ROOT / "docs" / "methods.md").read_text()
    start, end = "<!-- methods-table -->", "<!-- /methods-table -->"
    assert start in text and end in text, "docs/methods.md lost its generated table markers"
    generated = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert generated == methods.markdown_table(), (
        "docs/methods.md's table is out of date: paste the output of "
        "`python -c 'import art_ai_addon.methods as m; print(m.markdown_table())'` between the markers")
    for m in methods.METHODS:
        assert f"`{m.name}`" in text


def test_gpu_flags_follow_needs():
    for m in methods.METHODS:
        if m.gpu:
            assert "torch" in m.needs, m
        assert set(m.needs) <= set(methods.NEED_MODULES), m
