"""Cached computing for the Compare page: the maps of a group of methods, and the measured cost
of one forward chunk (for Score-CAM's estimate). Keys are small hashable tokens, large objects
``_``-prefixed (not hashed), as in ``loaders``. No math here: calls into ``explainers``."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard.frame import fair_share
from dashboard.frame.loaders import SEND_FIRST_S
from explainers import explain_details, zoo
from explainers.engine.capture import get_runner
from explainers.settings import ExplainSettings


@st.cache_data(show_spinner=False, max_entries=12)  # ~5 MB each for the skin-lesion model
def explanation(
    model_token: str,
    image_digest: str,
    extra_token: tuple,
    settings: ExplainSettings,
    *,
    _bundle: zoo.ModelBundle,
    _x: np.ndarray,
    _extra: Sequence[np.ndarray] | None,
):
    """``explain_details`` for one group of methods of one image (an ``Explanation`` with the
    maps and each method's seconds). A progress bar is shown while it runs and removed after,
    so a cache hit replays nothing visible."""
    bar = st.progress(0.0, text="Computing ...")
    time.sleep(SEND_FIRST_S)  # the bar reaches the browser before TensorFlow takes the cores

    def progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"Computing: {done} of {total}")
        fair_share.checkpoint()  # between chunks: let a waiting person's step go first

    try:
        with fair_share.heavy():  # one per user at a time, users in turn
            return explain_details(
                _bundle.model, _x, settings, extra_inputs=_extra, progress=progress
            )
    finally:
        bar.empty()


@st.cache_data(show_spinner=False, max_entries=8)
def forward_seconds(
    model_token: str,
    image_digest: str,
    *,
    _bundle: zoo.ModelBundle,
    _x: np.ndarray,
    _extra: Sequence[np.ndarray] | None,
) -> float:
    """Seconds of one compiled forward pass of this one image, measured on this machine (the
    faster of two, after the prediction has traced the function): the unit of Score-CAM's
    cost estimate."""
    runner = get_runner(_bundle.model)
    inputs = [np.asarray(a)[:1] for a in (_extra or [])]
    inputs.insert(runner.image_index, _x[:1])
    runner.logits(inputs)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        runner.logits(inputs)
        times.append(time.perf_counter() - t0)
    return min(times)
