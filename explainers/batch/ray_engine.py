"""The batch command on Ray Data: `python -m explainers batch ... --engine ray`.

The image paths become a Ray dataset (`ray.data.from_items`), one block per batch, mapped by
a pool of actors (`map_batches` with `ActorPoolStrategy`). Each actor loads the model once and
runs `batch.process_images` on its batches: it decodes the images itself (so one corrupt file
is one error row, not an aborted run) and writes each image's PNG and NPZ atomically. The
driver alone writes results.csv, row by row as batches arrive. Ray restarts an actor whose
process dies and runs its batch again, then image by image (`crash_ledger`): an image that
kills its actor twice alone is an error row; the retries are bounded (`max_task_retries`,
`max_restarts`), so a run always ends. The driver only ever sees a batch's rows once.

Ray is optional (requirements-scale.txt). Nothing here imports it until a run starts, and
without it the run stops with one `error:` line that says what to install. A local cluster
started here sends no usage statistics and has no dashboard.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explainers.batch.worker import WorkerSpec
from explainers.errors import ExplainerError

INSTALL_HINT = "pip install -r requirements-scale.txt (Ray Data: ray[data])"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: a cluster address (None: start a local one), the actor pool's size
    (min, max; equal for a fixed pool) and the resources of one actor."""

    address: str | None = None
    actors: tuple[int, int] = (1, 1)
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0


# --- command line -----------------------------------------------------------------------------


def parse_actors(text: str) -> tuple[int, int]:
    """`N` (a fixed pool) or `MIN-MAX` (a pool Ray grows and shrinks within these bounds)."""
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            low = high = int(parts[0])
        elif len(parts) == 2:
            low, high = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected N or MIN-MAX (e.g. 2 or 1-8), got '{text}'"
        ) from None
    if low < 1 or high < low:
        raise argparse.ArgumentTypeError(f"need 1 <= MIN <= MAX, got '{text}'")
    return low, high


