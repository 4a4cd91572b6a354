"""XGrad-CAM (Fu et al. 2020): w_k = Σ_ij A_ij^k / (Σ_ab A_ab^k + 1e-7) · g_ij^k,
map = relu(Σ_k w_k A_k)."""

import numpy as np

from explainers.methods.base import Method, TapeTerms

EPSILON = 1e-7


def compute(terms: TapeTerms) -> np.ndarray:
    a = np.asarray(terms.activations, dtype=np.float64)
    g = np.asarray(terms.d1, dtype=np.float64)
    total = a.sum(axis=(-3, -2), keepdims=True) + EPSILON
    return (a / total * g).sum(axis=(-3, -2))


ORDER = 40  # place in the lists of methods
METHOD = Method(
    "xgradcam",
    "XGrad-CAM",
    ("tape",),
    "cam",
    compute,
    "Fu et al. 2020",
    summary="Grad-CAM with each filter's gradient weighted by where the filter is "
    "active; Grad-CAM's shape at a layer followed directly by global "
    "average pooling.",
)
