"""Explain a folder of images in fixed-size batches: overlays, maps and faithfulness scores in
results.csv, resumable. ``run_batch`` is the entry point (``batch_command`` is its command
line, ``batch_io`` its files, ``ray_engine`` the Ray actors that run ``process_images``)."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from explainers.batch.files import (  # noqa: F401
    IMAGE_EXTENSIONS,
    Progress,
    fmt,
    image_seed,
    list_images,
    output_stems,
    read_metadata,
    read_results,
    summarize,
    write_summary,
)
from explainers.batch.isolation import ChildWorker, WorkerUnavailable, isolated_rows
from explainers.batch.job import (  # noqa: F401 (re-exported)
    BASELINES,
    CHOICES,
    METHODS,
    BatchJob,
    Variant,
    load_batch_model,
    process_images,
    variants,
)
from explainers.batch.plan import (  # noqa: F401
    DEFAULT_BATCH_SIZE,
    BatchOptions,
    BatchPlan,
    Engine,
    options_from,
    validate,
)
from explainers.batch.ray_engine import ray_rows
from explainers.batch.safe_io import folder_lock, temp_path, write_atomic
from explainers.batch.trust_columns import trust_columns
from explainers.batch.worker import WorkerSpec
from explainers.errors import ExplainerError
from explainers.evaluation.scoring import INFO_LABELS, SCORE_LABELS
from explainers.zoo import ModelBundle, model_names

RESULTS = "results.csv"
SUMMARY = "summary.csv"
SETTINGS = "batch.json"

#: results.csv columns before the per-method scores.
BASE_COLUMNS = (
    "image",
    "error",
    "prediction",
    "prediction_name",
    "probability",
    "target",
    "target_name",
    "dx",
    "correct",
    "age",
    "sex",
    "localization",
    "mask",
    "layer",
)


def result_columns(vs: Sequence[Variant]) -> list[str]:
    """Every column of results.csv for these variants: the image's, the scores', the trust
    figures'."""
    return list(BASE_COLUMNS) + score_columns(vs) + trust_columns(vs, CHOICES)


def score_columns(vs: Sequence[Variant]) -> list[str]:
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


