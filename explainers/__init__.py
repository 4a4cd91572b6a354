"""Grad-CAM, Grad-CAM++ and Smooth Grad-CAM++ for Keras image classifiers.

    from explainers import explain
    maps = explain(model, images)        # {"gradcam": (N,h,w), "gradcam++": (N,h,w)}
"""

import os as _os
import sys as _sys

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "tensorflow" not in _sys.modules and not _os.environ.get("EXPLAINERS_DEBUG"):
    # TensorFlow 2.21 writes its start-up lines straight to fd 2, ignoring TF_CPP_MIN_LOG_LEVEL;
    # hold them back so the CLI's stderr is only its own message (shown again if the import fails).
    import tempfile as _tempfile

    _saved = _os.dup(2)
    with _tempfile.TemporaryFile() as _log:
        _os.dup2(_log.fileno(), 2)
        try:
            import tensorflow as _tf  # noqa: F401
        except BaseException:
            _os.dup2(_saved, 2)
            _log.seek(0)
            _sys.stderr.write(_log.read().decode("utf-8", "replace"))
            raise
        finally:
            _os.dup2(_saved, 2)
            _os.close(_saved)

from .adapter import LayerInfo, candidate_layers, resolve_layer
from .capture import GradientCapture, get_capture
from .core import METHODS, Explanation, Prediction, explain, explain_details, method_label, predict
from .errors import ExplainerError
from .metrics import (
    aggregate,
    average_drop,
    deletion,
    energy_in_mask,
    evaluate,
    increase_in_confidence,
    insertion,
    iou_at,
    pointing_game,
)
from .render import colorbar_figure, colorize, normalize, overlay, upsample

__all__ = [
    "METHODS",
    "aggregate",
    "average_drop",
    "deletion",
    "energy_in_mask",
    "evaluate",
    "increase_in_confidence",
    "insertion",
    "iou_at",
    "pointing_game",
    "ExplainerError",
    "Explanation",
    "GradientCapture",
    "LayerInfo",
    "Prediction",
    "candidate_layers",
    "colorbar_figure",
    "colorize",
    "explain",
    "explain_details",
    "get_capture",
    "method_label",
    "normalize",
    "overlay",
    "predict",
    "resolve_layer",
    "upsample",
]
