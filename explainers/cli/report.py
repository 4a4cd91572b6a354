"""``python -m explainers report``: the one-file PDF case report, from files.

Loads the model and the image, explains the target and writes exactly the report the
dashboard's button downloads: both build it with ``explainers.report_content.build_case`` and
write it with ``explainers.report.write_report``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from explainers import explain_details, predict, render
from explainers.cli.argtypes import fraction, nonneg_float, nonneg_int
from explainers.cli.common import add_model_arguments as _add_model_arguments
from explainers.cli.common import extra_inputs as _extra_inputs
from explainers.cli.common import load_bundle as _load_bundle
from explainers.cli.common import target_class as _target
from explainers.engine.core import method_label
from explainers.errors import ExplainerError
from explainers.images import load_image
from explainers.methods import REGISTRY
from explainers.report import CaseData, write_report
from explainers.report_content import build_case, patient_text, sample_record
from explainers.zoo import prepare


def case_from_files(args: argparse.Namespace) -> CaseData:
    """Load the model and the image, explain the target, and build the report's content with
    the dashboard's own builder (``report_content.build_case``)."""
    bundle = _load_bundle(args)
    image = load_image(args.image)
    x = prepare(bundle, image)
    extra = _extra_inputs(bundle, args)
    pred = predict(bundle.model, x, extra)
    target = _target(bundle, args.target)
    ex = explain_details(
        bundle.model,
        x,
        layer=args.layer,
        target=target,
        extra_inputs=extra,
        n_samples=args.samples,
        sigma=args.sigma,
        seed=args.seed,
    )
    titles = {m: method_label(m, ex.n_samples, ex.sigma) for m in ex.maps if REGISTRY[m].cam}
    name = Path(args.image).name
    return build_case(
        bundle,
        ex,
        pred,
        image=image,
        x=x,
        extra=extra,
        image_name=name,
        titles=titles,
        patient=patient_text(args.age, args.sex, args.site) if bundle.metadata_input else "",
        record=sample_record(name),
        cmap=args.cmap,
        opacity=args.opacity,
        scale=args.scale,
        absolute_max=args.absolute_max,
        seed=args.seed,
        model_file=str(args.model),
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``python -m explainers report``'s options."""
    _add_model_arguments(p)
    p.add_argument("--image", required=True, metavar="FILE", help="the image to explain")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="where to write the PDF")
    p.add_argument("--layer", help="layer name or path (default: the last spatial layer)")
    p.add_argument("--target", metavar="N|NAME", help="class to explain (default: top-1)")
    p.add_argument("--samples", type=nonneg_int, default=0, metavar="N")
    p.add_argument("--sigma", type=nonneg_float, default=0.15, metavar="S")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--age", type=float, default=None, help="skin-lesion model: age in years")
    p.add_argument("--sex", default=None, help="skin-lesion model: female, male or unknown")
    p.add_argument("--site", default=None, help="skin-lesion model: body site")
    p.add_argument("--cmap", default=render.DEFAULT_CMAP, help="colour map (default viridis)")
    p.add_argument("--opacity", type=fraction, default=0.5, help="overlay opacity 0..1")
    p.add_argument(
        "--scale",
        default="own",
        choices=render.SCALES,
        help="colour scale: own maximum, shared by the maps, or absolute",
    )
    p.add_argument(
        "--absolute-max",
        type=nonneg_float,
        default=None,
        metavar="V",
        help="the absolute scale's top value in raw map units",
    )


def run(args: argparse.Namespace) -> int:
    """The handler: check the output path, build the case, write the PDF, say where."""
    out = Path(args.out)
    if out.suffix.lower() != ".pdf":
        raise ExplainerError(f"--out must end in .pdf, got '{args.out}'")
    if not out.parent.exists():
        raise ExplainerError(f"the folder for --out does not exist: {out.parent}")
    if args.scale == "absolute" and not args.absolute_max:
        raise ExplainerError("--scale absolute needs --absolute-max V (a positive raw value)")
    render._colormap(args.cmap)  # an unknown colour map fails before the model is loaded
    case = case_from_files(args)
    data = write_report(case, out)
    print(
        f"wrote {out} ({len(data) // 1024} KiB, {2 + len(case.extra_figures) + len(case.extra_lines)} pages)"
    )
    return 0
