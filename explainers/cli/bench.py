"""``python -m explainers bench [basic|extended|evaluation]``: the benchmarks behind
docs/BENCHMARKS.md, each a ratio measured in one process (ours / the plain passes it needs)."""

from __future__ import annotations

import argparse

import keras

from explainers.bench.evaluation import format_evaluation, run_evaluation
from explainers.bench.explaining import format_extended, format_result, run_benchmark, run_extended
from explainers.bench.machine import use_clock
from explainers.errors import ExplainerError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        default="basic",
        choices=("basic", "extended", "evaluation"),
        help="basic: explaining vs one forward + backward pass; extended: the "
        "method registry (all gradient CAMs, guided backprop, Score-CAM); "
        "evaluation: batch evaluation vs the passes it needs",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="a Keras Applications name (default MobileNetV2; evaluation: skin-lesion)",
    )
    parser.add_argument(
        "--images", type=int, default=2, help="evaluation: bundled samples per round"
    )
    parser.add_argument(
        "--steps", type=int, default=16, help="evaluation: deletion/insertion steps"
    )
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-nested", action="store_true", help="leave out the slow baseline")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall-clock seconds, or this process's CPU seconds (steadier on a "
        "machine other jobs share)",
    )


def run(args: argparse.Namespace) -> int:
    use_clock(args.clock)
    if args.what == "evaluation":
        if min(args.samples, args.repeats, args.images, args.steps) < 1:
            raise ExplainerError("--samples, --repeats, --images and --steps must be at least 1")
        print(
            format_evaluation(
                run_evaluation(
                    args.model or "skin-lesion", args.images, args.samples, args.steps, args.repeats
                )
            )
        )
        return 0
    args.model = args.model or "MobileNetV2"
    if not hasattr(keras.applications, args.model):
        raise ExplainerError(f"unknown Keras Applications model '{args.model}'")
    if args.samples < 1 or args.repeats < 1:
        raise ExplainerError("--samples and --repeats must be at least 1")
    if args.what == "extended":
        print(format_extended(run_extended(args.model, args.samples, args.repeats)))
        return 0
    print(
        format_result(
            run_benchmark(args.model, args.samples, args.repeats, skip_nested=args.skip_nested)
        )
    )
    return 0
