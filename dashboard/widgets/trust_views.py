"""Trust on the Explain page under the maps (whose verdict sentences ``verdict_views`` draws):
the figures for the technical reader in one collapsed expander (sanity figures, raw maxima, the
trust card, each number with its meaning and neutral styling: red is kept for "do not rely on
it"), and the further checks (every class, evidence against, noise draws) in another."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.frame.notices import plain
from dashboard.widgets import verdict_views
from dashboard.widgets.panel_parts import technical_notes
from explainers import explain, marks, render
from explainers.errors import ExplainerError
from explainers.methods import COUNTERFACTUAL, GRADCAM, REGISTRY, method_label
from explainers.report_content import trust_figures_for
from explainers.trust import card as trust
from explainers.trust.segmentation import outline
from explainers.trust.verdicts import pooling_note, read_default


def _line(container, flagged: bool, name: str, value: str, meaning: str) -> None:
    """Neutral styling: the figure, its meaning and, when it crosses its threshold, the words."""
    container.markdown(
        f"**{name}: {value}**{' (past the warning threshold)' if flagged else ''} — {meaning}"
    )


def trust_card(fig: trust.TrustFigures, class_label, container=st) -> None:
    """Each figure with one line saying what it means and whether it crosses its threshold."""
    flags = fig.flags
    _line(
        container,
        flags["class_sensitivity"],
        "Class sensitivity",
        f"{fig.class_sensitivity:.2f}",
        f"Spearman rank correlation (−1..1) between this map and the map for the runner-up class "
        f"({plain(class_label(fig.runner_up))}); from {trust.CLASS_FLAG} up the map does not tell them apart",
    )
    _line(
        container,
        flags["centre_prior"],
        "Centre-prior likeness",
        f"{fig.centre_prior:.2f}",
        f"Spearman with a centred Gaussian (σ = ¼ of the grid); from {trust.CENTRE_FLAG} up the map "
        "mostly says 'the middle of the image'",
    )
    if fig.seed_agreement is not None:
        _line(
            container,
            flags["seed_agreement"],
            "Seed agreement",
            f"{fig.seed_agreement:.2f}",
            f"mean Spearman between {trust.SEEDS} noise draws; below {trust.SEED_FLAG} the map "
            f"depends on the draw (largest per-pixel std {float(np.max(fig.seed_std)):.2f} of the map's maximum)",
        )
    if fig.lesion_energy is not None:
        _line(
            container,
            flags["lesion_energy"],
            "Energy in the lesion",
            f"{fig.lesion_energy:.2f}×",
            f"the map's share inside the lesion divided by the lesion's share of the image (1 = chance); "
            f"the centre prior alone gets {fig.prior_energy:.2f}×. Maximum in the lesion: "
            f"{'yes' if fig.lesion_pointing else 'no'} (centre prior: {'yes' if fig.prior_pointing else 'no'})",
        )


@st.cache_data(show_spinner=False, max_entries=16)
def _outline(image_digest, _image):
    """The automatic lesion outline (``segmentation.Outline``), or None for a uniform image."""
    try:
        return outline(_image)
    except ExplainerError:
        return None


def _lesion(sel):
    """Dermoscopy (a model with metadata): the automatic outline; else None."""
    return _outline(sel.image_digest, _image=sel.image) if sel.bundle.metadata_input else None


def _with_outline(picture: np.ndarray, lesion) -> np.ndarray:

    return (
        picture
        if lesion is None
        else marks.draw_contour(picture, lesion.mask, dashed=lesion.uncertain)
    )


@st.cache_data(show_spinner="Computing the trust card…", max_entries=16)
def _figures(
    model_token,
    image_digest,
    extra_token,
    layer,
    target,
    keys,
    n_samples,
    sigma,
    seed,
    with_seeds,
    _sel,
    _maps,
) -> dict:
    lesion = _lesion(_sel)  # dermoscopy: the automatic lesion outline, computed once
    return trust_figures_for(
        _sel.bundle,
        _sel.x,
        _sel.extra,
        _sel.image,
        _maps,
        target,
        np.asarray(_sel.prediction.probabilities[0]),
        layer,
        n_samples,
        sigma,
        seed,
        with_seeds=with_seeds,
        lesion_mask=None if lesion is None else lesion.mask,
    )


def explain_trust_section(
    sel,
    ex,
    n_samples: int,
    sigma: float,
    seed: int,
    methods=None,
    report_extras: dict | None = None,
) -> None:
    """Under the maps (Explain): the note when methods coincide at this layer, then two
    collapsed expanders: "Details for the technical reader" (sanity figures, raw maxima, trust
    card) and the further checks. Every heatmap ``ex`` holds, unless ``methods`` names some.
    The report's trust lines go into ``report_extras``."""
    if methods is None:
        methods = tuple(m for m in ex.maps if REGISTRY[m].cam)
    note = pooling_note(ex.gradients, ex.alpha)
    if note:
        st.caption(note)
    maps = {m: ex.maps[m][0] for m in methods}
    with_seeds = n_samples > 0 and bool(st.session_state.get("trust:seeds"))
    figures = _figures(
        sel.model_token,
        sel.image_digest,
        sel.extra_token,
        sel.layer.path,
        int(sel.target),
        tuple(methods),
        int(n_samples),
        round(float(sigma), 4),
        int(seed),
        bool(with_seeds),
        _sel=sel,
        _maps=maps,
    )
    if report_extras is not None:
        report_extras["trust_figures"] = figures
    judged = verdict_views.verdicts_for(sel, methods, int(n_samples), float(sigma))
    with st.expander("Details for the technical reader: sanity figures, raw values, trust card"):
        shipped = read_default()
        st.markdown(
            "**Sanity checks** (Adebayo et al. 2018): the map must change when the model's "
            "weights are randomised, and must differ between classes."
        )
        for m in methods:
            verdict, result = judged[m]
            st.markdown(
                "\n".join(
                    verdict_views.technical_markdown(
                        method_label(m, n_samples, sigma), verdict, result, shipped
                    )
                )
            )
        st.markdown("**Raw map values**")
        technical_notes(ex)
        st.markdown("**Trust card of this image**")
        for col, m in zip(st.columns(len(methods)), methods, strict=False):
            col.markdown(f"**{method_label(m, n_samples, sigma)}**")
            trust_card(figures[m], sel.class_label, col)
        if sel.bundle.metadata_input:
            lesion = _lesion(sel)
            st.caption(
                "Lesion figures use the automatic outline (white on the figures; a classical "
                "segmentation, not checked against expert masks); upload your own mask on the Trust page."
                + (
                    ""
                    if lesion is None or not lesion.uncertain
                    else f" Here the outline is uncertain (dashed; stability {lesion.stability:.2f}, the IoU "
                    "of the outlines at a stricter and a looser threshold): 'Energy in the lesion' and "
                    "'Maximum in the lesion' may be off."
                )
            )
    with st.expander("More checks: every class, evidence against the class, noise draws"):
        if n_samples > 0:
            st.checkbox(
                f"Also check the agreement between {trust.SEEDS} noise draws (about twice the "
                "smoothing time)",
                key="trust:seeds",
            )
        if with_seeds:
            for col, m in zip(st.columns(len(methods)), methods, strict=False):
                if figures[m].seed_std is not None:
                    col.image(
                        _with_outline(
                            render.overlay(
                                np.asarray(sel.image.convert("RGB")),
                                figures[m].seed_std,
                                opacity=0.6,
                            ),
                            _lesion(sel),
                        ),
                        caption=f"Uncertainty: per-pixel standard deviation across {trust.SEEDS} noise "
                        "draws (brightest = the draws disagree most)",
                        width="stretch",
                        alt=f"Where the {trust.SEEDS} noise draws of the "
                        f"{method_label(m, n_samples, sigma)} map disagree, over the image.",
                    )
        if sel.bundle.n_classes <= 50 and st.checkbox(
            "Compare with the maps of every class", key="trust:all_classes"
        ):
            _every_class(sel, maps, n_samples, sigma, seed)
        _two_sided(sel, n_samples, sigma, seed)


