"""Explain a folder of images in fixed-size batches: overlays, maps and faithfulness scores in
results.csv, resumable. ``run_batch`` is the entry point (``batch_command`` is its command
line, ``batch_io`` its files, ``ray_engine`` the Ray actors that run ``process_images``)."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

from .batch_io import (IMAGE_EXTENSIONS, Progress, find_mask, fmt, image_seed, list_images,
                       output_stems, read_metadata, read_results, summarize, write_summary)
from .batch_trust import trust_columns, trust_row
from .errors import ExplainerError
from .methods import DEFAULT_METHODS, method_keys

RESULTS = "results.csv"
SUMMARY = "summary.csv"
SETTINGS = "batch.json"
DEFAULT_BATCH_SIZE = 8
METHODS = DEFAULT_METHODS
#: What --method takes: the gradient CAM methods of the registry (one shared pass each batch).
CHOICES = method_keys(needs="tape", family="cam")

#: results.csv columns before the per-method scores.
BASE_COLUMNS = ("image", "error", "prediction", "prediction_name", "probability", "target",
                "target_name", "dx", "correct", "age", "sex", "localization", "mask", "layer")


@dataclass(frozen=True)
class Variant:
    """One map to compute: a method, plain (0 samples) or smoothed."""

    key: str  # the method key, or "smooth-" + the key, or a baseline
    method: str
    n_samples: int


BASELINES = {"centre": "Centre prior (baseline)", "random": "Random map (baseline)"}


def variants(methods: Sequence[str], samples: int, baselines: bool = False) -> list[Variant]:
    """The plain methods, then (when `samples > 0`) their smoothed versions, then (with
    `baselines`) the two reference maps of `metrics.centre_prior` and `metrics.random_map`."""
    out = [Variant(m, m, 0) for m in methods]
    if samples > 0:
        out += [Variant(f"smooth-{m}", m, int(samples)) for m in methods]
    if baselines:
        out += [Variant(k, k, 0) for k in BASELINES]
    return out


def _label(v: Variant, sigma: float | None) -> str:
    from .core import method_label

    if v.method in BASELINES:
        return BASELINES[v.method]
    return method_label(v.method, v.n_samples, sigma if v.n_samples else None)


def result_columns(vs: Sequence[Variant]) -> list[str]:
    """Every column of results.csv for these variants: the image's, the scores', the trust
    figures'."""
    return list(BASE_COLUMNS) + score_columns(vs) + trust_columns(vs, CHOICES)


def score_columns(vs: Sequence[Variant]) -> list[str]:
    from .metrics import INFO_LABELS, SCORE_LABELS

    keys = list(SCORE_LABELS) + list(INFO_LABELS)
    return [f"{v.key}:{k}" for v in vs for k in keys]


# --- the batch --------------------------------------------------------------------------------


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
    def create(cls, bundle: Any, layer: str | None, methods: Sequence[str], samples: int,
               sigma: float, seed: int, n_steps: int, baselines: bool,
               meta: dict[str, dict[str, str]], masks_dir: Path | None, out_dir: Path,
               cmap: str) -> "BatchJob":
        from . import resolve_layer

        vs = tuple(variants(methods, samples, baselines))
        return cls(resolve_layer(bundle.model, layer), vs, {v.key: _label(v, sigma) for v in vs},
                   float(sigma), int(seed), int(n_steps), meta, masks_dir, out_dir, cmap)


@dataclass
class BatchResult:
    """What a run did: counts, where it wrote, and the scores averaged over results.csv."""

    out: Path
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def load_batch_model(model: str | os.PathLike, weights: Any, seed: int) -> Any:
    """`zoo.load_model`, with random weights (`weights=None`) drawn from `seed`: every run, and
    every Ray actor, then explains with the same model."""
    from .zoo import load_model

    if weights is None or str(weights).strip().lower() in ("none", "random", ""):
        import keras

        keras.utils.set_random_seed(int(seed))
    return load_model(model, weights=weights)


def _settings(bundle: Any, layer: str, vs: Sequence[Variant], sigma: float, seed: int,
              n_steps: int) -> dict[str, Any]:
    randomised = any(v.n_samples or v.method == "random" for v in vs) or bundle.weights == "random"
    return {
        "model": bundle.key,
        "layer": layer,
        "variants": [v.key for v in vs],
        "samples": max([v.n_samples for v in vs] + [0]),
        "sigma": sigma if any(v.n_samples for v in vs) else None,
        "seed": seed if randomised else None,
        "steps": n_steps,
        "deletion_baseline": "zeros",
        "insertion_baseline": "blur",
    }


