"""Reading a batch's results folder for an audit: the rows as a table, the scores per
diagnosis with 95 % bootstrap intervals, and the orderings that put the worst cases first.

No Streamlit here (the Audit page draws what these return). The interval is a percentile
bootstrap over images: 2000 resamples of the group's images with a fixed seed, so the same
folder always shows the same interval.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainers.errors import ExplainerError

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass
class Results:
    """One results folder: the rows of results.csv (a pandas DataFrame), the run's settings
    (batch.json) and the map variants it scored, in column order."""

    folder: Path
    frame: Any
    settings: dict[str, Any]
    variants: list[str]

    @property
    def ok(self) -> Any:
        """The rows without an error."""
        return self.frame[self.frame["error"].fillna("").astype(str).str.strip() == ""]


def load_results(folder: str | Path) -> Results:
    """The results of `python -m explainers batch` in `folder`; `ExplainerError` in plain
    words when it is not such a folder."""
    import pandas as pd

    path = Path(str(folder).strip()).expanduser()
    if not str(folder).strip():
        raise ExplainerError("give the path of a results folder on the server")
    if not path.is_dir():
        raise ExplainerError(f"no folder at {path}")
    csv_path = path / "results.csv"
    if not csv_path.is_file():
        raise ExplainerError(f"{path} has no results.csv: is it the --out folder of a batch run?")
    try:
        frame = pd.read_csv(
            csv_path,
            dtype={
                "image": str,
                "error": str,
                "dx": str,
                "prediction_name": str,
                "target_name": str,
            },
        )
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ExplainerError(
            f"cannot read {csv_path}: {' '.join(str(exc).split())[:200]}"
        ) from None
    if "image" not in frame.columns or "error" not in frame.columns:
        raise ExplainerError(f"{csv_path} is not a batch's results.csv (no image / error columns)")
    try:
        settings = json.loads((path / "batch.json").read_text(encoding="utf-8"))
        if not isinstance(settings, dict):
            settings = {}
    except (OSError, ValueError):
        settings = {}
    variants = list(dict.fromkeys(c.split(":", 1)[0] for c in frame.columns if ":" in c))
    return Results(folder=path, frame=frame, settings=settings, variants=variants)


def numeric_columns(frame: Any) -> list[str]:
    """Columns a gallery can be sorted by: numbers in at least one row."""
    import pandas as pd

    out = []
    for c in frame.columns:
        if c in ("image", "error"):
            continue
        values = pd.to_numeric(frame[c], errors="coerce")
        if values.notna().any():
            out.append(c)
    return out


def bootstrap_interval(
    values: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile-bootstrap interval. NaN bounds for fewer
    than two values (one image says nothing about its spread)."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return mean, float(low), float(high)


def group_column(frame: Any) -> tuple[str, str]:
    """(column, label) to group by: the recorded diagnosis when the run had metadata, else
    the predicted class."""
    if "dx" in frame.columns and frame["dx"].fillna("").astype(str).str.strip().ne("").any():
        return "dx", "Diagnosis (recorded)"
    return "prediction_name", "Predicted class"


def per_group(results: Results, columns: Sequence[str]) -> Any:
    """One row per diagnosis (and one for all images): the number of images and, per column,
    the mean with its bootstrap interval. Rows with an error are left out."""
    import pandas as pd

    ok = results.ok
    key, _label = group_column(ok)
    groups = [("all images", ok)] + [(str(g), part) for g, part in ok.groupby(ok[key].fillna("?"))]
    rows = []
    for name, part in groups:
        row: dict[str, Any] = {"group": name, "images": len(part)}
        for c in columns:
            mean, low, high = bootstrap_interval(pd.to_numeric(part[c], errors="coerce").tolist())
            row[c] = mean
            row[f"{c} low"] = low
            row[f"{c} high"] = high
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Ordering:
    """A way to put the cases to look at first: a column, its direction, and an optional
    filter (only misclassified rows)."""

    label: str
    column: str
    ascending: bool
    misclassified_only: bool = False


def orderings(columns: Sequence[str], variant: str) -> list[Ordering]:
    """The worst-first orderings this folder has columns for, for one map variant."""
    mine = [c for c in columns if c.startswith(variant + ":")]

    def first(*parts: str) -> str | None:
        return next((c for c in mine if all(p in c for p in parts)), None)

    out = []
    lesion = first("energy_in_mask") or first("lesion", "energy")
    if lesion:
        out.append(Ordering("Lowest energy in the lesion", lesion, True))
    corner = first("corner")
    if corner:
        out.append(Ordering("Most energy on the corners", corner, False))
    hidden = first("occlusion") or first("hidden")
    if hidden:
        out.append(Ordering("Largest change when a region is hidden", hidden, False))
    drop = first("average_drop_pct")
    if drop:
        out.append(
            Ordering(
                "Largest Average Drop (probability lost when only the map's region is kept)",
                drop,
                False,
            )
        )
    deletion = first("deletion_auc")
    if deletion:
        out.append(
            Ordering(
                "Highest deletion AUC (the model barely notices the map's region removed)",
                deletion,
                False,
            )
        )
    if "correct" in columns:
        out.append(Ordering("Misclassified, most confident first", "probability", False, True))
    return out


def sorted_rows(
    results: Results, column: str, ascending: bool, misclassified_only: bool = False
) -> Any:
    """The rows without an error ordered by `column` (missing values last)."""
    import pandas as pd

    ok = results.ok.copy()
    if misclassified_only:
        ok = ok[pd.to_numeric(ok.get("correct"), errors="coerce") == 0]
    ok["_key"] = pd.to_numeric(ok[column], errors="coerce")
    return ok.sort_values("_key", ascending=ascending, na_position="last", kind="stable").drop(
        columns="_key"
    )
