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

from explainers.errors import ExplainerError

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "LayerInfo": "engine.adapter",
    "candidate_layers": "engine.adapter",
    "resolve_layer": "engine.adapter",
    "GradientCapture": "engine.capture",
    "get_capture": "engine.capture",
    "METHODS": "engine.core",
    "Explanation": "engine.core",
    "Prediction": "engine.core",
    "explain": "engine.core",
    "explain_details": "engine.core",
    "method_label": "engine.core",
    "predict": "engine.core",
    "aggregate": "evaluation.scoring",
    "average_drop": "evaluation.scoring",
    "deletion": "evaluation.scoring",
    "energy_in_mask": "evaluation.scoring",
    "evaluate": "evaluation.scoring",
    "increase_in_confidence": "evaluation.scoring",
    "insertion": "evaluation.scoring",
    "iou_at": "evaluation.scoring",
    "pointing_game": "evaluation.scoring",
    "ExplainSettings": "settings",
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
    from explainers.engine.allocator import prefer_system_allocator

    prefer_system_allocator()  # before the first import of TensorFlow (engine/allocator.py)
    value = getattr(importlib.import_module(f"explainers.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
