"""Grad-CAM++ (Chattopadhay et al. 2018, Eq. 19): α_ij = g² / (2 g² + Σ_ab A_ab g³),
w_k = Σ_ij α_ij relu(g_ij), map = relu(Σ_k w_k A_k); powers in float64 (weights.py)."""

import numpy as np

from explainers.methods.base import Method, TapeTerms

KEY = "gradcam++"


def compute(terms: TapeTerms) -> np.ndarray:
    relu_grad = np.maximum(np.asarray(terms.d1, dtype=np.float64), 0.0)
    return (terms.alpha * relu_grad).sum(axis=(-3, -2))


ORDER = 20  # place in the lists of methods
METHOD = Method(
    KEY,
    "Grad-CAM++",
    ("tape",),
    "cam",
    compute,
    "Chattopadhay et al. 2018",
    sums_over_cells=True,
    summary="Like Grad-CAM, but each grid cell's gradient is weighted, so several "
    "separate regions of evidence show up, not only the strongest one.",
)
