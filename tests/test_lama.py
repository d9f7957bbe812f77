"""LaMa from the official release's formats: the Lightning checkpoint (best.ckpt), plain state_dicts, safe loading.

Nothing is downloaded: the weights files are made here, in the release's key layout, from a reduced generator
(ngf 8, 2 downsamplings, 2 blocks) so every test runs in well under a second.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import types
import typing
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import art_ai_addon as art
from art_ai_addon.errors import ModelError, NotAvailableError
from art_ai_addon.models import layouts, registry, store
from art_ai_addon.repair import lama_net

torch.set_num_threads(1)

TINY = {"ngf": 8, "n_downsampling": 2, "n_blocks": 2}


# ---------------------------------------------------------------------------------------------
# Helpers: weights in the release's layout, and the training metadata a Lightning checkpoint pickles


def tiny_generator(seed=0, **config):
    """A reduced LaMa generator with random weights and BatchNorm statistics (so eval mode matters)."""
    torch.manual_seed(seed)
    net = lama_net.build_generator(torch, {**TINY, **config})
    with torch.no_grad():
        for module in net.modules():  # He initialisation keeps signals at a trained network's strength
            if isinstance(module, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        for name, t in net.state_dict().items():
            if name.endswith("running_mean"):
                t.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif name.endswith("bn_l.weight") or name.endswith("bn_g.weight"):
                t.uniform_(0.5, 1.5)
    return net.eval()


def image(h=96, w=96, seed=1):
    """A smooth colour picture with some texture, in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.3 * np.cos(5 * y), 0.3 + 0.4 * x * y], axis=-1)
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype(np.float32)


def square_hole(h=96, w=96, a=36, b=60):
    mask = np.zeros((h, w), np.float32)
    mask[a:b, a:b] = 1
    return mask


def _named(cls, module):
    cls.__module__, cls.__qualname__ = module, cls.__name__
    return cls


class Metadata:
    pass


class ContainerMetadata(Metadata):
    pass


class AnyNode:
    pass


class ListConfig:
    pass


class DictConfig:
    """Like omegaconf's: pickled as its __dict__, restored by __setstate__, which here leaves a marker if run."""

    def __setstate__(self, state):
        if state.get("_marker"):
            Path(state["_marker"]).write_text("metadata code ran")
        self.__dict__.update(state)


class ModelCheckpoint:
    pass


FAKE = {
    "omegaconf.base": [_named(Metadata, "omegaconf.base"), _named(ContainerMetadata, "omegaconf.base")],
    "omegaconf.nodes": [_named(AnyNode, "omegaconf.nodes")],
    "omegaconf.listconfig": [_named(ListConfig, "omegaconf.listconfig")],
    "omegaconf.dictconfig": [_named(DictConfig, "omegaconf.dictconfig")],
    "pytorch_lightning.callbacks.model_checkpoint": [_named(ModelCheckpoint,
                                                            "pytorch_lightning.callbacks.model_checkpoint")],
}


@contextlib.contextmanager
def fake_training_modules():
    """Stand-ins for omegaconf / pytorch_lightning under their real module names, so pickle writes the same
    GLOBALs as a real LaMa checkpoint (neither package is installed here)."""
    saved = {}
    names = set()
    for mod in FAKE:
        parts = mod.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    for name in sorted(names):
        saved[name] = sys.modules.get(name)
        module = types.ModuleType(name)
        for cls in FAKE.get(name, []):
            setattr(module, cls.__name__, cls)
        sys.modules[name] = module
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def training_config(marker=None):
    """An OmegaConf-like DictConfig tree as LaMa's save_hyperparameters(config) pickles it."""
    def meta(cls, key, object_type):
        m = cls()
        m.__dict__.update(ref_type=typing.Any, object_type=object_type, optional=True, key=key, flags={},
                          flags_root=False, resolver_cache=collections.defaultdict(dict, {"env": {"TORCH_HOME": 1}}),
                          key_type=typing.Any, element_type=typing.Any)
        return m

    def node(value, key):
        n = AnyNode()
        n.__dict__.update(_val=value, _metadata=meta(Metadata, key, None), _parent=None)
        return n

    gen = DictConfig()
    gen.__dict__.update(_metadata=meta(ContainerMetadata, "generator", dict), _parent=None,
                        _content={"kind": node("ffc_resnet", "kind"), "n_blocks": node(18, "n_blocks")})
    order = ListConfig()
    order.__dict__.update(_metadata=meta(ContainerMetadata, "key_order", list), _parent=None,
                          _content=[node("image", 0), node("inpainted", 1)])
    cfg = DictConfig()
    cfg.__dict__.update(_metadata=meta(ContainerMetadata, None, dict), _parent=None, _marker=marker and str(marker),
                        _content={"generator": gen, "visualizer": order})
    gen.__dict__["_parent"] = cfg
    return cfg