@st.cache_data(show_spinner=False, max_entries=16)
def _against(
    model_token, image_digest, extra_token, layer, target, n_samples, sigma, seed, _sel
) -> np.ndarray:
    """The counterfactual map (evidence against the class), same settings as the shown maps."""
    return explain(
        _sel.bundle.model,
        _sel.x,
        layer=layer,
        target=target,
        extra_inputs=_sel.extra,
        methods=(COUNTERFACTUAL,),
        n_samples=n_samples,
        sigma=sigma,
        seed=seed,
    )[COUNTERFACTUAL][0]


def _two_sided(sel, n_samples: int, sigma: float, seed: int) -> None:
    """Grad-CAM (for the class) against the counterfactual map (against it), one shared scale."""
    pro = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed).maps[GRADCAM][0]  # the shown map
    con = _against(
        sel.model_token,
        sel.image_digest,
        sel.extra_token,
        sel.layer.path,
        int(sel.target),
        int(n_samples),
        round(float(sigma), 4),
        int(seed),
        _sel=sel,
    )
    _, peak = render.two_sided(pro, con)
    left, right = st.columns([1, 2])
    left.image(
        _with_outline(
            render.diverging_overlay(np.asarray(sel.image.convert("RGB")), pro, con), _lesion(sel)
        ),
        width="stretch",
        caption="Evidence for (red) and against (blue) the class",
        alt=f"Two-sided map for {sel.class_label(sel.target)}: red where Grad-CAM finds "
        "evidence for the class, blue where the counterfactual map finds evidence against it.",
    )
    right.caption(
        f"Two-sided map: Grad-CAM (evidence for {plain(sel.class_label(sel.target))}) minus the "
        "counterfactual map (evidence against it), both divided by the larger of their "
        f"maxima ({peak:.3g}, class score × activation units): −1 blue … 0 white … +1 red. "
        "One shared scale, so a faint side stays faint."
    )


