"""The Ray engine's memory of crashed work: a small JSON file per image being explained, in a
hidden folder of the output folder, written before the work and removed once the batch's rows
are handed back. When an actor dies, Ray runs the batch again in a restarted actor, which
finds the files its predecessor left and explains the batch's images one at a time; an image
that killed its actor ``CRASH_TRIES`` times alone becomes an error row. Each crash is
recorded, so the retries of a batch end. Rows finished before a crash are kept in the file and
not computed again."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from explainers.batch.safe_io import write_atomic
from explainers.batch.worker import CRASH_TRIES, crash_row

FOLDER = ".crashes"


def clear_ledger(out_dir: Path) -> None:
    """Forget an earlier run's records (an interrupted run): each run has its own tries."""
    shutil.rmtree(Path(out_dir) / FOLDER, ignore_errors=True)


class CrashLedger:
    """Per image `{"batch": 1}` (tried in a batch), `{"alone": n}` (tried n times alone) or
    `{"row": {...}}` (done, waiting for its batch to be handed back)."""

    def __init__(self, out_dir: Path):
        self.folder = Path(out_dir) / FOLDER

    def read(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, name: str, state: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self.folder / f"{name}.json", json.dumps(state, default=_plain))

    def clear(self, names: Iterable[str]) -> None:
        for name in names:
            (self.folder / f"{name}.json").unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    try:
        return value.item()  # NumPy scalars
    except AttributeError:
        return str(value)


def guarded_rows(
    ledger: CrashLedger,
    paths: Sequence[Path],
    layer: str,
    explain: Callable[[Sequence[Path]], Iterator[dict[str, Any]]],
    tries: int = CRASH_TRIES,
) -> dict[str, dict[str, Any]]:
    """The rows of one batch by image name, `explain(paths)` giving them. A first try runs the
    batch whole; a batch whose earlier try killed its process runs image by image."""
    names = [p.name for p in paths]
    states = {n: ledger.read(n) for n in names}
    rows: dict[str, dict[str, Any]] = {}
    if not any(states.values()):
        for n in names:
            ledger.write(n, {"batch": 1})
        for row in explain(paths):
            rows[row["image"]] = row
    else:
        for p in paths:
            state = states[p.name]
            if "row" in state:
                rows[p.name] = state["row"]
                continue
            # A batch of one that crashed: that crash was this image's.
            alone = int(state.get("alone", 0)) + int(bool(state.get("batch")) and len(paths) == 1)
            if alone >= tries:
                rows[p.name] = crash_row(p.name, layer, None, tries)
            else:
                ledger.write(p.name, {"alone": alone + 1})
                for row in explain([p]):
                    rows[row["image"]] = row
            ledger.write(p.name, {"row": rows[p.name]})
    ledger.clear(names)
    return rows
