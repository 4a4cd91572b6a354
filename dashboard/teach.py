"""Descriptive numbers for the "How it works" page, read off an ``Explanation``.

Nothing here computes a map or a weight: those come from ``explainers``. These functions only
summarise the arrays it returned (minimum, mean, largest entries) and, for teaching, re-check
one α term against the formula printed on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Summary:
    shape: tuple
    minimum: float
    mean: float
    maximum: float
    zero_share: float
    positive_share: float


def summary(arr: np.ndarray) -> Summary:
    a = np.asarray(arr, dtype=np.float64)
    return Summary(tuple(a.shape), float(a.min()), float(a.mean()), float(a.max()),
                   float((a == 0).mean()), float((a > 0).mean()))


def top_filter_table(ex, k: int = 5) -> pd.DataFrame:
    """The k filters with the largest Grad-CAM++ weight, with both weights and their
    activation and gradient numbers."""
    a = ex.activations[0].astype(np.float64)  # (h, w, K)
    g = ex.gradients[0].astype(np.float64)
    alpha = ex.alpha[0]
    w_pp = ex.weights["gradcam++"][0]
    w_gc = ex.weights["gradcam"][0]
    order = np.argsort(-w_pp, kind="stable")[:k]
    rows = []
    for ch in order:
        pos = g[..., ch] > 0
        rows.append({
            "filter k": int(ch),
            "Σ A (activation)": float(a[..., ch].sum()),
            "mean g (score/act.)": float(g[..., ch].mean()),
            "positions with g > 0 (%)": 100.0 * float(pos.mean()),
            "mean α where g > 0": float(alpha[..., ch][pos].mean()) if pos.any() else 0.0,
            "w Grad-CAM": float(w_gc[ch]),
            "w Grad-CAM++": float(w_pp[ch]),
        })
    return pd.DataFrame(rows)


@dataclass
class AlphaExample:
    channel: int
    row: int
    col: int
    g: float
    activation_sum: float
    alpha: float  # from explainers
    alpha_formula: float | None  # 1 / (2 + g·ΣA), exact when not smoothed


def alpha_example(ex) -> AlphaExample:
    """One α term of the top Grad-CAM++ filter, at its largest gradient."""
    w_pp = ex.weights["gradcam++"][0]
    ch = int(np.argmax(w_pp))
    g = ex.gradients[0, ..., ch].astype(np.float64)
    r, c = np.unravel_index(int(np.argmax(g)), g.shape)
    s = float(ex.activations[0, ..., ch].astype(np.float64).sum())
    gv = float(g[r, c])
    formula = None
    if ex.n_samples == 0 and gv != 0 and (2.0 + gv * s) != 0:
        formula = 1.0 / (2.0 + gv * s)
    return AlphaExample(ch, int(r), int(c), gv, s, float(ex.alpha[0, r, c, ch]), formula)


def weight_facts(ex) -> dict[str, float]:
    """How the two weightings differ on this image."""
    w_gc = np.asarray(ex.weights["gradcam"][0], dtype=np.float64)
    w_pp = np.asarray(ex.weights["gradcam++"][0], dtype=np.float64)
    k = len(w_gc)

    def top_share(w):
        pos = np.sort(np.maximum(w, 0.0))[::-1]
        total = pos.sum()
        return float(pos[:10].sum() / total) if total > 0 else 0.0

    top_gc = set(np.argsort(-w_gc)[:10].tolist())
    top_pp = set(np.argsort(-w_pp)[:10].tolist())
    m_gc = np.asarray(ex.maps["gradcam"][0], dtype=np.float64).ravel()
    m_pp = np.asarray(ex.maps["gradcam++"][0], dtype=np.float64).ravel()
    corr = float(np.corrcoef(m_gc, m_pp)[0, 1]) if m_gc.std() > 0 and m_pp.std() > 0 else float("nan")
    return {
        "filters": k,
        "negative_gc": int((w_gc < 0).sum()),
        "negative_pp": int((w_pp < 0).sum()),
        "top10_share_gc": top_share(w_gc),
        "top10_share_pp": top_share(w_pp),
        "top10_overlap": len(top_gc & top_pp),
        "map_correlation": corr,
    }


def argmax_cell(m: np.ndarray) -> tuple[int, int]:
    m = np.asarray(m)
    r, c = np.unravel_index(int(np.argmax(m)), m.shape)
    return int(r), int(c)
