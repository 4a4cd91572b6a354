"""The batch command on a folder of 3 small images and 1 corrupt file, with a tiny model file:
outputs per image, results.csv, resuming, error rows, and the user's mistakes."""

import csv
import io

import keras
import numpy as np
import pytest
from PIL import Image

from explainers import ExplainerError
from explainers.batch import run as B


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    p = keras.layers.GlobalAveragePooling2D()(a)
    out = keras.layers.Dense(3, activation="softmax", name="head")(p)
    model_path = root / "tiny.keras"
    keras.Model(inp, out).save(model_path)

    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            images / f"im{i}.png"
        )
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (images / "notes.txt").write_text("not an image: ignored")

    masks = root / "masks"
    masks.mkdir()
    m = np.zeros((20, 24), np.uint8)
    m[5:15, 6:18] = 255
    Image.fromarray(m).save(masks / "im0_segmentation.png")

    meta = root / "labels.csv"
    meta.write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\nL1,im1,nv,histo,40,female,back\n"
    )
    return root, model_path, images, masks, meta


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_batch_runs_resumes_and_logs_errors(setup):
    root, model_path, images, masks, meta = setup
    out = root / "out"
    log = io.StringIO()
    result = B.run_batch(
        str(model_path),
        images,
        out,
        samples=2,
        masks=masks,
        metadata=meta,
        batch_size=2,
        n_steps=4,
        progress=log,
    )
    assert (result.total, result.processed, result.failed, result.skipped) == (4, 3, 1, 0)
    rows = read_rows(out / "results.csv")
    assert sorted(r["image"] for r in rows) == ["broken.jpg", "im0.png", "im1.png", "im2.png"]
    by_name = {r["image"]: r for r in rows}
    assert "broken.jpg" in by_name["broken.jpg"]["error"]
    for name in ("im0", "im1", "im2"):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.npz").is_file()
        row = by_name[f"{name}.png"]
        assert row["error"] == ""
        assert 0 <= float(row["probability"]) <= 1 and row["prediction"] == row["target"]
        for v in ("gradcam", "gradcam++", "smooth-gradcam", "smooth-gradcam++"):
            for k in (
                "average_drop_pct",
                "increase_in_confidence_pct",
                "deletion_auc",
                "insertion_auc",
            ):
                assert np.isfinite(float(row[f"{v}:{k}"]))
    # The mask gives localisation scores for im0 only; the metadata's dx is recorded for im1.
    assert by_name["im0.png"]["mask"] == "im0_segmentation.png"
    assert by_name["im0.png"]["gradcam:iou"] != "" and by_name["im2.png"]["gradcam:iou"] == ""
    assert by_name["im1.png"]["dx"] == "nv" and by_name["im1.png"]["age"] == "40"
    with np.load(out / "im0.npz") as npz:
        assert npz["map:gradcam"].shape == (16, 16)
        assert npz["deletion:smooth-gradcam++"].shape == (5,)
        assert npz["image"].shape == (16, 16, 3) and npz["mask"].shape == (16, 16)
    assert Image.open(out / "im0.png").size[1] > 16
    # The trust and audit figures, known answers from the saved map and the given mask (im0).
    from explainers.trust.artefact_audit import energy_shares, region_masks
    from explainers.trust.card import centre_likeness

    row = by_name["im0.png"]
    with np.load(out / "im0.npz") as npz:
        cam, shown, mask = npz["map:gradcam"], npz["image"], npz["mask"]
    assert float(row["gradcam:centre_prior"]) == pytest.approx(centre_likeness(cam), abs=1e-5)
    shares = energy_shares(cam, region_masks(Image.fromarray(shown), mask))
    assert float(row["gradcam:lesion_energy"]) == pytest.approx(shares["lesion"], abs=1e-5)
    assert float(row["gradcam:corner_energy"]) == pytest.approx(shares["corners"], abs=1e-5)
    for v in ("gradcam", "smooth-gradcam++"):
        assert -1 <= float(row[f"{v}:class_sensitivity"]) <= 1
        assert -1 <= float(row[f"{v}:hidden_corners_change"]) <= 1
        assert float(row[f"{v}:outline_uncertain"]) == 0.0  # a given mask is never "uncertain"
        assert float(by_name["im1.png"][f"{v}:outline_uncertain"]) in (
            0.0,
            1.0,
        )  # automatic outline
    text = log.getvalue()
    assert "4/4 images" in text and "broken.jpg (error)" in text
    summary = read_rows(out / "summary.csv")
    assert [r["Method"] for r in summary][:2] == ["Grad-CAM", "Grad-CAM++"] and len(summary) == 4
    assert summary[0]["Images"] == "3"
    before = {r["image"]: r for r in rows if not r["error"]}

    # Second run: the three done images are skipped; the corrupt one is retried (and fails again).
    again = B.run_batch(
        str(model_path),
        images,
        out,
        samples=2,
        masks=masks,
        metadata=meta,
        batch_size=2,
        n_steps=4,
        progress=False,
    )
    assert (again.skipped, again.processed, again.failed) == (3, 0, 1)
    rows2 = read_rows(out / "results.csv")
    assert len(rows2) == 4
    assert {r["image"]: r for r in rows2 if not r["error"]} == before

    # Other settings into the same folder: refused, nothing mixed.
    with pytest.raises(ExplainerError, match="other settings"):
        B.run_batch(
            str(model_path), images, out, samples=0, batch_size=2, n_steps=4, progress=False
        )


