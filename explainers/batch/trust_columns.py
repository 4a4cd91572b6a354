"""The trust card's figures and the artefact audit of one image, as ``results.csv`` columns.

Per map variant (the baselines excepted): class sensitivity (Spearman with the runner-up
class's map, one extra pass per noise setting), centre-prior likeness, the map's share of
energy in the lesion and on the dark corners (the mask given with ``--masks``, else the
automatic outline), and how much hiding the corners, or the map's high area outside the
lesion, lowers the class probability (before − after), and whether that last figure hangs on
an uncertain automatic outline (1 = uncertain, read it as a possibility; 0 = not, or a mask
was given). The same figures as ``explain --json``'s "trust" and "audit".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError
from explainers.trust.artefact_audit import audit
from explainers.trust.card import trust_figures
from explainers.trust.segmentation import Outline, outline

TRUST_NAMES = (
    "class_sensitivity",
    "centre_prior",
    "lesion_energy",
    "corner_energy",
    "hidden_corners_change",
    "hidden_outside_change",
    "outline_uncertain",
)
#: Short plain labels with units, for table headers (the Audit page); the module docstring
#: says what each measures.
TRUST_LABELS: dict[str, str] = {
    "class_sensitivity": "Like runner-up's map (−1..1)",
    "centre_prior": "Like a centred blob (−1..1)",
    "lesion_energy": "Share in lesion (0–1)",
    "corner_energy": "Share on corners (0–1)",
    "hidden_corners_change": "Lost hiding corners (0–1)",
    "hidden_outside_change": "Lost hiding outside (0–1)",
    "outline_uncertain": "Outline uncertain (1 = yes)",
}


def trust_columns(variants: Sequence[Any], explained: Sequence[str]) -> list[str]:
    """The columns, for the variants whose method is one of ``explained`` (not baselines)."""
    return [f"{v.key}:{name}" for v in variants if v.method in explained for name in TRUST_NAMES]


def trust_row(
    bundle: Any,
    raw: np.ndarray,
    extra: Any,
    mask: np.ndarray | None,
    maps: dict[str, np.ndarray],
    variants: Sequence[Any],
    explained: Sequence[str],
    target: int,
    probabilities: np.ndarray,
    layer: str,
    sigma: float,
    seed: int,
) -> dict[str, float]:
    """The figures of one image: ``{column: value}``."""
    x = np.asarray(bundle.preprocess(np.asarray(raw, np.float32)[None].copy()), np.float32)
    extra_inputs = None if extra is None else [np.asarray(extra)]
    image = Image.fromarray(np.clip(np.rint(raw), 0, 255).astype(np.uint8))
    auto = None
    if mask is None:
        try:
            auto = outline(image)
        except ExplainerError:  # a uniform image: no lesion; the other figures still hold
            auto = Outline(np.zeros(raw.shape[:2], bool), 1.0)
    row: dict[str, float] = {}
    ours = [v for v in variants if v.method in explained]
    for n_samples in sorted({v.n_samples for v in ours}):
        group = [v for v in ours if v.n_samples == n_samples]
        figures = trust_figures(
            bundle.model,
            x,
            {v.method: maps[v.key] for v in group},
            target,
            probabilities,
            extra_inputs=extra_inputs,
            layer=layer,
            n_samples=n_samples,
            sigma=sigma,
            seed=seed,
            with_seeds=False,
        )
        for v in group:
            result = audit(
                bundle, image, maps[v.key], target, extra_inputs=extra_inputs, mask=mask, auto=auto
            )
            edits = {e.region: e.probability_before - e.probability_after for e in result.edits}
            row.update(
                {
                    f"{v.key}:class_sensitivity": figures[v.method].class_sensitivity,
                    f"{v.key}:centre_prior": figures[v.method].centre_prior,
                    f"{v.key}:lesion_energy": result.energy["lesion"],
                    f"{v.key}:corner_energy": result.energy["corners"],
                    f"{v.key}:hidden_corners_change": edits.get("corners", 0.0),
                    f"{v.key}:hidden_outside_change": edits.get("outside-high", 0.0),
                    f"{v.key}:outline_uncertain": float(result.uncertain),
                }
            )
    return row
