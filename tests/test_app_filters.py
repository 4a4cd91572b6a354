"""The Filters and neurons page, driven with Streamlit's AppTest on the real skin-lesion model."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import new_app, run, set_noise
from tests.helpers import open_page as _open

pytestmark = pytest.mark.slow

PAGE = "pages/filters_neurons.py"


def open_page(**query) -> AppTest:
    return _open(PAGE, **query)


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def filter_captions(at: AppTest) -> list[str]:
    return [c for c in captions(at) if c.startswith("filter ")]


def caption_texts(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_default_top_k_filters_with_weights_and_their_map():
    at = open_page()
    assert at.title[0].value == "Filters and neurons"
    assert not errors(at)
    assert at.radio(key="w:filter_mode").value == "top k"
    caps = filter_captions(at)
    assert len(caps) == 8
    # "filter 653: w = 0.0403 (0.00127)": Grad-CAM++ weight, Grad-CAM's in brackets, largest first
    weights = [float(c.split("w = ")[1].split(" ")[0]) for c in caps]
    assert weights == sorted(weights, reverse=True)
    assert "Grad-CAM — 8 filters" in captions(at) and "Grad-CAM++ — 8 filters" in captions(at)
    # the neurons part: all positions on the 8x8 grid by default
    assert "The layer's 8×8 grid over the image; chosen: all positions." in caption_texts(at)
    # every filter picture has its raw maximum under it; filters far below the strongest are flagged
    raw = [c.value for c in at.caption if c.value.startswith("raw max ") and "**" not in c.value]
    assert len(raw) == 8
    peaks = [float(c.split()[2]) for c in raw]
    flagged = [
        p
        for p, c in zip(peaks, raw, strict=False)
        if "weak: under 5 % of the strongest filter" in c
    ]
    assert flagged == [p for p in peaks if p < 0.05 * max(peaks)]
    # the grid to click on is an Altair chart with the two selections
    chart = at.get("vega_lite_chart")
    assert (
        chart and '"name": "cell"' in chart[0].proto.spec and '"name": "box"' in chart[0].proto.spec
    )
    assert "Grad-CAM++ — all positions" in captions(at)
    assert [h.value for h in at.header] == ["Model", "Image", "Explain", "Filters", "Neurons"] or {
        "Filters",
        "Neurons",
    } <= {h.value for h in at.header}


def test_top_k_slider_and_filter_list_with_ranges():
    at = open_page()
    at.slider(key="w:top_k").set_value(3)
    run(at)
    assert len(filter_captions(at)) == 3
    at.radio(key="w:filter_mode").set_value("list")
    run(at)
    assert at.text_input(key="w:filters").value == "0-15"
    assert [c.split(":")[0] for c in filter_captions(at)] == [f"filter {i}" for i in range(16)]
    assert "Grad-CAM++ — 16 filters" in captions(at)
    at.text_input(key="w:filters").input("10, 32, 3")
    run(at)
    assert [c.split(":")[0] for c in filter_captions(at)] == ["filter 3", "filter 10", "filter 32"]
    assert "Grad-CAM — filters 3, 10, 32" in captions(at)
    assert not errors(at)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3, ten", "cannot read 'ten': use filter indices and ranges"),
        ("0-20000000", "filter 20000000 does not exist: this layer has filters 0 to 2047"),
        ("5000", "filter 5000 does not exist: this layer has filters 0 to 2047"),
        ("9-2", "the range '9-2' runs backwards"),
        ("", "no filter indices given"),
    ],
)
def test_bad_filter_lists_give_a_plain_error_and_the_page_keeps_working(text, message):
    at = open_page()
    at.radio(key="w:filter_mode").set_value("list")
    run(at)
    at.text_input(key="w:filters").input(text)
    run(at)
    msgs = errors(at)
    assert len(msgs) == 1 and message in msgs[0], msgs
    assert msgs[0].startswith("Problem reading the filter indices")
    # the neurons part still renders
    assert "Grad-CAM++ — all positions" in captions(at)


def test_region_of_neurons():
    at = open_page()
    at.radio(key="w:neuron_mode").set_value("region")
    run(at)
    assert at.slider(key="w:region_rows").value == (2, 6)
    at.slider(key="w:region_rows").set_value((1, 3))
    run(at)
    at.slider(key="w:region_cols").set_value((4, 7))
    run(at)
    caps = captions(at)
    assert "The layer's 8×8 grid over the image; chosen: rows 1–3, columns 4–7." in caption_texts(
        at
    )
    assert "Grad-CAM — rows 1–3, columns 4–7" in caps
    assert "Grad-CAM++ — rows 1–3, columns 4–7" in caps
    assert at.session_state["region"] == [1, 4, 3, 7]
    assert not errors(at)


def test_individual_neuron_positions():
    at = open_page()
    at.radio(key="w:neuron_mode").set_value("positions")
    run(at)
    assert "Grad-CAM++ — positions (4, 4)" in captions(at)  # the slider position alone
    at.slider(key="w:pos_row").set_value(1)
    at.slider(key="w:pos_col").set_value(2)
    run(at)
    at.button[[b.label for b in at.button].index("Add position")].click()
    run(at)
    at.slider(key="w:pos_row").set_value(6)
    run(at)
    at.button[[b.label for b in at.button].index("Add position")].click()
    run(at)
    assert "Grad-CAM++ — positions (1, 2), (6, 2)" in captions(at)
    assert any("Chosen positions (row, column): (1, 2), (6, 2)" in c.value for c in at.caption)
    at.button[[b.label for b in at.button].index("Clear positions")].click()
    run(at)
    assert "Grad-CAM++ — positions (6, 2)" in captions(at)
    assert not errors(at)


def test_smoothed_settings_carry_over_from_the_explain_page():
    at = new_app()
    run(at)
    set_noise(at, samples=2)
    at.switch_page(PAGE)
    run(at)
    assert "Smooth Grad-CAM++ (2 samples, σ=0.15) — 8 filters" in captions(at)
    assert any("Smoothed: 2 noise samples" in c.value for c in at.caption)
    # and back on the Explain page the slider kept its value
    at.switch_page("pages/explain.py")
    run(at)
    assert at.slider(key="w:n_samples").value == 2
    assert "Smooth Grad-CAM (2 samples, σ=0.15)" in captions(at)


def test_another_layer_has_another_grid():
    at = open_page(layer="xception/block4_sepconv2_act")
    assert not errors(at)
    grid = [c.value for c in at.caption if c.value.startswith("The layer's")]
    assert grid and grid[0].startswith("The layer's 31×31 grid")
    assert "filter 0 does not exist" not in " ".join(errors(at))


def test_the_filter_terms_follow_the_chosen_method():
    """Every CAM method chosen on Explain can be taken apart filter by filter: the top k and
    their weights are that method's, and the maps of the chosen filters are drawn for each."""
    from explainers import explain_details, zoo

    at = open_page(methods="gradcam,gradcam++,xgradcam", filter_method="xgradcam")
    assert not errors(at)
    assert at.selectbox(key="w:filter_method").value == "xgradcam"
    caps = filter_captions(at)
    weights = [float(c.split("w = ")[1].split(" ")[0].rstrip(";")) for c in caps]
    # The same numbers from the explainer itself: XGrad-CAM's 8 largest channel weights.
    bundle = zoo.load_model("skin-lesion")
    sample = zoo.list_samples()[0]
    ex = explain_details(
        bundle.model,
        zoo.prepare(bundle, sample.path),
        extra_inputs=[sample.metadata()],
        methods=("xgradcam",),
    )
    expected = sorted(ex.weights["xgradcam"][0], reverse=True)[:8]
    assert weights == pytest.approx(expected, rel=6e-3)  # printed to 3 significant digits
    assert "XGrad-CAM — 8 filters" in captions(at)
    assert any(c.startswith("XGrad-CAM — all") for c in captions(at))
