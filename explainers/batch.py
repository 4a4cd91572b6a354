"""explain a folder of images: overlays, maps and faithfulness scores in results.csv

    python -m explainers batch --model skin-lesion --images DIR --out DIR \\
        [--method KEY|all] [--samples N] [--sigma S] [--seed N] \\
        [--masks DIR] [--metadata CSV] [--batch-size N] [--layer L] [--steps N] [--baselines] \\
        [--engine local|ray [--address ADDR] [--actors N|MIN-MAX] [--cpus-per-actor C]
         [--gpus-per-actor G]]

For every image: `<name>.png` (input | one overlay per method), `<name>.npz` (the raw maps,
the image the model saw, the deletion / insertion curves) and one row of `results.csv`
(prediction, probability, and every score of `explainers.metrics` per method). With
`--samples N` (N > 0) each method is also computed smoothed with N noisy copies.
`--metadata` reads a HAM10000-style CSV (image_id, dx, age, sex, localization): the
skin-lesion model gets the patient's data, and dx is recorded. `--masks` holds binary
masks named like the images (`X.png`, `X_segmentation.png` or `X_mask.png`) for the
localisation scores. `--baselines` also scores a centred blob and a random map, the level a
method has to beat. Run it again with the same --out to resume: images already in
results.csv are skipped (failed ones are retried). An unreadable image becomes a row with
its error; the batch goes on. At the end the scores averaged over all images are printed
and written to summary.csv. `--weights none` builds the random weights from `--seed`, so a
run is reproducible. `--engine ray` spreads the images over a pool of Ray actors (the
optional `ray[data]`, see requirements-scale.txt and docs/SCALING.md); the rows are the same.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

from .argtypes import nonneg_float, nonneg_int, positive_int
from .errors import ExplainerError
from .methods import DEFAULT_METHODS, method_keys

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MASK_SUFFIXES = ("", "_segmentation", "_mask", "_Segmentation")
RESULTS = "results.csv"
SUMMARY = "summary.csv"
SETTINGS = "batch.json"
DEFAULT_BATCH_SIZE = 8
METHODS = DEFAULT_METHODS
#: What --method takes: the gradient CAM methods of the registry (one shared pass each batch).
CHOICES = method_keys(needs="tape", family="cam")

#: results.csv columns before the per-method scores.
BASE_COLUMNS = ("image", "error", "prediction", "prediction_name", "probability", "target",
                "target_name", "dx", "correct", "age", "sex", "localization", "mask", "layer")


@dataclass(frozen=True)
class Variant:
    """One map to compute: a method, plain (0 samples) or smoothed."""

    key: str  # "gradcam", "smooth-gradcam++", ...
    method: str
    n_samples: int


BASELINES = {"centre": "Centre prior (baseline)", "random": "Random map (baseline)"}


def variants(methods: Sequence[str], samples: int, baselines: bool = False) -> list[Variant]:
    """The plain methods, then (when `samples > 0`) their smoothed versions, then (with
    `baselines`) the two reference maps of `metrics.centre_prior` and `metrics.random_map`."""
    out = [Variant(m, m, 0) for m in methods]
    if samples > 0:
        out += [Variant(f"smooth-{m}", m, int(samples)) for m in methods]
    if baselines:
        out += [Variant(k, k, 0) for k in BASELINES]
    return out


def _label(v: Variant, sigma: float | None) -> str:
    from .core import method_label

    if v.method in BASELINES:
        return BASELINES[v.method]
    return method_label(v.method, v.n_samples, sigma if v.n_samples else None)


def score_columns(vs: Sequence[Variant]) -> list[str]:
    from .metrics import INFO_LABELS, SCORE_LABELS

    keys = list(SCORE_LABELS) + list(INFO_LABELS)
    return [f"{v.key}:{k}" for v in vs for k in keys]


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
        text = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} images"
                f" {_duration(elapsed)}{eta}{'  ' + note if note else ''}")
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
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# --- inputs -----------------------------------------------------------------------------------


def list_images(folder: Path) -> list[Path]:
    """Image files (by extension) directly in `folder`, sorted by name; hidden files skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


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


