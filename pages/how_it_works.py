"""How it works: the formulas of Grad-CAM, Grad-CAM++ and Smooth Grad-CAM++, each step with
the current image's own numbers."""

import streamlit as st

from dashboard.frame import state
from dashboard.frame.errors import guard
from dashboard.frame.notices import code, plain
from dashboard.page_parts import teach, worked_example
from dashboard.widgets import filter_views, sidebar, views
from explainers.methods import GRADCAM, GRADCAMPP

#: On a phone the widest formulas scroll sideways instead of being cut at the screen's edge.
FORMULA_CSS = "<style>.katex-display{overflow-x:auto;overflow-y:hidden;padding-bottom:2px}</style>"

sel = sidebar.selection()
st.markdown(FORMULA_CSS, unsafe_allow_html=True)
st.title("How it works")
st.caption(
    "Three ways to turn the gradient of a class score into a heatmap. The numbers below "
    "are this image's own, at the layer and class chosen in the sidebar."
)


def fmt(x: float) -> str:
    return f"{x:.3g}"


def step_score(ex):
    st.header("1 · The class score")
    c = sel.target
    st.markdown(
        "Every method starts from the class's score **before** the softmax, "
        "$y^c$ (a logit), and the activations $A^k$ of a convolutional layer."
    )
    st.latex(
        r"y^c = \text{score of class } c \text{ before softmax}, \qquad "
        r"A^k_{ij} = \text{activation of filter } k \text{ at grid cell } (i, j)"
    )
    a = teach.summary(ex.activations[0])
    h, w, k = a.shape
    st.markdown(
        f"Here: class **{plain(sel.class_label(c))}**, $y^c$ = **{fmt(sel.logit(c))}** (logit units; "
        f"softmax probability {sel.probability(c) * 100:.1f} %"
        f"{', random weights — meaningless' if not sel.meaningful else ''}). "
        f"Layer {code(ex.layer.path)} gives $A$ of shape {h}×{w}×{k} "
        f"(a {h}×{w} grid, {k} filters; $Z = {h * w}$ cells). "
        f"Activations range from {fmt(a.minimum)} to {fmt(a.maximum)} (mean {fmt(a.mean)}, "
        f"layer-output units); {a.zero_share * 100:.0f} % of them are exactly 0."
    )
    g = teach.summary(ex.gradients[0])
    st.latex(r"g^{kc}_{ij} = \frac{\partial y^c}{\partial A^k_{ij}}")
    st.markdown(
        f"The gradients $g$ (class-score units per activation unit) range from {fmt(g.minimum)} "
        f"to {fmt(g.maximum)}; {g.positive_share * 100:.0f} % are positive."
    )


def step_gradcam(ex):
    st.header("2 · Grad-CAM (Selvaraju et al., 2017)")
    st.markdown(
        "Each filter's weight is its gradient averaged over the grid; the map is the "
        "weighted sum of the filters, with negative evidence cut off."
    )
    st.latex(r"w^c_k = \frac{1}{Z}\sum_{i}\sum_{j} \frac{\partial y^c}{\partial A^k_{ij}}")
    st.latex(r"L^c_{\text{Grad-CAM}} = \operatorname{ReLU}\Big(\sum_k w^c_k A^k\Big)")
    top = filter_views.top_filters(ex.weights[GRADCAM][0], 3)
    w = ex.weights[GRADCAM][0]
    m = teach.summary(ex.maps[GRADCAM][0])
    peak = teach.argmax_cell(ex.maps[GRADCAM][0])
    st.markdown(
        "Here the three largest Grad-CAM weights are "
        + ", ".join(f"$w_{{{k}}}$ = {fmt(w[k])}" for k in top)
        + " (class-score units per activation unit). The map's values run from "
        f"{fmt(m.minimum)} to {fmt(m.maximum)} (class-score units), peaking at grid cell "
        f"{peak}; {m.zero_share * 100:.0f} % of the cells are cut to 0 by the ReLU."
    )


