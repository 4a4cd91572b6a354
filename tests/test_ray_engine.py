"""The batch command on Ray Data (`--engine ray`) on a 2-CPU local cluster with a tiny model
file: the same rows and files as the local engine, a corrupt image as an error row, resuming,
a worker killed mid-run, an image that kills every worker (an error row, and the run ends),
and the one-line errors (no Ray installed, options Ray cannot meet). The workers crash through
tests/crash_support.py, Ray's worker setup hook here.

Ray is installed by the test command (run.sh includes requirements-scale.txt)."""

import csv
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import ray
from crash_support import KILL_ONCE_ENV, poison_image
from PIL import Image

from explainers import ExplainerError
from explainers.batch import run as B
from explainers.batch.ray_engine import RayOptions
from explainers.cli import main

pytestmark = pytest.mark.slow  # each Ray run starts two actors that import TensorFlow (~10 s)

GOOD = [f"im{i}.png" for i in range(5)]
TWO = RayOptions(actors=(2, 2), cpus_per_actor=1)
SETTINGS = {"samples": 2, "batch_size": 2, "n_steps": 4, "seed": 3, "progress": False}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
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
    for name in GOOD:
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(images / name)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    meta = root / "labels.csv"
    meta.write_text("image_id,dx,age,sex,localization\nim1,nv,40,female,back\n")

    fault = root / "fault.json"  # armed by the killed-worker test only
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # read by the cluster ray.init starts
    tests = Path(__file__).resolve().parent
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                KILL_ONCE_ENV: str(fault),
                "RAY_USAGE_STATS_ENABLED": "0",
                "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)]),
            },
            "worker_process_setup_hook": "crash_support.ray_worker_setup",
        },
    )
    local = root / "local"
    B.run_batch(str(model_path), images, local, metadata=meta, **SETTINGS)
    yield root, model_path, images, meta, fault, local
    ray.shutdown()


def rows(folder):
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_same_results(local, other, names, compared=None):
    """Same columns; text equal; scores within 1e-4 (or their last written digit); maps
    within 1e-5 relative (for the `compared` names, default all)."""
    a, b = {r["image"]: r for r in rows(local)}, {r["image"]: r for r in rows(other)}
    assert sorted(b) == sorted(names) and len(rows(other)) == len(names)  # no duplicate
    for name in compared or names:
        ra, rb = a[name], b[name]
        assert list(ra) == list(rb)
        for col in ra:
            if ra[col] and ra[col].lstrip("-").replace(".", "", 1).replace("e-", "", 1).isdigit():
                # 1e-4, or the last of the 6 significant digits results.csv keeps
                assert float(rb[col]) == pytest.approx(float(ra[col]), rel=2e-6, abs=1e-4), (
                    name,
                    col,
                )
            else:
                assert ra[col] == rb[col], (name, col)
        if ra["error"]:
            continue
        stem = name.rsplit(".", 1)[0]
        with np.load(local / f"{stem}.npz") as na, np.load(other / f"{stem}.npz") as nb:
            assert sorted(na.files) == sorted(nb.files)
            for key in (k for k in na.files if k.startswith("map:")):
                scale = max(float(np.abs(na[key]).max()), 1e-12)
                assert np.abs(na[key] - nb[key]).max() <= 1e-5 * scale, (name, key)
        assert (other / f"{stem}.png").is_file()
    assert not list(other.glob(".*.tmp"))  # every file renamed into place


def test_ray_matches_local_and_resumes(setup):
    root, model_path, images, meta, _fault, local = setup
    out = root / "ray"
    result = B.run_batch(
        str(model_path), images, out, metadata=meta, engine="ray", ray_options=TWO, **SETTINGS
    )
    assert (result.total, result.processed, result.failed, result.skipped) == (6, 5, 1, 0)
    assert_same_results(local, out, [*GOOD, "broken.jpg"])
    broken = {r["image"]: r for r in rows(out)}["broken.jpg"]
    assert "broken.jpg" in broken["error"] and broken["prediction"] == ""
    assert json.loads((out / "batch.json").read_text()) == json.loads(
        (local / "batch.json").read_text()
    )

    # Resume: the rows of im1 and im3 lost (as after an interrupted run): only they, and the
    # failed image, are explained again; nothing is duplicated.
    kept = [r for r in rows(out) if r["image"] not in ("im1.png", "im3.png")]
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(kept[0]))
        writer.writeheader()
        writer.writerows(kept)
    again = B.run_batch(
        str(model_path), images, out, metadata=meta, engine="ray", ray_options=TWO, **SETTINGS
    )
    assert (again.skipped, again.processed, again.failed) == (3, 2, 1)
    assert_same_results(local, out, [*GOOD, "broken.jpg"])


