"""``python -m explainers sanity``: the Adebayo et al. sanity checks for one model and layer.

Prints the cascade table (Spearman and SSIM against the trained maps after each
randomisation step), the random-logit Spearman and a pass/fail verdict per method; with
``--json`` exactly one object: ``{"model", "layer", "images", "methods": {key: {"cascade":
[{"step", "spearman", "ssim"}], "random_logit_spearman", "verdict"}}}``. Results are cached
on disk (~/.cache/explainers/sanity) per model file hash, layer, method and noise settings.
"""

from __future__ import annotations

import argparse
import json
import sys

from explainers import resolve_layer
from explainers.cli import common as cli
from explainers.cli.argtypes import nonneg_float, nonneg_int
from explainers.errors import ExplainerError
from explainers.methods import REGISTRY, resolve_methods
from explainers.models.skin_lesion import SKIN_LESION as DEFAULT_MODEL
from explainers.report import file_sha256
from explainers.trust import verdicts
from explainers.trust.sanity import (
    CASCADE_PASS,
    DEFAULT_METHODS,
    DEFAULT_SAMPLES,
    LOGIT_PASS,
    model_fingerprint,
    sanity_for_bundle,
)
from explainers.zoo import skin_lesion_model_path


def _methods(text: str) -> tuple[str, ...]:
    try:
        keys = resolve_methods([t.strip() for t in str(text).split(",") if t.strip()])
    except ExplainerError:
        keys = ()
    keys = tuple(k for k in keys if REGISTRY[k].cam) if str(text).strip() == "all" else keys
    if not keys or any(not REGISTRY[k].cam for k in keys):
        cams = ", ".join(k for k in REGISTRY if REGISTRY[k].cam)
        raise argparse.ArgumentTypeError(
            f"choose CAM methods from {cams}, or all (comma-separated)"
        )
    return keys


def _count(text: str) -> int:
    value = nonneg_int(text)
    if not 1 <= value <= 8:
        raise argparse.ArgumentTypeError("must be between 1 and 8 (the bundled samples)")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    cli.add_model_arguments(p)
    p.add_argument("--layer", help="layer name or path (default: the last spatial layer)")
    p.add_argument(
        "--method",
        type=_methods,
        default=DEFAULT_METHODS,
        metavar="KEY[,KEY]|all",
        help=f"CAM methods to check (default: {', '.join(DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--samples",
        type=_count,
        default=DEFAULT_SAMPLES,
        metavar="N",
        help=f"how many bundled images (1-8, default {DEFAULT_SAMPLES})",
    )
    p.add_argument(
        "--noise-samples",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="noisy copies that smooth the maps (0: none)",
    )
    p.add_argument("--sigma", type=nonneg_float, default=0.15, metavar="S", help="noise level")
    p.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    p.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    p.add_argument(
        "--write-default",
        action="store_true",
        help="measure every CAM method of the gradient pass on plain maps (no cache) and "
        "write explainers/data/sanity_default.json, the verdicts a fresh install "
        "shows for this model and layer (the default model only)",
    )


def run(args: argparse.Namespace) -> int:
    if getattr(args, "write_default", False):
        _check_write_default(args)
    bundle = cli.load_bundle(args)
    layer = resolve_layer(bundle.model, args.layer)
    if getattr(args, "write_default", False):
        return _write_default(args, bundle, layer.path)

    def progress(fraction: float, text: str) -> None:
        if not args.json:
            print(f"  [{fraction * 100:3.0f}%] {text}", file=sys.stderr, flush=True)

    report = sanity_for_bundle(
        bundle,
        layer=layer.path,
        methods=args.method,
        n_images=args.samples,
        n_samples=args.noise_samples,
        sigma=args.sigma,
        progress=progress,
        use_cache=not args.no_cache,
    )
    if args.json:
        print(json.dumps(report.to_json(), allow_nan=False))
        return 0
    print(f"model: {bundle.label}; layer {report.layer}; {len(report.images)} images")
    for key, m in report.methods.items():
        print(f"\n{key}: {m.verdict.upper()} (random-logit Spearman {m.random_logit_spearman:.2f})")
        print(f"  {'randomised':<34} {'Spearman':>8} {'SSIM':>6}")
        for s in m.cascade:
            print(f"  {s.step:<34} {s.spearman:8.2f} {s.ssim:6.2f}")
    print(
        f"\nrule: pass when Spearman < {CASCADE_PASS} once the head and the last block are random "
        f"and random-logit Spearman < {LOGIT_PASS}"
    )
    return 0


def _check_write_default(args: argparse.Namespace) -> None:
    """Before anything loads: the shipped file is for the default model's plain maps only."""
    if str(args.model).strip().lower() != DEFAULT_MODEL:
        raise ExplainerError(f"--write-default measures the default model ({DEFAULT_MODEL}) only")
    if args.noise_samples or args.samples != DEFAULT_SAMPLES:
        raise ExplainerError(
            f"--write-default measures plain maps on all {DEFAULT_SAMPLES} samples: "
            "leave out --noise-samples and --samples"
        )


def _write_default(args: argparse.Namespace, bundle, layer: str) -> int:
    """``--write-default``: the shipped measurement (see ``explainers.trust.verdicts``)."""
    methods = verdicts.shipped_methods()
    command = (
        f"python -m explainers sanity --model {DEFAULT_MODEL}"
        + (f" --layer {args.layer}" if args.layer else "")
        + " --write-default"
    )

    def progress(fraction: float, text: str) -> None:
        print(f"  [{fraction * 100:3.0f}%] {text}", file=sys.stderr, flush=True)

    report = sanity_for_bundle(
        bundle, layer=layer, methods=methods, n_samples=0, progress=progress, use_cache=False
    )

    record = verdicts.default_record(
        report,
        model_fingerprint(bundle),
        command,
        file_sha256=file_sha256(skin_lesion_model_path()),
    )
    path = verdicts.write_default(record)
    for key, entry in record["methods"].items():
        print(f"{key}: {entry['verdict']}")
    print(f"wrote {path}")
    return 0
