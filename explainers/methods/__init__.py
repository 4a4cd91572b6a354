"""The method registry: every map the package can draw, one small module per method.

A method declares its ``key`` (what ``explain(..., methods=...)``, the CLI's ``--method`` and
the pages use), its ``label``, what it ``needs`` and a pure NumPy function from those arrays to
its weights or map:

- ``"tape"``: the layer's activations A and the gradient terms g, g², g³ of the pre-softmax
  class score, all from the one compiled tape pass (``engine/capture.py``). Every tape method shares
  that pass, so asking for all of them costs what one costs. Their ``compute(terms)`` returns
  weights, per channel ``(N, K)`` or per position ``(N, h, w, K)``; the map is
  relu(Σ_k w ⊙ A) (``cam_weights.weighted_map``).
- ``"forward"``: forward passes of masked copies of the input (Score-CAM).
- ``"guided"``: the input gradient through guided ReLUs (``explainers/engine/guided_gradient.py``).

``family`` says what the map is: ``"cam"`` (a heatmap on the layer's grid ``(N, h, w)``:
boxes, filters and neurons apply) or ``"pixel"`` (an ``(N, H, W, C)`` map at the model input's
size, shown as an image). Adding a method: one module here listing a ``METHOD``, its entry in
an ``ORDER`` number, one reference formula (``tests/method_references.py``) and one README line.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import numpy as np

from explainers.errors import ExplainerError
from explainers.methods.base import Family, Method, Need, TapeTerms


def _load() -> dict[str, Method]:
    """Every module of this package that defines ``METHOD`` (or ``METHODS``), in the order of
    their ``ORDER`` numbers: the order of the pages, the CLI and the README."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        methods = getattr(module, "METHODS", None) or (
            (module.METHOD,) if hasattr(module, "METHOD") else ()
        )
        found.extend((getattr(module, "ORDER", 999), i, m) for i, m in enumerate(methods))
    return {m.key: m for _, _, m in sorted(found, key=lambda t: (t[0], t[1]))}


REGISTRY: dict[str, Method] = _load()
#: The two methods the teaching pages take apart formula by formula, by their modules' keys.
#: The map of evidence against the class (the two-sided view and the trust card use it).
from explainers.methods.counterfactual import METHOD as _COUNTERFACTUAL  # noqa: E402
from explainers.methods.gradcam import KEY as GRADCAM  # noqa: E402
from explainers.methods.gradcampp import KEY as GRADCAMPP  # noqa: E402

COUNTERFACTUAL = _COUNTERFACTUAL.key

#: What ``explain`` computes when no method is named: Grad-CAM and Grad-CAM++.
DEFAULT_METHODS: tuple[str, ...] = (GRADCAM, GRADCAMPP)


def method_keys(needs: Need | None = None, family: Family | None = None) -> tuple[str, ...]:
    """Registered keys in display order, optionally only those that need ``needs`` (``"tape"``,
    ``"forward"``, ``"guided"``) or are of ``family`` (``"cam"``, ``"pixel"``)."""
    return tuple(
        k
        for k, m in REGISTRY.items()
        if (needs is None or needs in m.needs) and (family is None or m.family == family)
    )


def get_method(key: str) -> Method:
    try:
        return REGISTRY[key]
    except (KeyError, TypeError):
        raise ExplainerError(
            f"unknown method {key!r}; choose from {', '.join(REGISTRY)} or all"
        ) from None


def resolve_methods(methods: Any) -> tuple[str, ...]:
    """``"all"``, one key, or a sequence of keys (``"all"`` allowed inside) → unique keys in
    the order given; ExplainerError for an unknown key or an empty selection."""
    if methods is None:
        return DEFAULT_METHODS
    if isinstance(methods, str):
        methods = (methods,)
    out: list[str] = []
    for m in methods:
        out.extend(REGISTRY if m == "all" else (get_method(m).key,))
    if not out:
        raise ExplainerError(f"unknown method '(none)'; choose from {', '.join(REGISTRY)} or all")
    return tuple(dict.fromkeys(out))


def method_label(key: str, n_samples: int = 0, sigma: float | None = None) -> str:
    """Human name of a method, saying when it is smoothed (``Smooth Grad-CAM++ (16 samples,
    σ=0.15)``); methods that are never smoothed keep their plain name."""
    method = REGISTRY.get(key)
    name = method.label if method else str(key)
    if n_samples and n_samples > 0 and (method is None or method.smoothed):
        noise = f", σ={sigma:.2f}" if sigma is not None else ""
        return f"Smooth {name} ({n_samples} samples{noise})"
    return name


__all__ = [
    "COUNTERFACTUAL",
    "DEFAULT_METHODS",
    "GRADCAM",
    "GRADCAMPP",
    "REGISTRY",
    "Method",
    "TapeTerms",
    "comparable_peak",
    "get_method",
    "method_keys",
    "method_label",
    "resolve_methods",
]


def comparable_peak(method: str, peak: float, grid_cells: int) -> float:
    """A map's maximum in units comparable across methods, for ``render.weak_maps``.

    Grad-CAM weights average the gradient over the Z = h·w cells; Grad-CAM++ weights add
    α·relu(g) over them with α ≤ ½, so its maps run up to Z/2 times larger (exactly that at a
    layer followed by global average pooling, where α ≈ ½). Its maximum is divided by Z/2;
    every other method's is kept.
    """
    peak = float(peak) if np.isfinite(peak) else 0.0
    registered = REGISTRY.get(method)
    if registered is not None and registered.sums_over_cells and grid_cells > 2:
        return peak / (grid_cells / 2.0)
    return peak
