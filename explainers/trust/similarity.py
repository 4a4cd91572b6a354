"""How alike two maps are: Spearman rank correlation and SSIM, pure NumPy (no SciPy).

Used by the sanity checks (a map that stays alike when the model is random or the class
changes says little about the model) and by the trust card.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

#: SSIM window (Wang et al. 2004 with a uniform window, as scikit-image's default).
SSIM_WINDOW = 7
#: Side the maps are brought to before SSIM, so a 7x7 window sees local structure.
SSIM_SIDE = 56


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a flat array, ties given their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, x.size])
    average = first + (counts + 1) / 2.0  # 1-based average position of each tie group
    ranks = np.empty_like(x)
    ranks[order] = average[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two maps of the same shape: Pearson correlation of their ranks.
    A constant map has no order: the result is 0 then (never NaN)."""
    a = np.nan_to_num(np.asarray(a, dtype=np.float64).ravel())
    b = np.nan_to_num(np.asarray(b, dtype=np.float64).ravel())
    if a.shape != b.shape:
        raise ValueError(f"maps must have the same size, got {a.size} and {b.size}")
    ra, rb = rank(a) - (a.size + 1) / 2.0, rank(b) - (b.size + 1) / 2.0
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    if denominator == 0:
        return 0.0
    return float(np.clip((ra * rb).sum() / denominator, -1.0, 1.0))


def _unit(cam: np.ndarray, side: int) -> np.ndarray:
    """The map scaled to 0..1 by its maximum and resized (bilinear) to side x side."""
    m = np.nan_to_num(np.asarray(cam, dtype=np.float64))
    m = m - m.min()
    top = m.max()
    m = m / top if top > 0 else m
    if m.shape != (side, side):
        m = np.asarray(
            Image.fromarray(m.astype(np.float32), mode="F").resize((side, side), Image.BILINEAR),
            dtype=np.float64,
        )
    return np.clip(m, 0.0, 1.0)


def ssim(
    a: np.ndarray, b: np.ndarray, *, side: int | None = SSIM_SIDE, window: int = SSIM_WINDOW
) -> float:
    """Mean structural similarity of two maps, each scaled to 0..1 by its own range (data
    range 1, K1 0.01, K2 0.03, uniform window, sample covariances, only windows fully inside:
    scikit-image's ``structural_similarity`` defaults). ``side``: resize both first (None:
    keep the given size, which must be at least ``window``)."""
    if side is None:
        x, y = _unit(a, np.asarray(a).shape[0]), _unit(b, np.asarray(b).shape[0])
        if np.asarray(a).shape[0] != np.asarray(a).shape[1]:
            raise ValueError("with side=None the maps must be square")
    else:
        x, y = _unit(a, side), _unit(b, side)
    if min(x.shape) < window:
        raise ValueError(f"maps must be at least {window}x{window} for SSIM")

    def mean(z: np.ndarray) -> np.ndarray:
        return sliding_window_view(z, (window, window)).mean(axis=(-2, -1))

    n = window * window
    norm = n / (n - 1.0)
    ux, uy = mean(x), mean(y)
    vx = norm * (mean(x * x) - ux * ux)
    vy = norm * (mean(y * y) - uy * uy)
    vxy = norm * (mean(x * y) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def mean_pairwise_spearman(maps: np.ndarray) -> float:
    """Mean Spearman over every pair of maps in ``(n, h, w)`` (n >= 2)."""
    maps = np.asarray(maps)
    values = [spearman(maps[i], maps[j]) for i in range(len(maps)) for j in range(i + 1, len(maps))]
    return float(np.mean(values)) if values else 1.0
