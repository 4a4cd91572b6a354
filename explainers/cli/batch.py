"""explain a folder of images: overlays, maps and faithfulness scores in results.csv

    python -m explainers batch --model skin-lesion --images DIR --out DIR \\
        [--method KEY|all] [--samples N] [--sigma S] [--seed N] \\
        [--masks DIR] [--metadata CSV] [--batch-size N] [--layer L] [--steps N] [--baselines] \\
        [--engine local|ray [--address ADDR] [--actors N|MIN-MAX] [--cpus-per-actor C]
         [--gpus-per-actor G]]

For every image: `<name>.png` (input | one overlay per method), `<name>.npz` (the raw maps,
the image the model saw, the deletion / insertion curves) and one row of `results.csv`
(prediction, probability, and every score of `explainers.evaluation.scoring` per method). With
`--samples N` (N > 0) each method is also computed smoothed with N noisy copies.
`--metadata` reads a HAM10000-style CSV (image_id, dx, age, sex, localization): the
skin-lesion model gets the patient's data, and dx is recorded. `--masks` holds binary
masks named like the images (`X.png`, `X_segmentation.png` or `X_mask.png`) for the
localisation scores. `--baselines` also scores a centred blob and a random map, the level a
method has to beat. Run it again with the same --out to resume: images already in
results.csv are skipped (failed ones are retried). An unreadable image becomes a row with
its error; the batch goes on. At the end the scores averaged over all images are printed
and written to summary.csv. `--weights none` builds the random weights from `--seed`, so a
run is reproducible. `--engine ray` spreads the images over a pool of Ray actors (the
optional `ray[data]`, see requirements-scale.txt and docs/SCALING.md); the rows are the same.
"""

from __future__ import annotations

import argparse

from explainers.batch.files import markdown_table
from explainers.batch.ray_engine import add_arguments as add_engine_arguments  # imports no Ray
from explainers.batch.ray_engine import options_from_args
from explainers.batch.run import CHOICES, DEFAULT_BATCH_SIZE, METHODS, RESULTS, SUMMARY, run_batch
from explainers.cli.argtypes import nonneg_float, nonneg_int, positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `batch` command's options."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="NAME|FILE",
        help="skin-lesion, a Keras Applications name (MobileNetV2, ...) or a .keras/.h5 file",
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|none|FILE",
        help="Keras Applications only: imagenet (default), none (random) or a weights file",
    )
    parser.add_argument(
        "--images", required=True, metavar="DIR", help="folder of images to explain"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created; run again with the same folder to resume)",
    )
    parser.add_argument(
        "--method",
        default=None,
        choices=(*CHOICES, "all"),
        help="one gradient CAM method, or all of them (default: Grad-CAM and Grad-CAM++)",
    )
    parser.add_argument(
        "--samples",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="also compute the smoothed methods with N noisy copies (0: plain only)",
    )
    parser.add_argument(
        "--sigma",
        type=nonneg_float,
        default=0.15,
        metavar="S",
        help="noise standard deviation as a fraction of the image's range (default 0.15)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="noise seed, and the seed of --weights none's random weights (default 0)",
    )
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="binary masks named like the images (X.png, X_segmentation.png, X_mask.png)",
    )
    parser.add_argument(
        "--metadata",
        metavar="CSV",
        help="HAM10000-style CSV (image_id, dx, age, sex, localization)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--layer",
        default=None,
        metavar="L",
        help="layer name or path (default: the last spatial layer)",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="also score two maps that know nothing about the model (a centred "
        "blob and random noise): the level a method must beat",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        metavar="N",
        help="deletion / insertion steps (default 16)",
    )

    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """`python -m explainers batch`: run, print where the outputs are and the summary table."""
    weights = args.weights
    if weights is not None and weights.strip().lower() in ("none", "random"):
        weights = None
    elif weights is None:
        weights = "imagenet"
    methods = {None: METHODS, "all": CHOICES}.get(args.method, (args.method,))

    result = run_batch(
        args.model,
        args.images,
        args.out,
        methods=methods,
        samples=args.samples,
        sigma=args.sigma,
        seed=args.seed,
        masks=args.masks,
        metadata=args.metadata,
        batch_size=args.batch_size,
        layer=args.layer,
        n_steps=args.steps,
        baselines=args.baselines,
        weights=weights,
        engine=args.engine,
        ray_options=options_from_args(args),
    )
    print(
        f"{result.total} images: {result.processed} explained, {result.skipped} already done, "
        f"{result.failed} failed (see the error column of {result.out / RESULTS})"
    )
    print(f"wrote {result.out}/ (one .png and .npz per image, {RESULTS}, {SUMMARY})")
    print()
    print(markdown_table(result.summary, result.labels))
    return 0
