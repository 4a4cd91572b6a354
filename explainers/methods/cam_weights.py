"""Channel weights and maps: pure functions on NumPy arrays, in float64.

Array layout: activations and derivative terms are ``(..., h, w, K)`` (channels last, as in
Keras); weights are ``(..., K)``; maps are ``(..., h, w)``.

Derivative terms (Chattopadhay et al. 2018, Eq. 19 with the exponential trick, where the
higher derivatives of exp(S_c) are powers of the first gradient g of the pre-softmax score):
``d1 = g``, ``d2 = g**2``, ``d3 = g**3``. Smooth Grad-CAM++ (Omeiza et al. 2019) averages each
term over noisy copies of the image before these formulas are applied, so they take the terms,
not g.

Numerical care: g is float32 from the tape, but g**3 of a gradient of 1e-15 is 1e-45, which
underflows float32 to 0 (and g**2 of 1e-23 too), turning alpha into 0/0. Here every power is
taken in float64 (smallest normal 2e-308), where the cube of any float32 number is exact
enough; a zero denominator gives alpha = 0 as the paper's convention.
"""

from __future__ import annotations

import numpy as np

SPATIAL_AXES = (-3, -2)


def gradcam_weights(d1: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): w_k = mean over positions of g."""
    return np.asarray(d1, dtype=np.float64).mean(axis=SPATIAL_AXES)


def gradcampp_alpha(activations: np.ndarray, d2: np.ndarray, d3: np.ndarray) -> np.ndarray:
    """Grad-CAM++ alpha: alpha_ij = d2_ij / (2 d2_ij + (sum_ab A_ab) d3_ij), 0 where the
    denominator is 0."""
    a = np.asarray(activations, dtype=np.float64)
    d2 = np.asarray(d2, dtype=np.float64)
    d3 = np.asarray(d3, dtype=np.float64)
    activation_sum = a.sum(axis=SPATIAL_AXES, keepdims=True)
    denominator = 2.0 * d2 + activation_sum * d3
    alpha = np.zeros_like(denominator)
    np.divide(d2, denominator, out=alpha, where=denominator != 0)
    return alpha


def gradcampp_weights(
    activations: np.ndarray, d1: np.ndarray, d2: np.ndarray, d3: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM++ weights w_k = sum_ij alpha_ij relu(d1_ij); returns (weights, alpha)."""
    alpha = gradcampp_alpha(activations, d2, d3)
    relu_grad = np.maximum(np.asarray(d1, dtype=np.float64), 0.0)
    return (alpha * relu_grad).sum(axis=SPATIAL_AXES), alpha


def weighted_map(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """relu(sum_k w_k A_k): the class-discriminative map, finite and non-negative. Weights
    are per channel ``(..., K)`` or per position ``(..., h, w, K)`` (HiResCAM, LayerCAM)."""
    a = np.asarray(activations, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == a.ndim:
        cam = (a * w).sum(axis=-1)
    else:
        cam = np.einsum("...hwk,...k->...hw", a, w)
    cam = np.nan_to_num(cam, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(cam, 0.0)


def per_channel_maps(
    activations: np.ndarray, weights: np.ndarray, channels: np.ndarray
) -> np.ndarray:
    """w_k A_k for the chosen channels: ``(..., len(channels), h, w)`` (signed, not relu'd),
    the per-filter view of the Smooth Grad-CAM++ paper."""
    a = np.asarray(activations, dtype=np.float64)[..., channels]
    w = np.asarray(weights, dtype=np.float64)[..., channels]
    maps = a * w[..., None, None, :]
    return np.moveaxis(maps, -1, -3)
