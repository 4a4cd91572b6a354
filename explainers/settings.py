"""What to explain, as one value: ``ExplainSettings``.

The same dozen choices (layer, class, methods, noise, filters, neurons, Score-CAM's K) travel
from the CLI, the dashboard and the batch to ``explain``. As one frozen, hashable value they
are checked once, compared and cached as a whole (the dashboard's cache key is the settings
object itself), and a new choice is one field here instead of a keyword in every signature.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from explainers.errors import ExplainerError

#: σ of the smoothing noise when none is given: a fraction of each image's value range.
DEFAULT_SIGMA = 0.15


def check_noise(n_samples: object, sigma: object) -> tuple[int, float]:
    """The noise choices as (int, float), or ExplainerError in plain words."""
    try:
        n_samples = int(n_samples)  # type: ignore[call-overload]
        sigma = float(sigma)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ExplainerError(
            "the number of samples must be an integer and sigma a number"
        ) from None
    if n_samples < 0:
        raise ExplainerError(f"the number of noise samples must be 0 or more, got {n_samples}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ExplainerError(f"sigma must be 0 or more, got {sigma}")
    return n_samples, sigma


def check_max_channels(max_channels: object) -> int | None:
    """Score-CAM's K as an int (None: every channel), or ExplainerError."""
    if max_channels is None:
        return None
    try:
        value = int(max_channels)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ExplainerError(f"max_channels must be a whole number, got {max_channels!r}") from None
    if value < 1:
        raise ExplainerError(f"max_channels must be at least 1, got {value}")
    return value


def _hashable(value: Any) -> Any:
    """Lists and arrays as nested tuples, so that settings can be a cache key; the values
    themselves are checked where their bounds are known (the layer's grid, the classes)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return tuple(_hashable(v) for v in value)
    return value


@dataclass(frozen=True)
class ExplainSettings:
    """Every choice ``explain`` takes, checked and normalised (tuples, ints) on creation.

    ``layer``: a layer path or ``LayerInfo`` (None: the last spatial layer); ``target``: one
    class or one per image (None: each image's top class); ``methods``: registry keys or
    ``"all"``; ``n_samples``/``sigma``/``seed``: the noise of Smooth Grad-CAM++ (σ as a
    fraction of each image's value range); ``filters``: channels kept; ``neurons``: grid
    positions kept, or the corners of a rectangle when ``region``; ``max_channels``: Score-CAM's K.
    """

    layer: Any = None
    target: int | tuple[int, ...] | None = None
    methods: tuple[str, ...] | str | None = None
    n_samples: int = 0
    sigma: float = DEFAULT_SIGMA
    seed: int | None = None
    filters: tuple[int, ...] | None = None
    neurons: tuple[tuple[int, int], ...] | None = None
    region: bool = False
    max_channels: int | None = None

    def __post_init__(self) -> None:
        from explainers.methods import resolve_methods

        fix = object.__setattr__  # frozen: normalise in place once, at creation
        fix(self, "methods", resolve_methods(self.methods))
        n, s = check_noise(self.n_samples, self.sigma)
        fix(self, "n_samples", n)
        fix(self, "sigma", s)
        fix(self, "seed", None if self.seed is None else int(self.seed))
        for name in ("target", "filters", "neurons"):
            fix(self, name, _hashable(getattr(self, name)))
        fix(self, "region", bool(self.region))
        fix(self, "max_channels", check_max_channels(self.max_channels))

    @property
    def layer_path(self) -> str | None:
        """The layer as a path, whether it was given as a path or a ``LayerInfo``."""
        return getattr(self.layer, "path", self.layer)

    def replace(self, **changes: Any) -> ExplainSettings:
        """A copy with some choices changed (checked again)."""
        return dataclasses.replace(self, **changes)


def settings_from(settings: ExplainSettings | None = None, **keywords: Any) -> ExplainSettings:
    """``settings`` with ``keywords`` applied: the thin keyword front of ``explain``. An unknown
    keyword is a ``TypeError``, as for any Python function."""
    unknown = set(keywords) - {f.name for f in dataclasses.fields(ExplainSettings)}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    base = settings if settings is not None else ExplainSettings()
    return dataclasses.replace(base, **keywords) if keywords else base
