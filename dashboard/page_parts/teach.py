"""Descriptive numbers for the "How it works" page, read off an ``Explanation``.

Nothing here computes a map or a weight: those come from ``explainers``. These functions only
summarise the arrays it returned (minimum, mean, largest entries) and, for teaching, re-check
one α term against the formula printed on the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from explainers.methods import GRADCAM, GRADCAMPP, REGISTRY


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
    return Summary(
        tuple(a.shape),
        float(a.min()),
        float(a.mean()),
        float(a.max()),
        float((a == 0).mean()),
        float((a > 0).mean()),
    )


def top_filter_table(ex, k: int = 5) -> pd.DataFrame:
    """The k filters with the largest Grad-CAM++ weight, with both weights and their
    activation and gradient numbers."""
    a = ex.activations[0].astype(np.float64)  # (h, w, K)
    g = ex.gradients[0].astype(np.float64)
    alpha = ex.alpha[0]
    w_pp = ex.weights[GRADCAMPP][0]
    w_gc = ex.weights[GRADCAM][0]
    order = np.argsort(-w_pp, kind="stable")[:k]
    rows = []
    for ch in order:
        pos = g[..., ch] > 0
        rows.append(
            {
                "filter k": int(ch),
                "Σ A (activation)": float(a[..., ch].sum()),
                "mean g (score/act.)": float(g[..., ch].mean()),
                "positions with g > 0 (%)": 100.0 * float(pos.mean()),
                "mean α where g > 0": float(alpha[..., ch][pos].mean()) if pos.any() else 0.0,
                "w Grad-CAM": float(w_gc[ch]),
                "w Grad-CAM++": float(w_pp[ch]),
            }
        )
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
    w_pp = ex.weights[GRADCAMPP][0]
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
    w_gc = np.asarray(ex.weights[GRADCAM][0], dtype=np.float64)
    w_pp = np.asarray(ex.weights[GRADCAMPP][0], dtype=np.float64)
    k = len(w_gc)

    def top_share(w):
        pos = np.sort(np.maximum(w, 0.0))[::-1]
        total = pos.sum()
        return float(pos[:10].sum() / total) if total > 0 else 0.0

    top_gc = set(np.argsort(-w_gc)[:10].tolist())
    top_pp = set(np.argsort(-w_pp)[:10].tolist())
    m_gc = np.asarray(ex.maps[GRADCAM][0], dtype=np.float64).ravel()
    m_pp = np.asarray(ex.maps[GRADCAMPP][0], dtype=np.float64).ravel()
    corr = (
        float(np.corrcoef(m_gc, m_pp)[0, 1]) if m_gc.std() > 0 and m_pp.std() > 0 else float("nan")
    )
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


# --- the worked example: one cell, one filter, term by term --------------------------------------
@dataclass
class Term:
    channel: int
    weight: float
    activation: float

    @property
    def product(self) -> float:
        return self.weight * self.activation


@dataclass
class WorkedCell:
    row: int
    col: int
    channel: int
    a_grid: np.ndarray  # A_k over the grid (h, w), float64
    g_grid: np.ndarray  # g_k over the grid
    alpha_grid: np.ndarray  # α_k over the grid
    w_gc: float  # mean of g_k
    w_pp: float  # Σ α relu(g)
    terms_gc: list[Term]  # the largest |w_k A_k(i, j)| terms
    terms_pp: list[Term]
    rest_gc: float  # the sum of all the other terms
    rest_pp: float
    total_gc: float  # Σ_k w_k A_k(i, j)
    total_pp: float
    map_gc: float  # the explainer's map at (i, j)
    map_pp: float


def _terms(w: np.ndarray, a_cell: np.ndarray, top: int) -> tuple[list[Term], float, float]:
    prod = w * a_cell
    order = np.argsort(-np.abs(prod), kind="stable")[:top]
    chosen = [Term(int(k), float(w[k]), float(a_cell[k])) for k in order]
    total = float(prod.sum())
    return chosen, total - float(prod[order].sum()), total


def worked_cell(ex, row: int, col: int, channel: int, top: int = 6) -> WorkedCell:
    """Everything needed to compute the maps' value at grid cell (row, col) by hand, and one
    filter's A, g and α grids with both of its weights. Read off ``ex``; the map values are the
    explainer's, so the page can show that the hand sum agrees with them."""
    a = ex.activations[0].astype(np.float64)
    g = ex.gradients[0].astype(np.float64)
    w_gc = np.asarray(ex.weights[GRADCAM][0], dtype=np.float64)
    w_pp = np.asarray(ex.weights[GRADCAMPP][0], dtype=np.float64)
    t_gc, rest_gc, total_gc = _terms(w_gc, a[row, col], top)
    t_pp, rest_pp, total_pp = _terms(w_pp, a[row, col], top)
    return WorkedCell(
        row,
        col,
        channel,
        a[..., channel],
        g[..., channel],
        np.asarray(ex.alpha[0, ..., channel], dtype=np.float64),
        float(w_gc[channel]),
        float(w_pp[channel]),
        t_gc,
        t_pp,
        rest_gc,
        rest_pp,
        total_gc,
        total_pp,
        float(ex.maps[GRADCAM][0, row, col]),
        float(ex.maps[GRADCAMPP][0, row, col]),
    )


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class Implications:
    """What the numbers of this image imply, each figure computed here."""

    cells: int  # Z = h·w
    alpha_mean: float  # mean α where g > 0 (over the filters with weight > 0)
    alpha_spread: float  # largest |α − mean α| there
    gradient_spread: float  # median over filters of std(g)/|mean g|: 0 = constant per channel
    ratio_pp_gc: float  # median of w++ / ((Z/2)·relu(w_gc)) over filters with w_gc > 0
    r_pp_activation_sum: float  # correlation of the Grad-CAM++ map with Σ_k A_k
    r_pp_positive_gc: float  # ... with Σ_k relu(w_gc,k)·A_k
    r_gc_pp: float  # correlation of the two maps

    def statements(self) -> list[str]:
        out = []
        z = self.cells
        if self.gradient_spread < 0.05:
            out.append(
                f"The gradient is (nearly) the same at every cell of a filter (median "
                f"spread {self.gradient_spread:.2g} × its mean), as when the layer feeds a "
                "global average pooling (then g = w_dense/Z): Grad-CAM's weight is that "
                "one gradient, and Grad-CAM equals HiResCAM here."
            )
        if abs(self.alpha_mean - 0.5) < 0.05 and self.alpha_spread < 0.1:
            out.append(
                f"α ≈ ½ everywhere (mean {self.alpha_mean:.3f}, at most "
                f"{self.alpha_spread:.2g} away): the term g·ΣA in α = 1/(2 + g·ΣA) is "
                f"tiny. So Grad-CAM++'s weight is ≈ ½·Σ relu(g) = (Z/2)·relu(g) = "
                f"{z / 2:.3g}·relu(g) — measured: w++ / ({z / 2:.3g}·relu(w_Grad-CAM)) = "
                f"{self.ratio_pp_gc:.3f} (median)."
            )
            out.append(
                f"Hence the Grad-CAM++ map is ≈ {z / 2:.3g} × Σₖ relu(wₖ)·Aₖ: Grad-CAM "
                "with its negative weights dropped (r = "
                f"{self.r_pp_positive_gc:.2f}), close to the plain activation sum Σₖ Aₖ "
                f"(r = {self.r_pp_activation_sum:.2f}). Its raw "
                f"values run about {z / 2:.3g}× Grad-CAM's."
            )
        else:
            out.append(
                f"α varies here (mean {self.alpha_mean:.3f}, up to "
                f"{self.alpha_spread:.2g} away from it), so Grad-CAM++ weights the "
                "cells of a filter unequally rather than scaling Grad-CAM's weights."
            )
        out.append(f"The two maps correlate at r = {self.r_gc_pp:.2f}.")
        return out