def test_a_killed_worker_is_retried_without_duplicate_or_missing_rows(setup):
    root, model_path, images, meta, fault, local = setup
    marker = root / "killed.pid"
    fault.write_text(json.dumps({"image": "im3.png", "marker": str(marker)}))
    try:
        out = root / "killed"
        result = B.run_batch(
            str(model_path), images, out, metadata=meta, engine="ray", ray_options=TWO, **SETTINGS
        )
    finally:
        fault.unlink()
    assert marker.is_file()  # an actor did exit (os._exit) in the middle of the run
    assert (result.processed, result.failed) == (5, 1)
    assert_same_results(local, out, [*GOOD, "broken.jpg"])
    assert not list((out / ".crashes").glob("*"))  # the crash records are gone with the batch


def test_an_image_that_kills_every_worker_is_an_error_row_and_the_run_ends(setup, tmp_path):
    _root, model_path, images, meta, _fault, local = setup
    folder = tmp_path / "images"
    folder.mkdir()
    for name in GOOD:
        (folder / name).write_bytes((images / name).read_bytes())
    # Batches of 2 on 2 actors: im0 im1 | im2 im3 | im4 poison.
    Image.fromarray(poison_image()).save(folder / "poison.png")
    out = tmp_path / "out"
    start = time.monotonic()
    result = B.run_batch(
        str(model_path), folder, out, metadata=meta, engine="ray", ray_options=TWO, **SETTINGS
    )
    assert (result.total, result.processed, result.failed) == (6, 5, 1)
    poison = {r["image"]: r for r in rows(out)}["poison.png"]
    assert poison["error"] == (
        "the worker process crashed on this image twice; the other images were explained"
    )
    assert_same_results(local, out, [*GOOD, "poison.png"], compared=GOOD)  # im4 included
    assert not list((out / ".crashes").glob("*"))
    assert time.monotonic() - start < 600  # ended (three crashes, each an actor restart)


def test_cli_engine_ray_and_its_errors(setup, tmp_path, capsys):
    _root, model_path, images, _meta, _fault, _local = setup
    base = [
        "batch",
        "--model",
        str(model_path),
        "--images",
        str(images),
        "--steps",
        "4",
        "--method",
        "gradcam",
    ]
    assert main([*base, "--out", str(tmp_path / "a"), "--engine", "ray", "--actors", "1-2"]) == 0
    captured = capsys.readouterr()
    assert "6 images: 5 explained" in captured.out and "6/6 images" in captured.err

    def error_of(args):
        code = main([*base, "--out", str(tmp_path / "b"), *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("error:"), err
        return err[0]

    assert "the Ray cluster has 2" in error_of(["--engine", "ray", "--actors", "3"])
    assert "GPU" in error_of(["--engine", "ray", "--gpus-per-actor", "1"])
    assert "--actors is an option of --engine ray" in error_of(["--actors", "2"])
    with pytest.raises(SystemExit) as exc:
        main([*base, "--out", str(tmp_path / "c"), "--engine", "ray", "--actors", "3-1"])
    assert exc.value.code == 2 and "MIN <= MAX" in capsys.readouterr().err
    assert rows(tmp_path / "b") == []  # refused before any image was explained


def test_without_ray_one_error_line_says_what_to_install(setup, tmp_path, monkeypatch, capsys):
    _root, model_path, images, _meta, _fault, _local = setup
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    code = main(
        [
            "batch",
            "--model",
            str(model_path),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "o"),
            "--engine",
            "ray",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: --engine ray needs Ray Data")
    assert "pip install -r requirements-scale.txt" in err[0]
    with pytest.raises(ExplainerError, match="requirements-scale.txt"):
        B.run_batch(str(model_path), images, tmp_path / "o2", engine="ray")


def test_random_weights_come_from_the_seed(tmp_path):
    """`--weights none`: the same seed gives the same model (in every process: every actor
    explains with it), another seed another model."""

    def weights_sum(seed):
        model = B.load_batch_model("MobileNetV2", None, seed).model
        return sum(float(np.abs(w).sum()) for w in model.get_weights())

    assert weights_sum(7) == weights_sum(7) != weights_sum(8)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        images / "x.png"
    )
    runs = [
        rows(
            B.run_batch(
                "MobileNetV2",
                images,
                tmp_path / f"o{i}",
                weights=None,
                seed=7,
                methods=("gradcam",),
                n_steps=2,
                progress=False,
            ).out
        )[0]
        for i in range(2)
    ]
    assert runs[0] == runs[1] and runs[0]["error"] == ""
    assert json.loads((tmp_path / "o0" / "batch.json").read_text())["seed"] == 7
