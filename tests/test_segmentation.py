"""Lesion segmentation on synthetic dermoscopy-like images with known masks, the vignette
detector, Otsu's threshold, and the segment command."""

import numpy as np
import pytest
from PIL import Image

from explainers import cli
from explainers.trust.segmentation import dark_corners, iou, otsu_threshold, segment_lesion

SKIN, LESION = (222, 172, 150), (110, 62, 48)


def synthetic(h=180, w=240, centre=(90, 120), radius=40, vignette=False, seed=0):
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius ** 2
    img = np.zeros((h, w, 3)) + SKIN
    img[disc] = LESION
    corners = np.zeros((h, w), bool)
    if vignette:  # a dark ring outside the dermoscope's circular field
        corners = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.5 * w) ** 2
        img[corners] = (15, 12, 10)
    img += np.random.default_rng(seed).normal(0, 10, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), disc, corners


@pytest.mark.parametrize("kw", [dict(), dict(centre=(80, 140), radius=30), dict(radius=60, vignette=True),
                                dict(h=450, w=600, centre=(230, 290), radius=120, vignette=True)])
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
    assert cli.main(["segment", "--image", str(tmp_path / "img.png"), "--out", str(tmp_path / "m.png")]) == 0
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert mask.shape == (150, 200) and set(np.unique(mask)) == {0, 255}
    assert iou(mask == 255, disc) > 0.9
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert cli.main(["segment", "--image", str(tmp_path / "bad.png"), "--out", str(tmp_path / "x.png")]) == 2
    assert capfd.readouterr().err.strip().splitlines()[-1].startswith("error: ")
    assert cli.main(["segment", "--image", str(tmp_path / "img.png"), "--out", str(tmp_path / "x.jpg")]) == 2
