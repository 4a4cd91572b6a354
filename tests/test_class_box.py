"""The class box always shows the current image's prediction: its label travels to the browser
as text, so when the image changes the box's value (top-1) must be sent again with the new
label, or the browser keeps showing the previous image's "top-1: bkl (98.7 %)"."""

import pytest

from tests.helpers import new_app, run

pytestmark = pytest.mark.slow


def _sent_label(at) -> str | None:
    """The label the browser is told to show in the class box this run (None: it keeps its own)."""
    proto = at.selectbox(key="w:target").proto
    return proto.raw_value if proto.set_value and proto.HasField("raw_value") else None


def _top1_label(at) -> str:
    sb = at.selectbox(key="w:target")
    return sb.options[0]


def test_changing_the_sample_sends_the_new_top1_label():
    at = run(new_app(sample="ISIC_0024338"))
    run(at), run(at)  # settled: the browser has the box; nothing is re-sent
    first = _top1_label(at)
    assert first.startswith("top-1: bkl") and _sent_label(at) is None
    at.selectbox(key="w:sample").set_value("ISIC_0024550")
    run(at)
    now = _top1_label(at)
    prediction = next(m.value for m in at.markdown if m.value.startswith("**Prediction:**"))
    assert now.startswith("top-1: bcc") and "bcc" in prediction.split("·")[0]
    # what the browser shows is the new label, not the one it had
    assert _sent_label(at) == now != first
    assert at.selectbox(key="w:target").value == -1  # still "the top-1 class"
    # and the maps explain bcc
    caption = next(c.value for c in at.caption if c.value.startswith("Class explained:"))
    assert "bcc" in caption
    run(at)
    assert _sent_label(at) is None  # unchanged labels are not re-sent (no lost clicks)
