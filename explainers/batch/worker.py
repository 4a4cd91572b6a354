"""What a worker process of the batch needs, in either engine: ``WorkerSpec`` (the model and
settings it rebuilds), ``load_worker`` (the model and the job from it), ``safe_rows`` (a batch
whose Python code fails is error rows, never a dead run) and the error row of an image that
crashed its worker process every time it was tried (``crash_row``)."""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from explainers.batch.job import BatchJob, load_batch_model, process_images

#: An image that kills its worker process this many times, alone, becomes an error row.
CRASH_TRIES = 2


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the run's model and settings; sent once to each one.
    `model`: a catalogue name or a model file (loaded with `weights` and `seed`), or a whole
    `ModelBundle` (pickled: the worker explains with exactly the caller's model)."""

    model: Any
    weights: Any
    layer: str  # the resolved layer path: every worker explains the same one
    options: Any  # plan.BatchOptions, checked
    out_dir: str
    masks_dir: str | None = None
    meta: dict[str, dict[str, str]] = field(default_factory=dict)


def load_worker(spec: WorkerSpec) -> tuple[Any, Any]:
    """`(bundle, job)` in this process: the model loaded (or unpickled) once per worker."""
    bundle = (
        load_batch_model(spec.model, spec.weights, spec.options.seed)
        if isinstance(spec.model, str)
        else spec.model
    )
    job = BatchJob.create(
        bundle,
        dataclasses.replace(spec.options, layer=spec.layer),
        spec.meta,
        None if spec.masks_dir is None else Path(spec.masks_dir),
        Path(spec.out_dir),
    )
    return bundle, job


def safe_rows(
    bundle: Any, job: Any, paths: Sequence[Path], stems: dict[Path, str]
) -> Iterator[dict[str, Any]]:
    """`process_images`' rows; an exception in the batch ends it with an error row for each
    image that has none yet (the rows already given stay)."""
    given: set[str] = set()
    try:
        for row in process_images(bundle, paths, job, stems):
            given.add(row["image"])
            yield row
    except Exception as exc:  # noqa: BLE001 - a batch that fails is error rows, not a dead run
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        for p in paths:
            if p.name not in given:
                yield {
                    "image": p.name,
                    "layer": job.layer.path,
                    "error": f"could not explain it: {text}",
                }


def exit_code(code: int | None) -> str:
    """A process's end in plain words: `exit code 134 (SIGABRT)` for a signal (as a shell
    writes it: 128 + the signal's number), `exit code 3` otherwise."""
    if code is None:
        return "no exit code"
    if code < 0:
        try:
            name = f" ({signal.Signals(-code).name})"
        except ValueError:
            name = ""
        return f"exit code {128 - code}{name}"
    return f"exit code {code}"


def crash_row(name: str, layer: str, code: int | None, tries: int = CRASH_TRIES) -> dict[str, Any]:
    """The results.csv row of an image whose worker process died each of `tries` times."""
    times = {1: "once", 2: "twice"}.get(tries, f"{tries} times")
    how = "" if code is None else f" ({exit_code(code)})"  # a Ray actor's is not known
    return {
        "image": name,
        "layer": layer,
        "error": f"the worker process crashed{how} on this image {times}; "
        "the other images were explained",
    }
