"""The access log of a shared server: one JSON object per line, for its administrator.

Why a schema and not free text: the log must never hold pixels, file names or patient data, so
each field is checked against what it may contain (a hashed user id, an action from a fixed
list, a page title, a hex content hash) and anything else is refused with ``ValueError``. Why
rotation: a busy server must not fill its disk, so the file is renamed at ``max_bytes``
(``access.jsonl`` → ``access.jsonl.1`` → ... ``.N``, the oldest dropped): at most
``(backups + 1) × max_bytes`` on disk. No Streamlit here: ``dashboard.frame.auth`` decides when to
write, this module only how.
"""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path

FILE_NAME = "access.jsonl"
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 5
ACTIONS = frozenset({"session", "sign-out", "view", "upload-image", "camera-image", "upload-model"})
_USER = re.compile(r"^(local|anonymous|[0-9a-f]{8,64})$")
_HASH = re.compile(r"^[0-9a-f]{8,64}$")
_PAGE = re.compile(r"^[\w ,.()+-]{0,80}$")
_WHO_MAX = 200


class AccessLog:
    """Appends checked records to ``path`` and rotates it by size; safe to share between the
    threads of one server process (one lock per instance; get it from ``for_root``)."""

    def __init__(
        self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS
    ) -> None:
        if max_bytes < 1024:
            raise ValueError("the access log's size limit must be at least 1024 bytes")
        if backups < 0:
            raise ValueError("the number of old access-log files to keep cannot be negative")
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self._lock = threading.Lock()

    def record(
        self,
        user: str,
        action: str,
        page: str = "",
        image: str | None = None,
        who: str | None = None,
    ) -> dict:
        """Append one record and return it. ``image`` is a content hash (hex), never bytes;
        ``who`` (the provider's name or e-mail for the user) only on ``session`` (a signed-in
        browser session began), so that an administrator can tell who a hashed user id is."""
        if not isinstance(user, str) or not _USER.match(user):
            raise ValueError("the access log takes a hashed user id, 'local' or 'anonymous'")
        if action not in ACTIONS:
            raise ValueError(f"unknown access-log action {action!r}")
        if not isinstance(page, str) or not _PAGE.match(page):
            raise ValueError("the access log takes a page title of at most 80 plain characters")
        if image is not None and (not isinstance(image, str) or not _HASH.match(image)):
            raise ValueError("the access log takes an image's content hash (hex), never its data")
        entry: dict = {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "user": user,
            "action": action,
            "page": page,
        }
        if image is not None:
            entry["image"] = image
        if who is not None:
            if action != "session":
                raise ValueError("the access log names a user only when their session begins")
            entry["who"] = " ".join(str(who).split())[:_WHO_MAX]
        self._append(json.dumps(entry, ensure_ascii=True) + "\n")
        return entry

    def files(self) -> list[Path]:
        """The current file and the kept old ones that exist, newest first."""
        names = [self.path] + [self._old(i) for i in range(1, self.backups + 1)]
        return [p for p in names if p.is_file()]

    def _old(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _append(self, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                self._rotate()
            # Owner-only: the log names who used the server and when.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for i in range(self.backups - 1, 0, -1):
            if self._old(i).exists():
                os.replace(self._old(i), self._old(i + 1))
        os.replace(self.path, self._old(1))


_logs: dict[Path, AccessLog] = {}
_logs_lock = threading.Lock()


def for_root(root: Path) -> AccessLog:
    """The one ``AccessLog`` of a data root in this process (``<root>/access-log/access.jsonl``);
    size and count from ``EXPLAINERS_ACCESS_LOG_MAX_BYTES`` and ``EXPLAINERS_ACCESS_LOG_FILES``
    (old files kept) when set."""
    path = Path(root).expanduser().resolve() / "access-log" / FILE_NAME
    with _logs_lock:
        if path not in _logs:
            max_bytes = int(os.environ.get("EXPLAINERS_ACCESS_LOG_MAX_BYTES", DEFAULT_MAX_BYTES))
            backups = int(os.environ.get("EXPLAINERS_ACCESS_LOG_FILES", DEFAULT_BACKUPS))
            _logs[path] = AccessLog(path, max_bytes, backups)
        return _logs[path]
