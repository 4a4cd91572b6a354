"""The command line: happy paths write real maps; every user error is exit 2 and one stderr line.

A few cases run ``python -m explainers`` in a subprocess (the real process: TensorFlow's start-up
noise, argparse, the exit status); the rest call ``cli.main`` in-process, checked at the file
descriptor level with ``capfd``, so the suite stays fast on two CPU cores.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from explainers import cli
from explainers.cli import common as cli_model
from explainers.cli import explain as explain_command
from explainers.errors import ExplainerError
from tests.conftest import ROOT

SAMPLES = ROOT / "explainers" / "data" / "samples"
MEL = SAMPLES / "ISIC_0024367.jpg"


def run_cli(*args, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.pop("EXPLAINERS_DEBUG", None)
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-m", "explainers", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_error_line(rc, stderr, fragment):
    assert rc == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    assert fragment in lines[0], lines[0]


def _cnn(input_shape=(32, 32, 3), lam=False):
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_b")(x)
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2.0, name="code")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(x))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    keras.utils.set_random_seed(0)
    _cnn().save(d / "tiny.keras")
    _cnn(lam=True).save(d / "lambda.keras")
    inp = keras.Input((8, 8, 3))
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inp))).save(
        d / "flat.keras"
    )
    (d / "notmodel.keras").write_text("not a model")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "img.png")
    data = (d / "img.png").read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("hello")
    Image.new("L", (10_000, 10_000), 0).save(d / "bomb.png", optimize=True)  # 100 MP, ~100 kB
    (d / "names.txt").write_text("cat\ndog\n\nbird\nfish\n")
    (d / "names3.txt").write_text("cat\ndog\nbird\n")
    return d


# --- real processes -------------------------------------------------------------------------


def test_skin_lesion_with_metadata_end_to_end(tmp_path):
    out = tmp_path / "maps.npz"
    rc, stdout, stderr = run_cli(
        "explain",
        "--model",
        "skin-lesion",
        "--image",
        MEL,
        "--age",
        "35",
        "--sex",
        "female",
        "--site",
        "back",
        "--out",
        out,
    )
    assert rc == 0, stderr
    assert stderr == ""  # not even TensorFlow's start-up lines
    assert "prediction (top 3, probability):" in stdout
    assert "1. [4] mel — melanoma: " in stdout and "%" in stdout
    assert (
        "explained: class [4] mel — melanoma" in stdout
        and "xception/block14_sepconv2_act" in stdout
    )
    data = np.load(out)
    for method in ("gradcam", "gradcam++"):
        assert data[method].shape == (8, 8) and data[method].dtype == np.float32
        assert (
            np.isfinite(data[method]).all() and data[method].min() >= 0 and data[method].max() > 0
        )
    assert data["image"].shape == (254, 254, 3) and data["image"].dtype == np.uint8
    assert int(data["target"]) == 4 and str(data["class_name"]) == "mel"
    assert str(data["layer"]) == "xception/block14_sepconv2_act"


@pytest.mark.parametrize("case", ["lambda", "negative-sigma"])
def test_user_errors_in_a_real_process(files, case):
    args = {
        "lambda": ["explain", "--model", files / "lambda.keras", "--image", files / "img.png"],
        "negative-sigma": ["explain", "--model", "MobileNetV2", "--image", MEL, "--sigma", "-1"],
    }[case]
    fragment = {"lambda": "would run", "negative-sigma": "--sigma"}[case]
    rc, _, stderr = run_cli(*args)
    assert_one_error_line(rc, stderr, fragment)


def test_offline_imagenet_weights_in_a_real_process(tmp_path):
    # An empty Keras cache and a proxy that refuses connections: offline, whatever the machine.
    env = {
        "KERAS_HOME": str(tmp_path / "keras"),
        "TMPDIR": str(tmp_path),
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "no_proxy": "",
    }
    rc, _, stderr = run_cli("layers", "--model", "MobileNetV2", env_extra=env)
    assert_one_error_line(rc, stderr, "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5")
    assert str(tmp_path / "keras" / "models") in stderr and "--weights none" in stderr


# --- in-process -----------------------------------------------------------------------------


def test_mobilenet_random_weights_png_side_by_side(tmp_path, capfd):
    out = tmp_path / "overlay.png"
    rc = cli.main(
        [
            "explain",
            "--model",
            "MobileNetV2",
            "--weights",
            "none",
            "--image",
            str(MEL),
            "--out",
            str(out),
        ]
    )
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert "random weights" in captured.out and "prediction (top 3" in captured.out
    assert "layer out_relu (7x7x1280)" in captured.out
    picture = Image.open(out)
    shown = Image.open(MEL)
    scale = explain_command.PNG_MAX_SIDE / max(shown.size)
    assert picture.width == 3 * round(shown.width * scale) + 2 * 6  # input | Grad-CAM | Grad-CAM++
    assert picture.height > round(shown.height * scale)  # plus the captions


def test_one_method_npz_with_target_filters_neurons_and_smoothing(files, tmp_path, capfd):
    out = tmp_path / "m.npz"
    rc = cli.main(
        [
            "explain",
            "--model",
            str(files / "tiny.keras"),
            "--image",
            str(files / "img.png"),
            "--class-names",
            str(files / "names.txt"),
            "--target",
            "dog",
            "--method",
            "gradcam++",
            "--layer",
            "conv_a",
            "--filters",
            "0-2,5",
            "--neurons",
            "3,4;10,12",
            "--region",
            "--samples",
            "3",
            "--sigma",
            "0.1",
            "--seed",
            "7",
            "--out",
            str(out),
        ]
    )
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert (
        "explained: class [1] dog" in captured.out
        and "Smooth Grad-CAM++ (3 samples" in captured.out
    )
    data = np.load(out)
    assert "gradcam" not in data.files and data["gradcam++"].shape == (30, 30)
    assert (
        int(data["target"]) == 1
        and str(data["class_name"]) == "dog"
        and str(data["layer"]) == "conv_a"
    )
    assert int(data["n_samples"]) == 3
    cam = data["gradcam++"]
    outside = np.ones_like(cam, dtype=bool)
    outside[3:11, 4:13] = False
    assert np.all(cam[outside] == 0)  # only the region's neurons contribute


def test_layers_lists_every_spatial_layer_and_marks_the_default(files, capfd):
    rc = cli.main(["layers", "--model", str(files / "tiny.keras")])
    out = capfd.readouterr().out
    assert rc == 0
    assert "  conv_a  30x30x6" in out and "* conv_b  28x28x8" in out
    assert "head" not in out.split("default):")[1]


def test_index_lists():
    assert cli_model.parse_index_list("3,10,32") == [3, 10, 32]
    assert cli_model.parse_index_list("0-3, 8,2") == [0, 1, 2, 3, 8]
    assert cli_model.parse_positions("3,4;5,6") == [(3, 4), (5, 6)]
    assert cli_model.parse_positions("3:4,5:6") == [(3, 4), (5, 6)]
    for bad, message in (
        ("a", "cannot read 'a'"),
        ("5-2", "runs backwards"),
        ("-1", "0 or more"),
        ("", "no filter indices"),
        ("3-", "cannot read '3-'"),
        ("0-999999999", "far beyond any layer"),
    ):
        with pytest.raises(ExplainerError, match=message):
            cli_model.parse_index_list(bad)
    with pytest.raises(ExplainerError, match="row,col pairs"):
        cli_model.parse_positions("3;4")
    with pytest.raises(ExplainerError, match="more than 4096 neuron positions"):
        cli_model.parse_positions(";".join(["1,2"] * 4097))
    assert len(cli_model.parse_positions(";".join(["1,2"] * 4096))) == 4096


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing image", "image file not found"),
        ("empty image", "empty (0 bytes)"),
        ("truncated image", "truncated.png is truncated"),
        ("non-image", "is not an image file"),
        ("bomb", "decompression bomb"),
        ("unknown layer", "no layer named 'nope'"),
        ("target outside", "target 9 is outside the model's classes (0 to 3)"),
        ("unknown target name", "unknown target class 'zebra'"),
        ("no spatial layer", "no layer with a spatial output"),
        ("not a model", "notmodel.keras is not a Keras model file"),
        ("unknown model", "unknown model 'ResNet9000'"),
        ("metadata for another model", "only for the skin-lesion model"),
        ("bad age", "age must be between"),
        ("filter out of range", "filter indices must be between 0 and 7"),
        ("bad out", "--out must end in .npz"),
        ("class names count", "has 3 names but the model has 4 outputs"),
    ],
)
def test_user_errors_in_process(files, capfd, case, fragment):
    img, tiny = str(files / "img.png"), str(files / "tiny.keras")
    args = {
        "missing image": ["--model", tiny, "--image", str(files / "nope.png")],
        "empty image": ["--model", tiny, "--image", str(files / "empty.png")],
        "truncated image": ["--model", tiny, "--image", str(files / "truncated.png")],
        "non-image": ["--model", tiny, "--image", str(files / "text.png")],
        "bomb": ["--model", tiny, "--image", str(files / "bomb.png")],
        "unknown layer": ["--model", tiny, "--image", img, "--layer", "nope"],
        "target outside": ["--model", tiny, "--image", img, "--target", "9"],
        "unknown target name": ["--model", tiny, "--image", img, "--target", "zebra"],
        "no spatial layer": ["--model", str(files / "flat.keras"), "--image", img],
        "not a model": ["--model", str(files / "notmodel.keras"), "--image", img],
        "unknown model": ["--model", "ResNet9000", "--image", img],
        "metadata for another model": ["--model", tiny, "--image", img, "--age", "40"],
        "bad age": ["--model", "skin-lesion", "--image", img, "--age", "300"],
        "filter out of range": ["--model", tiny, "--image", img, "--filters", "0-8"],
        "bad out": ["--model", tiny, "--image", img, "--out", "x.jpg"],
        "class names count": [
            "--model",
            tiny,
            "--image",
            img,
            "--class-names",
            str(files / "names3.txt"),
        ],
    }[case]
    rc = cli.main(["explain", *args])
    assert_one_error_line(rc, capfd.readouterr().err, fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["explain", "--model", "x", "--image", "y", "--samples", "-2"],
            "argument --samples: must be 0 or more",
        ),
        (
            ["explain", "--model", "x", "--image", "y", "--sigma", "-0.5"],
            "argument --sigma: must be",
        ),
        (["explain", "--model", "x"], "required: --image"),
        (["explain", "--model", "x", "--image", "y", "--method", "lime"], "argument --method"),
        (["frobnicate"], "invalid choice"),
        ([], "required: COMMAND"),
    ],
)
def test_argparse_errors_are_one_error_line(capfd, args, fragment):
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert_one_error_line(info.value.code, capfd.readouterr().err, fragment)
