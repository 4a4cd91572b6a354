"""Score-CAM (Wang et al. 2020, as pytorch-grad-cam computes it), with Faster Score-CAM's
channel selection.

Each chosen channel A_k is upsampled bilinearly (half-pixel centres, as ``tf.image.resize``)
to the model input's size and min–max normalised to [0, 1] (an all-constant channel gives an
all-zero mask); it multiplies the model input; the pre-softmax class score of each masked
input, softmaxed over the chosen channels, is w_k; map = relu(Σ_k w_k A_k). ``max_channels=K``
keeps the K channels whose activations vary most over the positions (Faster Score-CAM);
the others get weight 0. Not smoothed: it uses the clean image's activations.

The masked inputs go through the model in fixed-size chunks (``chunk_size``, the last one
padded), built chunk by chunk so memory stays bounded for 2048 channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from explainers.errors import ExplainerError
from explainers.methods.base import Method
from explainers.render import upsample

#: Default K offered by the dashboard: 2048 channels take minutes on a CPU.
DEFAULT_MAX_CHANNELS = 64


def select_channels(
    activations: np.ndarray, channel_mask: np.ndarray | None = None, max_channels: int | None = None
) -> np.ndarray:
    """Indices (ascending) of the channels to score for one image ``(h, w, K)``: the allowed
    ones (``channel_mask``), at most ``max_channels`` of them by largest variance over positions
    (ties: lower index first)."""
    a = np.asarray(activations, dtype=np.float64)
    k = a.shape[-1]
    allowed = np.arange(k) if channel_mask is None else np.flatnonzero(channel_mask)
    if max_channels is None or max_channels >= allowed.size:
        return allowed
    variance = a.reshape(-1, k).var(axis=0)[allowed]
    order = np.argsort(-variance, kind="stable")[: int(max_channels)]
    return np.sort(allowed[order])


def channel_masks(activations: np.ndarray, size: Sequence[int], channels: np.ndarray) -> np.ndarray:
    """The chosen channels of one image ``(h, w, K)`` upsampled to ``size = (H, W)`` and each
    min–max normalised to [0, 1]: float32 ``(len(channels), H, W)``."""
    a = np.asarray(activations, dtype=np.float32)[..., channels]
    up = upsample(np.moveaxis(a, -1, 0), size)
    lo = up.min(axis=(1, 2), keepdims=True)
    span = up.max(axis=(1, 2), keepdims=True) - lo
    scale = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
    up -= lo
    up *= scale
    return up


def weights_from_scores(scores: np.ndarray, channels: np.ndarray, k: int) -> np.ndarray:
    """Softmax of the masked inputs' class scores over the chosen channels; 0 elsewhere."""
    s = np.asarray(scores, dtype=np.float64)
    w = np.zeros(k, dtype=np.float64)
    if s.size:
        e = np.exp(s - s.max())
        w[channels] = e / e.sum()
    return w


ScoreFn = Callable[[np.ndarray, int], np.ndarray]  # (masked inputs, image index) -> logits


def compute(
    activations: np.ndarray,
    model_input: np.ndarray,
    score_fn: ScoreFn,
    targets: np.ndarray,
    channel_mask: np.ndarray | None = None,
    max_channels: int | None = None,
    chunk_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Score-CAM weights ``(N, K)`` for clean activations ``(N, h, w, K)`` and the model inputs
    ``(N, H, W, C)``; ``score_fn`` runs one chunk of masked inputs of image i through the model
    and returns their pre-softmax scores ``(chunk, classes)``."""
    if max_channels is not None and int(max_channels) < 1:
        raise ExplainerError(f"Score-CAM needs at least 1 channel, got max_channels={max_channels}")
    a = np.asarray(activations)
    x = np.asarray(model_input, dtype=np.float32)
    n, k = a.shape[0], a.shape[-1]
    size = x.shape[1:3]
    chosen = [select_channels(a[i], channel_mask, max_channels) for i in range(n)]
    chunks_per_image = [-(-len(c) // chunk_size) for c in chosen]
    total, done = sum(len(c) for c in chosen), 0
    weights = np.zeros((n, k), dtype=np.float64)
    for i, channels in enumerate(chosen):
        scores = []
        for j in range(chunks_per_image[i]):
            part = channels[j * chunk_size : (j + 1) * chunk_size]
            masks = channel_masks(a[i], size, part)
            batch = np.zeros((chunk_size, *x.shape[1:]), dtype=np.float32)  # fixed shape
            batch[: len(part)] = x[i][None] * masks[..., None]
            logits = np.asarray(score_fn(batch, i))
            scores.append(logits[: len(part), int(targets[i])])
            done += len(part)
            if progress:
                progress(done, total)
        weights[i] = weights_from_scores(
            np.concatenate(scores) if scores else np.zeros(0), channels, k
        )
    return weights


ORDER = 70  # place in the lists of methods
METHOD = Method(
    "scorecam",
    "Score-CAM",
    ("forward",),
    "cam",
    compute,
    "Wang et al. 2020",
    smoothed=False,
    summary="No gradients: each of K filters masks the image, and how much the "
    "class score rises is that filter's weight (K forward passes).",
)
