"""Helpers of the Evaluate page: cached scoring, the curves figure, tables and CSV.

No math here: every number comes from ``explainers.evaluation.scoring``. Kept apart from ``loaders`` and
``views`` (shared by all pages) because only the Evaluate page needs them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from matplotlib.figure import Figure

from dashboard.frame import fair_share
from explainers import render, zoo
from explainers.errors import ExplainerError
from explainers.evaluation import scoring as metrics
from explainers.images import load_image

DEFAULT_SMOOTH_SAMPLES = 16
STEP_CHOICES = (8, 16, 32)
#: Line colours per variant, the same in every figure.
COLOURS = dict(
    zip(
        (key for key, _, _ in metrics.VARIANTS),
        ("#1f77b4", "#d62728", "#17becf", "#ff7f0e"),
        strict=False,
    )
)


def smooth_samples(n_samples: int) -> int:
    """The smoothed maps' number of noise samples: the user's setting, or 16 when it is 0."""
    return int(n_samples) if int(n_samples) > 0 else DEFAULT_SMOOTH_SAMPLES


@st.cache_data(show_spinner=False, max_entries=32)
def raw_image(
    model_token: str, image_digest: str, _bundle: zoo.ModelBundle, _image: Any
) -> np.ndarray:
    """The image at the model's input size, before preprocessing (0..255): what the scores
    perturb."""
    return metrics.raw_image_for(_bundle, _image)


@st.cache_data(show_spinner=False, max_entries=16)
def mask_from_upload(
    digest: str,
    size: tuple[int, int],
    _data: bytes,
    name: str,
    image_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, str | None]:
    """A binary mask from an uploaded PNG, resized to the model's input, and the note to show
    when it was scaled to the image (``image_size = (H, W)``); ExplainerError in plain words for
    anything that is not a black-and-white image of the image's proportions."""
    buf = io.BytesIO(_data)
    buf.name = name
    return metrics.load_mask_noted(buf, size, image_size=image_size)


@st.cache_data(show_spinner=False, max_entries=32)
def evaluation(
    model_token: str,
    image_digest: str,
    extra_token: tuple,
    layer: str,
    target: int,
    n_samples: int,
    sigma: float,
    seed: int,
    n_steps: int,
    mask_digest: str | None,
    *,
    _bundle: zoo.ModelBundle,
    _raw: np.ndarray,
    _maps: Mapping[str, np.ndarray],
    _extra: Sequence[np.ndarray] | None,
    _mask: np.ndarray | None,
) -> metrics.Evaluation:
    """``explainers.evaluation.scoring.evaluate_details`` of the four maps of one image, cached on the
    settings that determine them."""
    with fair_share.heavy():  # one per user at a time, users in turn
        return metrics.evaluate_details(
            _bundle, _raw, dict(_maps), target, extra_inputs=_extra, mask=_mask, n_steps=n_steps
        )


def evaluate_many(
    bundle: zoo.ModelBundle,
    items: Sequence[tuple[str, Any, Any]],
    *,
    layer: str,
    n_samples: int,
    sigma: float,
    seed: int,
    n_steps: int,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, dict[str, float]]], list[str]]:
    """Explain and score several images ``(name, image source, extra inputs)``; an image that
    fails becomes a message, not an exception. Returns (per-image table rows, per-image scores
    for ``metrics.aggregate``, error messages)."""
    labels = metrics.variant_labels(n_samples, None)
    rows, scores, errors = [], [], []
    with fair_share.heavy():  # one per user at a time; others' steps go between images
        for i, (name, source, extra) in enumerate(items):
            fair_share.checkpoint()
            if on_progress is not None:
                on_progress(i, len(items), name)
            try:
                image = load_image(source)
                _, ev = metrics.explain_and_evaluate(
                    bundle,
                    image,
                    extra_inputs=extra,
                    layer=layer,
                    n_samples=n_samples,
                    sigma=sigma,
                    seed=seed,
                    n_steps=n_steps,
                )
            except ExplainerError as exc:
                errors.append(f"{name}: {exc}")
                continue
            scores.append(ev.scores)
            for key, values in ev.scores.items():
                row = {
                    "Image": name,
                    "Class explained": bundle.class_names[ev.target],
                    "Probability (%)": ev.probability * 100.0,
                    "Method": labels.get(key, key),
                }
                for k, label in metrics.SCORE_LABELS.items():
                    if k in values:
                        row[label] = values[k]
                rows.append(row)
    if on_progress is not None:
        on_progress(len(items), len(items), "")
    return rows, scores, errors


def score_frame(
    scores: Mapping[str, Mapping[str, float]], labels: Mapping[str, str]
) -> pd.DataFrame:
    """``metrics.score_table`` as a DataFrame (one row per method, units in the column names)."""
    return pd.DataFrame(metrics.score_table(scores, labels, digits=4))


