"""Opening one case of a batch run on the Explain page (the Audit page's gallery and table):
the Explain settings of a row, with the run's own noise seed for that image, or the reason
the case cannot be shown there."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.frame import loaders, state
from dashboard.frame.notices import plain
from dashboard.widgets import sidebar
from explainers import zoo
from explainers.batch import results_stats
from explainers.batch import run as batch


def explain_target(
    row: pd.Series, res: results_stats.Results, variant: str
) -> tuple[dict | None, str]:
    """The Explain settings of one row, or None and the reason it cannot be shown there."""
    model = str(res.settings.get("model") or "")
    stem = Path(str(row["image"])).stem
    if model not in zoo.model_names():
        name = model.removeprefix("file:") or "(unknown)"
        return None, (
            f"The run used the model file {plain(name)}: Explain can "
            "show it after you upload that file (sidebar → Model), then this image."
        )
    if stem not in {s.image_id for s in loaders.samples()}:
        return None, (
            "This image is not one of the bundled samples, so Explain cannot open it "
            "by itself: download it below and upload it there (sidebar → Image → upload)."
        )
    smooth = variant.startswith("smooth-")
    seed = res.settings.get("seed") or 0
    return {
        "model": model,
        "sample": stem,
        "layer": res.settings.get("layer"),
        "target": int(row["target"]) if pd.notna(row.get("target")) else None,
        "n_samples": int(res.settings.get("samples") or 0) if smooth else 0,
        "sigma": float(res.settings.get("sigma") or 0.15),
        # the noise seed the batch used for this very image
        "seed": batch.image_seed(int(seed), str(row["image"])),
    }, ""


def open_on_explain(target: dict, note_key: str) -> None:
    """Callback: the Explain page's settings for one case (must not raise)."""
    try:
        state.set(state.MODEL, target["model"])
        sidebar.choose_sample(target["sample"])
        state.set(state.LAYER, target["layer"])
        state.set(state.TARGET, target["target"])
        state.set(state.N_SAMPLES, min(target["n_samples"], state.MAX_SAMPLES))
        state.set(state.SIGMA, target["sigma"])
        state.set(state.SEED, target["seed"])
        st.session_state[note_key] = None
        st.session_state["audit_go"] = True
    except Exception as exc:
        st.session_state[note_key] = f"Could not open it on Explain ({type(exc).__name__})."