def step_gradcampp(ex):
    st.header("3 · Grad-CAM++ (Chattopadhay et al., 2018)")
    st.markdown(
        "Only positive gradients count, each weighted by $\\alpha$, so that a filter "
        "active in a small region is not drowned by the average (Eq. 19 of the paper, "
        "with $Y^c = \\exp(y^c)$ so that the higher derivatives are powers of $g$):"
    )
    # One formula per line: each fits a narrow screen (the long ones used to run off the edge).
    st.latex(
        r"w^c_k = \sum_i\sum_j \alpha^{kc}_{ij}\,\operatorname{ReLU}\!\Big(\frac{\partial Y^c}"
        r"{\partial A^k_{ij}}\Big)"
    )
    st.latex(
        r"\alpha^{kc}_{ij} = \frac{\dfrac{\partial^2 Y^c}"
        r"{(\partial A^k_{ij})^2}}{2\dfrac{\partial^2 Y^c}{(\partial A^k_{ij})^2} + "
        r"\sum_a\sum_b A^k_{ab}\dfrac{\partial^3 Y^c}{(\partial A^k_{ij})^3}}"
    )
    st.latex(
        r"\text{with } Y^c = e^{y^c}: \quad \alpha^{kc}_{ij} = \frac{(g^{kc}_{ij})^2}"
        r"{2\,(g^{kc}_{ij})^2 + \sum_{a,b} A^k_{ab}\,(g^{kc}_{ij})^3}"
    )
    st.latex(r"\alpha^{kc}_{ij} = \frac{1}{2 + g^{kc}_{ij}\sum_{a,b} A^k_{ab}}")
    st.latex(r"L^c_{\text{Grad-CAM++}} = \operatorname{ReLU}\Big(\sum_k w^c_k A^k\Big)")
    ae = teach.alpha_example(ex)
    text = (
        f"**One α term, worked out.** Filter {ae.channel} (the largest Grad-CAM++ weight), at "
        f"grid cell ({ae.row}, {ae.col}) where its gradient is largest: $g$ = {fmt(ae.g)}, "
        f"$\\sum_{{a,b}} A_{{ab}}$ = {fmt(ae.activation_sum)}, so "
    )
    if ae.alpha_formula is not None:
        text += (
            f"$\\alpha = 1/(2 + {fmt(ae.g)} \\times {fmt(ae.activation_sum)})$ = "
            f"**{fmt(ae.alpha_formula)}**; the explainer computed {fmt(ae.alpha)}."
        )
    else:
        text += (
            f"the explainer's $\\alpha$ = **{fmt(ae.alpha)}** (smoothed: built from the "
            "averaged $g^2$ and $g^3$ terms, so the short form does not apply)."
        )
    st.markdown(text)
    st.markdown(
        "**The top filters** (weights in class-score units per activation unit; "
        "α is dimensionless):"
    )
    table = teach.top_filter_table(ex)
    idle = table.loc[table["Σ A (activation)"] == 0, "filter k"].tolist()
    if idle:
        st.caption(
            f"Filter{'s' if len(idle) > 1 else ''} {', '.join(map(str, idle))}: all activations "
            "are 0 here, so α = 1/(2 + g·0) = 1/2 everywhere and the weight is large, yet the "
            "term wₖ·Aₖ adds nothing to the map."
        )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(c, format="%.3g")
            for c in (
                "Σ A (activation)",
                "mean g (score/act.)",
                "mean α where g > 0",
                "w Grad-CAM",
                "w Grad-CAM++",
            )
        }
        | {
            "positions with g > 0 (%)": st.column_config.NumberColumn(
                "positions with g > 0 (%)", format="%.0f %%"
            )
        },
    )