def implications(ex) -> Implications:
    a = ex.activations[0].astype(np.float64)
    g = ex.gradients[0].astype(np.float64)
    alpha = np.asarray(ex.alpha[0], dtype=np.float64)
    w_gc = np.asarray(ex.weights[GRADCAM][0], dtype=np.float64)
    w_pp = np.asarray(ex.weights[GRADCAMPP][0], dtype=np.float64)
    h, w, k = a.shape
    z = h * w
    pos = g > 0
    alphas = alpha[pos]
    alpha_mean = float(alphas.mean()) if alphas.size else float("nan")
    spread = float(np.abs(alphas - alpha_mean).max()) if alphas.size else float("nan")
    means = g.reshape(z, k).mean(axis=0)
    stds = g.reshape(z, k).std(axis=0)
    live = np.abs(means) > 0
    grad_spread = float(np.median(stds[live] / np.abs(means[live]))) if live.any() else float("nan")
    up = w_gc > 0
    ratio = float(np.median(w_pp[up] / (z / 2 * w_gc[up]))) if up.any() else float("nan")
    m_pp = ex.maps[GRADCAMPP][0]
    return Implications(
        z,
        alpha_mean,
        spread,
        grad_spread,
        ratio,
        _corr(m_pp, a.sum(axis=-1)),
        _corr(m_pp, np.maximum(a @ np.maximum(w_gc, 0.0), 0.0)),
        _corr(ex.maps[GRADCAM][0], m_pp),
    )


def window(grid: np.ndarray, row: int, col: int, size: int = 8) -> tuple[np.ndarray, int, int]:
    """At most size×size cells of ``grid`` around (row, col): (values, first row, first col)."""
    h, w = grid.shape
    r0 = int(min(max(0, row - size // 2), max(0, h - size)))
    c0 = int(min(max(0, col - size // 2), max(0, w - size)))
    return grid[r0 : r0 + size, c0 : c0 + size], r0, c0


COSTS = {
    "tape": "the one shared gradient pass",
    "forward": "one forward pass per filter used",
    "guided": "one input-gradient pass",
}


def method_lines() -> list[str]:
    """One Markdown line per method of the registry (so a new method is never left out):
    its name, paper, what it costs and what it shows."""
    lines = []
    for m in REGISTRY.values():
        cost = " + ".join(COSTS.get(n, n) for n in m.needs)
        shape = "on the layer's grid" if m.cam else "at the image's size"
        lines.append(
            f"- **{m.label}** ({m.reference}; {cost}; {shape}): {m.summary or 'see the README.'}"
        )
    return lines
