"""Turning a chart selection on the layer's grid into cells (dashboard/widgets/grid_pick.py): the
conversion a click or a drag goes through before it becomes a setting."""

import numpy as np

from dashboard.widgets.grid_pick import cells_from_box, clicked_cells, grid_chart


def test_a_dragged_box_covers_every_cell_it_touches():
    # cell (r, c) spans [c, c+1) x [r, r+1) in chart coordinates
    assert cells_from_box({"col": [2.2, 4.9], "row": [1.5, 1.7]}, (8, 8)) == (1, 2, 1, 4)
    assert cells_from_box({"col": [4.9, 2.2], "row": [3.0, 6.0]}, (8, 8)) == (
        3,
        2,
        5,
        4,
    )  # either way round
    assert cells_from_box({"col": [-3, 20], "row": [-1, 99]}, (8, 6)) == (0, 0, 7, 5)  # clamped
    assert cells_from_box({"col": [9, 12], "row": [0, 1]}, (8, 8)) is None  # off the grid
    for bad in (
        {},
        {"col": [1], "row": [1, 2]},
        {"col": ["a", 1], "row": [1, 2]},
        {"col": [float("nan"), 1], "row": [0, 1]},
    ):
        assert cells_from_box(bad, (8, 8)) is None


def test_clicked_cells_keep_only_cells_on_the_grid():
    points = [
        {"row": 2, "col": 5},
        {"row": 8, "col": 1},
        {"row": "x"},
        {"col": 1},
        {"row": 0, "col": 0},
    ]
    assert clicked_cells(points, (8, 8)) == [(2, 5), (0, 0)]
    assert clicked_cells(None, (8, 8)) == []


def test_chart_has_labelled_axes_two_selections_and_double_grid_lines():
    image = np.zeros((30, 40, 3), np.uint8)
    chosen = np.zeros((3, 4), bool)
    chosen[1, 2] = True
    spec = grid_chart(image, (3, 4), chosen).to_dict()
    params = [p["name"] for p in spec.get("params", [])]
    params += [p["name"] for layer in spec["layer"] for p in layer.get("params", [])]
    assert {"cell", "box"} <= set(params)
    text = str(spec)
    assert "'title': 'column'" in text and "'title': 'row'" in text
    rules = [l for l in spec["layer"] if l.get("mark", {}).get("type") == "rule"]
    colours = {l["mark"]["color"] for l in rules}
    assert colours == {"#000000", "#ffffff"}  # dark and light lines: visible on any skin
    cells = next(l for l in spec["layer"] if l.get("mark", {}).get("type") == "rect")
    data = spec["datasets"][cells["data"]["name"]]
    assert len(data) == 12 and [d for d in data if d["chosen"]] == [
        {"row": 1, "col": 2, "chosen": True, "row_end": 2, "col_end": 3, "cell": "row 1, column 2"}
    ]