def step_smooth(ex, n_samples, sigma):
    st.header("4 · Smooth Grad-CAM++ (Omeiza et al., 2019)")
    st.markdown(
        "Add Gaussian noise to the image $n$ times and average each derivative term "
        "(and the activations) over the noisy copies before the Grad-CAM++ formulas; "
        "the noise level σ is a fraction of the image's value range."
    )
    st.latex(
        r"x_m = x + \varepsilon_m,\ \ \varepsilon_m \sim \mathcal{N}\big(0,\ (\sigma\,"
        r"(\max x - \min x))^2\big)"
    )
    st.latex(
        r"D^{(p)} = \frac{1}{n}\sum_{m=1}^{n}"
        r"\Big(\frac{\partial y^c(x_m)}{\partial A^k_{ij}}\Big)^p,\ p = 1, 2, 3"
    )
    st.latex(
        r"\alpha^{kc}_{ij} = \frac{D^{(2)}_{ij}}{2 D^{(2)}_{ij} + \sum_{a,b}\bar A^k_{ab}"
        r"\,D^{(3)}_{ij}}"
    )
    st.latex(r"w^c_k = \sum_{i,j}\alpha^{kc}_{ij}\operatorname{ReLU}(D^{(1)}_{ij})")
    if n_samples > 0:
        st.markdown(
            f"Now: **{n_samples} noisy copies, σ = {sigma:.2f}** of the image range, so "
            "every number on this page is already such an average."
        )
    else:
        st.info(
            "Noise samples are 0 now, so the numbers on this page are plain Grad-CAM++. Set "
            "samples (and σ) on the Explain page to see the smoothed ones here."
        )


def step_differences(ex, n_samples, sigma):
    st.header("5 · The differences, on this image")
    f = teach.weight_facts(ex)
    r_gc = teach.argmax_cell(ex.maps[GRADCAM][0])
    r_pp = teach.argmax_cell(ex.maps[GRADCAMPP][0])
    st.markdown(
        f"- **Negative weights.** Grad-CAM gives {f['negative_gc']} of {f['filters']} filters a "
        f"negative weight (their average gradient is negative); Grad-CAM++ keeps only positive "
        f"gradients, so {f['negative_pp']} of its weights are negative.\n"
        f"- **Concentration.** The 10 largest weights hold {f['top10_share_gc'] * 100:.0f} % of "
        f"the positive Grad-CAM weight and {f['top10_share_pp'] * 100:.0f} % of the Grad-CAM++ "
        f"weight; {f['top10_overlap']} filters are in both top-10 lists.\n"
        f"- **Maps.** The two maps correlate at r = {f['map_correlation']:.2f} over the "
        f"{ex.maps['gradcam'].shape[1]}×{ex.maps['gradcam'].shape[2]} grid; their peaks are at "
        f"cells {r_gc} (Grad-CAM) and {r_pp} (Grad-CAM++).\n"
        "- **Smoothing** averages out gradients that flip with tiny changes of the input, so the "
        "smoothed maps are less speckled and more stable; it costs one backward pass per sample."
    )
    drawn = filter_views.show_maps(
        ex, sel, views.method_titles(ex), state.get(state.CMAP), float(state.get(state.OPACITY))
    )
    views.colorbar(drawn, state.get(state.CMAP), st.columns([2, 3])[0])


if sel.bundle is None or sel.image is None or not sel.ready:
    st.info("Choose a model and an image in the sidebar (see the Explain page).")
else:
    n_samples, sigma, seed = (
        int(state.get(state.N_SAMPLES)),
        float(state.get(state.SIGMA)),
        int(state.get(state.SEED)),
    )
    ex = None
    with guard("computing the numbers"):
        ex = sel.explain(n_samples=n_samples, sigma=sigma, seed=seed)
    if ex is not None:
        for step in (step_score, step_gradcam, step_gradcampp):
            with guard(f"explaining step {step.__name__}"):
                step(ex)
        with guard("explaining Smooth Grad-CAM++"):
            step_smooth(ex, n_samples, sigma)
        with guard("comparing the methods"):
            step_differences(ex, n_samples, sigma)
        with guard("working one cell out by hand"):
            worked_example.step_worked(ex, sel)

st.header("Every method in one line")
st.caption(
    "All the methods the dashboard offers (Explain's method box, Compare), from the "
    "package's method registry: what each one shows and what it costs."
)
st.markdown("\n".join(teach.method_lines()))
