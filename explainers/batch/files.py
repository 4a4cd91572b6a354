"""The batch job's files: listing images, metadata and masks, reading results.csv back (to
resume), the per-image noise seed and output names, the text progress bar, and the summary
(summary.csv and the Markdown table). No model here: ``batch`` runs the job."""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from explainers.batch.safe_io import temp_path
from explainers.errors import ExplainerError
from explainers.evaluation.scoring import INFO_LABELS, SCORE_LABELS, aggregate, score_table

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MASK_SUFFIXES = ("", "_segmentation", "_mask", "_Segmentation")


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """A plain-text progress bar on stderr: redrawn in place on a terminal, one line per
    update otherwise (so logs stay readable). No dependency."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30):
        self.total = max(0, int(total))
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.start = time.monotonic()
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def update(self, done: int, note: str = "") -> None:
        total = max(self.total, 1)
        filled = int(self.width * min(done, total) / total)
        elapsed = time.monotonic() - self.start
        eta = ""
        if 0 < done < self.total:
            left = elapsed / done * (self.total - done)
            eta = f" ETA {_duration(left)}"
        text = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} images"
            f" {_duration(elapsed)}{eta}{'  ' + note if note else ''}"
        )
        try:
            if self.tty:
                self.stream.write("\r" + text[:120].ljust(120))
                if done >= self.total:
                    self.stream.write("\n")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# --- inputs -----------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Image files (by extension) directly in `folder`, sorted by name; hidden files skipped."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """HAM10000-style metadata: `{image_id: {dx, age, sex, localization}}`."""
    if not path.is_file():
        raise ExplainerError(f"metadata file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            if "image_id" not in fields:
                raise ExplainerError(
                    f"{path.name} has no image_id column (expected HAM10000 columns: image_id, dx, "
                    "age, sex, localization)"
                )
            out = {}
            for row in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                if row.get("image_id"):
                    out[row["image_id"]] = row
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExplainerError(f"cannot read the metadata file {path.name}: {exc}") from None


def find_mask(folder: Path | None, image: Path) -> Path | None:
    if folder is None:
        return None
    for suffix in MASK_SUFFIXES:
        for ext in (".png", ".PNG", ".bmp", ".gif", ".tif"):
            candidate = folder / f"{image.stem}{suffix}{ext}"
            if candidate.is_file():
                return candidate
    return None


def read_results(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        return [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExplainerError(f"cannot read the existing {path}: {exc}") from None


def output_stems(files: Sequence[Path]) -> dict[Path, str]:
    """Output file stem per image: the image's stem, or its full name where stems collide."""
    counts: dict[str, int] = {}
    for p in files:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    return {p: (p.stem if counts[p.stem] == 1 else p.name) for p in files}


def image_seed(seed: int, name: str) -> int:
    """The noise seed of one image: fixed by the run's seed and the file name, so a resumed or
    re-batched run gives the same smoothed maps."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**31 - 1)


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


# --- summary ----------------------------------------------------------------------------------


def summarize(
    results_csv: str | os.PathLike, vs: Sequence[Any] | None = None
) -> dict[str, dict[str, float]]:
    """The scores of `results.csv` averaged over its images (`metrics.aggregate`);
    rows with an error are left out."""
    header, rows = read_results(Path(results_csv))
    keys = [c.split(":", 1) for c in header if ":" in c]
    order = [v.key for v in vs] if vs is not None else list(dict.fromkeys(k for k, _ in keys))
    per_image = []
    for r in rows:
        if (r.get("error") or "").strip():
            continue
        item: dict[str, dict[str, float]] = {}
        for key, name in keys:
            if name not in SCORE_LABELS and name not in INFO_LABELS:
                continue
            text = (r.get(f"{key}:{name}") or "").strip()
            if text:
                item.setdefault(key, {})[name] = float(text)
        per_image.append(item)
    agg = aggregate(per_image)
    return {k: agg[k] for k in order if k in agg}


def write_summary(path: Path, summary: dict[str, dict[str, float]], labels: dict[str, str]) -> None:
    rows = score_table(summary, labels)
    if not rows:
        return

    tmp = temp_path(path)  # readers (the Audit page) never see half a table
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def markdown_table(summary: dict[str, dict[str, float]], labels: dict[str, str]) -> str:
    """The summary as a Markdown table, units in the column names."""
    rows = score_table(summary, labels)
    if not rows:
        return "(no images scored)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(c, r[c]) for c in cols) + " |")
    return "\n".join(lines)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, float):
        return str(value)
    if "(%" in column:
        return f"{value:.1f}"
    if "ratio" in column:
        return f"{value:.2f}"
    return f"{value:.3f}"
