"""What a method is (``Method``) and what the tape gives the tape methods (``TapeTerms``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from explainers.methods.cam_weights import gradcampp_alpha

#: The passes a method can need: the one gradient tape, masked forward passes, the guided gradient.
Need = Literal["tape", "forward", "guided"]
#: What a map is: "cam", (N, h, w) on the layer's grid; "pixel", (N, H, W, C) at the input's size.
Family = Literal["cam", "pixel"]


@dataclass(frozen=True)
class Method:
    """One explanation method: what it is called, what it needs and how it is computed."""

    key: str
    label: str
    needs: tuple[Need, ...]
    family: Family
    compute: Callable[..., Any]
    reference: str = ""  # the paper
    smoothed: bool = True  # computed from terms averaged over noisy copies when n_samples > 0
    uses: tuple[str, ...] = ()  # maps of other methods it is built from
    #: Its weights add a term over the h·w grid cells where Grad-CAM averages one, so its raw
    #: values run up to h·w/2 times larger (Grad-CAM++: α ≤ ½); ``methods.comparable_peak``.
    sums_over_cells: bool = False
    #: One plain line for the pages (Compare, How it works): what the map shows, and when it
    #: coincides with another method. No formula: the module's docstring has it.
    summary: str = ""

    @property
    def cam(self) -> bool:
        return self.family == "cam"


@dataclass
class TapeTerms:
    """The arrays of the one tape pass, float64, channels last: activations A ``(N, h, w, K)``
    (already zero outside the chosen neurons) and the derivative terms g, g², g³ (averages
    over the noisy copies when smoothed, so d2 is not d1² then)."""

    activations: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    _alpha: np.ndarray | None = field(default=None, repr=False)

    @property
    def alpha(self) -> np.ndarray:
        """Grad-CAM++'s α (computed once, shared by the pages that show it)."""
        if self._alpha is None:
            self._alpha = gradcampp_alpha(self.activations, self.d2, self.d3)
        return self._alpha
