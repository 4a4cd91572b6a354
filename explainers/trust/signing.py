"""Files that prove themselves: JSON signed with a random per-installation secret.

What the disk caches hold is shown to people as fact (a sanity verdict, a saved first view),
so a damaged, hand-edited or forged file must never be believed. Each folder has its own
secret (``.secret``, 0600, made atomically on the first write); a file is believed only when
its HMAC-SHA256 over the canonical JSON of its key and data matches. Nothing here raises."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

SECRET_NAME = ".secret"
SECRET_BYTES = 32


def folder_secret(folder: Path, create: bool) -> bytes | None:
    """This installation's key for ``folder``; made on the first write (two processes agree)."""
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


def signature(secret: bytes, key: str, data: dict[str, Any]) -> str:
    body = json.dumps(
        {"key": key, "data": data}, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hmac.new(secret, body.encode("utf-8"), hashlib.sha256).hexdigest()


def write_signed(path: Path, key: str, data: dict[str, Any]) -> bool:
    """Store ``data`` (JSON types) signed under ``key`` at ``path``, atomically; False when the
    folder cannot be written (that only costs a recomputation)."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        secret = folder_secret(folder, create=True)
        if secret is None:
            return False
        signed = {**data, "hmac": signature(secret, key, data)}
        tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_text(json.dumps(signed, allow_nan=False))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except (OSError, ValueError):
        return False
    return True


def read_signed(path: Path, key: str) -> dict[str, Any] | None:
    """The data at ``path`` when this installation signed it under ``key``, else None
    (missing, unreadable, truncated, another key, or not signed here)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("hmac"), str):
        return None
    secret = folder_secret(path.parent, create=False)
    claimed = data.pop("hmac")
    try:
        if secret is None or not hmac.compare_digest(claimed, signature(secret, key, data)):
            return None
    except ValueError:  # NaN or infinity: never written by write_signed
        return None
    return data
