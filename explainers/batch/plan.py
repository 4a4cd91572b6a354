"""What a batch run is asked to do, checked before anything heavy is loaded.

``BatchOptions`` holds every choice of a run as one value: the CLI builds it from its
arguments, the Audit page from its widgets, and the workers of both engines receive it whole
(no list of a dozen keywords copied from place to place). ``validate`` checks it against the
folders and returns a ``BatchPlan``: the first of the three steps of ``run.run_batch``
(validate, prepare the model and the job, run).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from explainers.batch.files import IMAGE_EXTENSIONS, list_images, read_metadata
from explainers.batch.job import CHOICES, METHODS
from explainers.batch.ray_engine import require_ray
from explainers.errors import ExplainerError
from explainers.evaluation.scoring import DEFAULT_STEPS

#: Where the batches run: in this process, or on a pool of Ray actors (docs/SCALING.md).
Engine = Literal["local", "ray"]
DEFAULT_BATCH_SIZE = 8


@dataclass(frozen=True)
class BatchOptions:
    """Every choice of a batch run. ``methods``: gradient CAM keys; ``samples``/``sigma``/
    ``seed``: the smoothed variants' noise (and the random weights' seed); ``layer`` (None: the
    last spatial one); ``n_steps``: deletion/insertion steps (None: the default); ``baselines``:
    also score a centred blob and a random map; ``masks``/``metadata``: a folder of lesion masks
    and a HAM10000-style CSV; ``weights``: the model's (None: random from ``seed``);
    ``engine``/``ray_options``: where the batches run; ``cmap``: the overlays' colour map."""

    methods: tuple[str, ...] = METHODS
    samples: int = 0
    sigma: float = 0.15
    seed: int = 0
    layer: str | None = None
    n_steps: int | None = None
    baselines: bool = False
    masks: str | os.PathLike | None = None
    metadata: str | os.PathLike | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    weights: Any = "imagenet"
    cmap: str = "viridis"
    engine: Engine = "local"
    ray_options: Any = field(default=None, compare=False)


def options_from(options: BatchOptions | None = None, **choices: Any) -> BatchOptions:
    """``options`` with ``choices`` applied (the keyword front of ``run_batch``); an unknown
    keyword is a ``TypeError``, as for any Python function."""
    unknown = set(choices) - {f.name for f in dataclasses.fields(BatchOptions)}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(options or BatchOptions(), **choices)


@dataclass(frozen=True)
class BatchPlan:
    """A checked run: the folders, the images, the patient metadata and the options with
    every number checked and ``n_steps`` resolved."""

    images_dir: Path
    out_dir: Path
    files: tuple[Path, ...]
    masks_dir: Path | None
    meta: dict[str, dict[str, str]]
    options: BatchOptions


def _methods(methods: Any) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys([methods] if isinstance(methods, str) else methods))
    bad = [m for m in keys if m not in CHOICES]
    if bad or not keys:
        raise ExplainerError(
            f"unknown method {bad[0] if bad else '(none)'!r}; choose from {', '.join(CHOICES)} or all"
        )
    return keys


def _numbers(o: BatchOptions) -> BatchOptions:
    try:
        samples, batch_size, seed = int(o.samples), int(o.batch_size), int(o.seed)
        sigma = float(o.sigma)
        n_steps = DEFAULT_STEPS if o.n_steps is None else int(o.n_steps)
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
    if o.engine not in ("local", "ray"):
        raise ExplainerError(f"unknown engine {o.engine!r}; choose local or ray")
    return dataclasses.replace(
        o,
        methods=_methods(o.methods),
        samples=samples,
        sigma=sigma,
        seed=seed,
        batch_size=batch_size,
        n_steps=n_steps,
    )


def validate(images: str | os.PathLike, out: str | os.PathLike, options: BatchOptions) -> BatchPlan:
    """Check the folders and the options (ExplainerError in plain words) and create ``out``;
    nothing else is loaded or written."""
    images_dir, out_dir = Path(images), Path(out)
    if not images_dir.exists():
        raise ExplainerError(f"images folder not found: {images_dir}")
    if not images_dir.is_dir():
        raise ExplainerError(f"--images must be a folder, got a file: {images_dir}")
    masks_dir = Path(options.masks) if options.masks is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise ExplainerError(f"masks folder not found: {masks_dir}")
    meta = read_metadata(Path(options.metadata)) if options.metadata is not None else {}
    options = _numbers(options)
    if options.engine == "ray":
        require_ray()
    files = list_images(images_dir)
    if not files:
        raise ExplainerError(
            f"no images in {images_dir} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    if out_dir.resolve() == images_dir.resolve():
        raise ExplainerError(
            "--out must be another folder than --images (the overlays are PNG images)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ExplainerError(f"--out must be a folder, got a file: {out_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplainerError(
            f"cannot create the output folder {out_dir}: {exc.strerror or exc}"
        ) from None
    return BatchPlan(images_dir, out_dir, tuple(files), masks_dir, meta, options)
