"""dashboard.frame.first_view: the default view a plain first visit drew is saved, signed, and
shown back (the same pictures, captions and sentences) at the next start; anything else (a
visit with link parameters, a later run, a forged, stale or damaged file) is neither saved nor
shown. Driven with AppTest on tiny scripts, no model."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.frame import first_view


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAINERS_FIRST_VIEW", str(tmp_path))
    monkeypatch.setattr(first_view, "fingerprint", lambda: "model-and-code-1")
    monkeypatch.setattr(first_view, "_RECORDED", set())  # what this process already knows
    return tmp_path


def _draws_the_default_view():
    """What Explain does on a plain first visit: mark the run, record the columns, save."""
    import numpy as np
    import streamlit as st

    from dashboard.frame import first_view

    plain = first_view.mark_run()
    st.session_state["_state_initialised"] = True  # as state.init() does in the sidebar
    st.write(f"plain={plain}")
    rec = first_view.recorder(True)
    st.write(f"recording={rec is not None}")
    if rec is not None:
        rec.summary = "**Prediction:** mel — melanoma (95.8 %)"
        cols = [rec.column(c) for c in st.columns(3)]
        picture = np.full((6, 8, 3), 200, np.uint8)
        cols[0].image(picture, caption="Input (8×6 px)", alt="The input image.")
        cols[1].image(picture, caption="Grad-CAM", alt="Grad-CAM map.")
        cols[1].markdown(":green[Passed the checks.]")
        cols[2].image(picture, caption="Grad-CAM++", alt="Grad-CAM++ map.")
        cols[2].markdown(":red[**Do not read this map as evidence.**]")
        rec.note = "Class explained: **mel** · layer `block14` (8×8 grid)"
        st.write(f"saved={rec.save()}")


def _shows_the_saved_view():
    import streamlit as st

    from dashboard.frame import first_view

    st.write(f"shown={first_view.show()}")


def _texts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_a_plain_first_visit_is_saved_and_the_next_start_shows_it_back(folder):
    at = AppTest.from_function(_draws_the_default_view, default_timeout=30).run()
    assert not at.exception
    assert {"plain=True", "recording=True", "saved=True"} <= set(_texts(at))
    assert (folder / first_view.FILE_NAME).is_file()

    shown = AppTest.from_function(_shows_the_saved_view, default_timeout=30).run()
    assert not shown.exception
    assert "shown=True" in _texts(shown)
    assert shown.title[0].value == "Explain a prediction"
    assert "**Prediction:** mel — melanoma (95.8 %)" in _texts(shown)
    assert ":red[**Do not read this map as evidence.**]" in _texts(shown)
    captions = [c.value for c in shown.caption]
    assert any(first_view.SAVED_NOTE in c for c in captions)  # labelled as saved, not live
    assert "Class explained: **mel** · layer `block14` (8×8 grid)" in captions
    saved = json.loads((folder / first_view.FILE_NAME).read_text())
    assert [s["text"] for s in saved["columns"][2]] == [
        "Grad-CAM++",
        ":red[**Do not read this map as evidence.**]",
    ]
    # the picture comes back exactly
    from io import BytesIO

    from PIL import Image

    png = first_view._png(saved["columns"][1][0]["png"])
    assert np.array_equal(np.asarray(Image.open(BytesIO(png))), np.full((6, 8, 3), 200, np.uint8))


def test_a_second_visit_records_nothing_once_a_valid_view_is_saved(folder):
    AppTest.from_function(_draws_the_default_view, default_timeout=30).run()
    before = (folder / first_view.FILE_NAME).stat().st_mtime_ns
    again = AppTest.from_function(_draws_the_default_view, default_timeout=30).run()
    assert "recording=False" in _texts(again)
    assert (folder / first_view.FILE_NAME).stat().st_mtime_ns == before


def test_a_visit_with_link_parameters_or_a_later_run_is_not_the_default_view(folder):
    at = AppTest.from_function(_draws_the_default_view, default_timeout=30)
    at.query_params["samples"] = "8"
    at.run()
    assert {"plain=False", "recording=False"} <= set(_texts(at))
    assert not (folder / first_view.FILE_NAME).exists()
    plain = AppTest.from_function(_draws_the_default_view, default_timeout=30)
    plain.session_state["_state_initialised"] = True  # the session already has its settings
    plain.run()
    assert "plain=False" in _texts(plain)
    assert not (folder / first_view.FILE_NAME).exists()


@pytest.mark.parametrize(
    "damage",
    ["forged text", "another model or code", "not a picture", "truncated", "no file"],
)
def test_a_forged_stale_or_damaged_view_is_never_shown(folder, monkeypatch, damage):
    AppTest.from_function(_draws_the_default_view, default_timeout=30).run()
    file = folder / first_view.FILE_NAME
    data = json.loads(file.read_text())
    if damage == "forged text":
        data["summary"] = "**Prediction:** nv — benign (99 %)"
        file.write_text(json.dumps(data))
    elif damage == "another model or code":
        monkeypatch.setattr(first_view, "fingerprint", lambda: "model-and-code-2")
    elif damage == "not a picture":
        data["columns"][1][0]["png"] = "aGVsbG8="
        file.write_text(json.dumps(data))
    elif damage == "truncated":
        file.write_text(file.read_text()[:500])
    else:
        file.unlink()
    assert first_view.load() is None
    shown = AppTest.from_function(_shows_the_saved_view, default_timeout=30).run()
    assert not shown.exception
    assert _texts(shown) == ["shown=False"]
    assert not shown.title and not shown.caption


def test_a_picture_that_cannot_be_kept_spoils_the_record_instead_of_saving_half(folder):
    rec = first_view.Recorder("model-and-code-1")
    rec.summary = "x"

    class Column:
        def image(self, *a, **k):
            return None

        def markdown(self, *a, **k):
            return None

    a, b = rec.column(Column()), rec.column(Column())
    a.image(np.zeros((4, 4, 3), np.float32), caption="float, not a picture")
    b.markdown("fine")
    assert rec.save() is False
    assert not (folder / first_view.FILE_NAME).exists()


def test_the_saved_view_belongs_to_one_model_file_code_and_bundled_data(tmp_path, monkeypatch):
    """A change to the code, the shipped verdicts or a sample image makes a saved view stale
    (its sentences or pictures could differ from what the live page draws)."""
    for name in ("app.py", "explainers/core.py", "dashboard/x.py", "pages/explain.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    data = tmp_path / "explainers" / "data"
    (data / "samples").mkdir(parents=True)
    (data / "sanity_default.json").write_text('{"verdict": "pass"}')
    (data / "samples" / "a.jpg").write_bytes(b"\xff\xd8 picture")
    monkeypatch.setattr(first_view, "ROOT", tmp_path)
    key = first_view.fingerprint.__wrapped__
    if key() is None:
        pytest.skip("the skin-lesion model (sklesion) is not installed")
    before = key()
    assert key() == before  # stable across calls
    for change in (
        data / "sanity_default.json",
        data / "samples" / "a.jpg",
        tmp_path / "explainers" / "core.py",
    ):
        old = change.read_bytes()
        change.write_bytes(old + b" ")
        assert key() != before, change.name
        change.write_bytes(old)
        assert key() == before