def _settings(
    bundle: Any, layer: str, vs: Sequence[Variant], sigma: float, seed: int, n_steps: int
) -> dict[str, Any]:
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
    options: BatchOptions | None = None,
    *,
    progress: TextIO | bool | None = None,
    on_image: Callable[[int, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
    **choices: Any,
) -> BatchResult:
    """Explain and score every image in `images`; write overlays, maps and results to `out`.

    `model`: a catalogue name, a model file or a `ModelBundle`; the choices come as
    `BatchOptions` or as its fields by keyword (`methods=`, `samples=`, `masks=`, ...).
    `progress`: the stream for the text progress bar (default stderr; False for none).
    `on_image(done, total)` is called after each image; `on_wait(message)` once if another run
    holds the folder (this run waits for it, then skips the images it did). Three steps:
    `plan.validate` (folders and numbers), `prepare` (the model and the job), `execute`.
    Raises `ExplainerError` for the user's mistakes (missing folders, bad settings, an out
    folder written with other settings).
    """
    plan = validate(images, out, options_from(options, **choices))
    bundle, job = prepare(model, plan)
    return execute(model, bundle, job, plan, progress=progress, on_image=on_image, on_wait=on_wait)


def prepare(model: Any, plan: BatchPlan) -> tuple[Any, BatchJob]:
    """The model (loaded unless a `ModelBundle` was given) and the job every batch runs."""
    o = plan.options
    if o.engine == "ray" and isinstance(model, ModelBundle):
        raise ExplainerError(
            "the Ray engine loads the model in every worker: give its name or file"
        )
    bundle = model if isinstance(model, ModelBundle) else load_batch_model(model, o.weights, o.seed)
    return bundle, BatchJob.create(bundle, o, plan.meta, plan.masks_dir, plan.out_dir)


def execute(
    model: Any,
    bundle: Any,
    job: BatchJob,
    plan: BatchPlan,
    *,
    progress: TextIO | bool | None = None,
    on_image: Callable[[int, int], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run the planned batch: resume what results.csv holds, explain the rest (locally in one
    worker process, so that an image that crashes it costs that image only, `isolation`; or on
    Ray actors), append each row as it comes, then write the summary."""
    o, out_dir, files = plan.options, plan.out_dir, list(plan.files)
    layer_info, vs, labels = job.layer, job.variants, job.labels
    settings = _settings(bundle, layer_info.path, vs, o.sigma, o.seed, o.n_steps)
    columns = result_columns(vs)

    stream = None if progress is False else (sys.stderr if progress in (None, True) else progress)

    def waiting(message: str) -> None:
        if stream is not None:
            print(message, file=stream, flush=True)
        if on_wait is not None:
            on_wait(message)

    # One run at a time per folder: a second one waits, then resumes (skips what the first did).
    with folder_lock(out_dir, waiting):
        done = _resume(out_dir, settings, columns)
        todo = [p for p in files if p.name not in done]
        result = BatchResult(
            out=out_dir, skipped=len(files) - len(todo), total=len(files), labels=labels
        )
        bar = None if stream is None else Progress(len(files), stream)
        stems = output_stems(files)
        count = result.skipped
        results_path = out_dir / RESULTS
        with open(results_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            what, how = _worker_model(model, bundle, o.weights)
            spec = WorkerSpec(
                model=what,
                weights=how,
                layer=layer_info.path,
                options=o,
                meta=plan.meta,
                out_dir=str(out_dir.resolve()),
                masks_dir=None if plan.masks_dir is None else str(plan.masks_dir.resolve()),
            )
            if o.engine == "ray":
                del bundle  # each actor loads its own; the driver only writes results.csv
                rows_in = ray_rows(
                    [p.resolve() for p in todo],
                    [stems[p] for p in todo],
                    spec,
                    o.ray_options,
                    o.batch_size,
                )
            else:
                rows_in = _local_rows(spec, bundle, job, todo, stems, o.batch_size, stream)
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


def _resume(out_dir: Path, settings: dict, columns: list[str]) -> set[str]:
    """The images results.csv already holds without an error; refuses a folder written with
    other settings. Rewrites results.csv without the failed rows (they are retried), atomically."""
    results_path, settings_path = out_dir / RESULTS, out_dir / SETTINGS
    header, rows = read_results(results_path)
    if rows or settings_path.exists():
        try:
            old = (
                json.loads(settings_path.read_text(encoding="utf-8"))
                if settings_path.exists()
                else None
            )
        except (OSError, ValueError):
            old = None
        if old != settings or (header and header != columns):
            raise ExplainerError(
                f"{out_dir} holds results made with other settings ({_diff(old, settings)}); "
                "use another --out folder, or delete it to start again"
            )
    done = {r["image"] for r in rows if not (r.get("error") or "").strip()}
    kept = [r for r in rows if r["image"] in done]
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
    return done


def _worker_model(model: Any, bundle: Any, weights: Any) -> tuple[Any, Any]:
    """What a worker process loads, and with which weights: the name or file the caller gave;
    for a `ModelBundle`, its catalogue name when it has the usual weights, else the bundle
    itself (pickled, so the worker explains with exactly this model)."""
    if not isinstance(model, ModelBundle):
        return (
            str(Path(model).resolve()) if bundle.key.startswith("file:") else str(model)
        ), weights
    if bundle.key in model_names() and bundle.weights != "random":
        return bundle.key, "imagenet"  # load_model's "usual weights" (the bundled ones included)
    return bundle, None


def _local_rows(
    spec: WorkerSpec,
    bundle: Any,
    job: BatchJob,
    todo: Sequence[Path],
    stems: dict[Path, str],
    batch_size: int,
    stream: TextIO | None,
) -> Iterator[dict]:
    """The local engine's rows: from one worker process (an image that crashes it costs that
    image only: `isolation`), or in this process when no worker can be started."""
    if not todo:
        return iter(())

    try:
        first = ChildWorker(spec)
    except WorkerUnavailable as exc:
        if stream is not None:
            print(f"note: {exc}; explaining in this process instead", file=stream, flush=True)
        return (
            row
            for start in range(0, len(todo), batch_size)
            for row in process_images(bundle, todo[start : start + batch_size], job, stems)
        )
    return isolated_rows(spec, todo, stems, batch_size, first)


def _diff(old: dict | None, new: dict) -> str:
    if not old:
        return "no batch.json beside results.csv"
    changed = [
        f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in new if old.get(k) != new.get(k)
    ]
    return "; ".join(changed) or "different columns"
