"""Guided Backpropagation (Springenberg et al. 2015) and Guided Grad-CAM (Selvaraju et al. 2017).

The input gradient through guided ReLUs comes from ``explainers/engine/guided_gradient.py``; here only the
arrays: guided backprop is that gradient, ``(N, H, W, C)`` float32 at the model input's size;
Guided Grad-CAM multiplies it by the Grad-CAM map upsampled bilinearly to the input size.
Guided backprop uses the clean image only; Guided Grad-CAM's Grad-CAM factor is smoothed
with the other tape methods when ``n_samples > 0``.
"""

import numpy as np

from explainers.methods import gradcam
from explainers.methods.base import Method
from explainers.render import upsample


def backprop(guided_gradient: np.ndarray) -> np.ndarray:
    g = np.asarray(guided_gradient, dtype=np.float32)
    return np.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)


def guided_gradcam(guided_gradient: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """guided ⊙ upsample(cam): ``(N, H, W, C)`` float32."""
    g = backprop(guided_gradient)
    up = upsample(np.asarray(cam, dtype=np.float32), g.shape[1:3])
    return (g * up[..., None]).astype(np.float32)


ORDER = 80  # place in the lists of methods
METHODS = (
    Method(
        "guided-backprop",
        "Guided Backprop",
        ("guided",),
        "pixel",
        backprop,
        "Springenberg et al. 2015",
        smoothed=False,
        summary="The input gradient through ReLUs that pass only positive gradients: "
        "fine edges at the image's resolution, hardly specific to the class.",
    ),
    Method(
        "guided-gradcam",
        "Guided Grad-CAM",
        ("guided", "tape"),
        "pixel",
        guided_gradcam,
        "Selvaraju et al. 2017",
        uses=(gradcam.KEY,),
        summary="Guided backprop × the Grad-CAM map: the fine detail inside the region "
        "Grad-CAM finds for the class.",
    ),
)


def to_image(pixel_map: np.ndarray) -> np.ndarray:
    """A signed ``(H, W, C)`` map as a picture: grey is 0, brighter / darker is positive /
    negative, scaled by the largest absolute value (uint8 RGB)."""
    g = backprop(pixel_map)
    if g.ndim == 2:
        g = g[..., None]
    if g.shape[-1] == 1:
        g = np.repeat(g, 3, axis=-1)
    g = g[..., :3]
    peak = float(np.abs(g).max())
    out = 0.5 + 0.5 * (g / peak if peak > 0 else g)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
