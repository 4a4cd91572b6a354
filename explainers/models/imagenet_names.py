"""The 1000 ImageNet class names, from the copy shipped in the package (Keras would download it,
which fails offline)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

IMAGENET_INDEX = Path(__file__).resolve().parents[1] / "data" / "imagenet_class_index.json"


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names in output order, from the copy shipped in the package
    (Keras would download it, which fails offline)."""
    with open(IMAGENET_INDEX, encoding="utf-8") as f:
        index = json.load(f)
    return tuple(index[str(i)][1] for i in range(len(index)))
