"""Expected key/shape layouts per architecture, so a file is recognised before it is accepted or run.

A layout is (shapes, required): `shapes` maps every key we know to its shape, `required` names the keys a
file must have. Keys a file has beyond these are ignored (the fast-style checkpoints carry old
InstanceNorm running stats); a known key with another shape is a mismatch.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import ModelError

Layout = tuple[dict[str, tuple], frozenset]

# (output channels per conv, with "M" for a max-pool) of VGG19, configuration "E" of the paper
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def _conv(shapes: dict, prefix: str, cout: int, cin: int, k: int) -> None:
    shapes[f"{prefix}.weight"] = (cout, cin, k, k)
    shapes[f"{prefix}.bias"] = (cout,)


def vgg19_layout() -> Layout:
    """torchvision `vgg19`: Sequential `features` of conv+ReLU (2 modules per conv) and pools (1 module)."""
    shapes: dict[str, tuple] = {}
    index, cin = 0, 3
    for v in _VGG19_CFG:
        if v == "M":
            index += 1
            continue
        _conv(shapes, f"features.{index}", v, cin, 3)
        cin = v
        index += 2
    required = frozenset(shapes)
    shapes["classifier.0.weight"] = (4096, 512 * 7 * 7)
    shapes["classifier.0.bias"] = (4096,)
    shapes["classifier.3.weight"] = (4096, 4096)
    shapes["classifier.3.bias"] = (4096,)
    shapes["classifier.6.weight"] = (1000, 4096)
    shapes["classifier.6.bias"] = (1000,)
    return shapes, required


def adain_vgg_layout() -> Layout:
    """AdaIN's normalised VGG19: a 1x1 colour conv, then reflection-pad+conv+ReLU (3 modules) and pools."""
    shapes: dict[str, tuple] = {}
    _conv(shapes, "0", 3, 3, 1)
    index, cin = 1, 3
    required = set(shapes)
    for v in _VGG19_CFG[:-1]:  # the published file stops at relu5_4, before the last pool
        if v == "M":
            index += 1
            continue
        _conv(shapes, str(index + 1), v, cin, 3)
        if index + 1 <= 29:  # up to relu4_1, which AdaIN encodes to
            required.update((f"{index + 1}.weight", f"{index + 1}.bias"))
        cin = v
        index += 3
    return shapes, frozenset(required)


def adain_decoder_layout() -> Layout:
    """AdaIN decoder: mirrors the encoder to relu4_1, pad+conv+ReLU blocks with 3 nearest upsamplings."""
    plan = [(512, 256), "U", (256, 256), (256, 256), (256, 256), (256, 128), "U", (128, 128), (128, 64), "U",
            (64, 64), (64, 3)]
    shapes: dict[str, tuple] = {}
    index = 0
    for step in plan:
        if step == "U":
            index += 1
            continue
        cin, cout = step
        _conv(shapes, str(index + 1), cout, cin, 3)
        index += 3
    return shapes, frozenset(shapes)


def transformer_net_layout() -> Layout:
    """Johnson et al.'s image transformation network as in pytorch/examples fast_neural_style."""
    shapes: dict[str, tuple] = {}

    def norm(prefix, c):
        shapes[f"{prefix}.weight"] = (c,)
        shapes[f"{prefix}.bias"] = (c,)

    _conv(shapes, "conv1.conv2d", 32, 3, 9)
    norm("in1", 32)
    _conv(shapes, "conv2.conv2d", 64, 32, 3)
    norm("in2", 64)
    _conv(shapes, "conv3.conv2d", 128, 64, 3)
    norm("in3", 128)
    for r in range(1, 6):
        _conv(shapes, f"res{r}.conv1.conv2d", 128, 128, 3)
        norm(f"res{r}.in1", 128)
        _conv(shapes, f"res{r}.conv2.conv2d", 128, 128, 3)
        norm(f"res{r}.in2", 128)
    _conv(shapes, "deconv1.conv2d", 64, 128, 3)
    norm("in4", 64)
    _conv(shapes, "deconv2.conv2d", 32, 64, 3)
    norm("in5", 32)
    _conv(shapes, "deconv3.conv2d", 3, 32, 9)
    return shapes, frozenset(shapes)


