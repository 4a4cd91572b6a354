"""Explain a folder of images in fixed-size batches: overlays, maps and faithfulness scores in
results.csv, resumable. ``run_batch`` is the entry point (``batch_command`` is its command
line, ``batch_io`` its files, ``ray_engine`` the Ray actors that run ``process_images``)."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence, TextIO

from explainers.batch.files import (IMAGE_EXTENSIONS, Progress, fmt, image_seed, list_images,  # noqa: F401
                       output_stems, read_metadata, read_results, summarize, write_summary)
from explainers.batch.job import (BASELINES, CHOICES, METHODS, BatchJob, Variant,  # noqa: F401 (re-exported)
                        load_batch_model, process_images, variants)
from explainers.batch.safe_io import folder_lock, temp_path, write_atomic
from explainers.batch.trust_columns import trust_columns
from explainers.batch.worker import WorkerSpec
from explainers.errors import ExplainerError

RESULTS = "results.csv"
SUMMARY = "summary.csv"
SETTINGS = "batch.json"
#: Where the batches run: in this process, or on a pool of Ray actors (docs/SCALING.md).
Engine = Literal["local", "ray"]
DEFAULT_BATCH_SIZE = 8

#: results.csv columns before the per-method scores.
BASE_COLUMNS = ("image", "error", "prediction", "prediction_name", "probability", "target",
                "target_name", "dx", "correct", "age", "sex", "localization", "mask", "layer")


def result_columns(vs: Sequence[Variant]) -> list[str]:
    """Every column of results.csv for these variants: the image's, the scores', the trust
    figures'."""
    return list(BASE_COLUMNS) + score_columns(vs) + trust_columns(vs, CHOICES)


def score_columns(vs: Sequence[Variant]) -> list[str]:
    from explainers.evaluation.scoring import INFO_LABELS, SCORE_LABELS

    keys = list(SCORE_LABELS) + list(INFO_LABELS)
    return [f"{v.key}:{k}" for v in vs for k in keys]


# --- the batch --------------------------------------------------------------------------------


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
    cmap: str = "viridis",
    progress: TextIO | None | bool = None,
    on_image: Callable[[int, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    engine: Engine = "local",
    ray_options: Any = None,
) -> BatchResult:
    """Explain and score every image in `images`; write overlays, maps and results to `out`.

    `model`: a catalogue name, a model file or a `ModelBundle`. `progress`: the stream
    for the text progress bar (default stderr; False for none). `on_image(done, total)` is
    called after each image; `on_wait(message)` once if another run holds the folder (this run
    waits for it, then skips the images it did). Images go through the model `batch_size` at a
    time, so memory does not grow with the folder; locally in one worker process, so that an
    image that crashes it costs that image only (`isolation`). `engine="ray"` runs the batches on Ray actors
    (`ray_engine.RayOptions` in `ray_options`; `model` must then be a name or a file).
    Raises `ExplainerError` for the user's mistakes (missing folders, bad settings, an out
    folder written with other settings).
    """
    from explainers.evaluation.scoring import DEFAULT_STEPS

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
        from explainers.batch.ray_engine import require_ray

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
    from explainers.zoo import ModelBundle

    if engine == "ray" and isinstance(model, ModelBundle):
        raise ExplainerError("the Ray engine loads the model in every worker: give its name or file")
    bundle = model if isinstance(model, ModelBundle) else load_batch_model(model, weights, seed)
    job = BatchJob.create(bundle, layer, methods, samples, sigma, seed, n_steps, baselines, meta,
                          masks_dir, out_dir, cmap)
    layer_info, vs, labels = job.layer, job.variants, job.labels
    settings = _settings(bundle, layer_info.path, vs, sigma, seed, n_steps)
    columns = result_columns(vs)

    stream = None if progress is False else (sys.stderr if progress in (None, True) else progress)

    def waiting(message: str) -> None:
        if stream is not None:
            print(message, file=stream, flush=True)
        if on_wait is not None:
            on_wait(message)

    # One run at a time per folder: a second one waits, then resumes (skips what the first did).
    with folder_lock(out_dir, waiting):
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
        tmp = temp_path(results_path)
        try:
            write_atomic(settings_path, json.dumps(settings, indent=2) + "\n")
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(kept)
            os.replace(tmp, results_path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ExplainerError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None

        todo = [p for p in files if p.name not in done]
        result = BatchResult(out=out_dir, skipped=len(files) - len(todo), total=len(files), labels=labels)
        bar = None if stream is None else Progress(len(files), stream)
        stems = output_stems(files)
        count = result.skipped
        with open(results_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            what, how = _worker_model(model, bundle, weights)
            spec = WorkerSpec(
                model=what, weights=how, seed=seed, layer=layer_info.path, methods=methods,
                samples=samples, sigma=sigma, n_steps=n_steps, baselines=baselines, meta=meta,
                masks_dir=None if masks_dir is None else str(masks_dir.resolve()),
                out_dir=str(out_dir.resolve()), cmap=cmap)
            if engine == "ray":
                from explainers.batch.ray_engine import ray_rows

                del bundle  # each actor loads its own; the driver only writes results.csv
                rows_in = ray_rows([p.resolve() for p in todo], [stems[p] for p in todo], spec,
                                   ray_options, batch_size)
            else:
                rows_in = _local_rows(spec, bundle, job, todo, stems, batch_size, stream)
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


def _worker_model(model: Any, bundle: Any, weights: Any) -> tuple[Any, Any]:
    """What a worker process loads, and with which weights: the name or file the caller gave;
    for a `ModelBundle`, its catalogue name when it has the usual weights, else the bundle
    itself (pickled, so the worker explains with exactly this model)."""
    from explainers.zoo import ModelBundle, model_names

    if not isinstance(model, ModelBundle):
        return (str(Path(model).resolve()) if bundle.key.startswith("file:") else str(model)), weights
    if bundle.key in model_names() and bundle.weights != "random":
        return bundle.key, "imagenet"  # load_model's "usual weights" (the bundled ones included)
    return bundle, None


def _local_rows(spec: WorkerSpec, bundle: Any, job: BatchJob, todo: Sequence[Path],
                stems: dict[Path, str], batch_size: int, stream: TextIO | None) -> Iterator[dict]:
    """The local engine's rows: from one worker process (an image that crashes it costs that
    image only: `isolation`), or in this process when no worker can be started."""
    if not todo:
        return iter(())
    from explainers.batch.isolation import ChildWorker, WorkerUnavailable, isolated_rows

    try:
        first = ChildWorker(spec)
    except WorkerUnavailable as exc:
        if stream is not None:
            print(f"note: {exc}; explaining in this process instead", file=stream, flush=True)
        return (row for start in range(0, len(todo), batch_size)
                for row in process_images(bundle, todo[start : start + batch_size], job, stems))
    return isolated_rows(spec, todo, stems, batch_size, first)


def _diff(old: dict | None, new: dict) -> str:
    if not old:
        return "no batch.json beside results.csv"
    changed = [f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in new if old.get(k) != new.get(k)]
    return "; ".join(changed) or "different columns"
