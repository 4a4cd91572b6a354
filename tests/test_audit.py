"""The audit: energy shares per region against hand-built maps, and an edit that provably
changes a tiny model's output (its score is the image's mean brightness)."""

import keras
import numpy as np
import pytest

from explainers.trust.artefact_audit import (
    audit,
    audit_json,
    box_mask,
    energy_shares,
    hide,
    region_masks,
)
from explainers.zoo import ModelBundle
from tests.test_segmentation import synthetic


def test_regions_are_disjoint_and_energy_shares_are_exact():
    image, disc, corners = synthetic(vignette=True)
    regions = region_masks(image, disc)
    stacked = np.stack(list(regions.values())).sum(0)
    assert (stacked == 1).all()  # each pixel in exactly one region
    assert regions["corners"].sum() > 0.8 * corners.sum()
    cam = disc.astype(np.float32) * 3.0  # a map at the image size, all inside the lesion
    shares = energy_shares(cam, regions)
    assert shares["lesion"] == pytest.approx(1.0) and sum(shares.values()) == pytest.approx(1.0)
    cam = np.ones(disc.shape)
    assert energy_shares(cam, regions)["skin"] == pytest.approx(regions["skin"].mean())


def brightness_bundle():
    """Two classes whose logits are +-(mean brightness - 128) / 20: P(class 0) rises with light."""
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="head")(x))
    k = np.zeros((3, 3, 3, 2), np.float32)
    k[1, 1, :, 0] = 1 / 3
    model.get_layer("conv").set_weights([k, np.zeros(2, np.float32)])
    model.get_layer("head").set_weights(
        [
            np.array([[1 / 20, -1 / 20], [0, 0]], np.float32),
            np.array([-128 / 20, 128 / 20], np.float32),
        ]
    )
    return ModelBundle(
        key="tiny",
        label="tiny",
        model=model,
        input_size=(32, 32),
        class_names=["light", "dark"],
        preprocess=lambda a: a,
        weights="file",
    )


def test_hiding_the_dark_corners_changes_the_tiny_models_output():
    bundle = brightness_bundle()
    image, disc, _corners = synthetic(vignette=True)
    cam = np.ones((8, 8))
    result = audit(bundle, image, cam, 0, mask=disc)
    edit = {e.region: e for e in result.edits}["corners"]
    assert edit.pixels > 0
    assert edit.probability_after > edit.probability_before + 0.05  # lighter corners -> "light" up
    assert "leans on it" in edit.sentence("light")
    data = audit_json(result)
    assert data["mask"] == "upload" and set(data["energy"]) == {
        "lesion",
        "border",
        "skin",
        "corners",
    }
    assert [set(e) for e in data["edits"]] == [
        {"region", "probability_before", "probability_after"}
    ] * 2


def test_box_edit_and_modes():
    bundle = brightness_bundle()
    image, _disc, _ = synthetic()
    result = audit(bundle, image, np.ones((8, 8)), 0, box=(0, 0, 240, 180), mode="blur")
    assert result.mask_source == "auto" and result.edits[-1].region == "box"
    filled = np.asarray(hide(image, box_mask((180, 240), (100, 60, 140, 120)), "fill"))
    assert filled[60:120, 100:140].std(axis=(0, 1)).max() == 0  # one skin colour
    with pytest.raises(Exception):
        box_mask((10, 10), (5, 5, 5, 9))


def test_a_uniform_image_has_no_lesion_but_still_an_audit():
    from PIL import Image

    bundle = brightness_bundle()
    image = Image.new("RGB", (64, 48), (200, 160, 140))
    result = audit(bundle, image, np.ones((8, 8)), 0)
    assert not result.lesion.any() and result.energy["lesion"] == 0.0
    assert result.energy["skin"] == pytest.approx(1.0)
