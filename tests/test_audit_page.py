"""The Audit page on a small run made here with a tiny model, in the user's own runs folder (a
data root made for the tests): counts, per-diagnosis means with their bootstrap intervals, the
worst-first gallery, the one-line errors, that nothing typed reaches the server's files, and
(with the whole app) the click that opens a case on Explain with the run's settings."""

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.frame import workspace
from explainers.batch import results_stats as A
from explainers.batch import run as B
from tests.helpers import open_page, run

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "audit.py")
DX = {"im0": "nv", "im1": "nv", "im2": "mel", "im3": "mel", "im4": "mel"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data_root")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(workspace.ENV, str(root))
        yield root


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_root):
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
        Image.fromarray(rng.integers(0, 256, (18, 18, 3), dtype=np.uint8)).save(
            images / f"{name}.png"
        )
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    meta = root / "labels.csv"
    meta.write_text(
        "image_id,dx,age,sex,localization\n"
        + "".join(f"{k},{v},50,male,back\n" for k, v in DX.items())
    )
    out = workspace.new_run_folder("local", "tiny")
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
    at.selectbox(key="w:audit_run_pick").set_value(folder.name)
    return run(at)


def test_bootstrap_interval_known_answers():
    assert A.bootstrap_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    mean, low, high = A.bootstrap_interval([5.0])
    assert mean == 5.0 and np.isnan(low) and np.isnan(high)
    x = np.random.default_rng(0).normal(10, 2, 400)
    mean, low, high = A.bootstrap_interval(x)
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)  # the normal interval the bootstrap approaches
    assert mean == pytest.approx(x.mean())
    assert low == pytest.approx(x.mean() - half, abs=0.05) and high == pytest.approx(
        x.mean() + half, abs=0.05
    )


def test_page_shows_counts_groups_and_worst_first(folder):
    at = opened(folder)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images explained"] == "5" and metrics["Images that failed"] == "1"
    rows = results(folder)
    right = [float(r["correct"]) for r in rows if not r["error"]]
    assert metrics["Accuracy"] == f"{np.mean(right):.0%}"  # a short label: not cut at 1280 px
    groups = frame_with(at, "Group").set_index("Group")
    assert list(groups.index) == ["all images", "mel", "nv"]
    assert list(groups["Images"]) == [5, 3, 2]
    col = "Average Drop (%)"
    for dx in ("mel", "nv"):
        values = [float(r["gradcam:average_drop_pct"]) for r in rows if r["dx"] == dx]
        assert groups.loc[dx, col] == pytest.approx(np.mean(values))
        low, high = (float(t) for t in groups.loc[dx, f"{col} 95 % CI"].split(" – "))
        assert (
            min(values) - 1e-3 <= low <= np.mean(values) * 1.001 + 1e-3
            and high <= max(values) + 1e-3
        )
    # The gallery: the first ordering offered is the lowest share of the map in the lesion (the
    # automatic outline, as no mask was given), then the largest drop when asked.
    gallery = frame_with(at, "Maps")
    ok = [r for r in rows if not r["error"]]
    expected = [r["image"] for r in sorted(ok, key=lambda r: float(r["gradcam:lesion_energy"]))]
    assert list(gallery["Image"]) == expected
    # Name, diagnoses and the ordering's score (a plain label with its range, not the raw
    # column name) come before the wide thumbnail strip, so they stay in view.
    assert list(gallery.columns)[:5] == [
        "Image",
        "Recorded",
        "Predicted",
        "Share in lesion (0–1)",
        "Maps",
    ]
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