def _output_stems(files: Sequence[Path]) -> dict[Path, str]:
    """Output file stem per image: the image's stem, or its full name where stems collide."""
    counts: dict[str, int] = {}
    for p in files:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    return {p: (p.stem if counts[p.stem] == 1 else p.name) for p in files}


def _image_seed(seed: int, name: str) -> int:
    """The noise seed of one image: fixed by the run's seed and the file name, so a resumed or
    re-batched run gives the same smoothed maps."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**31 - 1)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


# --- the batch --------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What a run did: counts, where it wrote, and the scores averaged over results.csv."""

    out: Path
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def load_batch_model(model: str | os.PathLike, weights: Any, seed: int) -> Any:
    """`zoo.load_model`, with random weights (`weights=None`) drawn from `seed`: every run, and
    every Ray actor, then explains with the same model."""
    from .zoo import load_model

    if weights is None or str(weights).strip().lower() in ("none", "random", ""):
        import keras

        keras.utils.set_random_seed(int(seed))
    return load_model(model, weights=weights)


def _settings(bundle: Any, layer: str, vs: Sequence[Variant], sigma: float, seed: int,
              n_steps: int) -> dict[str, Any]:
    randomised = any(v.n_samples or v.method == "random" for v in vs) or bundle.weights == "random"
    return {
        "model": bundle.key,
        "layer": layer,
        "variants": [v.key for v in vs],
        "samples": max([v.n_samples for v in vs] + [0]),
        "sigma": sigma if any(v.n_samples for v in vs) else None,
        "seed": seed if randomised else None,
        "steps": n_steps,
        "deletion_baseline": "zeros",
        "insertion_baseline": "blur",
    }