@st.cache_data(show_spinner="Computing the maps of every class…", max_entries=8)
def _every_class_table(
    model_token, image_digest, extra_token, layer, target, keys, n_samples, sigma, seed, _sel, _maps
) -> dict:
    return trust.every_class_spearman(
        _sel.bundle.model,
        _sel.x,
        _maps,
        target,
        _sel.bundle.n_classes,
        extra_inputs=_sel.extra,
        layer=layer,
        n_samples=n_samples,
        sigma=sigma,
        seed=seed,
    )


def _every_class(sel, maps: dict, n_samples: int, sigma: float, seed: int) -> None:
    """Spearman with each other class's map: which classes the map cannot tell apart."""
    import pandas as pd

    table = _every_class_table(
        sel.model_token,
        sel.image_digest,
        sel.extra_token,
        sel.layer.path,
        int(sel.target),
        tuple(maps),
        int(n_samples),
        round(float(sigma), 4),
        int(seed),
        _sel=sel,
        _maps=maps,
    )
    classes = list(next(iter(table.values())).keys()) if table else []
    frame = pd.DataFrame(
        {
            "class": [sel.class_label(c) for c in classes],
            **{
                method_label(k, n_samples, sigma): [round(v[c], 2) for c in classes]
                for k, v in table.items()
            },
        }
    )
    st.dataframe(frame, hide_index=True)
    st.caption(
        f"Spearman rank correlation (−1..1) of each map with the same method's map for another "
        f"class; from {trust.CLASS_FLAG} up the two classes get the same map."
    )
