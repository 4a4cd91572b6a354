"""Small parts behind issue 17, without a model: the curves figure follows the page's theme,
score headers carry their direction, How it works' list covers the whole method registry."""

import numpy as np
from matplotlib.colors import to_rgba

from dashboard.page_parts import evaluate_helpers as eh
from dashboard.page_parts import teach
from explainers.evaluation import scoring as metrics
from explainers.methods import REGISTRY


def _curves():
    x = np.linspace(0.0, 1.0, 5)
    return {
        "gradcam": {
            "deletion": metrics.Curve("deletion", x, 1 - x, 0.5),
            "insertion": metrics.Curve("insertion", x, x, 0.5),
        }
    }


def test_curves_figure_is_transparent_with_the_themes_text_colour():
    fig = eh.curves_figure(_curves(), {"gradcam": "Grad-CAM"}, "mel", text_color="#fafafa")
    assert fig.patch.get_alpha() == 0.0  # no white panel on the dark theme
    for ax in fig.axes:
        assert to_rgba(ax.get_facecolor())[3] == 0.0
        assert to_rgba(ax.title.get_color()) == to_rgba("#fafafa")
        assert all(to_rgba(t.get_color()) == to_rgba("#fafafa") for t in ax.get_xticklabels())
        assert all(
            to_rgba(t.get_color()) == to_rgba("#fafafa") for t in ax.get_legend().get_texts()
        )
    alt = eh.curves_alt(_curves(), {"gradcam": "Grad-CAM"})
    assert "Grad-CAM: deletion AUC 0.500, insertion AUC 0.500" in alt


def test_every_score_header_says_which_direction_is_better():
    for key, higher in metrics.HIGHER_IS_BETTER.items():
        label, help_text = eh.direction_label(metrics.SCORE_LABELS[key])
        assert label.endswith("↑" if higher else "↓"), key
        assert help_text == ("↑ higher is better" if higher else "↓ lower is better")
    assert eh.direction_label("Method") == ("Method", None)


def test_how_it_works_lists_every_registered_method_once():
    lines = teach.method_lines()
    assert len(lines) == len(REGISTRY)
    for line, m in zip(lines, REGISTRY.values(), strict=False):
        assert line.startswith(f"- **{m.label}** (") and m.summary and line.endswith(m.summary)
