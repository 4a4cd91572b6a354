"""One batch of images, explained and scored: the map variants (each method plain and
smoothed, the baselines), ``BatchJob`` (what a batch is processed with, worked out once per run
and once per Ray actor) and ``process_images``, which both engines run. ``batch.run_batch``
drives it and writes results.csv."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from PIL import Image

from explainers import explain_details, predict, resolve_layer
from explainers.batch.files import find_mask, image_seed
from explainers.batch.safe_io import temp_path
from explainers.batch.trust_columns import trust_row
from explainers.engine.core import method_label
from explainers.errors import ExplainerError
from explainers.evaluation.baselines import centre_prior, random_map
from explainers.evaluation.scoring import draw_outline, evaluate_details, load_mask, raw_image_for
from explainers.images import load_image
from explainers.methods import DEFAULT_METHODS, method_keys
from explainers.render import overlay, side_by_side
from explainers.zoo import load_model, skin_lesion_metadata

METHODS = DEFAULT_METHODS
#: What --method takes: the gradient CAM methods of the registry (one shared pass each batch).
CHOICES = method_keys(needs="tape", family="cam")


@dataclass(frozen=True)
class Variant:
    """One map to compute: a method, plain (0 samples) or smoothed."""

    key: str  # the method key, or "smooth-" + the key, or a baseline
    method: str
    n_samples: int


BASELINES = {"centre": "Centre prior (baseline)", "random": "Random map (baseline)"}


def variants(methods: Sequence[str], samples: int, baselines: bool = False) -> list[Variant]:
    """The plain methods, then (when `samples > 0`) their smoothed versions, then (with
    `baselines`) the two reference maps of `evaluation.baselines`."""
    out = [Variant(m, m, 0) for m in methods]
    if samples > 0:
        out += [Variant(f"smooth-{m}", m, int(samples)) for m in methods]
    if baselines:
        out += [Variant(k, k, 0) for k in BASELINES]
    return out


def _label(v: Variant, sigma: float | None) -> str:
    if v.method in BASELINES:
        return BASELINES[v.method]
    return method_label(v.method, v.n_samples, sigma if v.n_samples else None)


@dataclass(frozen=True)
class BatchJob:
    """Everything one batch of images is explained and scored with, worked out once per run
    (and once per Ray actor): the layer, the variants and their labels, the noise, the steps,
    the patient metadata, the folders and the colour map."""

    layer: Any  # adapter.LayerInfo
    variants: tuple[Variant, ...]
    labels: dict[str, str]
    sigma: float
    seed: int
    n_steps: int
    meta: dict[str, dict[str, str]]
    masks_dir: Path | None
    out_dir: Path
    cmap: str

    @classmethod
    def create(
        cls,
        bundle: Any,
        options: Any,
        meta: dict[str, dict[str, str]],
        masks_dir: Path | None,
        out_dir: Path,
    ) -> BatchJob:
        """The job of a checked ``plan.BatchOptions`` (``n_steps`` resolved) on ``bundle``."""
        o = options
        vs = tuple(variants(o.methods, o.samples, o.baselines))
        return cls(
            resolve_layer(bundle.model, o.layer),
            vs,
            {v.key: _label(v, o.sigma) for v in vs},
            float(o.sigma),
            int(o.seed),
            int(o.n_steps),
            meta,
            masks_dir,
            out_dir,
            o.cmap,
        )


def load_batch_model(model: str | os.PathLike, weights: Any, seed: int) -> Any:
    """`zoo.load_model`, with random weights (`weights=None`) drawn from `seed`: every run, and
    every Ray actor, then explains with the same model."""
    if weights is None or str(weights).strip().lower() in ("none", "random", ""):
        keras.utils.set_random_seed(int(seed))
    return load_model(model, weights=weights)


def _metadata_for(bundle: Any, info: dict[str, str] | None) -> Any:
    if not getattr(bundle, "metadata_input", False):
        return None

    info = info or {}
    return skin_lesion_metadata(
        info.get("age") or None, info.get("sex") or None, info.get("localization") or None
    )


def process_images(
    bundle: Any, files: Sequence[Path], job: BatchJob, stems: dict[Path, str]
) -> Iterator[dict[str, Any]]:
    """Explain one batch of images, writing each one's PNG and NPZ; yields its results.csv
    row as soon as it is done (an error row for a bad one). Both engines call this: the local
    one in the process, the Ray one in each actor."""
    layer_info, vs, sigma, seed, meta = job.layer, job.variants, job.sigma, job.seed, job.meta

    rows: dict[Path, dict[str, Any]] = {}
    good: list[tuple[Path, np.ndarray, Any, Any]] = []  # (file, raw image, metadata, mask)
    for path in files:
        info = meta.get(path.stem) or meta.get(path.name)
        row: dict[str, Any] = {"image": path.name, "layer": layer_info.path}
        if info:
            row.update(
                dx=info.get("dx", ""),
                age=info.get("age", ""),
                sex=info.get("sex", ""),
                localization=info.get("localization", ""),
            )
        rows[path] = row
        try:
            image = load_image(path)
            raw = raw_image_for(bundle, image)
            extra = _metadata_for(bundle, info)
            mask_path = find_mask(job.masks_dir, path)
            mask = (
                load_mask(mask_path, raw.shape[:2], image_size=(image.height, image.width))
                if mask_path is not None
                else None
            )  # another image's proportions: an error
            row["mask"] = mask_path.name if mask_path is not None else ""
        except ExplainerError as exc:
            row["error"] = " ".join(str(exc).split())
            yield row
            continue
        good.append((path, raw, extra, mask))

    if good:
        raws = np.stack([g[1] for g in good])
        x = np.asarray(bundle.preprocess(raws.copy()), dtype=np.float32)
        extra = None
        if bundle.metadata_input:
            extra = [np.concatenate([g[2] for g in good], axis=0)]
        pred = predict(bundle.model, x, extra)
        targets = np.argmax(pred.probabilities, axis=1)
        maps: dict[str, np.ndarray] = {}
        methods = tuple(dict.fromkeys(v.method for v in vs if v.method in CHOICES))
        plain = explain_details(
            bundle.model, x, layer=layer_info, target=targets, extra_inputs=extra, methods=methods
        )
        for v in vs:
            if v.n_samples == 0 and v.method in CHOICES:
                maps[v.key] = plain.maps[v.method]
        grid = next(iter(plain.maps.values())).shape[1:]
        for v in vs:
            if v.method == "centre":
                maps[v.key] = np.repeat(centre_prior(grid)[None], len(good), axis=0)
            elif v.method == "random":
                maps[v.key] = np.stack(
                    [random_map(grid, image_seed(seed, g[0].name)) for g in good]
                )
        smooth = [v for v in vs if v.n_samples > 0]
        if smooth:
            # One image at a time: its noise then depends on its own seed only (see _image_seed);
            # the capture batches its noisy copies anyway.
            per_image = []
            for i, (path, *_rest) in enumerate(good):
                ex = explain_details(
                    bundle.model,
                    x[i : i + 1],
                    layer=layer_info,
                    target=int(targets[i]),
                    extra_inputs=None if extra is None else [extra[0][i : i + 1]],
                    methods=methods,
                    n_samples=smooth[0].n_samples,
                    sigma=sigma,
                    seed=image_seed(seed, path.name),
                )
                per_image.append(ex.maps)
            for v in smooth:
                maps[v.key] = np.concatenate([m[v.method] for m in per_image], axis=0)
        for i, (path, raw, meta_i, mask) in enumerate(good):
            row = rows[path]
            try:
                _score_one(
                    bundle,
                    job,
                    row,
                    path,
                    raw,
                    meta_i,
                    mask,
                    {k: m[i] for k, m in maps.items()},
                    int(targets[i]),
                    pred.probabilities[i],
                    stems[path],
                )
            except ExplainerError as exc:
                row["error"] = " ".join(str(exc).split())
            yield row


def _score_one(
    bundle: Any,
    job: BatchJob,
    row: dict[str, Any],
    path: Path,
    raw: Any,
    extra: Any,
    mask: Any,
    maps: dict[str, Any],
    target: int,
    probabilities: Any,
    stem: str,
) -> None:
    """Score one image, fill its results.csv row and write its PNG and NPZ (atomically)."""
    vs, out_dir = job.variants, job.out_dir
    probs = np.asarray(probabilities, dtype=np.float64)
    row.update(
        prediction=target,
        prediction_name=bundle.class_names[target],
        probability=float(probs[target]),
        target=target,
        target_name=bundle.class_names[target],
    )
    if row.get("dx"):
        row["correct"] = int(row["dx"] == bundle.class_names[target])
    ev = evaluate_details(
        bundle,
        raw,
        maps,
        target,
        extra_inputs=None if extra is None else [extra],
        mask=mask,
        n_steps=job.n_steps,
    )
    for key, scores in ev.scores.items():
        for name, value in scores.items():
            row[f"{key}:{name}"] = value
    row.update(
        trust_row(
            bundle,
            raw,
            extra,
            mask,
            maps,
            vs,
            CHOICES,
            target,
            probs,
            job.layer.path,
            job.sigma,
            image_seed(job.seed, path.name),
        )
    )

    shown = np.clip(np.rint(raw), 0, 255).astype(np.uint8)
    panels = [shown]
    for v in vs:
        panel = overlay(shown, maps[v.key], cmap=job.cmap)
        if mask is not None:
            panel = draw_outline(panel, mask)
        panels.append(panel)
    if mask is not None:
        panels[0] = draw_outline(shown, mask)
    # Short captions (no sigma): they must fit above a 224-pixel panel.

    captions = ["input"] + [
        BASELINES[v.method].replace(" (baseline)", "")
        if v.method in BASELINES
        else method_label(v.method, v.n_samples)
        for v in vs
    ]
    arrays = {f"map:{k}": np.asarray(m, dtype=np.float32) for k, m in maps.items()}
    for k, curves in ev.curves.items():
        arrays[f"deletion:{k}"] = curves["deletion"].probabilities
        arrays[f"insertion:{k}"] = curves["insertion"].probabilities
    # Written under a temporary name, then renamed: a worker killed mid-write (the Ray engine
    # retries its batch) or an interrupted run never leaves a half file under the real name.
    # The name is unique per process, thread and call: runs sharing the folder never collide.

    tmp = temp_path(out_dir / f"{stem}.out")
    try:
        Image.fromarray(side_by_side(panels, captions)).save(tmp, format="PNG")
        os.replace(tmp, out_dir / f"{stem}.png")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                **arrays,
                image=shown,
                target=np.int64(target),
                class_name=np.str_(bundle.class_names[target]),
                probabilities=probs,
                fractions=next(iter(ev.curves.values()))["deletion"].fractions,
                variants=np.array([v.key for v in vs]),
                layer=np.str_(row["layer"]),
                model=np.str_(bundle.key),
                **({"mask": np.asarray(mask, bool)} if mask is not None else {}),
            )
        os.replace(tmp, out_dir / f"{stem}.npz")
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ExplainerError(
            f"cannot write the outputs of {path.name}: {exc.strerror or exc}"
        ) from None
