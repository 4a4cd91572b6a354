"""Scores that say whether a heatmap is faithful to the model and where it points.

A map that looks plausible is not yet a faithful one. Two families of scores:

* **Faithfulness** (does the model's confidence follow the map?):
  - *Average Drop %* and *Increase in Confidence %* (Chattopadhay et al. 2018, "Grad-CAM++",
    WACV): the model sees the image multiplied by the map; Y is the class probability for the
    full image, O for the masked one.
  - *Deletion* and *Insertion* (Petsiuk, Das & Saenko 2018, "RISE", BMVC): pixels are removed
    from (or revealed on) the image in the map's order, most important first, in ``n_steps``
    equal steps; the class probability after each step makes a curve whose area (trapezoid
    over the fraction of pixels, 0..1) is the score. Deletion: lower is better;
    insertion: higher is better.
* **Localisation** against a binary mask (e.g. a lesion segmentation): energy-in-mask ratio,
  pointing game (Zhang et al. 2016, "Top-down neural attention by excitation backprop",
  ECCV, without its 15-pixel tolerance), IoU of the map thresholded at 50 % of its maximum, and
  the weakly-supervised box (Selvaraju et al. 2017 §4.1: largest segment above 15 % of the
  maximum): its IoU with the mask's box and the localisation error (box IoU < 0.5).

The scoring functions take a ``score_fn`` mapping a batch of *model inputs* to the target
class's probability, so they can be checked by hand with a fake model; ``evaluate`` builds it
from ``explainers.predict`` (softmax of the pre-softmax scores for softmax heads, finite).
Maps are upsampled bilinearly to the image and divided by their maximum (``render``), the
same picture the user sees. Every score is finite: an all-zero map, an empty mask or Y = 0
give a documented number, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from explainers.engine.core import explain, method_label, predict
from explainers.errors import ExplainerError
from explainers.evaluation.localisation import box_scores
from explainers.evaluation.score_formulas import (  # noqa: F401  (re-exported: explainers.evaluation.scoring is the public entry)
    DEFAULT_BLUR_SIGMA,
    DEFAULT_STEPS,
    Curve,
    Preprocess,
    ScoreFn,
    _baseline,
    _check_steps,
    _one_map,
    _preprocess,
    _raw_image,
    _scores,
    as_mask,
    auc,
    average_drop,
    deletion,
    draw_outline,
    energy_in_mask,
    gaussian_blur,
    increase_in_confidence,
    insertion,
    iou_at,
    load_mask,
    load_mask_noted,
    map_at,
    mask_fit,
    mask_outline,
    masked_image,
    perturbation_curve,
    perturbation_stack,
    pixel_order,
    pointing_game,
    step_counts,
)
from explainers.methods import DEFAULT_METHODS
from explainers.zoo import default_extra_inputs, prepare

#: Per-image score keys, in table order, with their column names (units included).
SCORE_LABELS: dict[str, str] = {
    "average_drop_pct": "Average Drop (%)",
    "increase_in_confidence_pct": "Increase in Confidence (%)",
    "deletion_auc": "Deletion AUC (0–1)",
    "insertion_auc": "Insertion AUC (0–1)",
    "energy_in_mask_ratio": "Energy in mask (ratio, 1 = chance)",
    "pointing_game_pct": "Pointing game (% hits)",
    "iou": "IoU at 50% of max (0–1)",
    "box_iou": "Box IoU (0–1)",
    "localisation_error_pct": "Localisation error (% box IoU < 0.5)",
}
#: Whether a higher value of the score means a better map.
HIGHER_IS_BETTER: dict[str, bool] = {
    "average_drop_pct": False,
    "increase_in_confidence_pct": True,
    "deletion_auc": False,
    "insertion_auc": True,
    "energy_in_mask_ratio": True,
    "pointing_game_pct": True,
    "iou": True,
    "box_iou": True,
    "localisation_error_pct": False,
}
FAITHFULNESS_SCORES = (
    "average_drop_pct",
    "increase_in_confidence_pct",
    "deletion_auc",
    "insertion_auc",
)
LOCALISATION_SCORES = (
    "energy_in_mask_ratio",
    "pointing_game_pct",
    "iou",
    "box_iou",
    "localisation_error_pct",
)
#: Extra per-image numbers kept beside the scores (not averaged into the tables' score columns).
INFO_LABELS: dict[str, str] = {
    "probability_full": "Probability, full image (0–1)",
    "probability_masked": "Probability, image × map (0–1)",
}


# --- one image, every method ------------------------------------------------------------------


@dataclass
class Evaluation:
    """All scores of one image: ``scores[method][key]`` (keys of ``SCORE_LABELS`` and
    ``INFO_LABELS``) and the curves ``curves[method]["deletion" | "insertion"]``."""

    target: int
    probability: float
    scores: dict[str, dict[str, float]]
    curves: dict[str, dict[str, Curve]] = field(default_factory=dict)
    has_mask: bool = False


def _unpack_model(
    bundle_or_model: Any, preprocess: Preprocess | None, extra_inputs: Any
) -> tuple[Any, Preprocess | None, Any]:
    model = getattr(bundle_or_model, "model", bundle_or_model)
    if hasattr(bundle_or_model, "model") and hasattr(bundle_or_model, "preprocess"):
        if preprocess is None:
            preprocess = bundle_or_model.preprocess
        if extra_inputs is None and getattr(bundle_or_model, "metadata_input", False):
            extra_inputs = default_extra_inputs(bundle_or_model)
    return model, preprocess, extra_inputs


def raw_image_for(bundle: Any, pil_image: Any) -> np.ndarray:
    """A Pillow image (or path / bytes) resized exactly as ``zoo.prepare`` does, but not
    preprocessed: float32 (H, W, 3) in 0..255, the space the metrics perturb."""
    raw_bundle = replace(bundle, preprocess=lambda x: np.asarray(x, dtype=np.float32))
    return prepare(raw_bundle, pil_image)[0]


def score_function(model: Any, target: int, extra_inputs: Any = None) -> ScoreFn:
    """``score_fn`` for a Keras model: the target's probability from ``explainers.predict``,
    with the extra inputs (e.g. patient metadata) repeated for every image of the batch."""

    def score(batch: np.ndarray) -> np.ndarray:
        single = _single(extra_inputs)
        extra = None if single is None else [np.repeat(x, len(batch), axis=0) for x in single]
        return predict(model, batch, extra).probabilities[:, target]

    return score


def evaluate_details(
    bundle_or_model: Any,
    image: Any,
    maps: Mapping[str, Any],
    target: int | None = None,
    *,
    preprocess: Preprocess | None = None,
    extra_inputs: Any = None,
    mask: Any = None,
    n_steps: int = DEFAULT_STEPS,
    deletion_baseline: Any = "zeros",
    insertion_baseline: Any = "blur",
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    score_fn: ScoreFn | None = None,
) -> Evaluation:
    """Every score of every map for one image, with the curves (see ``evaluate``)."""
    model, preprocess, extra_inputs = _unpack_model(bundle_or_model, preprocess, extra_inputs)
    if not hasattr(image, "shape") and hasattr(bundle_or_model, "input_size"):
        image = raw_image_for(bundle_or_model, image)  # a PIL image, path or bytes
    raw = _raw_image(image)
    if not maps:
        raise ExplainerError("no maps to evaluate")
    maps = {str(k): _one_map(v) for k, v in maps.items()}
    n_steps = _check_steps(n_steps)
    full_input = _preprocess(raw[None], preprocess)
    if target is None:
        if score_fn is not None:
            raise ExplainerError("give the target class when a score function is given")

        probs = predict(model, full_input, _single(extra_inputs)).probabilities[0]
        target = int(np.argmax(probs))
    target = int(target)
    if score_fn is None:
        score_fn = score_function(model, target, extra_inputs)
    region = as_mask(mask, raw.shape[:2]) if mask is not None else None

    # One batched call for every image this evaluation needs: the full image, the image × map
    # of every method, and the points of every deletion and insertion curve. The model's
    # compiled forward takes them in fixed-size chunks, so the cost is the passes themselves.
    bases = {
        "deletion": _baseline(deletion_baseline, raw, blur_sigma),  # once per image
        "insertion": _baseline(insertion_baseline, raw, blur_sigma),
    }
    kinds = ("deletion", "insertion")
    stacks = [
        perturbation_stack(raw, cam, kind, n_steps, bases[kind], blur_sigma)
        for cam in maps.values()
        for kind in kinds
    ]
    batch = np.concatenate(
        [full_input]
        + [masked_image(raw, m, preprocess) for m in maps.values()]
        + [_preprocess(stack, preprocess) for stack in stacks]
    )
    del stacks
    probs = _scores(score_fn, batch, len(batch))
    del batch
    y = float(probs[0])
    first, points = (
        probs[: 1 + len(maps)],
        probs[1 + len(maps) :].reshape(len(maps), 2, n_steps + 1),
    )
    fractions = np.linspace(0.0, 1.0, n_steps + 1)
    scores: dict[str, dict[str, float]] = {}
    curves: dict[str, dict[str, Curve]] = {}
    for (name, cam), o, curve_points in zip(maps.items(), first[1:], points, strict=False):
        dele, ins = (
            Curve(kind, fractions, p, auc(fractions, p))
            for kind, p in zip(kinds, curve_points, strict=False)
        )
        row = {
            "average_drop_pct": average_drop([y], [o]),
            "increase_in_confidence_pct": increase_in_confidence([y], [o]),
            "deletion_auc": dele.auc,
            "insertion_auc": ins.auc,
        }
        if region is not None:
            row["energy_in_mask_ratio"] = energy_in_mask(cam, region)
            row["pointing_game_pct"] = pointing_game(cam, region) * 100.0
            row["iou"] = iou_at(cam, region)
            boxes = box_scores(cam, region)  # the weakly-supervised box (Grad-CAM §4.1)
            row["box_iou"] = boxes["box_iou"]
            row["localisation_error_pct"] = 100.0 if boxes["localisation_error"] else 0.0
        row["probability_full"] = y
        row["probability_masked"] = float(o)
        scores[name] = row
        curves[name] = {"deletion": dele, "insertion": ins}
    return Evaluation(
        target=target, probability=y, scores=scores, curves=curves, has_mask=region is not None
    )


def _single(extra_inputs: Any) -> Any:
    if extra_inputs is None:
        return None
    items = [extra_inputs] if isinstance(extra_inputs, np.ndarray) else list(extra_inputs)
    return [np.asarray(x)[:1] if np.ndim(x) > 1 else np.asarray(x)[None] for x in items]


def evaluate(
    bundle_or_model: Any,
    image: Any,
    maps: Mapping[str, Any],
    target: int | None = None,
    **options: Any,
) -> dict[str, dict[str, float]]:
    """Every score for one image: ``{method: {score: value}}``, tidy and finite.

    ``bundle_or_model``: a ``ModelBundle`` (its ``preprocess`` and, for the skin-lesion model,
    "unknown" metadata are used unless given) or a Keras model. ``image``: raw RGB 0..255
    ``(H, W, 3)`` at the model's input size (or a Pillow image with a bundle). ``maps``:
    ``{method: (h, w) raw map}`` from ``explain``. ``target``: the class (default: the top
    class of the full image). Options: ``preprocess``, ``extra_inputs``, ``mask`` (binary,
    any size, adds the localisation scores), ``n_steps``, ``deletion_baseline`` ("zeros"),
    ``insertion_baseline`` ("blur"), ``blur_sigma``. Cost: forward passes of
    1 + len(maps) × (1 + 2 × (n_steps + 1)) images, in one batched call.
    """
    return evaluate_details(bundle_or_model, image, maps, target, **options).scores


# --- many images ------------------------------------------------------------------------------


def aggregate(rows: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, float]]:
    """Means over images of ``evaluate``'s results: ``{method: {score: mean, "n_images": n}}``.

    Averaging the per-image values gives exactly the papers' figures: the mean of per-image
    drops is Average Drop %, the mean of 0/100 is the share of images with increased
    confidence (and of pointing-game hits). Missing or non-finite values (no mask for that
    image, an image that failed) are left out of that score's mean; ``n_masks`` counts the
    images the localisation scores are averaged over.
    """
    sums: dict[str, dict[str, list[float]]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        for method, values in row.items():
            if not isinstance(values, Mapping):
                continue
            counts[method] = counts.get(method, 0) + 1
            bucket = sums.setdefault(method, {})
            for key, value in values.items():
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    continue
                if math.isfinite(v):
                    bucket.setdefault(key, []).append(v)
    out: dict[str, dict[str, float]] = {}
    for method, bucket in sums.items():
        result: dict[str, float] = {}
        known = list(SCORE_LABELS) + list(INFO_LABELS)
        for key in known + [k for k in bucket if k not in known]:
            if key in bucket:
                result[key] = float(np.mean(bucket[key]))
        result["n_images"] = float(counts[method])
        result["n_masks"] = float(len(bucket.get("iou", [])))
        out[method] = result
    return out


def score_table(
    scores: Mapping[str, Mapping[str, float]],
    labels: Mapping[str, str] | None = None,
    digits: int = 3,
) -> list[dict[str, Any]]:
    """Rows for a table: one per method, columns named with their units (``SCORE_LABELS``);
    localisation columns only when present. ``labels`` renames the methods."""
    present = [k for k in SCORE_LABELS if any(k in s for s in scores.values())]
    rows = []
    for method, values in scores.items():
        row: dict[str, Any] = {"Method": (labels or {}).get(method, method)}
        for key in present:
            value = values.get(key)
            row[SCORE_LABELS[key]] = None if value is None else round(float(value), digits)
        if "n_images" in values:
            row["Images"] = int(values["n_images"])
        rows.append(row)
    return rows


def best_methods(scores: Mapping[str, Mapping[str, float]]) -> dict[str, list[str]]:
    """For each score present, the method(s) with the best value (ties kept)."""
    out = {}
    for key, higher in HIGHER_IS_BETTER.items():
        values = {m: s[key] for m, s in scores.items() if key in s and math.isfinite(s[key])}
        if not values:
            continue
        best = max(values.values()) if higher else min(values.values())
        out[key] = [m for m, v in values.items() if abs(v - best) <= 1e-12]
    return out


# --- explain and score in one call (the dashboard's multi-image mode) ---------------------------


#: The four maps compared everywhere: (key, method, smoothed?).
VARIANTS = tuple((m, m, False) for m in DEFAULT_METHODS) + tuple(
    (f"smooth-{m}", m, True) for m in DEFAULT_METHODS
)


def variant_labels(n_samples: int, sigma: float | None) -> dict[str, str]:
    """Human names of the four variants (``"Smooth Grad-CAM++ (16 samples, σ=0.15)"``; without
    σ when ``sigma`` is None)."""
    return {
        key: method_label(method, n_samples if smooth else 0, sigma if smooth else None)
        for key, method, smooth in VARIANTS
    }


def explain_and_evaluate(
    bundle: Any,
    image: Any,
    *,
    extra_inputs: Any = None,
    layer: Any = None,
    target: int | None = None,
    n_samples: int = 16,
    sigma: float = 0.15,
    seed: int | None = 0,
    mask: Any = None,
    n_steps: int = DEFAULT_STEPS,
) -> tuple[dict[str, np.ndarray], Evaluation]:
    """Grad-CAM, Grad-CAM++ and both smoothed (``n_samples`` copies) for one image, then every
    score: ``(maps {variant: (h, w)}, Evaluation)``. ``image``: a Pillow image (or path /
    bytes), resized as ``zoo.prepare`` does. ``target`` None: the top class."""
    if int(n_samples) < 1:
        raise ExplainerError("the smoothed maps need at least 1 noise sample")
    raw = raw_image_for(bundle, image) if not hasattr(image, "shape") else _raw_image(image)
    model, preprocess, extra_inputs = _unpack_model(bundle, None, extra_inputs)
    x = _preprocess(raw[None], preprocess)
    extra = _single(extra_inputs)
    if target is None:
        target = int(np.argmax(predict(model, x, extra).logits[0]))
    methods = DEFAULT_METHODS
    plain = explain(model, x, layer=layer, target=target, extra_inputs=extra, methods=methods)
    smooth = explain(
        model,
        x,
        layer=layer,
        target=target,
        extra_inputs=extra,
        methods=methods,
        n_samples=n_samples,
        sigma=sigma,
        seed=seed,
    )
    maps = {key: (smooth if is_smooth else plain)[method][0] for key, method, is_smooth in VARIANTS}
    ev = evaluate_details(
        model,
        raw,
        maps,
        target,
        preprocess=preprocess,
        extra_inputs=extra,
        mask=mask,
        n_steps=n_steps,
    )
    return maps, ev
