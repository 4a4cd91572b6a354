"""The one parser of filter-index lists ("3, 10, 32", "0-15, 40"), for the CLI and the pages.

Why one module: the list comes from a link, a text box or a command line, so it is hostile
input. Every number and range is checked against the layer's size and the count against a
maximum *before* any list is built: ``0-999999999`` costs a few hundred bytes, not gigabytes.
"""

from __future__ import annotations

import re

from explainers.errors import ExplainerError

#: The most indices one list may select (the CLI; the dashboard asks for fewer: what it draws).
MAX_COUNT = 4096
#: Without a known layer (the CLI parses before loading the model) no index may reach this:
#: far more channels than any image layer has; the layer's own size is checked later.
MAX_INDEX = 65_536
#: Longer text is refused before it is split.
MAX_TEXT = 2000

_RANGE = re.compile(r"(\d+)\s*(?:-|–|\.\.)\s*(\d+)")
_SPLIT = re.compile(r"[,\s;]+")
EXAMPLE = "e.g. 3, 10, 32 or 0-15, 40"


def parse_indices(
    text: str, k: int | None = None, *, max_count: int = MAX_COUNT, what: str = "filter"
) -> list[int]:
    """``"3, 10, 32"`` or ``"0-15, 40"`` (ranges inclusive; commas, spaces or semicolons
    between parts) → sorted unique indices below ``k`` (below ``MAX_INDEX`` when ``k`` is None),
    at most ``max_count`` of them. Anything else: ExplainerError in plain words."""
    text = str(text or "").strip()
    if len(text) > MAX_TEXT:
        raise ExplainerError(
            f"the {what} list is too long (over {MAX_TEXT} characters); use ranges, {EXAMPLE}"
        )
    parts = [p for p in _SPLIT.split(text) if p]
    if not parts:
        raise ExplainerError(f"no {what} indices given: type them, {EXAMPLE}")
    bound = MAX_INDEX if k is None else int(k)
    spans: list[tuple[int, int]] = []
    for part in parts:
        m = _RANGE.fullmatch(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
        elif part.isdigit():
            lo = hi = int(part)
        elif re.fullmatch(r"-\d+(?:-\d+)?", part) or part.startswith("-"):
            raise ExplainerError(f"{what} indices are 0 or more, got '{part}'")
        else:
            raise ExplainerError(f"cannot read '{part}': use {what} indices and ranges, {EXAMPLE}")
        if hi < lo:
            raise ExplainerError(f"the range '{part}' runs backwards; write it as {hi}-{lo}")
        if hi >= bound:
            if k is None:
                raise ExplainerError(
                    f"{what} {hi} is far beyond any layer (none has {MAX_INDEX} {what}s)"
                )
            raise ExplainerError(
                f"{what} {hi} does not exist: this layer has {what}s 0 to {bound - 1}"
            )
        spans.append((lo, hi))
    merged = _merge(spans)
    count = sum(hi - lo + 1 for lo, hi in merged)
    if count > max_count:
        raise ExplainerError(f"{count} {what}s selected; choose at most {max_count}")
    return [i for lo, hi in merged for i in range(lo, hi + 1)]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The inclusive spans as sorted, disjoint ones (so counting needs no list of indices)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
