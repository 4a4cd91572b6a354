"""Grad-CAM (Selvaraju et al. 2017): w_k = mean_ij g_ij, map = relu(Σ_k w_k A_k)."""

import numpy as np

from explainers.methods.base import Method, TapeTerms
from explainers.methods.cam_weights import gradcam_weights

KEY = "gradcam"


def compute(terms: TapeTerms) -> np.ndarray:
    return gradcam_weights(terms.d1)


ORDER = 10  # place in the lists of methods
METHOD = Method(
    KEY,
    "Grad-CAM",
    ("tape",),
    "cam",
    compute,
    "Selvaraju et al. 2017",
    summary="Where the evidence for the class is: each filter of the layer weighted "
    "by how much the class score rises with it on average.",
)
