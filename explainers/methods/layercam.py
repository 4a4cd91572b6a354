"""LayerCAM (Jiang et al. 2021): relu(Σ_k relu(g) ⊙ A), positive gradient per position."""

import numpy as np

from explainers.methods.base import Method, TapeTerms


def compute(terms: TapeTerms) -> np.ndarray:
    return np.maximum(np.asarray(terms.d1, dtype=np.float64), 0.0)


ORDER = 50  # place in the lists of methods
METHOD = Method(
    "layercam",
    "LayerCAM",
    ("tape",),
    "cam",
    compute,
    "Jiang et al. 2021",
    summary="Positive gradient × activation at each grid cell: finer detail, "
    "useful at earlier layers.",
)