def save_lightning_checkpoint(gen_sd, path, *, marker=None, extra=None):
    """{"state_dict": ...} as PyTorch Lightning 1.2.9 saved LaMa's training module (big-lama/models/best.ckpt)."""
    sd = {f"generator.{k}": v for k, v in gen_sd.items()}
    sd["discriminator.model0.0.weight"] = torch.zeros(64, 3, 4, 4)  # weights of other modules: ignored
    sd["loss_resnet_pl.impl.conv1.weight"] = torch.zeros(8, 3, 3, 3)
    ckpt = {"epoch": 40, "global_step": 1000, "pytorch-lightning_version": "1.2.9", "state_dict": sd}
    with fake_training_modules():
        cfg = training_config(marker)
        ckpt.update({"callbacks": {ModelCheckpoint: {"monitor": "val_ssim_fid100_f1_total_mean",
                                                     "best_model_score": torch.tensor(0.9), "dirpath": "/x"}},
                     "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999),
                                                                          "params": [0, 1]}]}],
                     "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": cfg,
                     "hparams_type": DictConfig})
        ckpt.update(extra or {})
        torch.save(ckpt, path)
    return Path(path)


def reference(net, img, mask):
    """What LaMa computes: the generator on img * (1 - mask) and the mask; known pixels kept."""
    x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
    m = torch.from_numpy(mask)[None, None]
    with torch.no_grad():
        pred = net(torch.cat([x * (1 - m), m], 1))
    out = pred[0].permute(1, 2, 0).numpy()
    return np.where(mask[..., None] > 0, out, img)


