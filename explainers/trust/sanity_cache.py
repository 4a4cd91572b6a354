"""The sanity checks' disk cache, believed only when a file proves itself: a verdict read back
is shown to people as "Passed the checks", so a damaged, hand-edited or forged file must
never become one. Each entry carries an HMAC-SHA256 of its canonical JSON and its cache key,
keyed by a random per-installation secret (``.secret``, 0600, in the cache folder), and every
field is checked for its type and shape. A file that fails either is ignored (the checks are
computed again and the entry rewritten); nothing here raises.

Folder: ``EXPLAINERS_SANITY_CACHE`` or ~/.cache/explainers/sanity; at most ``CACHE_ENTRIES``
files (the oldest go)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

import numpy as np

CACHE_ENTRIES = 64
SECRET_NAME = ".secret"
SECRET_BYTES = 32


def cache_dir() -> Path:
    return Path(
        os.environ.get("EXPLAINERS_SANITY_CACHE", Path.home() / ".cache" / "explainers" / "sanity")
    )


def _secret(folder: Path, create: bool) -> bytes | None:
    """This installation's key; made on the first write (atomically: two processes agree)."""
    path = folder / SECRET_NAME
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
        tmp = folder / f".secret.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(SECRET_BYTES))
            try:
                os.link(tmp, path)  # fails if another process made it first: theirs is kept
            except FileExistsError:
                pass
            key = path.read_bytes()
        except OSError:
            return None
        finally:
            tmp.unlink(missing_ok=True)
    except OSError:
        return None
    return key if len(key) == SECRET_BYTES else None


def _signature(secret: bytes, key: str, data: dict) -> str:
    body = json.dumps(
        {"key": key, "data": data}, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hmac.new(secret, body.encode("utf-8"), hashlib.sha256).hexdigest()


def write_entry(key: str, data: dict) -> None:
    """Store `data` (a sanity result, JSON types) signed under `key`; the oldest files beyond
    ``CACHE_ENTRIES`` go. A folder that cannot be written only costs a recomputation."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        secret = _secret(folder, create=True)
        if secret is None:
            return
        signed = {**data, "hmac": _signature(secret, key, data)}
        tmp = folder / f".{key}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_text(json.dumps(signed, allow_nan=False))
            os.replace(tmp, folder / f"{key}.json")
        finally:
            tmp.unlink(missing_ok=True)
        files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-CACHE_ENTRIES]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass


def read_entry(key: str) -> tuple[dict, np.ndarray] | None:
    """`(data, maps)` of a valid, signed entry for `key`, else None (missing, unreadable,
    truncated, not signed by this installation, or any field of the wrong type or shape)."""
    folder = cache_dir()
    try:
        data = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("hmac"), str):
        return None
    secret = _secret(folder, create=False)
    claimed = data.pop("hmac")
    try:
        if secret is None or not hmac.compare_digest(claimed, _signature(secret, key, data)):
            return None
    except ValueError:  # NaN or infinity: never written by write_entry
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
