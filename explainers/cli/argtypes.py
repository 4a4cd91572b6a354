"""Argument types shared by the command-line parsers (``cli``, ``batch``, ``bench``): each
turns a bad value into argparse's one-line message instead of a traceback."""

from __future__ import annotations

import argparse
import math


def whole_number(text: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, minimum=1)


def nonneg_int(text: str) -> int:
    return whole_number(text, minimum=0)


def nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number 0 or more, got {text}")
    return value


def fraction(text: str) -> float:
    """A number between 0 and 1 (opacity, box threshold)."""
    value = nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value
