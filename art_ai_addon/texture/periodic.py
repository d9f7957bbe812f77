"""Resampling on the torus: what periodic (tileable) images need so that no position is special."""

from __future__ import annotations

from ..core import require_torch


def fourier_resize(x, size):
    """Resample a periodic (N, C, h, w) tensor to `size` by zero-padding / cropping its spectrum.

    Shift-invariant, unlike bilinear or bicubic sampling at a non-integer factor, whose sharpness varies with
    the sampling phase and so marks the wrap column; the result stays exactly periodic.
    """
    torch = require_torch()
    _, _, h0, w0 = x.shape
    h, w = size
    if (h, w) == (h0, w0):
        return x
    X = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1))
    out = torch.zeros(x.shape[:2] + (h, w), dtype=X.dtype, device=x.device)
    ch, cw = min(h, h0), min(w, w0)
    sy0, sx0 = h0 // 2 - ch // 2, w0 // 2 - cw // 2
    dy0, dx0 = h // 2 - ch // 2, w // 2 - cw // 2
    out[:, :, dy0:dy0 + ch, dx0:dx0 + cw] = X[:, :, sy0:sy0 + ch, sx0:sx0 + cw]
    y = torch.fft.ifft2(torch.fft.ifftshift(out, dim=(-2, -1))).real
    return y * (h * w) / (h0 * w0)
