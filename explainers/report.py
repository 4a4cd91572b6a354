"""A case report to take away: one PDF with the image, the prediction with every class's
probability, the maps with their settings and colour bars, the trust figures where they exist,
the model's name and fingerprint, the package versions, the date and the statement that this is
a research model, not a diagnostic device.

Written with matplotlib's PDF backend (``PdfPages``, no pyplot, no new dependency). The
dashboard builds a ``CaseData`` from what it has on screen; ``python -m explainers report``
builds it from a model and an image (``case_from_files``). No Streamlit here.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import platform
import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from explainers import render
from explainers.errors import ExplainerError

DISCLAIMER = ("Research model, not a diagnostic device. The heatmaps show where the model found "
              "evidence for a class; they do not show that the model is right.")
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


def _text_lines(fig: Figure, lines: Sequence[tuple[str, dict]], top: float = 0.95,
                step: float = 0.022) -> float:
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


def summary_page(case: CaseData) -> Figure:
    """Page 1: disclaimer, model, image, patient, record, the prediction, versions, date."""
    fig = _page()
    created = case.created or _dt.datetime.now(_dt.timezone.utc)
    bold = {"fontsize": 16, "fontweight": "bold"}
    small = {"fontsize": 9}
    lines = [
        ("Case report: why did the model say that?", bold),
        (f"Created {created:%Y-%m-%d %H:%M} UTC", small),
        (DISCLAIMER, {"fontsize": 10, "color": "#b00020", "fontweight": "bold"}),
        ("", small),
        (f"Model: {case.model_label}", {"fontsize": 10}),
        (f"Model fingerprint: {case.model_fingerprint}", small),
        (f"Image: {case.image_name} ({case.image.shape[1]}×{case.image.shape[0]} px shown)", {"fontsize": 10}),
    ]
    if case.patient:
        lines.append((f"Patient data given to the model: {case.patient}", {"fontsize": 10}))
    if case.record:
        lines.append((f"Recorded diagnosis: {case.record}", {"fontsize": 10}))
    if not case.meaningful:
        lines.append(("The model has random weights: its prediction is meaningless.",
                      {"fontsize": 10, "color": "#b00020"}))
    y = _text_lines(fig, lines)
    shown, rest = _prediction_rows(case)
    kind = "probability" if case.softmax_head else "output"
    fig.text(0.07, y - 0.01, f"Prediction: every class, by pre-softmax score ({kind}, score)",
             fontsize=11, fontweight="bold", va="top")
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
        text = (f"{probs[i] * 100:.1f} %" if case.softmax_head else f"{probs[i]:.4g}")
        ax.text(1.02, pos, f"{text}  (score {float(case.logits[i]):.3f})",
                transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_xlabel("probability (%)" if case.softmax_head else "model output", fontsize=8)
    y = y - 0.06 - height
    if rest:
        fig.text(0.07, y, f"The other {len(case.probabilities) - len(shown)} classes together: "
                          f"{rest * 100:.2f} %", fontsize=9, va="top")
        y -= 0.025
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items())
    _text_lines(fig, [("Software", {"fontsize": 11, "fontweight": "bold"}),
                      (f"{versions}", small)], top=y - 0.01)
    return fig


def maps_page(case: CaseData) -> Figure:
    """Page 2: the image and each map at the chosen scale, raw maxima, weak flags, colour bar,
    and the settings that made them."""
    fig = _page()
    titles = list(case.maps)
    peaks = {t: render.peak_of(case.maps[t]) for t in titles}
    cells = int(np.prod(np.asarray(case.maps[titles[0]]).shape)) if titles else 0
    comparable = {t: render.comparable_peak(case.methods.get(t, t), peaks[t], cells) for t in titles}
    weak = set(render.weak_maps(comparable)) if len(titles) > 1 else set()
    tops = render.scale_peaks(peaks, case.scale, case.absolute_max)
    _text_lines(fig, [(f"Heatmaps: class explained {case.explained}",
                       {"fontsize": 13, "fontweight": "bold"})], top=0.96)
    panels = [("Input", case.image, "")] + [
        (t, render.overlay(case.image, case.maps[t], cmap=case.cmap, opacity=case.opacity,
                           peak=None if case.scale == "own" else tops[t]),
         f"raw max {peaks[t]:.3g} {render.RAW_UNIT}"
         + ("\nWEAK EVIDENCE: tiny beside the other map(s)" if t in weak else ""))
        for t in titles]
    n = len(panels)
    cols = 2
    rows = (n + cols - 1) // cols
    cell_h = 0.62 / max(rows, 1)
    for k, (title, picture, note) in enumerate(panels):
        r, c = divmod(k, cols)
        ax = fig.add_axes((0.07 + c * 0.45, 0.88 - (r + 1) * cell_h + 0.04, 0.4, cell_h - 0.06))
        ax.imshow(picture)
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        if note:
            ax.text(0.5, -0.04, note, transform=ax.transAxes, ha="center", va="top", fontsize=8,
                    color="#b00020" if "WEAK" in note else "black")
    vmax = None if case.scale == "own" else max(tops.values(), default=0.0) or None
    label = ("each map ÷ its own maximum" if vmax is None else
             f"raw map value ({render.RAW_UNIT}), {case.scale} scale")
    bar_ax = fig.add_axes((0.15, 0.2, 0.7, 0.025))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    bar = fig.colorbar(ScalarMappable(norm=Normalize(0, vmax or 1.0), cmap=render._colormap(case.cmap)),
                       cax=bar_ax, orientation="horizontal")
    if vmax is None:
        bar.set_ticks([t for t, _ in render.SCALE_TICKS], labels=[s for _, s in render.SCALE_TICKS])
    bar.set_label(label, fontsize=9)
    bar.ax.tick_params(labelsize=8)
    settings = "; ".join(f"{k}: {v}" for k, v in case.settings.items())
    _text_lines(fig, [("Settings: " + settings + f"; colour map {case.cmap}, opacity "
                      f"{case.opacity:.2f} (fading with the map value), scale: {case.scale}",
                      {"fontsize": 8}),
                     ("", {"fontsize": 8}),
                     (DISCLAIMER, {"fontsize": 8, "color": "#b00020"})], top=0.14)
    return fig


def lines_page(title: str, lines: Sequence[str]) -> Figure:
    fig = _page()
    _text_lines(fig, [(title, {"fontsize": 13, "fontweight": "bold"})]
                + [(str(line), {"fontsize": 9}) for line in lines])
    return fig


def write_report(case: CaseData, out: str | Path | io.BytesIO | None = None) -> bytes:
    """Write the PDF to ``out`` (a path or a binary buffer) and return its bytes."""
    if not case.maps:
        raise ExplainerError("the report needs at least one map")
    buf = io.BytesIO()
    created = case.created or _dt.datetime.now(_dt.timezone.utc)
    case.created = created
    info = {"Title": f"Case report: {case.image_name}", "Subject": DISCLAIMER,
            "Creator": "explainers (Grad-CAM explorer)", "CreationDate": created}
    with PdfPages(buf, metadata=info) as pdf:
        pdf.savefig(summary_page(case))
        pdf.savefig(maps_page(case))
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


# --- from files (the command line) -----------------------------------------------------------------
def case_from_files(args: argparse.Namespace) -> CaseData:
    """Load the model and the image, explain the target, and gather the report's contents."""
    from explainers import explain_details, predict
    from explainers.cli.common import extra_inputs as _extra_inputs, load_bundle as _load_bundle, target_class as _target
    from explainers.cli.explain import _display_image
    from explainers.engine.core import method_label
    from explainers.images import load_image
    from explainers.zoo import prepare, skin_lesion_model_path

    bundle = _load_bundle(args)
    image = load_image(args.image)
    x = prepare(bundle, image)
    extra = _extra_inputs(bundle, args)
    pred = predict(bundle.model, x, extra)
    target = _target(bundle, args.target)
    ex = explain_details(bundle.model, x, layer=args.layer, target=target, extra_inputs=extra,
                         n_samples=args.samples, sigma=args.sigma, seed=args.seed)
    t = int(ex.targets[0])
    if bundle.key == "skin-lesion":
        fingerprint = f"SHA-256 of {skin_lesion_model_path().name}: {file_sha256(skin_lesion_model_path())}"
    elif Path(str(args.model)).is_file():
        fingerprint = f"SHA-256 of {Path(args.model).name}: {file_sha256(args.model)}"
    else:
        fingerprint = f"SHA-256 of the weights: {weights_sha256(bundle.model)}"
    titles = {m: method_label(m, ex.n_samples, ex.sigma) for m in ex.maps}
    patient = ""
    if bundle.metadata_input:
        patient = (f"{'age unknown' if args.age is None else f'{args.age:g} years'}, "
                   f"{args.sex or 'unknown'}, {args.site or 'unknown'}")
    return CaseData(
        image=np.asarray(_display_image(image).convert("RGB"), dtype=np.uint8),
        image_name=Path(args.image).name, model_label=bundle.label,
        model_fingerprint=fingerprint,
        class_labels=[bundle.class_label(i) for i in range(pred.probabilities.shape[-1])],
        probabilities=pred.probabilities[0], logits=pred.logits[0],
        explained=f"{bundle.class_label(t)} ({pred.probabilities[0, t] * 100:.1f} %)",
        maps={titles[m]: ex.maps[m][0] for m in ex.maps}, methods={titles[m]: m for m in ex.maps},
        settings={"layer": ex.layer.path,
                  "noise": (f"{ex.n_samples} samples, σ = {ex.sigma:.2f}" if ex.n_samples else "none"),
                  "target": "top-1" if target is None else str(t)},
        cmap=args.cmap, opacity=args.opacity, scale=args.scale, absolute_max=args.absolute_max,
        softmax_head=pred.softmax_head, meaningful=bundle.meaningful, patient=patient)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``python -m explainers report``'s options."""
    from explainers.cli.argtypes import fraction, nonneg_float, nonneg_int
    from explainers.cli.common import add_model_arguments as _add_model_arguments

    _add_model_arguments(p)
    p.add_argument("--image", required=True, metavar="FILE", help="the image to explain")
    p.add_argument("--out", required=True, metavar="FILE.pdf", help="where to write the PDF")
    p.add_argument("--layer", help="layer name or path (default: the last spatial layer)")
    p.add_argument("--target", metavar="N|NAME", help="class to explain (default: top-1)")
    p.add_argument("--samples", type=nonneg_int, default=0, metavar="N")
    p.add_argument("--sigma", type=nonneg_float, default=0.15, metavar="S")
    p.add_argument("--seed", type=int, default=0, metavar="N")
    p.add_argument("--age", type=float, default=None, help="skin-lesion model: age in years")
    p.add_argument("--sex", default=None, help="skin-lesion model: female, male or unknown")
    p.add_argument("--site", default=None, help="skin-lesion model: body site")
    p.add_argument("--cmap", default=render.DEFAULT_CMAP, help="colour map (default viridis)")
    p.add_argument("--opacity", type=fraction, default=0.5, help="overlay opacity 0..1")
    p.add_argument("--scale", default="own", choices=render.SCALES,
                   help="colour scale: own maximum, shared by the maps, or absolute")
    p.add_argument("--absolute-max", type=nonneg_float, default=None, metavar="V",
                   help="the absolute scale's top value in raw map units")


def run(args: argparse.Namespace) -> int:
    """The handler: check the output path, build the case, write the PDF, say where."""
    out = Path(args.out)
    if out.suffix.lower() != ".pdf":
        raise ExplainerError(f"--out must end in .pdf, got '{args.out}'")
    if not out.parent.exists():
        raise ExplainerError(f"the folder for --out does not exist: {out.parent}")
    if args.scale == "absolute" and not args.absolute_max:
        raise ExplainerError("--scale absolute needs --absolute-max V (a positive raw value)")
    render._colormap(args.cmap)  # an unknown colour map fails before the model is loaded
    case = case_from_files(args)
    data = write_report(case, out)
    print(f"wrote {out} ({len(data) // 1024} KiB, {2 + len(case.extra_figures) + len(case.extra_lines)} pages)")
    return 0
