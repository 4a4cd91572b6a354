"""The command line with every method: ``--method all``, ``--json`` (one object, nothing else
on stdout), ``--out x.npz`` (one array per method key) and the PNG of every panel."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from explainers import cli
from explainers.evaluation.localisation import cam_box
from explainers.methods import REGISTRY, method_keys


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("methods_cli")
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(x)).save(
        d / "tiny.keras"
    )
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "img.png")
    (d / "names.txt").write_text("cat\ndog\nbird\nfish\n")
    return d


def test_json_is_one_object_with_the_documented_fields(files, tmp_path, capfd):
    out = tmp_path / "all.npz"
    rc = cli.main(
        [
            "explain",
            "--model",
            str(files / "tiny.keras"),
            "--image",
            str(files / "img.png"),
            "--class-names",
            str(files / "names.txt"),
            "--method",
            "all",
            "--json",
            "--out",
            str(out),
        ]
    )
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)  # the whole of stdout is one JSON object
    assert captured.out.count("\n") == 1
    assert set(report) == {
        "model",
        "image",
        "layer",
        "target",
        "probabilities",
        "methods",
        "filters",
        "text",
        "trust",
        "audit",
    }
    assert report["layer"] == "conv_b" and report["image"] == str(files / "img.png")
    probs = report["probabilities"]
    assert list(probs) == ["cat", "dog", "bird", "fish"] and abs(sum(probs.values()) - 1) < 1e-5
    t = report["target"]
    assert set(t) == {"index", "name", "probability"}
    assert t["name"] == list(probs)[t["index"]] and t["probability"] == max(probs.values())
    assert list(report["methods"]) == list(method_keys())
    data = np.load(out)
    for key, entry in report["methods"].items():
        cam = REGISTRY[key].cam
        assert set(entry) == (
            {"shape", "max", "box", "seconds"} if cam else {"shape", "max", "seconds"}
        )
        assert entry["shape"] == list(data[key].shape) and entry["seconds"] > 0
        assert entry["max"] == pytest.approx(float(data[key].max()), rel=1e-6)
        if cam:
            assert entry["shape"] == [28, 28]
            box = cam_box(data[key], (40, 48))  # in the pixels of the image as given
            assert entry["box"] == (None if box is None else list(box))
        else:
            assert entry["shape"] == [32, 32, 3]
    for side in ("top", "bottom"):
        for f in report["filters"][side]:
            assert set(f) == {"index", "weight"} and 0 <= f["index"] < 8
            assert f"#{f['index']}" in report["text"]
    assert len(report["filters"]["top"]) + len(report["filters"]["bottom"]) >= 5
    assert report["text"].startswith(f"For {t['name']} at layer conv_b")
    assert list(data["methods"]) == list(method_keys())


def test_text_output_and_png_of_every_method(files, tmp_path, capfd):
    out = tmp_path / "all.png"
    rc = cli.main(
        [
            "explain",
            "--model",
            str(files / "tiny.keras"),
            "--image",
            str(files / "img.png"),
            "--method",
            "scorecam,guided-backprop",
            "--max-channels",
            "3",
            "--out",
            str(out),
        ]
    )
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert "Score-CAM: map 28x28" in captured.out and "box [x0, y0, x1, y1] = [" in captured.out
    assert "Guided Backprop: map 32x32x3" in captured.out and "text: For " in captured.out
    picture = Image.open(out)
    assert (
        picture.width == 3 * 48 + 2 * 6
    )  # input | Score-CAM | guided backprop at the image's size


def test_unknown_method_in_a_list_is_one_error_line(files, capfd):
    with pytest.raises(SystemExit) as info:
        cli.main(["explain", "--model", "x", "--image", "y", "--method", "gradcam,lime"])
    err = capfd.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: argument --method: unknown method in 'gradcam,lime'")


def test_batch_takes_every_gradient_cam_method(files, tmp_path, capfd):
    import csv

    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes((files / "img.png").read_bytes())
    out = tmp_path / "out"
    rc = cli.main(
        [
            "batch",
            "--model",
            str(files / "tiny.keras"),
            "--images",
            str(images),
            "--out",
            str(out),
            "--method",
            "all",
            "--steps",
            "4",
        ]
    )
    assert rc == 0, capfd.readouterr().err
    with open(out / "results.csv", newline="") as f:
        row = next(csv.DictReader(f))
    for key in method_keys(needs="tape", family="cam"):
        assert float(row[f"{key}:deletion_auc"]) >= 0, key
    data = np.load(out / "a.npz")
    assert data["map:hirescam"].shape == (28, 28)