def _resource(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number 0 or more, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The engine options of the `batch` command (no Ray needed to parse them)."""
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help=f"local: this process (default); ray: a pool of Ray actors (needs {INSTALL_HINT})",
    )
    parser.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="Ray only: an existing cluster (e.g. 10.0.0.5:6379 or auto); "
        "default: start a local one",
    )
    parser.add_argument(
        "--actors",
        type=parse_actors,
        default=None,
        metavar="N|MIN-MAX",
        help="Ray only: number of actors, each loading the model once (default 1)",
    )
    parser.add_argument(
        "--cpus-per-actor",
        type=_resource,
        default=1.0,
        metavar="C",
        help="Ray only: CPUs reserved per actor (default 1; also its TensorFlow threads)",
    )
    parser.add_argument(
        "--gpus-per-actor",
        type=_resource,
        default=0.0,
        metavar="G",
        help="Ray only: GPUs reserved per actor (default 0; 1 = one GPU each)",
    )


def options_from_args(args: argparse.Namespace) -> RayOptions | None:
    """The parsed options as `RayOptions`; None for the local engine (whose options Ray's
    would be silently ignored, so they are refused)."""
    if args.engine != "ray":
        given = [
            flag
            for flag, value in (
                ("--address", args.address),
                ("--actors", args.actors),
                ("--cpus-per-actor", args.cpus_per_actor != 1.0),
                ("--gpus-per-actor", args.gpus_per_actor != 0.0),
            )
            if value
        ]
        if given:
            raise ExplainerError(f"{given[0]} is an option of --engine ray")
        return None
    if args.cpus_per_actor == 0 and args.gpus_per_actor == 0:
        raise ExplainerError(
            "an actor needs some CPU or GPU: --cpus-per-actor or --gpus-per-actor above 0"
        )
    return RayOptions(
        address=args.address,
        actors=args.actors or (1, 1),
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
    )


# --- Ray --------------------------------------------------------------------------------------


def require_ray() -> Any:
    """The `ray` module with Ray Data, or an `ExplainerError` that says what to install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        missing = getattr(exc, "name", None) or "ray"
        raise ExplainerError(
            f"--engine ray needs Ray Data, which is not installed (no module "
            f"{missing!r}): {INSTALL_HINT}"
        ) from None
    return ray


def _start(ray: Any, options: RayOptions) -> bool:
    """Connect to the cluster (or start a local one); True if this call started it."""
    if ray.is_initialized():
        return False
    import logging

    for name in ("ray", "ray.data"):  # the batch's own progress bar and errors say enough
        logging.getLogger(name).setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if options.address:
        from explainers.engine.allocator import VARIABLE

        # The workers of another machine import this package from a copy Ray uploads, and
        # start TensorFlow with the driver's allocator choice (engine/allocator.py; a local
        # cluster's workers inherit the driver's environment, and ExplainWorker sets it too).
        kwargs["runtime_env"] = {
            "py_modules": [str(Path(__file__).resolve().parents[1])],
            "env_vars": {VARIABLE: os.environ.get(VARIABLE, "true")},
        }
        try:
            ray.init(address=options.address, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ... all mean: not reachable
            raise ExplainerError(
                f"cannot connect to the Ray cluster at {options.address} "
                f"({' '.join(str(exc).split())[:200]}); check the address, and for a cluster with "
                "token authentication set RAY_AUTH_MODE=token with its token (see docs/SCALING.md)"
            ) from None
    else:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # nothing phones home
        ray.init(include_dashboard=False, **kwargs)
    return True


def _check_resources(ray: Any, options: RayOptions) -> None:
    """A pool the cluster cannot hold would wait forever: say so instead."""
    have = ray.cluster_resources()
    low = options.actors[0]
    for name, per_actor, flag in (
        ("CPU", options.cpus_per_actor, "--cpus-per-actor"),
        ("GPU", options.gpus_per_actor, "--gpus-per-actor"),
    ):
        need = low * per_actor
        if need > have.get(name, 0.0) + 1e-9:
            raise ExplainerError(
                f"{low} actor(s) x {per_actor:g} {name} need {need:g} {name}s; the Ray cluster has "
                f"{have.get(name, 0.0):g}: use fewer --actors or a smaller {flag}"
            )


class ExplainWorker:
    """One actor: loads the model once, then explains the batches Ray Data hands it. A batch
    whose earlier try killed its actor runs image by image (`crash_ledger`), so a crash costs
    the image that causes it, and the retries end."""

    def __init__(self, spec: WorkerSpec, cpus: float):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from explainers.engine.allocator import prefer_system_allocator

        prefer_system_allocator()  # a worker process of its own: before it imports TensorFlow
        import tensorflow as tf

        threads = max(1, int(cpus))  # one actor per reserved CPU share; no oversubscription
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already running in this process: keep its pools
            pass
        from explainers.batch.crash_ledger import CrashLedger
        from explainers.batch.worker import load_worker

        self.spec = spec
        self.bundle, self.job = load_worker(spec)
        self.ledger = CrashLedger(Path(spec.out_dir))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        from explainers.batch.crash_ledger import guarded_rows
        from explainers.batch.worker import safe_rows

        paths = [Path(str(p)) for p in batch["path"]]
        stems = {p: str(s) for p, s in zip(paths, batch["stem"], strict=False)}
        rows = guarded_rows(
            self.ledger,
            paths,
            self.job.layer.path,
            lambda some: safe_rows(self.bundle, self.job, some, stems),
        )
        names = [p.name for p in paths]
        return {
            "image": np.array(names, dtype=object),
            "row": np.array([json.dumps(rows[n], default=_plain) for n in names], dtype=object),
        }


def _plain(value: Any) -> Any:
    """NumPy scalars in a row as JSON numbers."""
    try:
        return value.item()
    except AttributeError:
        return str(value)


def ray_rows(
    paths: Sequence[Path],
    stems: Sequence[str],
    spec: WorkerSpec,
    options: RayOptions | None,
    batch_size: int,
) -> Iterator[dict[str, Any]]:
    """The results.csv row of every image in `paths`, in the order their batches finish.
    Connects (or starts a local cluster) and checks its resources now, so that a pool the
    cluster cannot hold is an `ExplainerError` before any row; the rows come as iterated."""
    if not paths:
        return iter(())
    options = options or RayOptions()
    ray = require_ray()
    started = _start(ray, options)
    try:
        _check_resources(ray, options)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return _stream(ray, started, paths, stems, spec, options, batch_size)


def _stream(
    ray: Any,
    started: bool,
    paths: Sequence[Path],
    stems: Sequence[str],
    spec: WorkerSpec,
    options: RayOptions,
    batch_size: int,
) -> Iterator[dict[str, Any]]:
    try:
        from ray.data import ActorPoolStrategy, DataContext

        from explainers.batch.crash_ledger import clear_ledger
        from explainers.batch.worker import CRASH_TRIES

        DataContext.get_current().enable_progress_bars = False  # the batch prints its own
        clear_ledger(Path(spec.out_dir))
        low, high = options.actors
        # One batch at a time per actor: an actor's death then retries its own batch only.
        one = {"max_tasks_in_flight_per_actor": 1}
        pool = (
            ActorPoolStrategy(size=low, **one)
            if low == high
            else ActorPoolStrategy(min_size=low, max_size=high, **one)
        )
        items = [{"path": str(p), "stem": s} for p, s in zip(paths, stems, strict=False)]
        # One block per batch: batches hold the same images as the local engine's, except when
        # there are too few images to give every actor one batch (then they are made smaller).
        size = max(1, min(batch_size, math.ceil(len(items) / high)))
        blocks = math.ceil(len(items) / size)
        # Bounded retries: a batch needs at most one try whole and CRASH_TRIES per image alone
        # (crash_ledger); past that, or past that many restarts per batch, the run ends.
        retries = 1 + CRASH_TRIES * size
        ds = ray.data.from_items(items, override_num_blocks=blocks)
        ds = ds.map_batches(
            ExplainWorker,
            fn_constructor_kwargs={"spec": spec, "cpus": options.cpus_per_actor},
            batch_size=size,
            batch_format="numpy",
            compute=pool,
            num_cpus=options.cpus_per_actor,
            num_gpus=options.gpus_per_actor,
            max_restarts=retries * blocks,
            max_task_retries=retries,
        )
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
                for text in batch["row"]:
                    yield json.loads(str(text))
        except Exception as exc:  # noqa: BLE001 - Ray's errors (actors that cannot start, a lost
            # node) as one line; what was written is kept and a second run resumes from it
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            raise ExplainerError(
                f"the Ray run stopped ({type(exc).__name__}: {first.strip()[:300]}); "
                "the rows written so far are kept: run the same command again "
                "to resume"
            ) from None
    finally:
        if started:
            ray.shutdown()
