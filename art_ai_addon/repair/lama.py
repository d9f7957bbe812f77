"""LaMa (Suvorov et al. 2022, "big-lama") from the model store; nothing is downloaded.

Accepted files, as the public releases ship them:
- `big-lama.pt`: a TorchScript export taking (image (1, 3, H, W) in [0, 1], mask (1, 1, H, W) in {0, 1})
  and returning the inpainted image (1, 3, H, W) in [0, 1] (the layout used by the common exports);
- `big-lama.pth`: a state_dict of the same scripted generator is not enough on its own (it needs
  LaMa's FFC code), so it is refused with a message saying to add the TorchScript export instead.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..core import reporter, require_torch, resolve_device
from ..errors import ModelError, NotAvailableError

MODEL_NAME = "big-lama"


def _missing_message(root) -> str:
    return (f"LaMa is not installed: add its TorchScript export `{MODEL_NAME}.pt` to the model store at {root} "
            "(`python -m art_ai_addon models import big-lama.pt`, or set ART_AI_MODELS), "
            "or use method 'patch' (textures) or 'auto', which need no weights")


def load_lama(models_dir=None, device="cpu", model=None):
    """The scripted LaMa module (`model` = an explicit file, else the store's big-lama.pt) on `device`,
    or NotAvailableError / ModelError saying what to do. Store files are checksum-verified by `find`."""
    from ..models import models_dir as store_root
    from ..models.store import find

    torch = require_torch("LaMa inpainting")
    path = find(model or MODEL_NAME, models_dir)
    if path is None and model:
        raise NotAvailableError(f"LaMa: model file {model} does not exist")
    if path is None:
        raise NotAvailableError(_missing_message(store_root(models_dir)))
    from ..models.layouts import check_torchscript

    check_torchscript(path)  # refuse pickles / checkpoints before anything is unpacked
    try:
        with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; the release is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # not TorchScript: a pickle / state_dict, or a damaged file
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ModelError(f"LaMa: {path} is not a TorchScript export of big-lama ({msg}); a state_dict or "
                         "Lightning checkpoint needs LaMa's own code, so export it with torch.jit.trace "
                         f"and save it as {MODEL_NAME}.pt") from None
    module.eval()
    return module


def lama_inpaint(rgb, hole, *, models_dir=None, model=None, device="auto", progress=None, cancel=None, **_):
    """Fill `hole` of `rgb` with LaMa; the image is padded to a multiple of 8 as the network expects."""
    torch = require_torch("LaMa inpainting")
    rep = reporter(progress, cancel)
    dev = resolve_device(device)
    rep(0.05, "loading LaMa")
    module = load_lama(models_dir, dev, model)
    h, w = hole.shape
    ph, pw = (-h) % 8, (-w) % 8
    img = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > 8 else "edge")
    msk = np.pad(hole.astype(np.float32), ((0, ph), (0, pw)), mode="constant")
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].to(dev)
    m = torch.from_numpy(msk)[None, None].to(dev)
    rep(0.2, "LaMa")
    with torch.no_grad():
        try:
            out = module(x, m)
        except Exception as exc:
            raise ModelError(f"LaMa: the model file does not take (image, mask) as big-lama does: "
                             f"{str(exc).splitlines()[0][:200]}") from None
    if isinstance(out, list | tuple):
        out = out[0]
    if not hasattr(out, "shape") or out.ndim != 4 or out.shape[1] != 3:
        raise ModelError(f"LaMa: the model returned {getattr(out, 'shape', type(out))}, expected (1, 3, H, W)")
    res = out[0, :, :h, :w].permute(1, 2, 0).float().cpu().numpy()
    if res.max() > 1.5:  # some exports return 0..255
        res = res / 255.0
    return np.clip(res, 0.0, 1.0).astype(np.float32)
