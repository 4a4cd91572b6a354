"""``python -m explainers explain``: one image, any registered methods, printed as text or as
one JSON object, written as NPZ (one array per method key) or as a PNG of the overlays.

Registered in ``explainers.cli.SUBCOMMANDS``; the shared steps (loading the model, patient data, the
target) are ``cli``'s. With ``--json`` stdout carries exactly one JSON object and nothing
else; errors are still one ``error: ...`` line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from explainers import explain_details, predict, resolve_layer
from explainers.cli import common as cli
from explainers.cli.argtypes import fraction, nonneg_float, nonneg_int
from explainers.errors import ExplainerError
from explainers.evaluation.localisation import cam_box
from explainers.images import load_image, resize, to_array
from explainers.marks import draw_box
from explainers.methods import DEFAULT_METHODS, REGISTRY, method_label, resolve_methods
from explainers.methods.guided import to_image
from explainers.render import colorize, overlay, side_by_side
from explainers.textual import NEEDS as TEXT_NEEDS
from explainers.textual import describe
from explainers.trust.artefact_audit import audit, audit_json
from explainers.trust.card import trust_figures, trust_json
from explainers.zoo import prepare, resized_input, skin_lesion_metadata

#: Longest side of the PNG overlays: full-resolution photos would make huge files.
PNG_MAX_SIDE = 512
#: Score-CAM's default K on the command line (every channel: ``--max-channels all``).
DEFAULT_MAX_CHANNELS = 64


def _methods(text: str) -> tuple[str, ...]:
    """``all``, one key or a comma-separated list of keys of the method registry."""
    try:
        return resolve_methods([t.strip() for t in str(text).split(",") if t.strip()])
    except ExplainerError:
        raise argparse.ArgumentTypeError(
            f"unknown method in '{text}'; choose from {', '.join(REGISTRY)} or all "
            "(several: separated by commas)"
        ) from None


def _max_channels(text: str) -> int | None:
    if str(text).strip().lower() == "all":
        return None
    value = nonneg_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1, or all")
    return value


def _check_out(out: str | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() not in (".npz", ".png"):
        raise ExplainerError(
            f"--out must end in .npz (the maps) or .png (the overlay), got '{out}'"
        )
    if not path.parent.exists():
        raise ExplainerError(f"the folder for --out does not exist: {path.parent}")
    return path


def _display_image(image, max_side: int = PNG_MAX_SIDE):
    """The input image scaled down (never up) so its longer side is at most ``max_side``."""
    w, h = image.size
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        image = resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))
    return image


def add_arguments(p: argparse.ArgumentParser) -> None:
    cli.add_model_arguments(p)
    p.add_argument("--image", required=True, metavar="FILE", help="the image to explain")
    p.add_argument(
        "--layer",
        help="layer name or path (default: the last spatial layer; "
        "list them with the layers command)",
    )
    p.add_argument(
        "--target",
        metavar="N|NAME",
        help="class index or name to explain (default: the top prediction)",
    )
    p.add_argument(
        "--method",
        type=_methods,
        default=DEFAULT_METHODS,
        metavar="KEY[,KEY]|all",
        help=f"{', '.join(REGISTRY)}, or all (default: {', '.join(DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--samples",
        type=nonneg_int,
        default=0,
        metavar="N",
        help="noisy copies that smooth the gradient methods (0: no smoothing)",
    )
    p.add_argument(
        "--sigma",
        type=nonneg_float,
        default=0.15,
        metavar="S",
        help="noise standard deviation as a fraction of the image's value range",
    )
    p.add_argument("--seed", type=int, default=None, metavar="N", help="noise seed")
    p.add_argument("--filters", metavar="LIST", help="only these channels, e.g. 3,10,32 or 0-15")
    p.add_argument(
        "--neurons", metavar="LIST", help="only these grid positions (row,col), e.g. 3,4;5,6"
    )
    p.add_argument(
        "--region",
        action="store_true",
        help="--neurons gives two corners of a rectangle instead of single positions",
    )
    p.add_argument(
        "--max-channels",
        type=_max_channels,
        default=DEFAULT_MAX_CHANNELS,
        metavar="K|all",
        help="Score-CAM: the K channels of largest activation "
        f"variance, one forward pass each (default {DEFAULT_MAX_CHANNELS}; all: every channel)",
    )
    p.add_argument(
        "--box-threshold",
        type=fraction,
        default=0.15,
        metavar="F",
        help="localisation box: keep the map at or above this fraction of its maximum "
        "(default 0.15)",
    )
    p.add_argument(
        "--age", type=float, default=None, help="skin-lesion model: patient age in years"
    )
    p.add_argument("--sex", default=None, help="skin-lesion model: female, male or unknown")
    p.add_argument(
        "--site",
        default=None,
        help="skin-lesion model: arm, head-or-neck, leg-or-genital, trunk, unknown, "
        "or a HAM10000 localisation such as 'back'",
    )
    p.add_argument(
        "--out",
        metavar="FILE.npz|FILE.png",
        help=".npz: the raw maps and what they explain; .png: the overlays",
    )
    p.add_argument("--cmap", default="jet", help="colour map of the PNG overlay (default jet)")
    p.add_argument(
        "--opacity", type=fraction, default=0.5, help="overlay opacity 0..1 (default 0.5)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (prediction, per-method shape, maximum, box, "
        "seconds, top and bottom filters, textual explanation) and nothing else",
    )


def _print_prediction(bundle, pred, k: int = 3) -> None:
    probs = np.asarray(pred.probabilities[0], dtype=np.float64)
    order = np.argsort(-probs, kind="stable")[: min(k, len(probs))]
    kind = "probability" if pred.softmax_head else "score"
    print(f"model: {bundle.label}")
    if not bundle.meaningful:
        print("note: random weights — the prediction and the maps show the architecture only")
    print(f"prediction (top {len(order)}, {kind}):")
    for rank, i in enumerate(order, 1):
        value = f"{probs[i] * 100:.1f}%" if pred.softmax_head else f"{probs[i]:.4g}"
        print(f"  {rank}. [{i}] {bundle.class_label(int(i))}: {value}")


def run(args: argparse.Namespace) -> int:
    out = _check_out(args.out)
    if out is not None and out.suffix.lower() == ".png":
        colorize(np.zeros((1, 1)), args.cmap)  # an unknown colour map fails before the work
    filters = cli.parse_index_list(args.filters) if args.filters else None
    neurons = cli.parse_positions(args.neurons) if args.neurons else None
    if args.region and neurons is None:
        raise ExplainerError("--region needs --neurons with two corner positions")
    image = load_image(args.image)  # before the model: a bad image fails in a second
    if any(v is not None for v in (args.age, args.sex, args.site)):
        skin_lesion_metadata(args.age, args.sex, args.site)  # likewise for bad patient data
    bundle = cli.load_bundle(args)
    extra = cli.extra_inputs(bundle, args)
    target = cli.target_class(bundle, args.target)
    layer = resolve_layer(bundle.model, args.layer)  # a wrong name fails before any computing
    x = prepare(bundle, image)
    pred = predict(bundle.model, x, extra_inputs=extra)
    if not args.json:
        _print_prediction(bundle, pred)

    methods = resolve_methods(args.method)
    computed = resolve_methods((*methods, TEXT_NEEDS))  # the textual explanation's weights
    started = time.perf_counter()
    ex = explain_details(
        bundle.model,
        x,
        layer=layer,
        target=target,
        extra_inputs=extra,
        methods=computed,
        n_samples=args.samples,
        sigma=args.sigma,
        seed=args.seed,
        filters=filters,
        neurons=neurons,
        region=args.region,
        max_channels=args.max_channels,
    )
    total_seconds = time.perf_counter() - started
    t = int(ex.targets[0])
    probs = np.asarray(pred.probabilities[0])
    score = f"{probs[t] * 100:.1f}%" if pred.softmax_head else f"score {probs[t]:.4g}"
    size = (image.height, image.width)
    boxes = {
        m: cam_box(ex.maps[m][0], size, args.box_threshold) for m in methods if REGISTRY[m].cam
    }
    text = describe(ex, class_name=bundle.class_label(t))
    labels = {m: method_label(m, args.samples, args.sigma) for m in methods}

    if args.json:
        report = _json_report(args, bundle, pred, ex, methods, boxes, text)
        report.update(_trust_report(bundle, image, x, extra, ex, methods, pred))
        print(json.dumps(report, allow_nan=False))
    else:
        print(
            f"explained: class [{t}] {bundle.class_label(t)} ({score}) at layer {ex.layer.path} "
            f"({cli.shape_text(ex.layer.output_shape)}) in {total_seconds:.2f} s"
        )
        for m in methods:
            shape = "x".join(str(s) for s in ex.maps[m].shape[1:])
            box = f", box [x0, y0, x1, y1] = {list(boxes[m])} px" if boxes.get(m) else ""
            print(
                f"  {labels[m]}: map {shape}, max {float(ex.maps[m][0].max()):.4g}{box}, "
                f"{ex.seconds[m]:.2f} s"
            )
        print(f"text: {text.sentence}")

    if out is not None:
        try:
            if out.suffix.lower() == ".npz":
                _write_npz(out, bundle, ex, methods, image, t, args)
            else:
                _write_png(
                    out,
                    image,
                    ex,
                    methods,
                    labels,
                    boxes,
                    args,
                    f"input; explained: {bundle.class_names[t]} ({score})",
                )
        except OSError as exc:
            raise ExplainerError(f"cannot write {out}: {exc.strerror or exc}") from None
        if not args.json:
            print(f"wrote {out}")
    return 0


def _finite(value: float) -> float:
    import math

    return float(value) if math.isfinite(value) else 0.0


def _json_report(args, bundle, pred, ex, methods, boxes, text) -> dict:
    """The ``--json`` object: exactly the fields the README lists."""
    t = int(ex.targets[0])
    probs = [float(p) for p in pred.probabilities[0]]
    return {
        "model": bundle.key,
        "image": str(args.image),
        "layer": ex.layer.path,
        "target": {"index": t, "name": bundle.class_names[t], "probability": _finite(probs[t])},
        "probabilities": {
            name: _finite(p) for name, p in zip(bundle.class_names, probs, strict=False)
        },
        "methods": {
            m: {
                "shape": list(ex.maps[m].shape[1:]),
                "max": _finite(float(ex.maps[m][0].max())),
                **({"box": list(boxes[m]) if boxes[m] else None} if m in boxes else {}),
                "seconds": round(float(ex.seconds[m]), 4),
            }
            for m in methods
        },
        "filters": {
            "top": [{"index": f.index, "weight": _finite(f.weight)} for f in text.top],
            "bottom": [{"index": f.index, "weight": _finite(f.weight)} for f in text.bottom],
        },
        "text": text.sentence,
    }


def _trust_report(bundle, image, x, extra, ex, methods, pred) -> dict:
    """``"trust"`` (per CAM method) and ``"audit"`` (of the first CAM method's map), see
    ``explainers.trust.card`` and ``explainers.trust.artefact_audit``."""
    cams = [m for m in methods if REGISTRY[m].cam]
    if not cams:
        return {}
    t = int(ex.targets[0])
    maps = {m: ex.maps[m][0] for m in cams}
    figures = trust_figures(
        bundle.model,
        x,
        maps,
        t,
        pred.probabilities[0],
        extra_inputs=extra,
        layer=ex.layer.path,
        n_samples=ex.n_samples,
        sigma=ex.sigma,
    )
    return {
        "trust": trust_json(figures),
        "audit": audit_json(audit(bundle, image, maps[cams[0]], t, extra_inputs=extra)),
    }


def _write_npz(out: Path, bundle, ex, methods, image, target: int, args) -> None:
    arrays = {m: ex.maps[m][0].astype(np.float32) for m in methods}
    np.savez_compressed(
        out,
        **arrays,
        image=np.clip(np.rint(resized_input(bundle, image)), 0, 255).astype(
            np.uint8
        ),  # as the model saw it
        target=np.int64(target),
        class_name=np.str_(bundle.class_names[target]),
        layer=np.str_(ex.layer.path),
        model=np.str_(bundle.key),
        methods=np.array(methods),
        logits=np.asarray(ex.logits[0], dtype=np.float32),
        n_samples=np.int64(args.samples),
        sigma=np.float64(args.sigma),
    )


def _write_png(out: Path, image, ex, methods, labels, boxes, args, input_caption: str) -> None:
    shown_image = _display_image(image)
    shown = to_array(shown_image)
    scale = shown.shape[1] / image.width
    panels = []
    for m in methods:
        if m in boxes:
            panel = overlay(shown, ex.maps[m][0], cmap=args.cmap, opacity=args.opacity)
            box = boxes[m]
            if box is not None:
                box = [round(v * scale) for v in box]
            panels.append(draw_box(panel, box))
        else:  # a pixel map (guided): shown as an image, grey = 0
            picture = Image.fromarray(to_image(ex.maps[m][0]))
            panels.append(to_array(resize(picture, shown.shape[:2])))
    if len(methods) == 1:
        picture = panels[0]
    else:
        captions = [input_caption] + [labels[m].replace("σ", "sigma") for m in methods]
        picture = side_by_side([shown, *panels], captions)
    Image.fromarray(picture).save(out, format="PNG")
