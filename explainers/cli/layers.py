"""``python -m explainers layers``: the layers a map can be computed at, the default marked."""

from __future__ import annotations

import argparse

from explainers.cli.common import add_model_arguments, load_bundle, shape_text
from explainers.engine.adapter import candidate_layers, resolve_layer


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)


def run(args: argparse.Namespace) -> int:
    bundle = load_bundle(args)
    layers = candidate_layers(bundle.model)
    default = resolve_layer(bundle.model, None)
    print(f"model: {bundle.label}")
    print(f"{len(layers)} layers with a spatial output (* = default):")
    width = max(len(layer.path) for layer in layers)
    for layer in layers:
        mark = "*" if layer.path == default.path else " "
        print(f"{mark} {layer.path:<{width}}  {shape_text(layer.output_shape)}")
    return 0
