"""The sanity checks' disk cache, believed only when a file proves itself: a verdict read back
is shown to people as "Passed the checks", so a damaged, hand-edited or forged file must
never become one. Each entry carries an HMAC-SHA256 of its canonical JSON and its cache key,
keyed by a random per-installation secret (``.secret``, 0600, in the cache folder; see
``signing``), and every field is checked for its type and shape. A file that fails either is ignored (the checks are
computed again and the entry rewritten); nothing here raises.

Folder: ``EXPLAINERS_SANITY_CACHE`` or ~/.cache/explainers/sanity; at most ``CACHE_ENTRIES``
files (the oldest go)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from explainers.trust.signing import read_signed, write_signed

CACHE_ENTRIES = 64


def cache_dir() -> Path:
    return Path(
        os.environ.get("EXPLAINERS_SANITY_CACHE", Path.home() / ".cache" / "explainers" / "sanity")
    )


def write_entry(key: str, data: dict) -> None:
    """Store `data` (a sanity result, JSON types) signed under `key`; the oldest files beyond
    ``CACHE_ENTRIES`` go. A folder that cannot be written only costs a recomputation."""
    folder = cache_dir()
    if not write_signed(folder / f"{key}.json", key, data):
        return
    try:
        files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


def read_entry(key: str) -> tuple[dict, np.ndarray] | None:
    """`(data, maps)` of a valid, signed entry for `key`, else None (missing, unreadable,
    truncated, not signed by this installation, or any field of the wrong type or shape)."""
    data = read_signed(cache_dir() / f"{key}.json", key)
    if data is None:
        return None
    maps = _valid_maps(data)
    return None if maps is None else (data, maps)


def _number(value: Any, low: float = -1.0, high: float = 1.0) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _valid_maps(data: dict) -> np.ndarray | None:
    """The maps when every field has its type and shape: strings, a non-empty cascade of
    correlations in -1..1, a verdict word, and maps of shape (1 + steps, images, h, w)."""
    if not all(isinstance(data.get(k), str) for k in ("model", "layer", "key", "verdict")):
        return None
    images, cascade = data.get("images"), data.get("cascade")
    if not (isinstance(images, list) and images and all(isinstance(i, str) for i in images)):
        return None
    if not (isinstance(cascade, list) and cascade):
        return None
    for step in cascade:
        if not (
            isinstance(step, dict)
            and isinstance(step.get("step"), str)
            and _number(step.get("spearman"))
            and _number(step.get("ssim"))
        ):
            return None
    if not _number(data.get("random_logit_spearman")) or data["verdict"] not in ("pass", "fail"):
        return None
    raw = data.get("maps")
    if not isinstance(raw, list):
        return None
    try:
        maps = np.asarray(raw, dtype=np.float32)
    except (ValueError, TypeError):  # ragged or not numbers
        return None
    if (
        maps.ndim != 4
        or maps.shape[0] != 1 + len(cascade)
        or maps.shape[1] != len(images)
        or min(maps.shape[2:]) < 1
        or not np.isfinite(maps).all()
    ):
        return None
    return maps
