"""Lesion segmentation on synthetic dermoscopy-like images with known masks (a plain disc; a
lesion with a pale part under hair, a ruler, a vignette and uneven light; a lesion fading into
the skin), the outline's stability, the vignette detector, Otsu's threshold, the building
blocks against NumPy references, and the segment command."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from explainers import cli
from explainers.trust.segmentation import (
    STABLE_IOU,
    dark_corners,
    fill_holes,
    iou,
    otsu_threshold,
    outline,
    reconstruct,
    remove_hair,
    segment_lesion,
    to_lab,
)

SKIN, LESION = (222, 172, 150), (110, 62, 48)


def synthetic(h=180, w=240, centre=(90, 120), radius=40, vignette=False, seed=0):
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2
    img = np.zeros((h, w, 3)) + SKIN
    img[disc] = LESION
    corners = np.zeros((h, w), bool)
    if vignette:  # a dark ring outside the dermoscope's circular field
        corners = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.5 * w) ** 2
        img[corners] = (15, 12, 10)
    img += np.random.default_rng(seed).normal(0, 10, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), disc, corners


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"centre": (80, 140), "radius": 30},
        {"radius": 60, "vignette": True},
        {"h": 450, "w": 600, "centre": (230, 290), "radius": 120, "vignette": True},
    ],
)
def test_discs_are_found_with_their_known_masks(kw):
    image, disc, _ = synthetic(**kw)
    mask = segment_lesion(image)
    assert mask.shape == disc.shape
    assert iou(mask, disc) > 0.9


def test_the_disc_nearest_the_centre_wins_and_holes_are_filled():
    image, disc, _ = synthetic()
    arr = np.array(image)
    arr[10:40, 10:40] = LESION  # another dark blob in a corner
    arr[85:95, 115:125] = SKIN  # a skin-coloured hole in the lesion
    mask = segment_lesion(Image.fromarray(arr))
    assert not mask[10:40, 10:40].any()
    assert mask[85:95, 115:125].all()
    assert iou(mask, disc) > 0.9


def test_vignette_is_detected_and_absent_when_there_is_none():
    image, _, corners = synthetic(vignette=True)
    found = dark_corners(image)
    assert iou(found, corners) > 0.85
    assert not dark_corners(synthetic()[0]).any()


def test_otsu_splits_two_clusters():
    values = np.r_[np.full(100, 10.0), np.full(50, 200.0)]
    assert 10 < otsu_threshold(values) <= 200
    assert ((values > otsu_threshold(values)) == (values == 200)).all()


def test_segment_command_writes_a_mask_at_the_image_size(tmp_path, capfd):
    image, disc, _ = synthetic(h=150, w=200, centre=(75, 100), radius=35)
    image.save(tmp_path / "img.png")
    assert (
        cli.main(
            ["segment", "--image", str(tmp_path / "img.png"), "--out", str(tmp_path / "m.png")]
        )
        == 0
    )
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == (150, 200) and set(np.unique(mask)) == {0, 255}
    assert iou(mask == 255, disc) > 0.9
    printed = capfd.readouterr().out
    assert f"outline stability {outline(image).stability:.2f} (stable" in printed
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert (
        cli.main(
            ["segment", "--image", str(tmp_path / "bad.png"), "--out", str(tmp_path / "x.png")]
        )
        == 2
    )
    assert capfd.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    assert (
        cli.main(
            ["segment", "--image", str(tmp_path / "img.png"), "--out", str(tmp_path / "x.jpg")]
        )
        == 2
    )


PALE = (178, 126, 100)  # a light-brown part of the lesion, between the dark core and the skin


def hard_lesion(seed=0, hair=True, bright_middle=True, h=450, w=600):
    """A 600x450 lesion: dark core plus a pale upper lobe (the known mask is both), nine hairs
    3 px wide across it, a ruler, a dark vignette and (optionally) a brighter middle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h * 0.52, w * 0.5
    core = ((yy - cy) / 70) ** 2 + ((xx - cx) / 85) ** 2 < 1
    light = ((yy - (cy - 75)) / 60) ** 2 + ((xx - (cx - 15)) / 75) ** 2 < 1
    img = np.zeros((h, w, 3)) + SKIN
    if bright_middle:  # uneven lighting: the middle 18 levels brighter than the border
        img += (18 * (1 - ((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (0.5 * w) ** 2))[..., None]
    img[light] = PALE
    img[core] = LESION
    im = Image.fromarray(np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(9 if hair else 0):
        x0, y0, a = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, np.pi)
        draw.line(
            [
                (x0 - 400 * np.cos(a), y0 - 400 * np.sin(a)),
                (x0 + 400 * np.cos(a), y0 + 400 * np.sin(a)),
            ],
            fill=(45, 30, 25),
            width=3,
        )
    for k in range(14):  # a ruler along the bottom
        draw.line(
            [(60 + 34 * k, h - 45), (60 + 34 * k, h - 57 - 10 * (k % 5 == 0))],
            fill=(30, 30, 30),
            width=2,
        )
    draw.line([(60, h - 45), (502, h - 45)], fill=(30, 30, 30), width=2)
    arr = np.array(im)
    arr[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.52 * w) ** 2] = (14, 11, 10)
    return Image.fromarray(arr), core | light


@pytest.mark.parametrize(
    "kw", [{}, {"seed": 1}, {"seed": 2, "hair": False}, {"seed": 4, "bright_middle": False}]
)
def test_the_pale_part_of_a_lesion_under_hair_is_found(kw):
    # The previous pipeline (Otsu on the colour distance from the skin) kept the dark core
    # only: IoU 0.78, 0.71, 0.69 and 0.79 on these four images.
    image, known = hard_lesion(**kw)
    found = outline(image)
    assert iou(found.mask, known) > 0.9
    assert not found.uncertain  # sharp borders: the same outline at both likelihood ratios


def gradual(power, seed=0, h=180, w=240):
    """A lesion whose colour fades into the skin from the centre out to 85 px."""
    yy, xx = np.mgrid[:h, :w]
    t = np.clip(1 - np.hypot(yy - h / 2, xx - w / 2) / 85, 0, 1)[..., None] ** power
    img = np.array(SKIN) + (np.array(LESION) - np.array(SKIN)) * t
    return Image.fromarray(
        np.clip(img + np.random.default_rng(seed).normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    )


def test_a_lesion_fading_into_the_skin_has_an_uncertain_outline_and_a_disc_does_not():
    fading = outline(gradual(2))
    assert fading.stability < STABLE_IOU and fading.uncertain
    disc = outline(synthetic(radius=60, vignette=True)[0])
    assert disc.stability > 0.95 and not disc.uncertain
    assert (segment_lesion(gradual(2)) == fading.mask).all()


def test_hair_closing_keeps_wide_dark_areas_and_removes_thin_lines():
    img = np.full((60, 80, 3), 200.0)
    img[:, 40:42] = 20  # a hair, 2 px wide
    img[10:40, 5:30] = 20  # a lesion, 30x25 px
    out = remove_hair(img, 7)
    assert (out[:, 40:42] == 200).all()
    assert (out[10:40, 5:30] == 20).all()


def test_lab_known_values_and_components_against_a_flood_fill():
    lab = to_lab(np.array([[255, 255, 255], [255, 0, 0], [0, 0, 0]], float))
    assert lab == pytest.approx(np.array([[100, 0, 0], [53.24, 80.09, 67.20], [0, 0, 0]]), abs=0.05)
    rng = np.random.default_rng(3)
    mask = rng.random((30, 40)) < 0.55
    marker = np.zeros_like(mask)
    marker[15, 20] = mask[15, 20] = True
    ref = marker.copy()  # the reference: grow by 4-neighbours until nothing changes
    while True:
        p = np.pad(ref, 1)
        grown = mask & (ref | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:])
        if (grown == ref).all():
            break
        ref = grown
    assert (reconstruct(mask, marker) == ref).all()
    ring = np.zeros((20, 20), bool)
    ring[5:15, 5:15] = True
    ring[8:12, 8:12] = False
    assert fill_holes(ring)[8:12, 8:12].all() and not fill_holes(ring)[:5].any()