def run_batch(
    model: Any,
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    methods: Sequence[str] = METHODS,
    samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    masks: str | os.PathLike | None = None,
    metadata: str | os.PathLike | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    layer: str | None = None,
    n_steps: int | None = None,
    baselines: bool = False,
    weights: Any = "imagenet",
    cmap: str = "jet",
    progress: TextIO | None | bool = None,
    on_image: Callable[[int, int], None] | None = None,
    engine: str = "local",
    ray_options: Any = None,
) -> BatchResult:
    """Explain and score every image in `images`; write overlays, maps and results to `out`.

    `model`: a catalogue name, a model file or a `ModelBundle`. `progress`: the stream
    for the text progress bar (default stderr; False for none). `on_image(done, total)` is
    called after each image. Images go through the model `batch_size` at a time, so memory
    does not grow with the folder. `engine="ray"` runs the batches on Ray actors
    (`ray_engine.RayOptions` in `ray_options`; `model` must then be a name or a file).
    Raises `ExplainerError` for the user's mistakes (missing folders, bad settings, an out
    folder written with other settings).
    """
    from .metrics import DEFAULT_STEPS

    images_dir = Path(images)
    out_dir = Path(out)
    if not images_dir.exists():
        raise ExplainerError(f"images folder not found: {images_dir}")
    if not images_dir.is_dir():
        raise ExplainerError(f"--images must be a folder, got a file: {images_dir}")
    masks_dir = Path(masks) if masks is not None else None
    if masks_dir is not None and not masks_dir.is_dir():
        raise ExplainerError(f"masks folder not found: {masks_dir}")
    meta = read_metadata(Path(metadata)) if metadata is not None else {}
    methods = tuple(dict.fromkeys([methods] if isinstance(methods, str) else methods))
    bad = [m for m in methods if m not in CHOICES]
    if bad or not methods:
        raise ExplainerError(
            f"unknown method {bad[0] if bad else '(none)'!r}; choose from {', '.join(CHOICES)} or all"
        )
    try:
        samples, batch_size, seed = int(samples), int(batch_size), int(seed)
        sigma = float(sigma)
        n_steps = DEFAULT_STEPS if n_steps is None else int(n_steps)
    except (TypeError, ValueError):
        raise ExplainerError(
            "samples, batch size, seed and steps must be whole numbers, sigma a number"
        ) from None
    if samples < 0:
        raise ExplainerError(f"the number of samples must be 0 or more, got {samples}")
    if batch_size < 1:
        raise ExplainerError(f"the batch size must be 1 or more, got {batch_size}")
    if not math.isfinite(sigma) or sigma < 0:
        raise ExplainerError(f"sigma must be 0 or more, got {sigma}")
    if not 1 <= n_steps <= 1024:
        raise ExplainerError(f"the number of steps must be between 1 and 1024, got {n_steps}")
    if engine not in ("local", "ray"):
        raise ExplainerError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .ray_engine import require_ray

        require_ray()
    files = list_images(images_dir)
    if not files:
        raise ExplainerError(
            f"no images in {images_dir} (looked for {', '.join(IMAGE_EXTENSIONS)})"
        )
    if out_dir.resolve() == images_dir.resolve():
        raise ExplainerError("--out must be another folder than --images (the overlays are PNG images)")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExplainerError(f"--out must be a folder, got a file: {out_dir}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplainerError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None

    # Heavy imports only now: the CLI's --help must stay fast.
    from . import resolve_layer
    from .zoo import ModelBundle

    if engine == "ray" and isinstance(model, ModelBundle):
        raise ExplainerError("the Ray engine loads the model in every worker: give its name or file")
    bundle = model if isinstance(model, ModelBundle) else load_batch_model(model, weights, seed)
    layer_info = resolve_layer(bundle.model, layer)
    vs = variants(methods, samples, baselines)
    labels = {v.key: _label(v, sigma) for v in vs}
    settings = _settings(bundle, layer_info.path, vs, sigma, seed, n_steps)
    columns = list(BASE_COLUMNS) + score_columns(vs)

    results_path = out_dir / RESULTS
    settings_path = out_dir / SETTINGS
    header, rows = read_results(results_path)
    if rows or settings_path.exists():
        try:
            old = json.loads(settings_path.read_text(encoding="utf-8")) if settings_path.exists() else None
        except (OSError, ValueError):
            old = None
        if old != settings or (header and header != columns):
            raise ExplainerError(
                f"{out_dir} holds results made with other settings ({_diff(old, settings)}); "
                "use another --out folder, or delete it to start again"
            )
    done = {r["image"] for r in rows if not (r.get("error") or "").strip()}
    kept = [r for r in rows if r["image"] in done]
    # Rewrite results.csv without the failed rows (they are retried), atomically.
    tmp = results_path.with_suffix(".csv.tmp")
    try:
        settings_path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, results_path)
    except OSError as exc:
        raise ExplainerError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None

    todo = [p for p in files if p.name not in done]
    result = BatchResult(out=out_dir, skipped=len(files) - len(todo), total=len(files), labels=labels)
    bar = None if progress is False else Progress(len(files), None if progress in (None, True) else progress)
    stems = _output_stems(files)
    count = result.skipped
    with open(results_path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        if engine == "ray":
            from .ray_engine import WorkerSpec, ray_rows

            spec = WorkerSpec(
                model=str(Path(model).resolve()) if bundle.key.startswith("file:") else str(model),
                weights=weights, seed=seed, layer=layer_info.path, methods=methods, samples=samples,
                sigma=sigma, n_steps=n_steps, baselines=baselines, meta=meta,
                masks_dir=None if masks_dir is None else str(masks_dir.resolve()),
                out_dir=str(out_dir.resolve()), cmap=cmap)
            del bundle  # each actor loads its own; the driver only writes results.csv
            rows_in = ray_rows([p.resolve() for p in todo], [stems[p] for p in todo], spec,
                               ray_options, batch_size)
        else:
            rows_in = (row for start in range(0, len(todo), batch_size)
                       for row in process_images(bundle, todo[start : start + batch_size], layer_info,
                                                 vs, labels, sigma, seed, n_steps, meta, masks_dir,
                                                 out_dir, stems, cmap))
        if bar is not None:
            bar.update(count, f"({result.skipped} already done)" if result.skipped else "")
        for row in rows_in:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
            f.flush()
            count += 1
            if row.get("error"):
                result.failed += 1
            else:
                result.processed += 1
            if bar is not None:
                bar.update(count, row["image"] + (" (error)" if row.get("error") else ""))
            if on_image is not None:
                on_image(count, len(files))
    result.summary = summarize(results_path, vs)
    write_summary(out_dir / SUMMARY, result.summary, labels)
    return result


def _diff(old: dict | None, new: dict) -> str:
    if not old:
        return "no batch.json beside results.csv"
    changed = [f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in new if old.get(k) != new.get(k)]
    return "; ".join(changed) or "different columns"


def _metadata_for(bundle: Any, info: dict[str, str] | None) -> Any:
    if not getattr(bundle, "metadata_input", False):
        return None
    from .zoo import skin_lesion_metadata

    info = info or {}
    return skin_lesion_metadata(info.get("age") or None, info.get("sex") or None,
                                info.get("localization") or None)


def process_images(bundle: Any, files: Sequence[Path], layer_info: Any, vs: Sequence[Variant],
                   labels: dict[str, str], sigma: float, seed: int, n_steps: int,
                   meta: dict[str, dict[str, str]], masks_dir: Path | None, out_dir: Path,
                   stems: dict[Path, str], cmap: str) -> Iterator[dict[str, Any]]:
    """Explain one batch of images, writing each one's PNG and NPZ; yields its results.csv
    row as soon as it is done (an error row for a bad one). Both engines call this: the local
    one in the process, the Ray one in each actor."""
    import numpy as np

    from . import explain_details, predict
    from .images import load_image
    from .metrics import centre_prior, load_mask, random_map, raw_image_for

    rows: dict[Path, dict[str, Any]] = {}
    good: list[tuple[Path, np.ndarray, Any, Any]] = []  # (file, raw image, metadata, mask)
    for path in files:
        info = meta.get(path.stem) or meta.get(path.name)
        row: dict[str, Any] = {"image": path.name, "layer": layer_info.path}
        if info:
            row.update(dx=info.get("dx", ""), age=info.get("age", ""), sex=info.get("sex", ""),
                       localization=info.get("localization", ""))
        rows[path] = row
        try:
            raw = raw_image_for(bundle, load_image(path))
            extra = _metadata_for(bundle, info)
            mask_path = find_mask(masks_dir, path)
            mask = load_mask(mask_path, raw.shape[:2]) if mask_path is not None else None
            row["mask"] = mask_path.name if mask_path is not None else ""
        except ExplainerError as exc:
            row["error"] = " ".join(str(exc).split())
            yield row
            continue
        good.append((path, raw, extra, mask))

    if good:
        raws = np.stack([g[1] for g in good])
        x = np.asarray(bundle.preprocess(raws.copy()), dtype=np.float32)
        extra = None
        if bundle.metadata_input:
            extra = [np.concatenate([g[2] for g in good], axis=0)]
        pred = predict(bundle.model, x, extra)
        targets = np.argmax(pred.probabilities, axis=1)
        maps: dict[str, np.ndarray] = {}
        methods = tuple(dict.fromkeys(v.method for v in vs if v.method in CHOICES))
        plain = explain_details(bundle.model, x, layer=layer_info, target=targets, extra_inputs=extra,
                                methods=methods)
        for v in vs:
            if v.n_samples == 0 and v.method in CHOICES:
                maps[v.key] = plain.maps[v.method]
        grid = next(iter(plain.maps.values())).shape[1:]
        for v in vs:
            if v.method == "centre":
                maps[v.key] = np.repeat(centre_prior(grid)[None], len(good), axis=0)
            elif v.method == "random":
                maps[v.key] = np.stack([random_map(grid, _image_seed(seed, g[0].name)) for g in good])
        smooth = [v for v in vs if v.n_samples > 0]
        if smooth:
            # One image at a time: its noise then depends on its own seed only (see _image_seed);
            # the capture batches its noisy copies anyway.
            per_image = []
            for i, (path, *_rest) in enumerate(good):
                ex = explain_details(
                    bundle.model, x[i : i + 1], layer=layer_info, target=int(targets[i]),
                    extra_inputs=None if extra is None else [extra[0][i : i + 1]],
                    methods=methods, n_samples=smooth[0].n_samples, sigma=sigma,
                    seed=_image_seed(seed, path.name),
                )
                per_image.append(ex.maps)
            for v in smooth:
                maps[v.key] = np.concatenate([m[v.method] for m in per_image], axis=0)
        for i, (path, raw, meta_i, mask) in enumerate(good):
            row = rows[path]
            try:
                _score_one(bundle, row, path, raw, meta_i, mask, {k: m[i] for k, m in maps.items()},
                           int(targets[i]), pred, i, vs, labels, n_steps, out_dir, stems[path], cmap)
            except ExplainerError as exc:
                row["error"] = " ".join(str(exc).split())
            yield row


def _score_one(bundle: Any, row: dict[str, Any], path: Path, raw: Any, extra: Any, mask: Any,
               maps: dict[str, Any], target: int, pred: Any, i: int, vs: Sequence[Variant],
               labels: dict[str, str], n_steps: int, out_dir: Path, stem: str, cmap: str) -> None:
    import numpy as np
    from PIL import Image

    from .metrics import draw_outline, evaluate_details
    from .render import overlay, side_by_side

    probs = np.asarray(pred.probabilities[i], dtype=np.float64)
    row.update(
        prediction=target, prediction_name=bundle.class_names[target], probability=float(probs[target]),
        target=target, target_name=bundle.class_names[target],
    )
    if row.get("dx"):
        row["correct"] = int(row["dx"] == bundle.class_names[target])
    ev = evaluate_details(bundle, raw, maps, target, extra_inputs=None if extra is None else [extra],
                          mask=mask, n_steps=n_steps)
    for key, scores in ev.scores.items():
        for name, value in scores.items():
            row[f"{key}:{name}"] = value

    shown = np.clip(np.rint(raw), 0, 255).astype(np.uint8)
    panels = [shown]
    for v in vs:
        panel = overlay(shown, maps[v.key], cmap=cmap)
        if mask is not None:
            panel = draw_outline(panel, mask)
        panels.append(panel)
    if mask is not None:
        panels[0] = draw_outline(shown, mask)
    # Short captions (no sigma): they must fit above a 224-pixel panel.
    from .core import method_label

    captions = ["input"] + [BASELINES[v.method].replace(" (baseline)", "") if v.method in BASELINES
                            else method_label(v.method, v.n_samples) for v in vs]
    arrays = {f"map:{k}": np.asarray(m, dtype=np.float32) for k, m in maps.items()}
    for k, curves in ev.curves.items():
        arrays[f"deletion:{k}"] = curves["deletion"].probabilities
        arrays[f"insertion:{k}"] = curves["insertion"].probabilities
    # Written under a temporary name, then renamed: a worker killed mid-write (the Ray engine
    # retries its batch) or an interrupted run never leaves a half file under the real name.
    tmp = out_dir / f".{stem}.{os.getpid()}.tmp"
    try:
        Image.fromarray(side_by_side(panels, captions)).save(tmp, format="PNG")
        os.replace(tmp, out_dir / f"{stem}.png")
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, **arrays, image=shown, target=np.int64(target),
                class_name=np.str_(bundle.class_names[target]), probabilities=probs,
                fractions=next(iter(ev.curves.values()))["deletion"].fractions,
                variants=np.array([v.key for v in vs]), layer=np.str_(row["layer"]),
                model=np.str_(bundle.key), **({"mask": np.asarray(mask, bool)} if mask is not None else {}),
            )
        os.replace(tmp, out_dir / f"{stem}.npz")
    except OSError as exc:
        raise ExplainerError(f"cannot write the outputs of {path.name}: {exc.strerror or exc}") from None


