"""The "Case report (PDF)" download button: builds the report of what the Explain page shows
with ``explainers.report_content.build_case`` (the builder ``python -m explainers report``
uses, so both write the same report) and writes the PDF only when the button is clicked (a
callable ``data``, run by Streamlit on its own thread), so drawing the page costs nothing.

Other pages' figures join the report through ``EXTRAS`` in the session state:
``{"figures": {title: matplotlib Figure}, "lines": {title: [str, ...]}}`` (e.g. the trust
card), or through the ``extra_figures`` / ``extra_lines`` arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from dashboard.frame import loaders
from explainers import report
from explainers.report_content import build_case, sample_record

EXTRAS = "report_extras"


def case_data(
    ex,
    sel,
    titles: Mapping[str, str],
    cmap: str,
    opacity: float,
    scale: str,
    abs_max: float | None,
    extra_figures=None,
    extra_lines=None,
    figures: Mapping | None = None,
) -> report.CaseData:
    """The report's content from what the page shows, by the builder the CLI uses too
    (``explainers.report_content.build_case``); ``figures``: the page's trust cards."""
    extras = st.session_state.get(EXTRAS) or {}
    return build_case(
        sel.bundle,
        ex,
        sel.prediction,
        image=sel.image,
        x=sel.x,
        extra=sel.extra,
        image_name=sel.image_name or "image",
        titles=titles,
        patient=sel.metadata_text if sel.bundle.metadata_input else "",
        record=sample_record(sel.image_name or "") if sel.sample is not None else "",
        cmap=cmap,
        opacity=opacity,
        scale=scale,
        absolute_max=abs_max,
        figures=figures,
        display=loaders.display_image(sel.image_digest, sel.image),
        meaningful=sel.meaningful,
        extra_figures=dict(extra_figures or extras.get("figures") or {}),
        extra_lines=dict(extra_lines or extras.get("lines") or {}),
    )


def report_button(
    ex,
    sel,
    titles: Mapping[str, str],
    cmap: str,
    opacity: float,
    scale: str,
    abs_max: float | None,
    container=None,
    extra_figures: Mapping | None = None,
    extra_lines: Mapping[str, Sequence[str]] | None = None,
    later: Mapping | None = None,
) -> None:
    """``later``: a dict the rest of the page fills in this same run (the trust cards, computed
    under the maps, as ``{"trust_figures": {key: TrustFigures}}``), read only when the button is
    clicked; the whole report is built then."""

    def build() -> bytes:
        figures = (later or {}).get("trust_figures")
        case = case_data(
            ex,
            sel,
            titles,
            cmap,
            opacity,
            scale,
            abs_max,
            extra_figures,
            extra_lines,
            figures=figures,
        )
        return report.write_report(case)

    stem = (
        "".join(
            ch if ch.isalnum() or ch in "-_" else "_"
            for ch in (sel.image_name or "image").rsplit(".", 1)[0]
        )
        or "image"
    )
    (container or st).download_button(
        "Case report (PDF)",
        build,
        file_name=f"{stem}_case_report.pdf",
        mime="application/pdf",
        key="dl:report",
        on_click="ignore",
        width="stretch",
        help="One PDF: the maps with each one's sanity verdict, every class's probability, the "
        "settings and colour bar, the trust figures, the model's fingerprint, package "
        "versions and the date. The same report as `python -m explainers report`.",
    )
