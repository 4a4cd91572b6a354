"""When methods coincide: at a layer followed directly by global average pooling the gradient
is the same at every position of a channel, so HiResCAM equals Grad-CAM and XGrad-CAM has
Grad-CAM's shape. Users are surprised by identical maps; the Compare page says why, from
these numbers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def gradient_constant_per_channel(gradients: np.ndarray, rtol: float = 1e-5) -> bool:
    """Whether g ``(..., h, w, K)`` is the same at every position of each channel (to ``rtol``
    of its largest magnitude): then Grad-CAM = HiResCAM."""
    g = np.asarray(gradients, dtype=np.float64)
    peak = float(np.abs(g).max()) if g.size else 0.0
    if peak == 0:
        return True
    spread = np.abs(g - g.mean(axis=(-3, -2), keepdims=True)).max()
    return bool(spread <= rtol * peak)


def same_shape(a: np.ndarray, b: np.ndarray, tol: float = 1e-4) -> bool:
    """Two maps equal after each is divided by its maximum (both all-zero counts as equal)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    pa, pb = float(a.max()), float(b.max())
    if pa <= 0 or pb <= 0:
        return pa <= 0 and pb <= 0
    return bool(np.abs(a / pa - b / pb).max() <= tol)


def coinciding_groups(maps: Mapping[str, np.ndarray], tol: float = 1e-4) -> list[list[str]]:
    """Groups (of two or more keys, in the order given) of maps with the same shape."""
    groups: list[list[str]] = []
    for key, cam in maps.items():
        for group in groups:
            if same_shape(maps[group[0]], cam, tol):
                group.append(key)
                break
        else:
            groups.append([key])
    return [g for g in groups if len(g) > 1]