def test_batch_user_errors_are_one_line(setup, tmp_path):
    _root, model_path, images, _masks, _meta = setup
    with pytest.raises(ExplainerError, match="images folder not found"):
        B.run_batch(str(model_path), tmp_path / "nope", tmp_path / "o")
    with pytest.raises(ExplainerError, match="no images"):
        B.run_batch(str(model_path), tmp_path, tmp_path / "o")
    with pytest.raises(ExplainerError, match="masks folder"):
        B.run_batch(str(model_path), images, tmp_path / "o", masks=tmp_path / "nomasks")
    with pytest.raises(ExplainerError, match="metadata file not found"):
        B.run_batch(str(model_path), images, tmp_path / "o", metadata=tmp_path / "x.csv")
    with pytest.raises(ExplainerError, match="batch size"):
        B.run_batch(str(model_path), images, tmp_path / "o", batch_size=0)
    with pytest.raises(ExplainerError, match="another folder"):
        B.run_batch(str(model_path), images, images)
    with pytest.raises(ExplainerError, match="unknown method"):
        B.run_batch(str(model_path), images, tmp_path / "o", methods=("lime",))


def test_cli_batch(setup, tmp_path, capsys):
    from explainers.cli import main

    _root, model_path, images, _masks, _meta = setup
    code = main(
        [
            "batch",
            "--model",
            str(model_path),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "cli"),
            "--method",
            "gradcam",
            "--steps",
            "4",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "| Grad-CAM |" in captured.out and "Average Drop (%)" in captured.out
    assert "4/4 images" in captured.err
    code = main(
        [
            "batch",
            "--model",
            str(model_path),
            "--images",
            str(tmp_path / "missing"),
            "--out",
            str(tmp_path / "cli2"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"error: images folder not found: {tmp_path / 'missing'}"]


def test_baselines_are_scored_beside_the_methods(setup, tmp_path):
    _root, model_path, images, _masks, _meta = setup
    result = B.run_batch(
        str(model_path),
        images,
        tmp_path / "base",
        methods=("gradcam",),
        baselines=True,
        n_steps=4,
        progress=False,
    )
    assert list(result.summary) == ["gradcam", "centre", "random"]
    assert result.labels["centre"] == "Centre prior (baseline)"
    rows = [r for r in read_rows(tmp_path / "base" / "results.csv") if not r["error"]]
    assert all(np.isfinite(float(r["random:deletion_auc"])) for r in rows)
    with np.load(tmp_path / "base" / "im1.npz") as npz:
        assert npz["map:centre"].shape == (16, 16)
        assert npz["map:centre"][8, 8] > npz["map:centre"][0, 0]


def test_a_mask_of_another_images_proportions_is_that_rows_error(setup, tmp_path):
    _root, model_path, images, _masks, _meta = setup
    wrong = tmp_path / "masks"
    wrong.mkdir()
    m = np.zeros((40, 20), np.uint8)  # the images are 24 × 20: a tall mask is another image's
    m[5:30, 5:15] = 255
    Image.fromarray(m).save(wrong / "im1_segmentation.png")
    B.run_batch(str(model_path), images, tmp_path / "out", masks=wrong, n_steps=4, progress=False)
    with open(tmp_path / "out" / "results.csv", newline="") as f:
        rows = {r["image"]: r for r in csv.DictReader(f)}
    assert "the mask is 20×40 pixels but the image is 24×20" in rows["im1.png"]["error"]
    assert not rows["im0.png"]["error"] and not rows["im2.png"]["error"]
