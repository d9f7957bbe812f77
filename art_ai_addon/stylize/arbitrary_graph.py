"""The layout of Magenta's arbitrary-style networks in their ONNX files, and reading them (the onnx package,
imported on use; nothing is ever run). The model store checks imported files with it; arbitrary.py builds the
torch modules from what it reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError, NotAvailableError


PREDICT_FILE = "arbitrary_predict.onnx"
TRANSFORM_FILE = "arbitrary_transform.onnx"
PREDICT_MODEL = "magenta_arbitrary_predict"
TRANSFORM_MODEL = "magenta_arbitrary_transform"
STYLE_SIZE = 256  # the predictor's training size (a centred square of the style image)
BASE_SIDE = 384  # long side the network sees at style_scale 1
MULTIPLE = 4  # two stride-2 convs
STYLE_DIM = 100
EPS = 1e-5
_BYTES_PER_PIXEL = 700  # fp32 activations of the transformer per input pixel (measured, with headroom)
CONVERTED_DIR = ".converted"

# layout: conv keys as the graph names them (initializer name without "/weights")
CONTRACT = ("transformer/contract/conv1", "transformer/contract/conv2", "transformer/contract/conv3")
RESIDUAL = tuple(f"transformer/residual/residual{i}/conv{j}" for i in range(1, 6) for j in (1, 2))
EXPAND = ("transformer/expand/conv1/conv", "transformer/expand/conv2/conv", "transformer/expand/conv3/conv")
UPSAMPLE = (2, 2, 1)
BETA, GAMMA = "/StyleNorm/Conv", "/StyleNorm/Conv_1"  # shift and scale of each conditional instance norm
MB_BLOCKS = 17  # MobilenetV2/expanded_conv, expanded_conv_1 ... expanded_conv_16
STYLE_HEAD = "mobilenet_conv/Conv"


def norm_key(key: str, suffix: str) -> str:
    """The 1x1 conv of the style vector that gives the shift (BETA) or scale (GAMMA) of conv `key`'s norm."""
    return f"style_params/{key}{suffix}"


def mb_block(i: int) -> str:
    return "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")


def transform_keys() -> list[str]:
    keys = list(CONTRACT)
    for k in RESIDUAL + EXPAND:
        keys += [k, norm_key(k, BETA), norm_key(k, GAMMA)]
    return keys


def predict_keys() -> list[str]:
    keys = ["MobilenetV2/Conv"]
    for i in range(MB_BLOCKS):
        keys += ([f"{mb_block(i)}/expand"] if i else []) + [f"{mb_block(i)}/depthwise", f"{mb_block(i)}/project"]
    return keys + ["MobilenetV2/Conv_1", STYLE_HEAD]


# ---------------------------------------------------------------------------------------------
# Reading the ONNX graphs


def _dequantize(q, scale, zero_point, axis: int):
    q = np.asarray(q).astype(np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    zp = np.zeros_like(scale) if zero_point is None else np.asarray(zero_point).astype(np.float64)
    if scale.ndim == 1 and q.ndim > 0:
        shape = [1] * q.ndim
        shape[axis % q.ndim] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q - zp) * scale).astype(np.float32)


def read_onnx(path, what: str = "arbitrary") -> dict[str, np.ndarray]:
    """Every Conv of an ONNX graph as `<key>|weight`, `<key>|bias` (float32, dequantized) and `<key>|conv`
    (stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, group), keyed by its weight's name."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise NotAvailableError(f"{what}: reading {Path(path).name} needs the onnx package once (then a converted "
                                "copy is kept); install it with `pip install onnx==1.23.2`") from None
    p = Path(path)
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any protobuf failure means a damaged or foreign file
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelError(f"{what}: {p.name} is not a readable ONNX file ({msg})") from None
    graph = model.graph
    consts = {}
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError(f"{what}: {p.name} refers to external data files, which are not read")
        consts[init.name] = numpy_helper.to_array(init)
    source = {}  # dequantized value -> the name of the int8 tensor it came from
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "DequantizeLinear" and all(i in consts for i in node.input if i):
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            zp = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else None
            consts[node.output[0]] = _dequantize(consts[node.input[0]], consts[node.input[1]], zp, axis)
            source[node.output[0]] = node.input[0]
    out: dict[str, np.ndarray] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w_name = node.input[1]
        if w_name not in consts:
            continue  # a conv on computed weights is not a layer of ours
        name = source.get(w_name, w_name)
        key = name.removesuffix("/depthwise_weights").removesuffix("/weights")
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        if (isinstance(auto_pad, bytes) and auto_pad not in (b"NOTSET", b"VALID")) or \
                any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise ModelError(f"{what}: {p.name} conv {key} uses padding/dilation this loader does not read")
        strides = list(attrs.get("strides", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        out[f"{key}|weight"] = np.ascontiguousarray(consts[w_name], dtype=np.float32)
        if len(node.input) > 2 and node.input[2]:
            out[f"{key}|bias"] = np.ascontiguousarray(consts[node.input[2]], dtype=np.float32).reshape(-1)
        out[f"{key}|conv"] = np.asarray(strides + pads + [attrs.get("group", 1)], dtype=np.int64)
    return out


def check_params(params: dict, kind: str, name: str = "") -> str | None:
    """None when `params` hold every conv of the predictor / transformer with consistent shapes, else the problem."""
    keys = predict_keys() if kind == "predict" else transform_keys()
    for key in keys:
        if f"{key}|weight" not in params or f"{key}|conv" not in params:
            return f"has no conv {key!r}"
        w = params[f"{key}|weight"]
        if len(w.shape) != 4:
            return f"conv {key!r} has weights of shape {tuple(w.shape)}, not 4-D"
        if f"{key}|bias" in params and tuple(params[f"{key}|bias"].shape) != (w.shape[0],):
            return f"conv {key!r} has a bias of shape {tuple(params[f'{key}|bias'].shape)} for {w.shape[0]} outputs"
    if kind == "transform":
        for key in RESIDUAL + EXPAND:
            c = params[f"{key}|weight"].shape[0]
            for suffix in (BETA, GAMMA):
                shape = tuple(params[f"{norm_key(key, suffix)}|weight"].shape)
                if shape != (c, STYLE_DIM, 1, 1):
                    return f"style norm {norm_key(key, suffix)!r} has shape {shape}, expected {(c, STYLE_DIM, 1, 1)}"
        if params[f"{CONTRACT[0]}|weight"].shape[1] != 3 or params[f"{EXPAND[-1]}|weight"].shape[0] != 3:
            return "does not take and give RGB"
    elif tuple(params[f"{STYLE_HEAD}|weight"].shape[:2])[0] != STYLE_DIM:
        return f"gives a style vector of {params[f'{STYLE_HEAD}|weight'].shape[0]} numbers, not {STYLE_DIM}"
    return None