def run_batch(
    model: Any,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    methods: Sequence[str] = METHODS,
    samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    masks: str | os.PathLike | None = None,
    metadata: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    layer: str | None = None,
    n_steps: int | None = None,
    baselines: bool = False,
    weights: Any = "imagenet",
    cmap: str = "jet",
    progress: TextIO | None | bool = None,
    on_image: Callable[[int, int], None] | None = None,
    engine: str = "local",
    ray_options: Any = None,
) -> BatchResult:
    """Explain and score every image in `images`; write overlays, maps and results to `out`.

    `model`: a catalogue name, a model file or a `ModelBundle`. `progress`: the stream
    for the text progress bar (default stderr; False for none). `on_image(done, total)` is
    called after each image. Images go through the model `batch_size` at a time, so memory
    does not grow with the folder. `engine="ray"` runs the batches on Ray actors
    (`ray_engine.RayOptions` in `ray_options`; `model` must then be a name or a file).
    Raises `ExplainerError` for the user's mistakes (missing folders, bad settings, an out
    folder written with other settings).
    """
    from .metrics import DEFAULT_STEPS

    images_dir = Path(images)
    out_dir = Path(out)
    if not images_dir.exists():
        raise ExplainerError(f"images folder not found: {images_dir}")
    if not images_dir.is_dir():
        raise ExplainerError(f"--images must be a folder, got a file: {images_dir}")
    masks_dir = Path(masks) if masks is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise ExplainerError(f"masks folder not found: {masks_dir}")
    meta = read_metadata(Path(metadata)) if metadata is not None else {}
    methods = tuple(dict.fromkeys([methods] if isinstance(methods, str) else methods))
    bad = [m for m in methods if m not in CHOICES]
    if bad or not methods:
        raise ExplainerError(
            f"unknown method {bad[0] if bad else '(none)'!r}; choose from {', '.join(CHOICES)} or all"
        )
    try:
        samples, batch_size, seed = int(samples), int(batch_size), int(seed)
        sigma = float(sigma)
        n_steps = DEFAULT_STEPS if n_steps is None else int(n_steps)
    except (TypeError, ValueError):
        raise ExplainerError(
            "samples, batch size, seed and steps must be whole numbers, sigma a number"
        ) from None
    if samples < 0:
        raise ExplainerError(f"the number of samples must be 0 or more, got {samples}")
    if batch_size < 1:
        raise ExplainerError(f"the batch size must be 1 or more, got {batch_size}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ExplainerError(f"sigma must be 0 or more, got {sigma}")
    if not 1 <= n_steps <= 1024:
        raise ExplainerError(f"the number of steps must be between 1 and 1024, got {n_steps}")
    if engine not in ("local", "ray"):
        raise ExplainerError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .ray_engine import require_ray

        require_ray()
    files = list_images(images_dir)
    if not files:
        raise ExplainerError(
            f"no images in {images_dir} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    if out_dir.resolve() == images_dir.resolve():
        raise ExplainerError("--out must be another folder than --images (the overlays are PNG images)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExplainerError(f"--out must be a folder, got a file: {out_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplainerError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None

    # Heavy imports only now: the CLI's --help must stay fast.
    from .zoo import ModelBundle

    if engine == "ray" and isinstance(model, ModelBundle):
        raise ExplainerError("the Ray engine loads the model in every worker: give its name or file")
    bundle = model if isinstance(model, ModelBundle) else load_batch_model(model, weights, seed)
    job = BatchJob.create(bundle, layer, methods, samples, sigma, seed, n_steps, baselines, meta,
                          masks_dir, out_dir, cmap)
    layer_info, vs, labels = job.layer, job.variants, job.labels
    settings = _settings(bundle, layer_info.path, vs, sigma, seed, n_steps)
    columns = result_columns(vs)

    results_path = out_dir / RESULTS
    settings_path = out_dir / SETTINGS
    header, rows = read_results(results_path)
    if rows or settings_path.exists():
        try:
            old = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else None
        except (OSError, ValueError):
            old = None
        if old != settings or (header and header != columns):
            raise ExplainerError(
                f"{out_dir} holds results made with other settings ({_diff(old, settings)}); "
                "use another --out folder, or delete it to start again"
            )
    done = {r["image"] for r in rows if not (r.get("error") or "").strip()}
    kept = [r for r in rows if r["image"] in done]
    # Rewrite results.csv without the failed rows (they are retried), atomically.
    tmp = results_path.with_suffix(".csv.tmp")
    try:
        settings_path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, results_path)
    except OSError as exc:
        raise ExplainerError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None

    todo = [p for p in files if p.name not in done]
    result = BatchResult(out=out_dir, skipped=len(files) - len(todo), total=len(files), labels=labels)
    bar = None if progress is False else Progress(len(files), None if progress in (None, True) else progress)
    stems = output_stems(files)
    count = result.skipped
    with open(results_path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if engine == "ray":
            from .ray_engine import WorkerSpec, ray_rows

            spec = WorkerSpec(
                model=str(Path(model).resolve()) if bundle.key.startswith("file:") else str(model),
                weights=weights, seed=seed, layer=layer_info.path, methods=methods, samples=samples,
                sigma=sigma, n_steps=n_steps, baselines=baselines, meta=meta,
                masks_dir=None if masks_dir is None else str(masks_dir.resolve()),
                out_dir=str(out_dir.resolve()), cmap=cmap)
            del bundle  # each actor loads its own; the driver only writes results.csv
            rows_in = ray_rows([p.resolve() for p in todo], [stems[p] for p in todo], spec,
                               ray_options, batch_size)
        else:
            rows_in = (row for start in range(0, len(todo), batch_size)
                       for row in process_images(bundle, todo[start : start + batch_size], job, stems))
        if bar is not None:
            bar.update(count, f"({result.skipped} already done)" if result.skipped else "")
        for row in rows_in:
            writer.writerow({k: fmt(row.get(k)) for k in columns})
            f.flush()
            count += 1
            if row.get("error"):
                result.failed += 1
            else:
                result.processed += 1
            if bar is not None:
                bar.update(count, row["image"] + (" (error)" if row.get("error") else ""))
            if on_image is not None:
                on_image(count, len(files))
    result.summary = summarize(results_path, vs)
    write_summary(out_dir / SUMMARY, result.summary, labels)
    return result


def _diff(old: dict | None, new: dict) -> str:
    if not old:
        return "no batch.json beside results.csv"
    changed = [f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in new if old.get(k) != new.get(k)]
    return "; ".join(changed) or "different columns"


def _metadata_for(bundle: Any, info: dict[str, str] | None) -> Any:
    if not getattr(bundle, "metadata_input", False):
        return None
    from .zoo import skin_lesion_metadata

    info = info or {}
    return skin_lesion_metadata(info.get("age") or None, info.get("sex") or None,
                                info.get("localization") or None)


def process_images(bundle: Any, files: Sequence[Path], job: BatchJob,
                   stems: dict[Path, str]) -> Iterator[dict[str, Any]]:
    """Explain one batch of images, writing each one's PNG and NPZ; yields its results.csv
    row as soon as it is done (an error row for a bad one). Both engines call this: the local
    one in the process, the Ray one in each actor."""
    import numpy as np

    from . import explain_details, predict
    from .images import load_image
    from .metrics import centre_prior, load_mask, random_map, raw_image_for

    layer_info, vs, sigma, seed, meta = job.layer, job.variants, job.sigma, job.seed, job.meta

    rows: dict[Path, dict[str, Any]] = {}
    good: list[tuple[Path, np.ndarray, Any, Any]] = []  # (file, raw image, metadata, mask)
    for path in files:
        info = meta.get(path.stem) or meta.get(path.name)
        row: dict[str, Any] = {"image": path.name, "layer": layer_info.path}
        if info:
            row.update(dx=info.get("dx", ""), age=info.get("age", ""), sex=info.get("sex", ""),
                       localization=info.get("localization", ""))
        rows[path] = row
        try:
            raw = raw_image_for(bundle, load_image(path))
            extra = _metadata_for(bundle, info)
            mask_path = find_mask(job.masks_dir, path)
            mask = load_mask(mask_path, raw.shape[:2]) if mask_path is not None else None
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
        plain = explain_details(bundle.model, x, layer=layer_info, target=targets, extra_inputs=extra,
                                methods=methods)
        for v in vs:
            if v.n_samples == 0 and v.method in CHOICES:
                maps[v.key] = plain.maps[v.method]
        grid = next(iter(plain.maps.values())).shape[1:]
        for v in vs:
            if v.method == "centre":
                maps[v.key] = np.repeat(centre_prior(grid)[None], len(good), axis=0)
            elif v.method == "random":
                maps[v.key] = np.stack([random_map(grid, image_seed(seed, g[0].name)) for g in good])
        smooth = [v for v in vs if v.n_samples > 0]
        if smooth:
            # One image at a time: its noise then depends on its own seed only (see _image_seed);
            # the capture batches its noisy copies anyway.
            per_image = []
            for i, (path, *_rest) in enumerate(good):
                ex = explain_details(
                    bundle.model, x[i : i + 1], layer=layer_info, target=int(targets[i]),
                    extra_inputs=None if extra is None else [extra[0][i : i + 1]],
                    methods=methods, n_samples=smooth[0].n_samples, sigma=sigma,
                    seed=image_seed(seed, path.name),
                )
                per_image.append(ex.maps)
            for v in smooth:
                maps[v.key] = np.concatenate([m[v.method] for m in per_image], axis=0)
        for i, (path, raw, meta_i, mask) in enumerate(good):
            row = rows[path]
            try:
                _score_one(bundle, job, row, path, raw, meta_i, mask,
                           {k: m[i] for k, m in maps.items()}, int(targets[i]),
                           pred.probabilities[i], stems[path])
            except ExplainerError as exc:
                row["error"] = " ".join(str(exc).split())
            yield row


def _score_one(bundle: Any, job: BatchJob, row: dict[str, Any], path: Path, raw: Any, extra: Any,
               mask: Any, maps: dict[str, Any], target: int, probabilities: Any, stem: str) -> None:
    """Score one image, fill its results.csv row and write its PNG and NPZ (atomically)."""
    import numpy as np
    from PIL import Image

    from .metrics import draw_outline, evaluate_details
    from .render import overlay, side_by_side

    vs, out_dir = job.variants, job.out_dir
    probs = np.asarray(probabilities, dtype=np.float64)
    row.update(
        prediction=target, prediction_name=bundle.class_names[target], probability=float(probs[target]),
        target=target, target_name=bundle.class_names[target],
    )
    if row.get("dx"):
        row["correct"] = int(row["dx"] == bundle.class_names[target])
    ev = evaluate_details(bundle, raw, maps, target, extra_inputs=None if extra is None else [extra],
                          mask=mask, n_steps=job.n_steps)
    for key, scores in ev.scores.items():
        for name, value in scores.items():
            row[f"{key}:{name}"] = value
    row.update(trust_row(bundle, raw, extra, mask, maps, vs, CHOICES, target, probs,
                         job.layer.path, job.sigma, image_seed(job.seed, path.name)))

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
    from .core import method_label

    captions = ["input"] + [BASELINES[v.method].replace(" (baseline)", "") if v.method in BASELINES
                            else method_label(v.method, v.n_samples) for v in vs]
    arrays = {f"map:{k}": np.asarray(m, dtype=np.float32) for k, m in maps.items()}
    for k, curves in ev.curves.items():
        arrays[f"deletion:{k}"] = curves["deletion"].probabilities
        arrays[f"insertion:{k}"] = curves["insertion"].probabilities
    # Written under a temporary name, then renamed: a worker killed mid-write (the Ray engine
    # retries its batch) or an interrupted run never leaves a half file under the real name.
    tmp = out_dir / f".{stem}.{os.getpid()}.tmp"
    try:
        Image.fromarray(side_by_side(panels, captions)).save(tmp, format="PNG")
        os.replace(tmp, out_dir / f"{stem}.png")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, **arrays, image=shown, target=np.int64(target),
                class_name=np.str_(bundle.class_names[target]), probabilities=probs,
                fractions=next(iter(ev.curves.values()))["deletion"].fractions,
                variants=np.array([v.key for v in vs]), layer=np.str_(row["layer"]),
                model=np.str_(bundle.key), **({"mask": np.asarray(mask, bool)} if mask is not None else {}),
            )
        os.replace(tmp, out_dir / f"{stem}.npz")
    except OSError as exc:
        raise ExplainerError(f"cannot write the outputs of {path.name}: {exc.strerror or exc}") from None
