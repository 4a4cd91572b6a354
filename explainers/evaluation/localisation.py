"""Weakly-supervised localisation from a CAM map (Selvaraju et al. 2017, §4.1) and box scores.

``cam_box``: the map upsampled (bilinear) to the image as the user gave it, the pixels at or
above ``threshold`` (15 %) of its maximum, the largest 4-connected segment of them, and that
segment's bounding box ``[x0, y0, x1, y1]`` in pixels (x1, y1 exclusive). ``box_iou`` compares
two boxes; the paper's localisation error counts a box as wrong when its IoU with the truth
is below 0.5. Pure NumPy: connected components are labelled by runs, row by row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from explainers.errors import ExplainerError
from explainers.render import upsample

#: The paper's threshold: 15 % of the map's maximum.
DEFAULT_THRESHOLD = 0.15
#: The paper's localisation error: a box with IoU below this is wrong.
IOU_CORRECT = 0.5

Box = tuple[int, int, int, int]


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    padded = np.concatenate(([False], row, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=False))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a bool ``(H, W)`` mask (first in raster order on ties);
    all False for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ExplainerError(f"a mask must be (height, width), got shape {m.shape}")
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs: list[tuple[int, int, int]] = []  # (row, start, end)
    previous: list[int] = []
    for r in range(m.shape[0]):
        current = []
        for start, end in _runs(m[r]):
            idx = len(runs)
            runs.append((r, start, end))
            parent.append(idx)
            for j in previous:  # runs of the row above that share a column: 4-connected
                _, ps, pe = runs[j]
                if ps < end and start < pe:
                    a, b = find(idx), find(j)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            current.append(idx)
        previous = current
    if not runs:
        return np.zeros(m.shape, dtype=bool)
    sizes: dict[int, int] = {}
    for i, (_, s, e) in enumerate(runs):
        root = find(i)
        sizes[root] = sizes.get(root, 0) + e - s
    best = min(sizes, key=lambda root: (-sizes[root], root))
    out = np.zeros(m.shape, dtype=bool)
    for i, (r, s, e) in enumerate(runs):
        if find(i) == best:
            out[r, s:e] = True
    return out


def mask_box(mask: np.ndarray) -> Box | None:
    """Bounding box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of a bool mask; None when empty."""
    m = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cam_region(
    cam: np.ndarray, size: Sequence[int], threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """The largest segment of the map (upsampled to ``size = (H, W)``) at or above
    ``threshold`` × its maximum: bool ``(H, W)``; empty for an all-zero map."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise ExplainerError(f"the box threshold must be between 0 and 1, got {threshold}")
    arr = np.asarray(cam, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    up = upsample(arr, size)
    peak = float(up.max()) if up.size else 0.0
    if not peak > 0:
        return np.zeros(up.shape, dtype=bool)
    return largest_component(up >= float(threshold) * peak)


def cam_box(
    cam: np.ndarray, size: Sequence[int], threshold: float = DEFAULT_THRESHOLD
) -> Box | None:
    """The map's weakly-supervised bounding box ``(x0, y0, x1, y1)`` in the pixels of an image
    of ``size = (H, W)`` (x1, y1 exclusive); None for an all-zero map."""
    return mask_box(cam_region(cam, size, threshold))


def box_iou(a: Box | None, b: Box | None) -> float:
    """Intersection over union of two boxes (x1, y1 exclusive); 0 when either is missing."""
    if a is None or b is None:
        return 0.0
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def localisation_error(box: Box | None, truth: Box | None, iou: float = IOU_CORRECT) -> bool:
    """The paper's localisation error for one image: True when the box misses (IoU < 0.5)."""
    return box_iou(box, truth) < iou


def box_scores(cam: np.ndarray, mask: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """For the Evaluate and Compare pages: the map's box, the mask's box, their IoU and the
    localisation error, with the mask's own size as the image size."""
    m = np.asarray(mask, dtype=bool)
    box, truth = cam_box(cam, m.shape, threshold), mask_box(m)
    iou = box_iou(box, truth)
    return {"box": box, "mask_box": truth, "box_iou": iou, "localisation_error": iou < IOU_CORRECT}
