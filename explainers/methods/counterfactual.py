"""Counterfactual map (Selvaraju et al. 2017, §3.3): Grad-CAM of −g, the regions whose
removal would raise the class score (what argues against the class)."""

import numpy as np

from explainers.methods.base import Method, TapeTerms
from explainers.methods.cam_weights import gradcam_weights


def compute(terms: TapeTerms) -> np.ndarray:
    return -gradcam_weights(terms.d1)


ORDER = 60  # place in the lists of methods
METHOD = Method(
    "counterfactual",
    "Counterfactual Grad-CAM",
    ("tape",),
    "cam",
    compute,
    "Selvaraju et al. 2017, §3.3",
    summary="Evidence against the class: the regions whose removal would raise "
    "the class score; blank when nothing argues against it.",
)
