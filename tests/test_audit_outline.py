"""Claims only as strong as the outline: the outline drawn on the audit figure, the rule that
makes an automatic outline uncertain, the wording it changes, and the batch column."""

import numpy as np
import pytest

from explainers import marks
from explainers.trust.artefact_audit import (
    EDGE_FRACTION,
    Edit,
    audit,
    audit_json,
    band_width,
    edge_share,
    is_uncertain,
)
from explainers.trust.segmentation import STABLE_IOU, outline
from tests.test_audit import brightness_bundle
from tests.test_segmentation import gradual, synthetic


def square(h=40, w=50, box=(10, 30, 15, 40)):
    m = np.zeros((h, w), bool)
    m[box[0] : box[1], box[2] : box[3]] = True
    return m


def test_the_outline_is_drawn_on_top_in_its_colour_and_nothing_else_changes():
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    mask = square()
    out = marks.draw_contour(picture, mask, color=(255, 0, 255), width=2)
    ring = mask & ~square(box=(12, 28, 17, 38))  # the 2-px border of the square, by hand
    assert (out[ring] == (255, 0, 255)).all()
    assert (out[~ring] == picture[~ring]).all()
    assert marks.OUTLINE_COLOR == (255, 255, 255)
    assert (marks.draw_contour(picture, mask)[ring] == 255).all()


def test_a_dashed_outline_and_a_mask_at_another_size():
    picture = np.zeros((80, 100, 3), np.uint8)
    mask = square()  # 40x50: drawn at twice its size
    full = marks.contour(mask, (80, 100), width=2)
    assert full[20:60, 30:80].any() and not full[:20].any() and not full[24:56, 34:76].any()
    dashed = marks.contour(mask, (80, 100), width=2, dashed=True)
    assert (dashed <= full).all() and 0.3 < dashed.sum() / full.sum() < 0.7
    out = marks.draw_contour(picture, mask, dashed=True)
    assert dashed.any() and (out[dashed] == 255).all()
    with pytest.raises(Exception):
        marks.contour(np.zeros((2, 3, 4)), (10, 10))


def test_band_width_is_one_map_cell_and_at_least_a_sliver_of_the_image():
    assert band_width((450, 600), (8, 8)) == 57  # cells of 56.25 x 75 px: the shorter, rounded up
    assert band_width((450, 600), (100, 100)) == round(EDGE_FRACTION * 450)  # a fine map: 3 %
    assert band_width((450, 600), (450, 600)) == 14


def test_edge_share_is_the_high_area_in_the_band_just_outside_the_outline():
    lesion = square(100, 100, (30, 70, 30, 70))
    hugging = np.zeros((100, 100), bool)
    hugging[30:70, 70:73] = True  # 3 px wide strip right of the lesion, all in a 3-px band
    far = np.zeros((100, 100), bool)
    far[30:70, 85:95] = True
    assert edge_share(hugging, lesion, 3) == 1.0
    assert edge_share(far, lesion, 3) == 0.0
    assert edge_share(hugging | far, lesion, 3) == pytest.approx(120 / 520)
    assert (
        edge_share(hugging | far, lesion, 25) == 1.0
    )  # a coarse map: both within a cell (cols 70..94)
    assert edge_share(np.zeros_like(far), lesion, 3) == 0.0


def test_uncertainty_rule():
    assert is_uncertain("auto", STABLE_IOU - 0.01, 0.0)
    assert is_uncertain("auto", 0.99, 0.5)
    assert not is_uncertain("auto", 0.99, 0.49)
    assert not is_uncertain("upload", None, 1.0)  # an expert mask is taken as given


def test_wording_firm_hedged_and_no_change():
    firm = Edit("outside-high", "the high-map area outside the lesion", 0.96, 0.26, 500)
    assert firm.sentence("mel") == (
        "hiding the high-map area outside the lesion moves P(mel) 0.96 → 0.26: "
        "the prediction leans on it"
    )
    hedged = Edit(
        "outside-high",
        "the high-map area outside the lesion outline",
        0.96,
        0.26,
        500,
        uncertain=True,
    )
    assert hedged.sentence("mel") == (
        "hiding the high-map area outside the lesion outline moves P(mel) 0.96 → 0.26: "
        "the prediction may lean on the area outside the outline — the outline "
        "itself is uncertain here"
    )
    still = Edit("outside-high", "x", 0.96, 0.95, 500, uncertain=True)
    assert still.sentence("mel").endswith("the prediction does not rest on it")


def test_audit_of_a_fading_lesion_is_uncertain_and_of_a_sharp_disc_is_not():
    bundle = brightness_bundle()
    image = gradual(2)
    cam = np.zeros((8, 8))
    cam[1:7, 1:7] = 1.0  # high over the lesion and around it
    result = audit(bundle, image, cam, 0)
    auto = outline(image)
    assert result.stability == pytest.approx(auto.stability) and auto.uncertain
    assert result.uncertain and result.mask_source == "auto"
    edit = {e.region: e for e in result.edits}["outside-high"]
    assert edit.uncertain and "outside the lesion outline" in edit.description
    assert not {e.region: e for e in result.edits}["corners"].uncertain
    data = audit_json(result)
    assert data["outline_uncertain"] is True and data["outline_stability"] == pytest.approx(
        auto.stability, abs=1e-4
    )

    disc_image, _disc, _ = synthetic(radius=60)
    spot = np.zeros((8, 8))
    spot[3:5, 3:5] = 1.0  # high only inside the disc
    sharp = audit(bundle, disc_image, spot, 0)
    assert not sharp.uncertain and sharp.stability > STABLE_IOU and sharp.edge_share < 0.5
    uploaded = audit(bundle, image, cam, 0, mask=auto.mask)  # same outline, but given: no hedge
    assert not uploaded.uncertain and uploaded.stability is None
    assert audit_json(uploaded)["outline_stability"] is None