def direction_label(column: str) -> tuple[str, str | None]:
    """A score column's header with its direction (``"Average Drop (%) ↓"``) and the help
    saying it; other columns unchanged."""
    key = next((k for k, v in metrics.SCORE_LABELS.items() if v == column), None)
    if key not in metrics.HIGHER_IS_BETTER:
        return column, None
    if metrics.HIGHER_IS_BETTER[key]:
        return f"{column} ↑", "↑ higher is better"
    return f"{column} ↓", "↓ lower is better"


def column_config(frame: pd.DataFrame) -> dict[str, Any]:
    """Number formats per column (percentages with one decimal, AUCs and IoU with three) and
    each score's direction in its header: ↑ higher is better, ↓ lower is better."""
    config = {}
    for col in frame.columns:
        label, help_text = direction_label(col)
        fmt = None
        if "(%" in col:
            fmt = "%.1f"
        elif "AUC" in col or col.startswith("IoU"):
            fmt = "%.3f"
        elif "ratio" in col:
            fmt = "%.2f"
        if fmt or help_text:
            config[col] = st.column_config.NumberColumn(label, format=fmt, help=help_text)
    return config


def best_text(scores: Mapping[str, Mapping[str, float]], labels: Mapping[str, str]) -> str:
    """One line per score naming the best method (``metrics.best_methods``)."""
    best = metrics.best_methods(scores)
    parts = []
    for key, methods in best.items():
        direction = "higher" if metrics.HIGHER_IS_BETTER[key] else "lower"
        if len(methods) > 1 and len(methods) == len(scores):
            parts.append(f"- **{metrics.SCORE_LABELS[key]}**: the same for all methods")
            continue
        names = ", ".join(labels.get(m, m) for m in methods)
        parts.append(f"- **{metrics.SCORE_LABELS[key]}** ({direction} is better): {names}")
    return "\n".join(parts)


def themed(fig: Figure, text_color: str) -> Figure:
    """The figure on a transparent background with its text, ticks and frames in
    ``text_color``, so it sits on the light and the dark theme alike (a transparent figure
    face is saved transparent)."""
    fig.patch.set_alpha(0.0)
    for ax in fig.axes:
        ax.set_facecolor("none")
        ax.title.set_color(text_color)
        ax.xaxis.label.set_color(text_color)
        ax.yaxis.label.set_color(text_color)
        ax.tick_params(colors=text_color)
        for spine in ax.spines.values():
            spine.set_color(text_color)
        legend = ax.get_legend()
        if legend is not None:
            legend.get_frame().set_alpha(0.0)
            for text in legend.get_texts():
                text.set_color(text_color)
    return fig


def curves_figure(
    curves: Mapping[str, Mapping[str, metrics.Curve]],
    labels: Mapping[str, str],
    class_name: str,
    text_color: str = "#31333f",
) -> Figure:
    """Deletion and insertion curves side by side, one line per method, AUC in the legend;
    text in ``text_color`` on a transparent background (the page's theme)."""
    fig = Figure(figsize=(9.0, 3.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, kind, title in (
        (axes[0], "deletion", "Deletion (lower area is better)"),
        (axes[1], "insertion", "Insertion (higher area is better)"),
    ):
        for key, pair in curves.items():
            c = pair[kind]
            ax.plot(
                c.fractions * 100,
                c.probabilities,
                marker=".",
                color=COLOURS.get(key),
                label=f"{labels.get(key, key)}: AUC {c.auc:.3f}",
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(
            "pixels "
            + ("removed" if kind == "deletion" else "revealed")
            + ", most important first (%)",
            fontsize=9,
        )
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right" if kind == "deletion" else "lower right")
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel(f"probability of {class_name}", fontsize=9)
    return themed(fig, text_color)


def curves_alt(curves: Mapping[str, Mapping[str, metrics.Curve]], labels: Mapping[str, str]) -> str:
    """The curves' text alternative: each method's two areas."""
    parts = [
        f"{labels.get(k, k)}: deletion AUC {p['deletion'].auc:.3f}, insertion AUC "
        f"{p['insertion'].auc:.3f}"
        for k, p in curves.items()
    ]
    return (
        "Deletion and insertion curves (probability against the share of pixels removed or "
        "revealed). " + "; ".join(parts) + "."
    )


def overlays_with_mask(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    mask: np.ndarray | None,
    cmap: str,
    opacity: float,
) -> dict[str, np.ndarray]:
    """Each map over the image (raw 0..255, the model's input size), with the mask outlined in
    white when there is one."""
    image = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
    out = {}
    for key, cam in maps.items():
        picture = render.overlay(image, cam, cmap=cmap, opacity=opacity)
        if mask is not None:
            picture = metrics.draw_outline(picture, mask)
        out[key] = picture
    return out


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")
