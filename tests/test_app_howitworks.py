"""The How it works page: the formulas, illustrated with the current image's own numbers."""

import re

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explainers import explain_details, zoo
from explainers.images import load_image
from tests.helpers import open_page as _open

pytestmark = pytest.mark.slow

PAGE = "pages/how_it_works.py"


def open_page(**query) -> AppTest:
    return _open(PAGE, **query)


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def test_formulas_and_steps_with_this_images_numbers(skin_lesion_model):
    at = open_page()
    assert at.title[0].value == "How it works"
    assert not at.error
    headers = [h.value for h in at.header]
    for h in (
        "1 · The class score",
        "2 · Grad-CAM (Selvaraju et al., 2017)",
        "3 · Grad-CAM++ (Chattopadhay et al., 2018)",
        "4 · Smooth Grad-CAM++ (Omeiza et al., 2019)",
        "5 · The differences, on this image",
    ):
        assert h in headers
    latex = " ".join(l.value for l in at.latex)
    assert len(at.latex) >= 5
    assert r"\alpha^{kc}_{ij}" in latex and r"\frac{1}{Z}" in latex and r"\mathcal{N}" in latex
    assert r"\partial^3 Y^c" in latex  # Eq. 19 with the third derivative

    # the numbers are this image's: compare with the explainer called directly
    sample = zoo.list_samples()[0]
    bundle = zoo.load_model("skin-lesion")
    x = zoo.prepare(bundle, load_image(sample.path))
    ex = explain_details(skin_lesion_model, x, extra_inputs=[sample.metadata()])
    target = int(ex.targets[0])
    text = markdown(at)
    assert f"$y^c$ = **{float(ex.logits[0, target]):.3g}** (logit units" in text
    assert "gives $A$ of shape 8×8×2048" in text
    top = int(np.argmax(ex.weights["gradcam++"][0]))
    assert f"Filter {top} (the largest Grad-CAM++ weight)" in text
    # the worked alpha: the formula's value equals the explainer's
    m = re.search(r"= \*\*([-0-9.e+]+)\*\*; the explainer computed ([-0-9.e+]+)\.", text)
    assert m and float(m.group(1)) == pytest.approx(float(m.group(2)), rel=1e-2)
    table = at.dataframe[0].value
    assert len(table) == 5 and table["filter k"].iloc[0] == top
    assert list(table.columns)[-2:] == ["w Grad-CAM", "w Grad-CAM++"]
    assert "Noise samples are 0 now" in at.info[0].value
    assert "Grad-CAM" in captions(at) and "Grad-CAM++" in captions(at)
    assert re.search(r"correlate at r = -?[0-9.]+", text)


def test_smoothed_and_another_target():
    at = open_page(samples="2", sigma="0.20", target="5")
    text = markdown(at)
    assert "Now: **2 noisy copies, σ = 0.20**" in text
    assert "class **nv — melanocytic nevus**" in text
    assert "smoothed: built from the averaged" in text
    assert "Smooth Grad-CAM++ (2 samples, σ=0.20)" in captions(at)
    assert not at.error


def test_layer_choice_shows_in_the_numbers():
    at = open_page(layer="xception/block13_sepconv2_act")
    assert "Layer `xception/block13_sepconv2_act` gives $A$ of shape 16×16×728" in markdown(at)
    assert not at.error


def test_worked_example_computes_one_cell_by_hand(skin_lesion_model):
    at = open_page()
    assert "6 · A worked example: one cell, by hand" in [h.value for h in at.header]
    assert [t.label for t in at.tabs][:5] == [
        f"① A and g of filter {at.number_input(key='w:teach_filter').value}",
        "② its two weights",
        "③ Grad-CAM at the cell",
        "④ Grad-CAM++ at the cell",
        "⑤ What this implies",
    ]
    text = markdown(at)
    # the default cell is the Grad-CAM++ peak; the hand sum equals the explainer's map there
    sums = re.findall(
        r"= \*\*([-0-9.e+]+)\*\*; ReLU → \*\*([-0-9.e+]+)\*\*\. The explainer's map at "
        r"this cell: \*\*([-0-9.e+]+)\*\*",
        text,
    )
    assert len(sums) == 2
    for total, relu, explainer in sums:
        assert float(relu) == pytest.approx(max(float(total), 0.0))
        assert float(relu) == pytest.approx(float(explainer), rel=2e-3)
    # this layer feeds global average pooling: the page draws the conclusion from its numbers
    assert "α ≈ ½ everywhere" in text and "32·relu(g)" in text
    m = re.search(r"w\+\+ / \(32·relu\(w_Grad-CAM\)\) = ([0-9.]+) \(median\)", text)
    assert m and float(m.group(1)) == pytest.approx(1.0, abs=0.05)
    assert "Grad-CAM equals HiResCAM here" in text
    # the A and g grids of the chosen filter, labelled by grid row and column
    grids = [d.value for d in at.dataframe if list(d.value.columns)[:2] == ["0", "1"]]
    assert len(grids) == 2 and grids[0].shape == (8, 8) and next(iter(grids[0].index)) == "row 0"

    # the exact fallback: another cell and another filter by number
    at.number_input(key="w:teach_row").set_value(0)
    at.run()
    at.number_input(key="w:teach_filter").set_value(7)
    at.run()
    assert not at.exception and not at.error
    text = markdown(at)
    assert "Now: cell **(0," in text and "$w_{7} = \\frac{1}{Z}" in text
    sample = zoo.list_samples()[0]
    bundle = zoo.load_model("skin-lesion")
    x = zoo.prepare(bundle, load_image(sample.path))
    ex = explain_details(skin_lesion_model, x, extra_inputs=[sample.metadata()])
    w_gc = float(ex.weights["gradcam"][0][7])
    m = re.search(
        r"\$w_\{7\} = \\frac\{1\}\{Z\}\\sum_\{ij\} g_\{ij\}\$ = [-0-9.e+]+ / 64 = \*\*([-0-9.e+]+)\*\*",
        text,
    )
    assert m and float(m.group(1)) == pytest.approx(w_gc, rel=1e-3)


def test_long_formulas_are_split_so_they_wrap():
    at = open_page()
    # no single formula is longer than the ones that fit a 1280 px page (the old two-in-one
    # Grad-CAM++ line was 330 characters)
    assert max(len(l.value) for l in at.latex) < 260


def test_every_registered_method_is_explained_in_one_line():
    from explainers.methods import REGISTRY

    at = open_page()
    assert "Every method in one line" in [h.value for h in at.header]
    text = markdown(at)
    for key, m in REGISTRY.items():
        assert m.summary, f"{key} has no summary line"
        assert f"- **{m.label}** ({m.reference};" in text, key
        assert m.summary in text, key
    assert "one forward pass per filter used" in text  # Score-CAM's cost, in words
