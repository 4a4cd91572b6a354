"""Where a user's batch runs live on the server: ``<data root>/users/<user>/runs/<run>``.

Why: a visitor never types a server path. The Audit page lists the runs in the user's own
folder and opens one by its name, which must be one of those listed; a user id (from sign-in)
becomes a safe folder name, so no id or name can climb out of the data root (``..``, ``/etc``,
``~root``) or follow a link elsewhere.

The data root is ``dashboard.frame.auth.data_root()`` (``$EXPLAINERS_DATA_ROOT``, by default
``~/.local/share/explainers``), where the access log lives too. A CLI batch run shows up on the
Audit page when its ``--out`` is a folder under ``<data root>/users/local/runs/``.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from dashboard.frame.auth import DATA_ROOT_ENV, data_root
from explainers.errors import ExplainerError

ENV = DATA_ROOT_ENV
RESULTS = "results.csv"
MAX_RUNS = 200  # listed at most, newest first
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, fallback: str = "user") -> str:
    """``text`` as one folder name of letters, digits, ``_`` and ``-`` (at most 64); when
    anything had to change, a short hash of the original keeps two ids apart."""
    text = str(text)
    cleaned = _SAFE.sub("_", text).strip("_-")[:48]
    if cleaned == text and cleaned:
        return cleaned
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{cleaned or fallback}-{digest}"


def runs_folder(user_id: str) -> Path:
    """The folder of ``user_id``'s runs (not created)."""
    return data_root() / "users" / safe_name(user_id) / "runs"


def _inside(path: Path, folder: Path) -> bool:
    try:
        return not path.is_symlink() and path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def user_runs(user_id: str) -> list[Path]:
    """The user's run folders that hold a ``results.csv``, newest first."""
    folder = runs_folder(user_id)
    try:
        entries = [p for p in folder.iterdir() if p.is_dir() and _inside(p, folder)]
    except OSError:
        return []
    found = []
    for p in entries:
        csv = p / RESULTS
        try:
            if csv.is_file() and _inside(csv, folder):
                found.append((csv.stat().st_mtime, p.name, p))
        except OSError:
            continue
    found.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [p for _, _, p in found[:MAX_RUNS]]


def find_run(user_id: str, name: str) -> Path:
    """The folder of the user's run called ``name``: only a name that ``user_runs`` lists."""
    for p in user_runs(user_id):
        if p.name == name:
            return p
    raise ExplainerError("that run is not among your runs; pick one from the list")


def new_run_folder(user_id: str, label: str = "run") -> Path:
    """A new, empty folder for one of the user's runs: ``<UTC date-time>-<label>``."""
    folder = runs_folder(user_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{safe_name(label, 'run')}"
    for n in range(1000):
        path = folder / (stem if n == 0 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ExplainerError("too many runs started at once; try again in a second")
