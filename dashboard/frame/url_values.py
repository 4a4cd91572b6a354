"""Parsing the dashboard's settings from URL text and writing them back: each parser takes the
text of one query parameter and returns the value or raises ``ValueError`` (a hand-edited or
hostile link), so ``dashboard.frame.state`` can fall back to the default and say so.

Every count and length is checked before anything is built from the text: a value longer than
``MAX_TEXT`` is refused before it is read, a list's number of items is counted from its
separators first (``MAX_POSITIONS``, ``MAX_IDS``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from explainers.methods import REGISTRY

#: The longest value of one parameter (the longest real one, 1024 positions, is ~6000).
MAX_TEXT = 8192
MAX_POSITIONS = 1024
MAX_IDS = 100
MAX_INT = 10_000  # grid rows, columns and region corners (the largest layer grid is far smaller)


def bounded(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` that first refuses text longer than ``MAX_TEXT``."""

    def check(text: str) -> Any:
        if len(text) > MAX_TEXT:
            raise ValueError("too long")
        return parse(text)

    return check


def opt_int(text: str) -> int | None:
    if text in ("", "none", "top1"):
        return None
    value = int(text)
    if not 0 <= value < 100_000:
        raise ValueError(text)
    return value


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = round(float(text), 2)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def choice(options: tuple) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        for option in options:
            if text == str(option):
                return option
        raise ValueError(text)

    return parse


def nonempty(text: str) -> str:
    if not text or len(text) > 200:
        raise ValueError(text)
    return text


def opt_str(text: str) -> str | None:
    return None if text in ("", "none", "last") else nonempty(text)


def ints(text: str, n: int | None = None, sep: str = ",") -> list[int]:
    if n is not None and text and text.count(sep) + 1 != n:
        raise ValueError(text)  # counted before anything is converted
    values = [int(t) for t in text.split(sep)] if text else []
    if (n is not None and len(values) != n) or any(not 0 <= v < MAX_INT for v in values):
        raise ValueError(text)
    return values


def region(text: str) -> list[int] | None:
    if text in ("", "none"):
        return None
    r0, c0, r1, c1 = ints(text, 4)
    if r0 > r1 or c0 > c1:
        raise ValueError(text)
    return [r0, c0, r1, c1]


def positions(text: str) -> list[list[int]]:
    if text.count(",") >= MAX_POSITIONS:
        raise ValueError(text)
    cells = [ints(cell, 2, "-") for cell in text.split(",")] if text else []
    return list(map(list, dict.fromkeys(map(tuple, cells))))


def ids(text: str) -> list[str] | None:
    if text.count(",") >= MAX_IDS:
        raise ValueError(text)
    return list(dict.fromkeys(nonempty(t) for t in text.split(","))) if text else []


def flag(text: str) -> bool:
    """``1``/``0`` (also true/false, yes/no, on/off) → bool."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def method_list(text: str) -> list[str]:
    """Comma-separated method keys of the registry (``gradcam,hirescam``), each known, at least
    one; unknown keys make the whole value invalid (the link falls back with a notice)."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys or any(k not in REGISTRY for k in keys) or len(keys) > len(REGISTRY):
        raise ValueError(text)
    return list(dict.fromkeys(keys))


def fmt_region(value: Any) -> str:
    return ",".join(str(int(v)) for v in value)


def fmt_positions(value: Any) -> str:
    return ",".join(f"{int(r)}-{int(c)}" for r, c in value)