@pytest.fixture
def mstore(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    return root


class Evil:
    """A pickle payload that would write a marker file if anything ever ran it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


# ---------------------------------------------------------------------------------------------
# The network against the release's layout


def test_generator_has_the_release_key_layout():
    """At big-lama's configuration our generator's state_dict is, key for key and shape for shape, the layout
    worked out independently in models/layouts.py (the registry's `lama_ffc` architecture, prefix stripped)."""
    with torch.device("meta"):
        sd = lama_net.build_generator(torch).state_dict()
    shapes, required = layouts.lama_layout("")
    assert {k: tuple(v.shape) for k, v in sd.items()} == shapes
    assert {f"generator.{k}" for k in sd} == set(layouts.layout(registry.get("big-lama.ckpt")["architecture"])[0])
    # 51,057,179 numbers: 204.2 MB as float32, just under the 205.7 MB TorchScript export of the same network
    assert sum(v.numel() for v in sd.values()) == 51_057_179
    assert shapes["model.30.weight"] == (128, 64, 3, 3) and shapes["model.34.weight"] == (3, 64, 7, 7)
    assert shapes["model.22.conv2.ffc.convg2g.fu.conv_layer.weight"] == (384, 384, 1, 1)
    assert "model.23.weight" not in shapes and "model.35.weight" not in shapes  # concat and sigmoid
    assert lama_net.infer_config(sd) == lama_net.BIG_LAMA


# ---------------------------------------------------------------------------------------------
# Loading the release's formats


def test_lightning_checkpoint_and_plain_state_dicts_inpaint_alike(tmp_path):
    """best.ckpt's format (with OmegaConf metadata and a callback class key), a generator state_dict and a bare
    Sequential state_dict all load strictly and give LaMa's own computation, in eval mode."""
    net = tiny_generator()
    img, mask = image(), square_hole()
    want = reference(net, img, mask)
    outs = {}
    for name, write in {
        "big-lama.ckpt": lambda p: save_lightning_checkpoint(net.state_dict(), p),
        "big-lama.pth": lambda p: torch.save(net.state_dict(), p),
        "bare.pth": lambda p: torch.save(net.model.state_dict(), p),
    }.items():
        root = tmp_path / name.replace(".", "_")
        root.mkdir()
        path = root / ("big-lama.pth" if name == "bare.pth" else name)
        write(path)
        before = {m for m in sys.modules if m.startswith(("omegaconf", "pytorch_lightning"))}
        outs[name] = art.inpaint(img, mask, method="lama", models_dir=str(root), device="cpu")
        assert {m for m in sys.modules if m.startswith(("omegaconf", "pytorch_lightning"))} == before  # no import
    hole = mask > 0
    for out in outs.values():
        np.testing.assert_array_equal(out[~hole], img[~hole])
        np.testing.assert_allclose(out[hole], want[hole], atol=1e-5)
    np.testing.assert_array_equal(outs["big-lama.ckpt"], outs["big-lama.pth"])
    np.testing.assert_array_equal(outs["big-lama.ckpt"], outs["bare.pth"])
    # a size that is not a multiple of 8 is padded and cropped back
    img, mask = image(90, 94), square_hole(90, 94, 30, 50)
    odd = art.inpaint(img, mask, method="lama", models_dir=str(tmp_path / "big-lama_ckpt"), device="cpu")
    assert odd.shape == (90, 94, 3)
    np.testing.assert_array_equal(odd[mask == 0], img[mask == 0])
    assert np.abs(odd[mask > 0] - img[mask > 0]).mean() > 0.01


def test_checkpoint_metadata_code_never_runs(tmp_path, mstore):
    """The pickled training config is read into inert stand-ins: the class it names is not used even when it is
    importable (here it would write a marker), while an unsafe load really would run it."""
    marker = tmp_path / "marker.txt"
    net = tiny_generator()
    path = save_lightning_checkpoint(net.state_dict(), mstore / "big-lama.ckpt", marker=marker)
    img, mask = image(), square_hole()
    with fake_training_modules():
        out = art.inpaint(img, mask, method="lama", models_dir=str(mstore), device="cpu")
        assert not marker.exists()
        torch.load(path, weights_only=False)  # the control: the payload is live
    assert marker.read_text() == "metadata code ran"
    np.testing.assert_allclose(out, reference(net, img, mask), atol=1e-5)


def test_unsafe_checkpoint_is_refused_without_running(tmp_path, mstore):
    marker = tmp_path / "marker.txt"
    sd = tiny_generator().state_dict()
    save_lightning_checkpoint(sd, mstore / "big-lama.ckpt", extra={"loops": Evil(marker)})
    with pytest.raises(ModelError, match=r"refused.*builtins\.exec"):
        art.inpaint(image(), square_hole(), method="lama", models_dir=str(mstore), device="cpu")
    assert not marker.exists()
    live = tmp_path / "live.ckpt"
    torch.save({"state_dict": {}, "loops": Evil(marker)}, live)
    torch.load(live, weights_only=False)
    assert marker.read_text() == "code ran"


@pytest.mark.parametrize("damage,message", [
    ("missing", r"missing key 'generator\.model\.5\.conv1\.ffc\.convg2g\.fu\.conv_layer\.weight'"),
    ("renamed", r"missing key 'generator\.model\.4\.conv2\.bn_g\.weight'.*"
                r"unexpected key 'generator\.model\.4\.conv2\.bn_global\.weight'"),
    ("shape", r"'generator\.model\.4\.conv1\.ffc\.convg2g\.conv2\.weight' has shape \(24, 12, 3, 3\), "
              r"expected \(24, 12, 1, 1\)"),
])
def test_strict_loading_names_the_key(mstore, damage, message):
    sd = tiny_generator().state_dict()
    if damage == "missing":
        del sd["model.5.conv1.ffc.convg2g.fu.conv_layer.weight"]
    elif damage == "renamed":
        sd["model.4.conv2.bn_global.weight"] = sd.pop("model.4.conv2.bn_g.weight")
    else:
        sd["model.4.conv1.ffc.convg2g.conv2.weight"] = torch.zeros(24, 12, 3, 3)
    save_lightning_checkpoint(sd, mstore / "big-lama.ckpt")
    with pytest.raises(ModelError, match=message):
        art.inpaint(image(), square_hole(), method="lama", models_dir=str(mstore), device="cpu")


# ---------------------------------------------------------------------------------------------
# What the network is given and what it can see


def test_fourier_branch_sees_the_whole_picture(tmp_path):
    """Pixels 40+ px away, beyond the reach of every convolution of this depth, change the fill at the centre
    through the FFC's Fourier path (ratio 0.75), and not at all in the same network without it (ratio 0)."""
    img, mask = image(), square_hole()
    far = img.copy()
    far[:8, :8] = 1.0 - far[:8, :8]
    change = {}
    for ratio in (0.75, 0.0):
        root = tmp_path / f"r{ratio}"
        root.mkdir()
        torch.save(tiny_generator(ratio=ratio).state_dict(), root / "big-lama.pth")
        a = art.inpaint(img, mask, method="lama", models_dir=str(root), device="cpu")
        b = art.inpaint(far, mask, method="lama", models_dir=str(root), device="cpu")
        change[ratio] = float(np.abs(a[44:52, 44:52] - b[44:52, 44:52]).max())
    assert change[0.0] == 0.0
    assert change[0.75] > 1e-4


def test_hole_pixels_never_reach_the_network(mstore):
    """The generator gets img * (1 - mask) and the mask: whatever is under the hole does not matter."""
    save_lightning_checkpoint(tiny_generator().state_dict(), mstore / "big-lama.ckpt")
    img, mask = image(), square_hole()
    scribbled = img.copy()
    scribbled[mask > 0] = np.random.default_rng(5).random((int(mask.sum()), 3))
    a = art.inpaint(img, mask, method="lama", models_dir=str(mstore), device="cpu")
    b = art.inpaint(scribbled, mask, method="lama", models_dir=str(mstore), device="cpu")
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[mask > 0] - img[mask > 0]).mean() > 0.01  # the hole was filled by the network, not copied


# ---------------------------------------------------------------------------------------------
# The store: names, listing, importing the release zip


def test_not_installed_names_every_accepted_file(mstore):
    with pytest.raises(NotAvailableError) as info:
        art.inpaint(image(32, 32), square_hole(32, 32, 8, 16), method="lama", models_dir=str(mstore))
    text = str(info.value)
    for name in ("big-lama.ckpt", "big-lama.pt", "big-lama.pth", "big-lama.zip", str(mstore)):
        assert name in text
    rows = {r["name"]: r for r in store.list_models(mstore)}
    assert rows["big_lama_ckpt"]["file"] == "big-lama.ckpt" and not rows["big_lama_ckpt"]["installed"]
    assert rows["big_lama_ckpt"]["unverified"] and registry.get("big_lama_ckpt")["sha256"] is None


def test_release_zip_imports_as_big_lama_ckpt(tmp_path, mstore, monkeypatch):
    """`models import big-lama.zip` takes big-lama/models/best.ckpt out of the release zip, checks it against the
    layout with the safe loader, records its SHA-256 and stores it under the name LaMa looks for."""
    monkeypatch.setitem(layouts._builtin(), "lama_ffc", layouts.lama_layout("generator.", **TINY))  # small copy
    net = tiny_generator()
    ckpt = save_lightning_checkpoint(net.state_dict(), tmp_path / "best.ckpt")
    release = tmp_path / "big-lama.zip"
    with zipfile.ZipFile(release, "w") as zf:
        zf.writestr("big-lama/config.yaml", "generator:\n  kind: ffc_resnet\n")
        zf.write(ckpt, "big-lama/models/best.ckpt")
    path, notes = store.import_model(release, models_dir_=mstore)
    assert path == mstore / "big-lama.ckpt" and any("no published checksum" in n for n in notes)
    assert store.read_sidecar(path)["sha256"] == store.sha256_file(ckpt)
    assert store.find("big-lama", mstore) == path
    img, mask = image(), square_hole()
    out = art.inpaint(img, mask, method="lama", models_dir=str(mstore), device="cpu")
    np.testing.assert_allclose(out, reference(net, img, mask), atol=1e-5)


def test_torchscript_file_is_refused_everywhere(tmp_path, mstore, capsys):
    """A TorchScript archive runs the code it carries when loaded: the API, the CLI and the store refuse it unread,
    with one line that names the file and says what to use instead."""
    import warnings

    from art_ai_addon.cli import main as cli_main

    class Fill(torch.nn.Module):
        def forward(self, image, mask):
            return image * (1 - mask) + mask * image.mean()

    ts = tmp_path / "big-lama.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Fill()).save(str(ts))
    assert layouts.is_torchscript(ts)
    img, mask = image(32, 32), square_hole(32, 32, 8, 16)
    with pytest.raises(ModelError) as exc:
        art.inpaint(img, mask, method="lama", model=str(ts), device="cpu")
    text = str(exc.value)
    assert "\n" not in text and "big-lama.pt is a TorchScript archive" in text and "best.ckpt" in text
    (mstore / "big-lama.pt").write_bytes(ts.read_bytes())  # dropped into the store by hand: refused there too
    with pytest.raises(ModelError, match="TorchScript archive"):
        art.inpaint(img, mask, method="lama", models_dir=str(mstore), device="cpu")
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    art.write_image(src, img)
    art.write_image(tmp_path / "mask.png", mask)
    rc = cli_main(["-q", "inpaint", str(src), "--mask", str(tmp_path / "mask.png"), "-o", str(out), "--method",
                   "lama", "--models-dir", str(mstore)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "TorchScript archive" in err and not out.exists()