def test_runs_are_listed_newest_first_and_a_broken_one_is_one_message(folder, data_root):
    broken = workspace.new_run_folder("local", "broken")
    (broken / "results.csv").write_text("not,a,results,table\n1,2,3,4\n")
    at = AppTest.from_file(PAGE, default_timeout=120)
    run(at)
    assert not at.text_input  # no path box: runs are picked from a list
    box = at.selectbox(key="w:audit_run_pick")
    assert box.options[0] == broken.name and folder.name in box.options
    assert box.value == broken.name  # the newest opens first
    msgs = [e.value for e in at.error]
    assert len(msgs) == 1 and f"the run {broken.name} cannot be read" in msgs[0].replace("\\", "")
    assert str(data_root) not in msgs[0]  # no server path in the message
    box.set_value(folder.name)
    run(at)
    assert not at.error and {m.label: m.value for m in at.metric}["Images explained"] == "5"
    assert not any(str(data_root) in c.value for c in at.caption)
    import shutil

    shutil.rmtree(broken)


def test_no_runs_yet_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.ENV, str(tmp_path / "empty-root"))
    at = AppTest.from_file(PAGE, default_timeout=120)
    run(at)
    assert not at.error and any("no batch runs yet" in i.value for i in at.info)


@pytest.mark.parametrize(
    "typed", ["/etc", "~root", "../../", "../..", "/", "~", "..", "etc/passwd", "./"]
)
def test_typed_paths_cannot_reach_the_filesystem(folder, data_root, tmp_path, typed):
    # a page state forged to hold a path instead of a run name opens nothing
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["audit_folder"] = typed
    at.session_state["w:audit_source"] = "samples"  # no list drawn that would replace it
    run(at)
    assert not at.metric and not at.dataframe
    assert all("not among your runs" in e.value for e in at.error)
    with pytest.raises(Exception, match="not among your runs"):
        workspace.find_run("local", typed)
    # a user id (from sign-in) always becomes one folder inside the data root
    for user in (typed, "local/../../x", "\x00", "a" * 500):
        runs = workspace.runs_folder(user)
        assert runs.resolve().is_relative_to(data_root.resolve() / "users")
        assert runs.parent.parent == data_root / "users" and "/" not in runs.parent.name
        assert not runs.parent.name.startswith(".") and len(runs.parent.name) <= 64
    # a link planted in the runs folder that points outside is not listed
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "results.csv").write_text((folder / "results.csv").read_text())
    link = workspace.runs_folder("local") / "planted"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    try:
        assert "planted" not in [p.name for p in workspace.user_runs("local")]
    finally:
        link.unlink()


def test_user_ids_get_their_own_folders(data_root):
    assert workspace.safe_name("local") == "local"
    assert workspace.safe_name("a@b") != workspace.safe_name("a_b")  # no two ids share a folder
    first = workspace.new_run_folder("someone else", "x")
    assert first.parent == workspace.runs_folder("someone else")
    assert workspace.user_runs("local") and not list(workspace.user_runs("someone else"))
    assert first.name.endswith("-x") and workspace.new_run_folder("someone else", "x") != first


@pytest.mark.slow  # loads the real skin-lesion model for the Explain page
def test_open_on_explain_sets_the_runs_settings(folder, tmp_path, data_root):
    """A run of the skin-lesion model over bundled samples (its rows written here from the tiny
    run's, renamed): the button opens the first case on Explain with that run's settings."""
    from explainers import zoo

    ids = [s.image_id for s in zoo.list_samples()][:5]
    out = workspace.new_run_folder("local", "skin")
    with open(folder / "results.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if not r["error"]]
        header = reader.fieldnames
    for r, image_id in zip(rows, ids, strict=False):
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
    at.selectbox(key="w:audit_run_pick").set_value(out.name)
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
def test_batch_over_the_bundled_samples_from_the_page(data_root):
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
    folder = workspace.find_run("local", at.session_state["audit_folder"])
    assert folder.parent == data_root / "users" / "local" / "runs"
    rows = results(folder)
    assert sorted(r["image"] for r in rows) == sorted(
        f"{s}.jpg" for s in [p.stem for p in folder.glob("*.npz")]
    )
    # Per diagnosis, the recorded dx of the bundled samples: 8 images in the "all images" row.
    groups = frame_with(at, "Group").set_index("Group")
    assert groups.loc["all images", "Images"] == 8 and "mel" in groups.index
    # Every case is a bundled sample of the bundled model: it can be opened on Explain.
    assert [b for b in at.button if b.key == "w:audit_open_explain"]
