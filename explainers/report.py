"""A case report to take away: one PDF with the image, the prediction with every class's
probability, the maps with their settings and colour bars, the trust figures where they exist,
the model's name and fingerprint, the package versions, the date and the statement that this is
a research model, not a diagnostic device.

Written with matplotlib's PDF backend (``PdfPages``, no pyplot, no new dependency). The
dashboard builds a ``CaseData`` from what it has on screen; ``python -m explainers report``
builds it from a model and an image (``explainers.cli.report``). No Streamlit here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import platform
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from explainers import marks, render
from explainers.errors import ExplainerError
from explainers.methods import comparable_peak

DISCLAIMER = (
    "Research model, not a diagnostic device. The heatmaps show where the model found "
    "evidence for a class; they do not show that the model is right."
)
PACKAGES = ("numpy", "tensorflow", "keras", "matplotlib", "pillow", "sklesion")
A4 = (8.27, 11.69)  # inches
MAX_ROWS = 30  # classes listed one per row; beyond this the rest are summed


@dataclass
class CaseData:
    """Everything on the report. ``maps``: title → raw map (h, w); ``methods``: title → method
    key (maps of one method share units; see ``render.weak_maps``). ``extra_figures`` (title →
    matplotlib Figure) and ``extra_lines`` (title → lines of text) are added as their own
    pages, e.g. the trust figures."""

    image: np.ndarray
    image_name: str
    model_label: str
    model_fingerprint: str
    class_labels: Sequence[str]
    probabilities: np.ndarray
    logits: np.ndarray
    explained: str
    maps: Mapping[str, np.ndarray]
    methods: Mapping[str, str]
    settings: Mapping[str, str]
    cmap: str = render.DEFAULT_CMAP
    opacity: float = 0.5
    scale: str = "own"
    absolute_max: float | None = None
    softmax_head: bool = True
    meaningful: bool = True
    patient: str = ""
    record: str = ""
    extra_figures: Mapping[str, Figure] = field(default_factory=dict)
    extra_lines: Mapping[str, Sequence[str]] = field(default_factory=dict)
    created: _dt.datetime | None = None
    #: title → (level, sentence): the sanity verdict in words, printed under each map on page 1
    #: ("fail" maps are also marked on the picture); see ``explainers.trust.verdicts``.
    verdicts: Mapping[str, tuple[str, str]] = field(default_factory=dict)


# --- fingerprints and versions -------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(model: Any) -> str:
    """SHA-256 over the model's weight arrays in order: the same for the same trained weights,
    whatever file (or upload) they came from."""
    h = hashlib.sha256()
    for w in model.weights:
        arr = np.ascontiguousarray(np.asarray(w))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


# --- pages ---------------------------------------------------------------------------------------
def _page() -> Figure:
    fig = Figure(figsize=A4, dpi=100)
    fig.patch.set_facecolor("white")
    return fig


def _text_lines(
    fig: Figure, lines: Sequence[tuple[str, dict]], top: float = 0.95, step: float = 0.022
) -> float:
    y = top
    for text, style in lines:
        size = style.get("fontsize", 10)
        width = int(96 * 10 / size * (0.9 if style.get("fontweight") == "bold" else 1.0))
        wrapped = "\n".join(textwrap.fill(part, width) or " " for part in str(text).split("\n"))
        fig.text(0.07, y, wrapped, va="top", **style)
        y -= step * (1 + wrapped.count("\n")) * (size / 10) * 1.15
    return y


def _prediction_rows(case: CaseData) -> tuple[list[int], float]:
    probs = np.asarray(case.probabilities, dtype=np.float64)
    order = list(np.argsort(-np.asarray(case.logits, dtype=np.float64), kind="stable"))
    shown = order[:MAX_ROWS]
    rest = float(probs[order[MAX_ROWS:]].sum()) if len(order) > MAX_ROWS else 0.0
    return [int(i) for i in shown], rest


ALARM = "#{:02x}{:02x}{:02x}".format(*marks.ALARM_RGB)
LEVEL_STYLE = {
    "fail": {"color": ALARM, "fontweight": "bold"},
    "pass": {"color": "#1b7a2e"},
    "unknown": {"color": "black"},
}


def summary_page(case: CaseData) -> Figure:
    """Page 1: disclaimer, model, image, patient, record, then the maps with each one's sanity
    verdict under it (a failing map marked on the picture), the colour bar and the settings."""
    fig = _page()
    created = case.created or _dt.datetime.now(_dt.timezone.utc)
    small = {"fontsize": 8}
    lines = [
        ("Case report: why did the model say that?", {"fontsize": 15, "fontweight": "bold"}),
        (f"Created {created:%Y-%m-%d %H:%M} UTC", small),
        (DISCLAIMER, {"fontsize": 9, "color": "#b00020", "fontweight": "bold"}),
        (f"Model: {case.model_label}", {"fontsize": 9}),
        (f"Model fingerprint: {case.model_fingerprint}", small),
        (
            f"Image: {case.image_name} ({case.image.shape[1]}×{case.image.shape[0]} px shown)",
            {"fontsize": 9},
        ),
    ]
    if case.patient:
        lines.append((f"Patient data given to the model: {case.patient}", {"fontsize": 9}))
    if case.record:
        lines.append((f"Recorded diagnosis: {case.record}", {"fontsize": 9}))
    if not case.meaningful:
        lines.append(
            (
                "The model has random weights: its prediction is meaningless.",
                {"fontsize": 9, "color": "#b00020"},
            )
        )
    lines.append(
        (f"Heatmaps: class explained {case.explained}", {"fontsize": 12, "fontweight": "bold"})
    )
    y = _text_lines(fig, lines, top=0.965, step=0.02)
    titles = list(case.maps)
    peaks = {t: render.peak_of(case.maps[t]) for t in titles}
    cells = int(np.prod(np.asarray(case.maps[titles[0]]).shape)) if titles else 0
    comparable = {t: comparable_peak(case.methods.get(t, t), peaks[t], cells) for t in titles}
    weak = set(render.weak_maps(comparable)) if len(titles) > 1 else set()
    tops = render.scale_peaks(peaks, case.scale, case.absolute_max)
    panels = [("Input", case.image, "", "unknown")]
    for t in titles:
        pic = render.overlay(
            case.image,
            case.maps[t],
            cmap=case.cmap,
            opacity=case.opacity,
            peak=None if case.scale == "own" else tops[t],
        )
        level, sentence = case.verdicts.get(t, ("unknown", ""))
        if level == "fail":
            pic = marks.mark_unreliable(pic)
        note = sentence + ("\nWEAK EVIDENCE: tiny beside the other map(s)" if t in weak else "")
        panels.append((t, pic, note, level))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    width = 0.86 / cols
    aspect = case.image.shape[0] / max(case.image.shape[1], 1)
    cell_h = min(0.3, (width - 0.02) * aspect * A4[0] / A4[1] + 0.02)
    text_h = 0.1
    top = y - 0.01
    for k, (title, picture, note, level) in enumerate(panels):
        r, c = divmod(k, cols)
        y0 = top - (r + 1) * cell_h - r * text_h
        ax = fig.add_axes((0.07 + c * width, y0, width - 0.02, cell_h - 0.02))
        ax.imshow(picture)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
        if note:
            wrapped = "\n".join(textwrap.fill(part, 34) for part in note.split("\n"))
            ax.text(
                0.0,
                -0.03,
                wrapped,
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=7.5,
                **LEVEL_STYLE.get(level, {}),
            )
    y = top - rows * (cell_h + text_h) - 0.01
    vmax = None if case.scale == "own" else max(tops.values(), default=0.0) or None
    label = (
        "each map ÷ its own maximum"
        if vmax is None
        else f"raw map value ({render.RAW_UNIT}), {case.scale} scale"
    )
    bar_ax = fig.add_axes((0.15, y - 0.02, 0.7, 0.018))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(
        ScalarMappable(norm=Normalize(0, vmax or 1.0), cmap=render._colormap(case.cmap)),
        cax=bar_ax,
        orientation="horizontal",
    )
    if vmax is None:
        bar.set_ticks([t for t, _ in render.SCALE_TICKS], labels=[s for _, s in render.SCALE_TICKS])
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    settings = "; ".join(f"{k}: {v}" for k, v in case.settings.items())
    raw = "; ".join(f"{t}: raw max {peaks[t]:.3g} {render.RAW_UNIT}" for t in titles)
    _text_lines(
        fig,
        [
            (
                "Settings: " + settings + f"; colour map {case.cmap}, opacity "
                f"{case.opacity:.2f} (fading with the map value), scale: {case.scale}. " + raw,
                {"fontsize": 7.5},
            )
        ],
        top=y - 0.075,
        step=0.018,
    )
    return fig


def prediction_page(case: CaseData) -> Figure:
    """Page 2: every class's probability and score, and the software that made the report."""
    fig = _page()
    small = {"fontsize": 9}
    shown, rest = _prediction_rows(case)
    kind = "probability" if case.softmax_head else "output"
    y = _text_lines(
        fig,
        [
            (
                f"Prediction: every class, by pre-softmax score ({kind}, score)",
                {"fontsize": 13, "fontweight": "bold"},
            )
        ],
    )
    height = 0.018 * (len(shown) + 1)
    ax = fig.add_axes((0.42, y - 0.03 - height, 0.38, height))
    probs = np.asarray(case.probabilities, dtype=np.float64)
    values = [probs[i] * (100.0 if case.softmax_head else 1.0) for i in shown]
    ax.barh(range(len(shown)), values, color="#3b528b")
    ax.set_yticks(range(len(shown)), [str(case.class_labels[i])[:48] for i in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100 if case.softmax_head else max(max(values), 1e-9) * 1.1)
    ax.tick_params(axis="x", labelsize=8)
    for pos, i in enumerate(shown):
        text = f"{probs[i] * 100:.1f} %" if case.softmax_head else f"{probs[i]:.4g}"
        ax.text(
            1.02,
            pos,
            f"{text}  (score {float(case.logits[i]):.3f})",
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize=8,
        )
    ax.set_xlabel("probability (%)" if case.softmax_head else "model output", fontsize=8)
    y = y - 0.06 - height
    if rest:
        fig.text(
            0.07,
            y,
            f"The other {len(case.probabilities) - len(shown)} classes together: "
            f"{rest * 100:.2f} %",
            fontsize=9,
            va="top",
        )
        y -= 0.025
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    _text_lines(
        fig,
        [
            ("Software", {"fontsize": 11, "fontweight": "bold"}),
            (f"{versions}", small),
            ("", small),
            (DISCLAIMER, {"fontsize": 8, "color": "#b00020"}),
        ],
        top=y - 0.01,
    )
    return fig


def lines_page(title: str, lines: Sequence[str]) -> Figure:
    fig = _page()
    _text_lines(
        fig,
        [(title, {"fontsize": 13, "fontweight": "bold"})]
        + [(str(line), {"fontsize": 9}) for line in lines],
    )
    return fig


def write_report(case: CaseData, out: str | Path | io.BytesIO | None = None) -> bytes:
    """Write the PDF to ``out`` (a path or a binary buffer) and return its bytes."""
    if not case.maps:
        raise ExplainerError("the report needs at least one map")
    buf = io.BytesIO()
    created = case.created or _dt.datetime.now(_dt.timezone.utc)
    case.created = created
    info = {
        "Title": f"Case report: {case.image_name}",
        "Subject": DISCLAIMER,
        "Creator": "explainers (Grad-CAM explorer)",
        "CreationDate": created,
    }
    with PdfPages(buf, metadata=info) as pdf:
        pdf.savefig(summary_page(case))
        pdf.savefig(prediction_page(case))
        for title, fig in (case.extra_figures or {}).items():
            if not fig.texts or fig.texts[0].get_text() != title:
                fig.suptitle(title, fontsize=12)
            pdf.savefig(fig)
        for title, lines in (case.extra_lines or {}).items():
            pdf.savefig(lines_page(title, lines))
    data = buf.getvalue()
    if isinstance(out, (str, Path)):
        Path(out).write_bytes(data)
    elif out is not None:
        out.write(data)
    return data
