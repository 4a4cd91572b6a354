"""HiResCAM (Draelos & Carin 2020): relu(Σ_k g ⊙ A), the gradient kept per position.
Where the gradient is constant over positions (a layer followed directly by global average
pooling) g_ij = mean(g), so this is exactly Grad-CAM."""

import numpy as np

from explainers.methods.base import Method, TapeTerms


def compute(terms: TapeTerms) -> np.ndarray:
    return np.asarray(terms.d1, dtype=np.float64)


ORDER = 30  # place in the lists of methods
METHOD = Method(
    "hirescam",
    "HiResCAM",
    ("tape",),
    "cam",
    compute,
    "Draelos & Carin 2020",
    summary="Gradient × activation at each grid cell, without Grad-CAM's averaging; "
    "the same map as Grad-CAM at a layer followed directly by global "
    "average pooling.",
)
