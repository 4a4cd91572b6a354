"""Grad-CAM, Grad-CAM++ and Smooth Grad-CAM++ for Keras image classifiers.

    from explainers import explain
    maps = explain(model, images)        # {"gradcam": (N,h,w), "gradcam++": (N,h,w)}
"""

from .adapter import LayerInfo, candidate_layers, resolve_layer
from .capture import GradientCapture, get_capture
from .core import METHODS, Explanation, Prediction, explain, explain_details, method_label, predict
from .errors import ExplainerError

__all__ = [
    "METHODS",
    "ExplainerError",
    "Explanation",
    "GradientCapture",
    "LayerInfo",
    "Prediction",
    "candidate_layers",
    "explain",
    "explain_details",
    "get_capture",
    "method_label",
    "predict",
    "resolve_layer",
]
