"""Reference maps that know nothing about the model: a centred blob and uniform noise. A
method has to beat them for its scores to say anything about the model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def centre_prior(shape: Sequence[int], width: float = 0.25) -> np.ndarray:
    """A Gaussian blob in the middle of an (h, w) grid (standard deviation ``width`` × size):
    the "map" of someone who only knows that the object is usually centred. A method has to
    beat it for its scores to say anything about the model (dermoscopy lesions are centred)."""
    h, w = (int(s) for s in shape)
    y = (np.arange(h) + 0.5) / h - 0.5
    x = (np.arange(w) + 0.5) / w - 0.5
    g = np.exp(-0.5 * ((y[:, None] / width) ** 2 + (x[None, :] / width) ** 2))
    return g.astype(np.float32)


def random_map(shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Uniform noise on an (h, w) grid: the chance level of every score."""
    rng = np.random.default_rng(int(seed))
    return rng.random(tuple(int(s) for s in shape)).astype(np.float32)
