"""The Audit page on a small results folder made here with a tiny model: counts, per-diagnosis
means with their bootstrap intervals, the worst-first gallery, the one-line errors, and (with
the whole app) the click that opens a case on Explain with the run's settings."""

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from explainers.batch import results_stats as A
from explainers.batch import run as B
from tests.helpers import open_page, run

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "audit.py")
DX = {"im0": "nv", "im1": "nv", "im2": "mel", "im3": "mel", "im4": "mel"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(x)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(a))
    model_path = root / "tiny.keras"
    keras.Model(inp, out).save(model_path)
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(2)
    for name in DX:
        Image.fromarray(rng.integers(0, 256, (18, 18, 3), dtype=np.uint8)).save(images / f"{name}.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    meta = root / "labels.csv"
    meta.write_text("image_id,dx,age,sex,localization\n"
                    + "".join(f"{k},{v},50,male,back\n" for k, v in DX.items()))
    out = root / "results"
    B.run_batch(str(model_path), images, out, metadata=meta, n_steps=4, progress=False)
    return out


def results(folder):
    with open(folder / "results.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if not r["error"]]


def frame_with(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def opened(folder):
    at = AppTest.from_file(PAGE, default_timeout=120)
    run(at)
    at.text_input(key="w:audit_path").input(str(folder))
    at.button[0].click()  # the form's "Open"
    return run(at)


def test_bootstrap_interval_known_answers():
    assert A.bootstrap_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    mean, low, high = A.bootstrap_interval([5.0])
    assert mean == 5.0 and np.isnan(low) and np.isnan(high)
    x = np.random.default_rng(0).normal(10, 2, 400)
    mean, low, high = A.bootstrap_interval(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)  # the normal interval the bootstrap approaches
    assert mean == pytest.approx(x.mean())
    assert low == pytest.approx(x.mean() - half, abs=0.05) and high == pytest.approx(x.mean() + half, abs=0.05)


def test_page_shows_counts_groups_and_worst_first(folder):
    at = opened(folder)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images explained"] == "5" and metrics["Images that failed"] == "1"
    rows = results(folder)
    groups = frame_with(at, "Group").set_index("Group")
    assert list(groups.index) == ["all images", "mel", "nv"]
    assert list(groups["Images"]) == [5, 3, 2]
    col = "Average Drop (%)"
    for dx in ("mel", "nv"):
        values = [float(r["gradcam:average_drop_pct"]) for r in rows if r["dx"] == dx]
        assert groups.loc[dx, col] == pytest.approx(np.mean(values))
        low, high = (float(t) for t in groups.loc[dx, f"{col} 95 % CI"].split(" – "))
        assert min(values) - 1e-3 <= low <= np.mean(values) * 1.001 + 1e-3 and high <= max(values) + 1e-3
    # The gallery: the first ordering offered is the lowest share of the map in the lesion (the
    # automatic outline, as no mask was given), then the largest drop when asked.
    gallery = frame_with(at, "Maps")
    ok = [r for r in rows if not r["error"]]
    expected = [r["image"] for r in sorted(ok, key=lambda r: float(r["gradcam:lesion_energy"]))]
    assert list(gallery["Image"]) == expected
    assert all(str(u).startswith("data:image/png;base64,") for u in gallery["Maps"])
    # A model file cannot be opened on Explain by itself: the page says so and offers the image.
    assert any("model file tiny.keras" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "w:audit_open_explain"]

    # Misclassified first: only rows with correct == 0, most confident first.
    at.selectbox(key="w:audit_order").set_value("Misclassified, most confident first")
    run(at)
    wrong = sorted((r for r in rows if r["correct"] == "0"), key=lambda r: -float(r["probability"]))
    if wrong:
        assert list(frame_with(at, "Maps")["Image"]) == [r["image"] for r in wrong]
    else:
        assert any("misclassified" in i.value for i in at.info)


def test_bad_folder_is_one_message_and_the_page_still_works(folder, tmp_path):
    at = opened(tmp_path / "nothing-here")
    assert [e.value for e in at.error] and "no folder at" in at.error[0].value
    (tmp_path / "empty").mkdir()
    at.text_input(key="w:audit_path").input(str(tmp_path / "empty"))
    at.button[0].click()
    run(at)
    assert "has no results.csv" in at.error[0].value
    at.text_input(key="w:audit_path").input(str(folder))
    at.button[0].click()
    run(at)
    assert not at.error and {m.label: m.value for m in at.metric}["Images explained"] == "5"


@pytest.mark.slow  # loads the real skin-lesion model for the Explain page
def test_open_on_explain_sets_the_runs_settings(folder, tmp_path):
    """A run of the skin-lesion model over bundled samples (its rows written here from the tiny
    run's, renamed): the button opens the first case on Explain with that run's settings."""
    from explainers import zoo

    ids = [s.image_id for s in zoo.list_samples()][:5]
    out = tmp_path / "skin"
    out.mkdir()
    with open(folder / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if not r["error"]]
        header = reader.fieldnames
    for r, image_id in zip(rows, ids):
        r["image"] = f"{image_id}.jpg"
        r["layer"] = "xception/block14_sepconv2_act"
        r["target"] = "4"
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    settings = json.loads((folder / "batch.json").read_text())
    settings.update(model="skin-lesion", layer="xception/block14_sepconv2_act", seed=3)
    (out / "batch.json").write_text(json.dumps(settings))

    at = open_page(PAGE)
    at.text_input(key="w:audit_path").input(str(out))
    next(b for b in at.button if b.key is None or "FormSubmitter" in str(b.key)).click()
    run(at)
    first = frame_with(at, "Maps")["Image"].iloc[0]
    next(b for b in at.button if b.key == "w:audit_open_explain").click()
    run(at)
    assert at.session_state["sample"] == Path(first).stem
    assert at.session_state["layer"] == "xception/block14_sepconv2_act"
    assert at.session_state["target"] == 4
    assert at.session_state["seed"] == B.image_seed(3, first)
    assert at.title[0].value == "Explain a prediction"


@pytest.mark.slow  # the real skin-lesion model on the 8 bundled samples (cheap settings)
def test_batch_over_the_bundled_samples_from_the_page():
    at = AppTest.from_file(PAGE, default_timeout=600)
    run(at)
    at.radio(key="w:audit_source").set_value("samples")
    run(at)
    at.selectbox(key="w:audit_method").set_value("gradcam")
    at.select_slider(key="w:audit_steps").set_value(4)
    run(at)
    next(b for b in at.button if b.key == "w:audit_run").click()
    run(at)
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Images explained"] == "8"
    folder = Path(at.session_state["audit_folder"])
    rows = results(folder)
    assert sorted(r["image"] for r in rows) == sorted(f"{s}.jpg" for s in
                                                      [p.stem for p in folder.glob("*.npz")])
    # Per diagnosis, the recorded dx of the bundled samples: 8 images in the "all images" row.
    groups = frame_with(at, "Group").set_index("Group")
    assert groups.loc["all images", "Images"] == 8 and "mel" in groups.index
    # Every case is a bundled sample of the bundled model: it can be opened on Explain.
    assert [b for b in at.button if b.key == "w:audit_open_explain"]
