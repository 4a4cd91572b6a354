"""The "Download case report (PDF)" button: gathers what the Explain page shows into an
``explainers.report.CaseData`` and writes the PDF only when the button is clicked (a callable
``data``, run by Streamlit on its own thread), so drawing the page costs nothing.

Other pages' figures join the report through ``EXTRAS`` in the session state:
``{"figures": {title: matplotlib Figure}, "lines": {title: [str, ...]}}`` (e.g. the trust
card), or through the ``extra_figures`` / ``extra_lines`` arguments.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np
import streamlit as st

from explainers import report

from dashboard.frame import loaders

EXTRAS = "report_extras"


@functools.lru_cache(maxsize=4)
def _file_hash(path: str) -> str:
    return report.file_sha256(path)


def fingerprint(sel) -> str:
    """SHA-256 of the bundled model file, else of the model's weights (uploads, catalogue)."""
    if sel.bundle.key == "skin-lesion":
        from explainers.zoo import skin_lesion_model_path

        path = skin_lesion_model_path()
        return f"SHA-256 of {path.name}: {_file_hash(str(path))}"
    return f"SHA-256 of the weights: {report.weights_sha256(sel.bundle.model)}"


def case_data(ex, sel, titles: Mapping[str, str], cmap: str, opacity: float, scale: str,
              abs_max: float | None, extra_figures=None, extra_lines=None) -> report.CaseData:
    t = int(ex.targets[0])
    pred = sel.prediction
    record = ""
    if sel.sample is not None:
        s = sel.sample
        record = f"{s.dx} — {s.dx_name} (HAM10000 record of {s.image_id})"
    extras = st.session_state.get(EXTRAS) or {}
    return report.CaseData(
        image=loaders.display_image(sel.image_digest, sel.image),
        image_name=sel.image_name or "image", model_label=sel.bundle.label,
        model_fingerprint="",  # filled in when the button is clicked
        class_labels=[sel.class_label(i) for i in range(pred.probabilities.shape[-1])],
        probabilities=np.asarray(pred.probabilities[0]), logits=np.asarray(pred.logits[0]),
        explained=f"{sel.class_label(t)} ({pred.probabilities[0, t] * 100:.1f} %)",
        maps={titles[m]: ex.maps[m][0] for m in titles}, methods={titles[m]: m for m in titles},
        settings={"layer": ex.layer.path,
                  "noise": (f"{ex.n_samples} samples, σ = {ex.sigma:.2f}" if ex.n_samples
                            else "none")},
        cmap=cmap, opacity=opacity, scale=scale, absolute_max=abs_max,
        softmax_head=pred.softmax_head, meaningful=sel.meaningful, patient=sel.metadata_text,
        record=record,
        extra_figures=dict(extra_figures or extras.get("figures") or {}),
        extra_lines=dict(extra_lines or extras.get("lines") or {}))


def report_button(ex, sel, titles: Mapping[str, str], cmap: str, opacity: float, scale: str,
                  abs_max: float | None, container=None,
                  extra_figures: Mapping | None = None,
                  extra_lines: Mapping[str, Sequence[str]] | None = None,
                  later: Mapping | None = None) -> None:
    """``later``: a dict the rest of the page fills in this same run (the trust card, drawn
    under the maps), read only when the button is clicked."""
    case = case_data(ex, sel, titles, cmap, opacity, scale, abs_max, extra_figures, extra_lines)

    def build() -> bytes:
        case.model_fingerprint = fingerprint(sel)
        if later:
            case.extra_lines.update(later.get("lines") or {})
            case.extra_figures.update(later.get("figures") or {})
        return report.write_report(case)

    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in
                   (sel.image_name or "image").rsplit(".", 1)[0]) or "image"
    (container or st).download_button(
        "Download case report (PDF)", build, file_name=f"{stem}_case_report.pdf",
        mime="application/pdf", key="dl:report", on_click="ignore", width="stretch",
        help="One PDF: the image, every class's probability, these maps with their settings "
             "and colour bar, the model's fingerprint, package versions and the date.")
