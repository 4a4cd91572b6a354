"""Sanity verdicts a person can act on, known before anyone asks.

* ``plain_verdict``: one plain sentence per map from its sanity figures ("Do not read this map
  as evidence: ..." / "Passed the checks: ..."), the words a clinician reads next to the map;
* the shipped measurement ``explainers/data/sanity_default.json``: the sanity checks of the
  default model at its default layer on plain (unsmoothed) maps, measured by
  ``python -m explainers sanity --write-default`` (the command is recorded in the file with the
  model file's SHA-256, the layer, the cache version and the date). ``known_result`` reads the
  disk cache first and this file second, so a fresh install knows the verdicts at once;
  ``tests/test_verdicts.py`` re-measures and compares (slow).

No Streamlit here: the dashboard, the CLI report and the PDF share these words.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainers.methods import REGISTRY
from explainers.methods.agreement import gradient_constant_per_channel
from explainers.trust import sanity
from explainers.zoo import list_samples

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "sanity_default.json"
#: Verdict levels: "fail" (do not rely on the map: red everywhere), "pass", "unknown".
FAIL, PASS, UNKNOWN = "fail", "pass", "unknown"
DO_NOT_RELY = "DO NOT READ AS EVIDENCE"


@dataclass(frozen=True)
class Verdict:
    """``level``: fail / pass / unknown; ``sentence``: the plain words; ``source``: where
    the figures come from ("measured here", "shipped measurement" or "")."""

    level: str
    sentence: str
    source: str = ""


def plain_verdict(result: sanity.MethodSanity | None, source: str = "") -> Verdict:
    """One sentence from the measurements (the rule of ``sanity.verdict``), no figures."""
    if result is None:
        return Verdict(
            UNKNOWN,
            "Not checked yet for this model and layer: whether this map "
            "follows the model is unknown.",
            "",
        )
    if result.verdict == "pass":
        return Verdict(
            PASS, "Passed the checks: it changes with the model and with the class.", source
        )
    if result.empty_share >= sanity.EMPTY_FAIL:
        return Verdict(
            FAIL,
            "Do not read this map as evidence: it is empty on most of the test "
            "images, so it could not be checked.",
            source,
        )
    decisive = result.cascade[min(sanity.VERDICT_STEP, len(result.cascade) - 1)]
    reasons = []
    if decisive.spearman >= sanity.CASCADE_PASS:
        reasons.append("it stays the same when the model's weights are random")
    if result.random_logit_spearman >= sanity.LOGIT_PASS:
        reasons.append(
            "is the same for every class" if reasons else "it is the same for every class"
        )
    return Verdict(FAIL, "Do not read this map as evidence: " + " and ".join(reasons) + ".", source)


def technical_lines(result: sanity.MethodSanity | None) -> list[str]:
    """The figures behind the sentence, for the technical reader."""
    if result is None:
        return []
    decisive = result.cascade[min(sanity.VERDICT_STEP, len(result.cascade) - 1)]
    return [
        (
            f"Model randomisation ({decisive.step} random): Spearman rank correlation "
            f"{decisive.spearman:.2f} with the trained map (−1..1; passes below {sanity.CASCADE_PASS})"
        ),
        (
            f"Random logit: Spearman {result.random_logit_spearman:.2f} between the maps of "
            f"different classes (passes below {sanity.LOGIT_PASS})"
        ),
        (
            f"Empty maps: {result.empty_share * 100:.0f} % of the test images (fails from "
            f"{sanity.EMPTY_FAIL * 100:.0f} %)"
        ),
    ]


# --- the shipped measurement --------------------------------------------------------------------
def shipped_methods() -> tuple[str, ...]:
    """Every CAM method of the one gradient pass (what Explain offers; Score-CAM excluded)."""
    return tuple(k for k, m in REGISTRY.items() if m.cam and "forward" not in m.needs)


def default_record(
    report: sanity.SanityReport,
    fingerprint: str,
    command: str,
    file_sha256: str = "",
    n_samples: int = 0,
    seed: int = 0,
) -> dict:
    """The file's content: provenance (``model_fingerprint``: the sanity cache's key,
    ``sanity.model_fingerprint``; ``model_file_sha256``: the SHA-256 of the model file, as the
    case report prints it), then per method the figures and the verdict."""
    return {
        "model": report.model,
        "model_fingerprint": fingerprint,
        "model_file_sha256": file_sha256,
        "layer": report.layer,
        "cache_version": sanity.CACHE_VERSION,
        "n_samples": int(n_samples),
        "seed": int(seed),
        "images": list(report.images),
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "rule": (
            f"pass when Spearman < {sanity.CASCADE_PASS} once the head and the last block are "
            f"random, random-logit Spearman < {sanity.LOGIT_PASS} and fewer than "
            f"{sanity.EMPTY_FAIL * 100:.0f} % of the maps empty"
        ),
        "methods": {
            k: {**m.to_json(), "empty_share": round(m.empty_share, 4)}
            for k, m in report.methods.items()
        },
    }


def write_default(record: dict, path: str | Path = DEFAULT_FILE) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_default(path: str | Path = DEFAULT_FILE) -> dict | None:
    """The shipped file, or None when it is missing or unreadable (never raises)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("methods"), dict) else None
    except (OSError, ValueError):
        return None


