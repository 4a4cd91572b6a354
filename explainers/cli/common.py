"""The options and steps every subcommand shares: the model (catalogue name or file, weights,
class names, preprocessing), the skin-lesion patient data, the class to explain, filter and
neuron lists. Kept apart from ``cli`` so the subcommands (``explain_command``, ``report``,
``sanity_command``) need not import the entry point that imports them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from explainers.errors import ExplainerError
from explainers.index_lists import parse_indices
from explainers.zoo import load_model, parse_class_names, skin_lesion_metadata


def parse_index_list(text: str) -> list[int]:
    """``"3,10,32"`` and ranges ``"0-15"`` (inclusive), mixed: ``"0-3,8"`` → [0, 1, 2, 3, 8].
    The shared parser (``explainers.index_lists``); the layer's own size is checked once the
    model is loaded."""
    return parse_indices(text)


MAX_POSITIONS = 4096


def parse_positions(text: str) -> list[tuple[int, int]]:
    """Neuron positions on the layer's grid: ``"3,4;5,6"`` or ``"3:4,5:6"`` (row, column), at
    most ``MAX_POSITIONS`` (counted before any is read)."""
    text = str(text).strip()
    if max(text.count(";") + 1, text.count(":")) > MAX_POSITIONS:
        raise ExplainerError(
            f"more than {MAX_POSITIONS} neuron positions; choose fewer or a --region"
        )
    if ";" in text or ":" not in text:
        pieces = [p for p in text.split(";") if p.strip()]
        pairs = [p.split(",") for p in pieces]
    else:
        pairs = [p.split(":") for p in text.split(",") if p.strip()]
    out = []
    for pair in pairs:
        try:
            row, col = (int(v) for v in pair)
        except ValueError:
            raise ExplainerError(
                f"cannot read neuron positions '{text}': give row,col pairs like 3,4;5,6"
            ) from None
        out.append((row, col))
    if not out:
        raise ExplainerError("no neuron positions given")
    return out


# --- shared steps ---------------------------------------------------------------------------


def weights_arg(text: str | None):
    if text is None:
        return "imagenet"
    return None if text.strip().lower() in ("none", "random") else text


def load_bundle(args: argparse.Namespace):
    class_names = None
    if getattr(args, "class_names", None):
        path = Path(args.class_names)
        if not path.is_file():
            raise ExplainerError(f"class-names file not found: {path}")
        class_names = path.read_bytes().decode("utf-8-sig", errors="replace")
        parse_class_names(class_names)  # fail early on an empty file
    return load_model(
        args.model,
        weights=weights_arg(args.weights),
        class_names=class_names,
        preprocess=getattr(args, "preprocess", None),
    )


def extra_inputs(bundle, args: argparse.Namespace):
    given = [v is not None for v in (args.age, args.sex, args.site)]
    if bundle.metadata_input:
        return [skin_lesion_metadata(args.age, args.sex, args.site)]
    if any(given):
        raise ExplainerError("--age, --sex and --site are only for the skin-lesion model")
    return None


def target_class(bundle, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        lowered = text.strip().lower()
        matches = [i for i, n in enumerate(bundle.class_names) if n.lower() == lowered]
        if not matches:
            raise ExplainerError(
                f"unknown target class '{text}'; give a class index or an exact class name"
            ) from None
        return matches[0]
    if not 0 <= value < bundle.n_classes:
        raise ExplainerError(
            f"target {value} is outside the model's classes (0 to {bundle.n_classes - 1})"
        )
    return value


def shape_text(shape: Sequence) -> str:
    return "x".join("?" if s is None else str(s) for s in tuple(shape)[1:])


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        required=True,
        metavar="NAME|FILE",
        help="skin-lesion, MobileNetV2, ResNet50, VGG16, Xception, InceptionV3, "
        "DenseNet121, EfficientNetB0, or your .keras/.h5 file",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|none|FILE",
        help="Keras Applications only: imagenet (default; downloaded once), none "
        "(random weights) or a weights file",
    )
    p.add_argument(
        "--class-names",
        metavar="FILE",
        help="your model only: a text file with one class name per line",
    )
    p.add_argument(
        "--preprocess",
        default=None,
        choices=("none", "0..1", "-1..1", "imagenet caffe", "imagenet torch"),
        help="your model only: how to scale RGB 0..255 (default none: the model "
        "file scales its input itself)",
    )