# --- summary ----------------------------------------------------------------------------------


def summarize(results_csv: str | os.PathLike,
              vs: Sequence[Variant] | None = None) -> dict[str, dict[str, float]]:
    """The scores of `results.csv` averaged over its images (`metrics.aggregate`);
    rows with an error are left out."""
    from .metrics import INFO_LABELS, SCORE_LABELS, aggregate

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
    from .metrics import score_table

    rows = score_table(summary, labels)
    if not rows:
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(summary: dict[str, dict[str, float]], labels: dict[str, str]) -> str:
    """The summary as a Markdown table, units in the column names."""
    from .metrics import score_table

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


# --- command line -------------------------------------------------------------------------------




def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `batch` command's options."""
    parser.add_argument("--model", required=True, metavar="NAME|FILE",
                        help="skin-lesion, a Keras Applications name (MobileNetV2, ...) or a .keras/.h5 file")
    parser.add_argument("--weights", default=None, metavar="imagenet|none|FILE",
                        help="Keras Applications only: imagenet (default), none (random) or a weights file")
    parser.add_argument("--images", required=True, metavar="DIR", help="folder of images to explain")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (created; run again with the same folder to resume)")
    parser.add_argument("--method", default=None, choices=CHOICES + ("all",),
                        help="one gradient CAM method, or all of them (default: Grad-CAM and Grad-CAM++)")
    parser.add_argument("--samples", type=nonneg_int, default=0, metavar="N",
                        help="also compute the smoothed methods with N noisy copies (0: plain only)")
    parser.add_argument("--sigma", type=nonneg_float, default=0.15, metavar="S",
                        help="noise standard deviation as a fraction of the image's range (default 0.15)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="noise seed, and the seed of --weights none's random weights (default 0)")
    parser.add_argument("--masks", metavar="DIR",
                        help="binary masks named like the images (X.png, X_segmentation.png, X_mask.png)")
    parser.add_argument("--metadata", metavar="CSV",
                        help="HAM10000-style CSV (image_id, dx, age, sex, localization)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"images per forward pass (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--layer", default=None, metavar="L",
                        help="layer name or path (default: the last spatial layer)")
    parser.add_argument("--baselines", action="store_true",
                        help="also score two maps that know nothing about the model (a centred "
                             "blob and random noise): the level a method must beat")
    parser.add_argument("--steps", type=positive_int, default=None, metavar="N",
                        help="deletion / insertion steps (default 16)")
    from .ray_engine import add_arguments as add_engine_arguments  # imports no Ray

    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """`python -m explainers batch`: run, print where the outputs are and the summary table."""
    weights = args.weights
    if weights is not None and weights.strip().lower() in ("none", "random"):
        weights = None
    elif weights is None:
        weights = "imagenet"
    methods = {None: METHODS, "all": CHOICES}.get(args.method, (args.method,))
    from .ray_engine import options_from_args

    result = run_batch(
        args.model, args.images, args.out, methods=methods, samples=args.samples, sigma=args.sigma,
        seed=args.seed, masks=args.masks, metadata=args.metadata, batch_size=args.batch_size,
        layer=args.layer, n_steps=args.steps, baselines=args.baselines, weights=weights,
        engine=args.engine, ray_options=options_from_args(args),
    )
    print(f"{result.total} images: {result.processed} explained, {result.skipped} already done, "
          f"{result.failed} failed (see the error column of {result.out / RESULTS})")
    print(f"wrote {result.out}/ (one .png and .npz per image, {RESULTS}, {SUMMARY})")
    print()
    print(markdown_table(result.summary, result.labels))
    return 0