def lama_layout(prefix: str = "generator.", *, input_nc: int = 4, output_nc: int = 3, ngf: int = 64,
                n_downsampling: int = 3, n_blocks: int = 18, ratio: float = 0.75, max_features: int = 1024) -> Layout:
    """LaMa's FFCResNetGenerator with big-lama's configuration, keyed as the official release stores it
    (`generator.model.N...` in big-lama/models/best.ckpt; prefix "" for a bare generator state_dict).

    Worked out from the configuration alone (no torch), so it also cross-checks repair/lama_net.py.
    BatchNorm `num_batches_tracked` counters are known but not required (older torch did not save them).
    """
    shapes: dict[str, tuple] = {}

    def bn(p, c):
        for n in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{p}.{n}"] = (c,)
        shapes[f"{p}.num_batches_tracked"] = ()

    def ffc(p, cin, cout, k, rin, rout):
        """One FFC + BN + ReLU: local->local, local->global, global->local convs and the spectral global->global."""
        in_g, out_g = int(cin * rin), int(cout * rout)
        in_l, out_l = cin - in_g, cout - out_g
        for name, i, o in (("convl2l", in_l, out_l), ("convl2g", in_l, out_g), ("convg2l", in_g, out_l)):
            if i and o:
                shapes[f"{p}.ffc.{name}.weight"] = (o, i, k, k)
        if in_g and out_g:
            half = out_g // 2
            shapes[f"{p}.ffc.convg2g.conv1.0.weight"] = (half, in_g, 1, 1)
            bn(f"{p}.ffc.convg2g.conv1.1", half)
            shapes[f"{p}.ffc.convg2g.fu.conv_layer.weight"] = (2 * half, 2 * half, 1, 1)  # real + imaginary parts
            bn(f"{p}.ffc.convg2g.fu.bn", 2 * half)
            shapes[f"{p}.ffc.convg2g.conv2.weight"] = (out_g, half, 1, 1)
        if out_l:
            bn(f"{p}.bn_l", out_l)
        if out_g:
            bn(f"{p}.bn_g", out_g)

    m = f"{prefix}model"
    ffc(f"{m}.1", input_nc, ngf, 7, 0, 0)  # model.0 is a reflection pad
    for i in range(n_downsampling):
        last = i == n_downsampling - 1
        ffc(f"{m}.{2 + i}", min(max_features, ngf * 2 ** i), min(max_features, ngf * 2 ** (i + 1)), 3, 0,
            ratio if last else 0)
    dim = min(max_features, ngf * 2 ** n_downsampling)
    index = 2 + n_downsampling
    for _ in range(n_blocks):
        ffc(f"{m}.{index}.conv1", dim, dim, 3, ratio, ratio)
        ffc(f"{m}.{index}.conv2", dim, dim, 3, ratio, ratio)
        index += 1
    index += 1  # concatenation of the local and global channels
    for i in range(n_downsampling):
        cin = min(max_features, ngf * 2 ** (n_downsampling - i))
        cout = min(max_features, ngf * 2 ** (n_downsampling - i) // 2)
        shapes[f"{m}.{index}.weight"] = (cin, cout, 3, 3)  # ConvTranspose2d: (in, out, k, k)
        shapes[f"{m}.{index}.bias"] = (cout,)
        bn(f"{m}.{index + 1}", cout)
        index += 3  # + ReLU
    _conv(shapes, f"{m}.{index + 1}", output_nc, ngf, 7)  # after a reflection pad; a sigmoid follows
    return shapes, frozenset(k for k in shapes if not k.endswith("num_batches_tracked"))


_LAYOUTS: dict[str, Layout] = {}
TORCHSCRIPT = {"lama_torchscript"}  # refused: a TorchScript archive runs its own code when loaded


def _builtin() -> dict[str, Layout]:
    if not _LAYOUTS:
        _LAYOUTS.update({
            "vgg19": vgg19_layout(),
            "transformer_net": transformer_net_layout(),
            "adain_vgg_normalised": adain_vgg_layout(),
            "adain_decoder": adain_decoder_layout(),
            "lama_ffc": lama_layout("generator."),  # the official Lightning checkpoint (best.ckpt)
            "lama_generator": lama_layout(""),  # a bare generator state_dict
        })
    return _LAYOUTS


def known_architectures() -> list[str]:
    return sorted(set(_builtin()) | set(ONNX) | set(NCNN))


def layout(architecture: str) -> Layout | None:
    return _builtin().get(architecture)


def mismatch(state_dict: dict, architecture: str) -> str | None:
    """None when `state_dict` fits `architecture`, else the first problem, naming the key."""
    lay = layout(architecture)
    if lay is None:
        return None  # an architecture without a declared layout: only "a dict of tensors" is checked
    shapes, required = lay
    for key in shapes:  # registry order, so the message names the first key a reader would look at
        if key in required and key not in state_dict:
            return f"has no key {key!r} (expected for {architecture})"
        if key in state_dict and tuple(state_dict[key].shape) != shapes[key]:
            return (f"key {key!r} has shape {tuple(state_dict[key].shape)}, expected {shapes[key]} "
                    f"for {architecture}")
    return None


def detect(state_dict: dict) -> str | None:
    """The architecture whose layout `state_dict` fits, or None."""
    for name in _builtin():
        if mismatch(state_dict, name) is None and layout(name)[1] <= set(state_dict):
            return name
    return None


def is_torchscript(path) -> bool:
    """True for a TorchScript archive (a zip with code/ and constants.pkl), read from its file list only."""
    try:
        with zipfile.ZipFile(Path(path)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)


def torchscript_refusal(name: str, what: str = "") -> str:
    """The one line said when a TorchScript archive is offered as weights."""
    prefix = f"{what}: " if what else ""
    return (f"{prefix}{name} is a TorchScript archive, which runs the code it carries when loaded, so it is refused "
            "as a weights source; use a plain state_dict or the official checkpoint (LaMa: big-lama.zip / "
            "best.ckpt from advimman/lama)")


def check_torchscript(path) -> None:
    """Refuse a TorchScript archive (see `torchscript_refusal`); anything else passes unread."""
    p = Path(path)
    if is_torchscript(p):
        raise ModelError(torchscript_refusal(p.name))


# ONNX graphs (read with the onnx package, never run): architecture -> the kind the reader checks for
ONNX = {"magenta_arbitrary_predict": "predict", "magenta_arbitrary_transform": "transform"}


def check_onnx(path, architecture: str, *, name: str | None = None, what: str = "") -> None:
    """Read an ONNX file's convs and check them against the architecture's layout (ModelError naming the file)."""
    from ..stylize.arbitrary_graph import check_params, read_onnx

    shown = name or Path(path).name
    try:
        params = read_onnx(path, what or shown)
    except ModelError as exc:
        raise ModelError(str(exc).replace(Path(path).name, shown)) from None
    problem = check_params(params, ONNX[architecture])
    if problem:
        raise ModelError(f"{what + ': ' if what else ''}{shown} {problem}; it is not a {architecture} file")


# ncnn models (a text .param graph and its .bin weights, read with numpy, never run): Real-ESRGAN's networks
NCNN = ("realesrgan_rrdbnet_x4plus", "realesrgan_rrdbnet_x4plus_anime", "realesrgan_srvgg_animevideov3")


def check_ncnn(path, architecture: str, *, name: str | None = None, what: str = "") -> None:
    """Read an ncnn .param or .bin and check it against the architecture (ModelError naming the file)."""
    from ..upscale.ncnn import check_file

    check_file(path, architecture, name=name, what=what)