def result_from_record(key: str, entry: dict) -> sanity.MethodSanity:
    """A ``MethodSanity`` (without maps) from one method's entry of the file."""
    steps = [
        sanity.Step(str(s["step"]), float(s["spearman"]), float(s["ssim"]))
        for s in entry["cascade"]
    ]
    return sanity.MethodSanity(
        key,
        steps,
        float(entry["random_logit_spearman"]),
        np.zeros((0, 0, 1, 1), np.float32),
        recorded_empty_share=float(entry.get("empty_share", 0.0)),
    )


def shipped_result(
    fingerprint: str,
    layer: str,
    method: str,
    n_samples: int,
    seed: int,
    image_ids: Sequence[str],
    path: str | Path = DEFAULT_FILE,
) -> sanity.MethodSanity | None:
    """The shipped figures when they were measured for exactly this model file, layer, images,
    seed and plain maps (noise settings do not touch plain maps, so σ and the cache version,
    which covers the noise draws, do not have to match); else None."""
    data = read_default(path)
    if (
        data is None
        or data.get("model_fingerprint") != fingerprint
        or data.get("layer") != layer
        or int(n_samples) != 0
        or int(data.get("n_samples", -1)) != 0
        or int(data.get("seed", -1)) != int(seed)
        or list(data.get("images", [])) != list(image_ids)
    ):
        return None
    entry = data["methods"].get(method)
    try:
        return None if entry is None else result_from_record(method, entry)
    except (KeyError, TypeError, ValueError):
        return None


def known_result(
    bundle,
    layer: str,
    method: str,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    n_images: int = sanity.DEFAULT_SAMPLES,
    fingerprint: str | None = None,
) -> tuple[sanity.MethodSanity | None, str]:
    """``(result, source)``: the disk cache ("measured here"), else the shipped measurement
    ("shipped measurement"), else ``(None, "")``. Never computes anything."""
    fp = fingerprint or sanity.model_fingerprint(bundle)
    found = sanity.cached_verdict(
        bundle, layer, method, n_samples, sigma, seed, n_images, fingerprint=fp
    )
    if found is not None:
        return found, "measured here"
    ids = [s.image_id for s in list_samples()[:n_images]]
    shipped = shipped_result(fp, layer, method, n_samples, seed, ids)
    return (shipped, "shipped measurement") if shipped is not None else (None, "")


# --- when methods coincide -----------------------------------------------------------------------
def pooling_note(gradients: np.ndarray | None, alpha: np.ndarray | None) -> str:
    """A plain note when the layer is followed directly by global average pooling (the gradient
    is the same at every position): Grad-CAM equals HiResCAM there, and Grad-CAM++'s α is about
    ½ everywhere, so its weights are relu(g)·hw/2: Grad-CAM without the negative channel
    weights. "" otherwise."""
    if gradients is None or not gradient_constant_per_channel(np.asarray(gradients)[:1]):
        return ""
    text = (
        "At this layer (followed directly by global average pooling) the gradient is the same "
        "at every position, so Grad-CAM equals HiResCAM"
    )
    if alpha is not None:
        a = np.asarray(alpha, dtype=np.float64)[:1]
        a = a[np.isfinite(a) & (a != 0)]
        if a.size and float(np.abs(a - 0.5).max()) < 0.05:
            text += (
                " and Grad-CAM++'s α ≈ 0.5 everywhere, so its map is Grad-CAM's with the "
                "negative channel weights dropped (times a constant)"
            )
    return text + "."
