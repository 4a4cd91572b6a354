"""Textual explanation (Selvaraju et al. 2017, §7): the filters with the largest and the most
negative Grad-CAM weights, how much of the map each carries and where it fires, and one
sentence built from those numbers only.

Share of the map: where the map is positive it equals Σ_k w_k A_ijk, so filter k's share is
Σ_{ij: map>0} w_k A_ijk / Σ_ij map_ij: the shares of all filters add up to 100 %, and a
negative share is evidence the filter takes away. Where it fires: the zone of the layer's grid
holding the largest part of the filter's activation — the four corner blocks and the border
band (the outer quarter of the rows and columns) and the centre — or, given a lesion mask,
lesion and skin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from explainers.errors import ExplainerError
from explainers.methods import gradcam

TOP = 5


@dataclass
class FilterFact:
    """One filter: its index, Grad-CAM weight, share of the map (signed fraction), the zone
    where most of its activation lies and that zone's fraction of it; ``activation`` is A_k
    ``(h, w)``, for a thumbnail."""

    index: int
    weight: float
    share: float
    where: str
    where_fraction: float
    activation: np.ndarray = field(repr=False)


@dataclass
class TextualExplanation:
    top: list[FilterFact]
    bottom: list[FilterFact]
    sentence: str


def zones(h: int, w: int, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Named bool ``(h, w)`` zones of the grid: lesion / skin from a mask (resized to the grid
    by nearest neighbour), else centre, border and corners."""
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        rows = (np.arange(h) + 0.5) * m.shape[0] / h
        cols = (np.arange(w) + 0.5) * m.shape[1] / w
        small = m[rows.astype(int)[:, None], cols.astype(int)[None, :]]
        return {name: z for name, z in (("lesion", small), ("skin", ~small)) if z.any()}
    bh, bw = max(1, round(h / 4)), max(1, round(w / 4))
    r, c = np.arange(h)[:, None], np.arange(w)[None, :]
    outer_r = (r < bh) | (r >= h - bh)
    outer_c = (c < bw) | (c >= w - bw)
    named = {
        "centre": ~outer_r & ~outer_c,
        "border": outer_r ^ outer_c,
        "corners": outer_r & outer_c,
    }
    return {name: z for name, z in named.items() if z.any()}


def _where(activation: np.ndarray, named: dict[str, np.ndarray]) -> tuple[str, float]:
    mass = np.maximum(activation, 0.0)
    total = float(mass.sum())
    if total <= 0:
        return "nowhere", 0.0
    parts = {name: float(mass[z].sum()) / total for name, z in named.items()}
    best = max(parts, key=parts.get)
    return best, parts[best]


def _facts(indices, weights, shares, acts, named) -> list[FilterFact]:
    out = []
    for k in indices:
        where, fraction = _where(acts[..., k], named)
        out.append(
            FilterFact(
                int(k),
                float(weights[k]),
                float(shares[k]),
                where,
                fraction,
                acts[..., k].astype(np.float32),
            )
        )
    return out


PLACES = {
    "centre": "at the centre",
    "border": "on the border",
    "corners": "in the corners",
    "lesion": "on the lesion",
    "skin": "on the skin around it",
    "nowhere": "nowhere (inactive)",
}


def _group_text(facts: list[FilterFact], kind: str) -> str:
    if not facts:
        return f"no filter has a {'positive' if kind == 'largest' else 'negative'} weight"
    ids = ", ".join(f"#{f.index}" for f in facts)
    total = sum(f.share for f in facts) * 100
    places = [f.where for f in facts]
    commonest = max(dict.fromkeys(places), key=places.count)
    one = len(facts) == 1
    subject = (
        f"the filter with the {kind} Grad-CAM weight ({ids})"
        if one
        else f"the {len(facts)} filters with the {kind} Grad-CAM weights ({ids})"
    )
    verb = ("carries" if one else "carry") if total >= 0 else ("takes away" if one else "take away")
    fire = "fires" if one else "fire mostly"
    count = "" if one else f" ({places.count(commonest)} of {len(facts)})"
    amount = f"{abs(total):.0f}" if abs(total) >= 10 else f"{abs(total):.1f}"
    return f"{subject} {verb} {amount} % of the map and {fire} {PLACES[commonest]}{count}"


def describe(
    ex, image: int = 0, k: int = TOP, mask: np.ndarray | None = None, class_name: str | None = None
) -> TextualExplanation:
    """The textual explanation of image ``image`` of an ``Explanation`` that holds Grad-CAM."""
    if gradcam.KEY not in ex.weights or ex.activations is None:
        raise ExplainerError("the textual explanation needs the Grad-CAM weights of this image")
    weights = np.asarray(ex.weights[gradcam.KEY][image], dtype=np.float64)
    acts = np.asarray(ex.activations[image], dtype=np.float64)
    contributions = acts * weights  # (h, w, K): w_k A_ijk
    cam = np.maximum(contributions.sum(-1), 0.0)
    positive = cam > 0
    total = float(cam.sum())
    shares = contributions[positive].sum(axis=0) / total if total > 0 else np.zeros_like(weights)
    order = np.argsort(-weights, kind="stable")
    top = [i for i in order[:k] if weights[i] > 0]
    bottom = [i for i in order[::-1][:k] if weights[i] < 0]
    named = zones(acts.shape[0], acts.shape[1], mask)
    top_facts = _facts(top, weights, shares, acts, named)
    bottom_facts = _facts(bottom, weights, shares, acts, named)
    target = int(ex.targets[image])
    name = class_name if class_name is not None else f"class {target}"
    sentence = (
        f"For {name} at layer {ex.layer.path}, {_group_text(top_facts, 'largest')}; "
        f"{_group_text(bottom_facts, 'most negative')}."
    )
    return TextualExplanation(top_facts, bottom_facts, sentence)


#: The method whose weights the textual explanation reads.
NEEDS = gradcam.KEY
