"""Grad-CAM, Grad-CAM++, Smooth Grad-CAM++ and the other CAM methods for Keras classifiers.

    from explainers import explain
    maps = explain(model, images)        # {method key: (N, h, w)}; see explainers.methods

Importing the package does nothing: TensorFlow and Keras are imported by the first name that
needs them (module ``__getattr__`` below), so ``import explainers`` is cheap and has no side
effects. The command line (``python -m explainers``) keeps TensorFlow's start-up noise off
stderr itself (``cli.main``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ExplainerError

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "LayerInfo": "adapter",
    "candidate_layers": "adapter",
    "resolve_layer": "adapter",
    "GradientCapture": "capture",
    "get_capture": "capture",
    "METHODS": "core",
    "Explanation": "core",
    "Prediction": "core",
    "explain": "core",
    "explain_details": "core",
    "method_label": "core",
    "predict": "core",
    "aggregate": "metrics",
    "average_drop": "metrics",
    "deletion": "metrics",
    "energy_in_mask": "metrics",
    "evaluate": "metrics",
    "increase_in_confidence": "metrics",
    "insertion": "metrics",
    "iou_at": "metrics",
    "pointing_game": "metrics",
    "colorbar_figure": "render",
    "colorize": "render",
    "normalize": "render",
    "overlay": "render",
    "upsample": "render",
}

__all__ = ["ExplainerError", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'explainers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
