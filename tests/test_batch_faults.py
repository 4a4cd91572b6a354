"""Faults lose nothing (local engine): an image that crashes its worker process becomes an
error row after two tries alone while the rest of the batch, and the batches after it, are
recorded; runs that share an output folder (threads, processes) wait for each other and
skip what was done, so every image has exactly one row."""

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from crash_support import abort_on_poison, poison_image
from PIL import Image

from explainers import zoo
from explainers.batch import isolation
from explainers.batch import run as B
from explainers.batch.safe_io import WAITING, folder_lock

ROOT = Path(__file__).resolve().parents[1]
GOOD = [f"im{i}.png" for i in range(4)]
FAST = {"methods": ("gradcam",), "n_steps": 2, "batch_size": 2}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
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
    return root, model_path, images


def read_rows(folder):
    with open(folder / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def count_workers(monkeypatch):
    """Counts the worker processes started (each loads the model: the cost of a crash)."""
    started = []
    real = isolation.ChildWorker.__init__

    def counting(self, spec):
        started.append(spec)
        real(self, spec)

    monkeypatch.setattr(isolation.ChildWorker, "__init__", counting)
    return started


def test_an_image_that_crashes_its_worker_is_an_error_row_and_the_rest_is_kept(
    setup, tmp_path, monkeypatch
):
    _root, model_path, images = setup
    folder = tmp_path / "images"
    folder.mkdir()
    for name in GOOD:
        (folder / name).write_bytes((images / name).read_bytes())
    # Sorted: im0 im1 | im2 im2_poison | im3 (batches of 2): the poison shares a batch with im2.
    Image.fromarray(poison_image()).save(folder / "im2_poison.png")
    reference = B.run_batch(str(model_path), images, tmp_path / "reference", progress=False, **FAST)
    assert (reference.processed, reference.failed) == (4, 0)

    started = count_workers(monkeypatch)
    bundle = dataclasses.replace(zoo.load_model(model_path), preprocess=abort_on_poison)
    log = io.StringIO()
    out = tmp_path / "out"
    result = B.run_batch(bundle, folder, out, progress=log, **FAST)

    assert (result.total, result.processed, result.failed) == (5, 4, 1)
    rows = {r["image"]: r for r in read_rows(out)}
    assert len(read_rows(out)) == 5 and sorted(rows) == sorted([*GOOD, "im2_poison.png"])
    assert rows["im2_poison.png"]["error"] == (
        "the worker process crashed (exit code 134 (SIGABRT)) on this image twice; "
        "the other images were explained"
    )
    assert rows["im2_poison.png"]["prediction"] == ""
    # The good images, im2 of the crashed batch and im3 after it included, are what a run
    # without the poison gives.
    ref = {r["image"]: r for r in read_rows(tmp_path / "reference")}
    for name in GOOD:
        assert rows[name] == ref[name], name
        assert (out / name.replace(".png", ".npz")).is_file()
    # Bounded: the first worker, one for im2 and the poison alone, one for the poison's second
    # try, one for the last batch.
    assert len(started) == 4
    assert "5/5 images" in log.getvalue() and "im2_poison.png (error)" in log.getvalue()
    assert not list(out.glob(".*.tmp"))


def test_the_normal_path_uses_one_worker_for_the_whole_run(setup, tmp_path, monkeypatch):
    _root, model_path, images = setup
    started = count_workers(monkeypatch)
    result = B.run_batch(str(model_path), images, tmp_path / "o", progress=False, **FAST)
    assert (result.processed, result.failed) == (4, 0) and len(started) == 1
    again = B.run_batch(str(model_path), images, tmp_path / "o", progress=False, **FAST)
    assert (again.skipped, again.processed) == (4, 0) and len(started) == 1  # none when all done


def test_three_threads_into_one_folder_wait_join_and_write_each_image_once(setup, tmp_path):
    _root, model_path, images = setup
    bundle = zoo.load_model(model_path)  # one model for all, as the dashboard's sessions share it
    out = tmp_path / "shared"
    out.mkdir()
    results, errors, waited = [None] * 3, [], []

    def one_run(i):
        try:
            results[i] = B.run_batch(
                bundle, images, out, progress=False, on_wait=waited.append, **FAST
            )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_run, args=(i,)) for i in range(3)]
    with folder_lock(out):  # another run holds the folder: all three must wait for it
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while len(waited) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waited == [WAITING] * 3
        assert all(t.is_alive() for t in threads) and not (out / "results.csv").exists()
    for t in threads:
        t.join(timeout=600)
    assert not errors and not any(t.is_alive() for t in threads)
    rows = read_rows(out)
    assert sorted(r["image"] for r in rows) == GOOD and not any(r["error"] for r in rows)
    # One computed everything; the two others joined it and skipped every image.
    assert sorted((r.processed, r.skipped) for r in results) == [(0, 4), (0, 4), (4, 0)]
    assert json.loads((out / "batch.json").read_text())["variants"] == ["gradcam"]
    assert not list(out.glob(".*.tmp"))


def test_two_command_lines_into_one_folder(setup, tmp_path):
    _root, model_path, images = setup
    out = tmp_path / "cli"
    cmd = [
        sys.executable,
        "-m",
        "explainers",
        "batch",
        "--model",
        str(model_path),
        "--images",
        str(images),
        "--out",
        str(out),
        "--method",
        "gradcam",
        "--steps",
        "2",
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outputs]
    rows = read_rows(out)
    assert sorted(r["image"] for r in rows) == GOOD and not any(r["error"] for r in rows)
    explained = sorted(int(re.search(r"(\d+) explained", o).group(1)) for o, _ in outputs)
    assert explained == [0, 4]  # the second run waited, then found everything done


def test_a_model_that_cannot_go_to_a_worker_is_explained_here_and_said(
    setup, tmp_path, monkeypatch
):
    _root, model_path, images = setup
    started = count_workers(monkeypatch)
    bundle = zoo.load_model(model_path)
    bundle = dataclasses.replace(
        bundle, preprocess=lambda x: np.asarray(x, np.float32)
    )  # no pickle
    log = io.StringIO()
    result = B.run_batch(bundle, images, tmp_path / "o", progress=log, **FAST)
    assert (result.processed, result.failed) == (4, 0) and len(started) == 1  # refused, no retry
    assert "note: the model cannot be sent to a worker process" in log.getvalue()
    assert "explaining in this process instead" in log.getvalue()
