"""The one index-list parser (CLI and pages): syntax, bounds checked before anything is built."""

import tracemalloc

import pytest

from explainers.errors import ExplainerError
from explainers.index_lists import MAX_COUNT, MAX_INDEX, MAX_TEXT, parse_indices


def test_lists_and_ranges_become_sorted_unique_indices():
    assert parse_indices("3, 10, 32", 64) == [3, 10, 32]
    assert parse_indices("0-3, 8,2", 64) == [0, 1, 2, 3, 8]
    assert parse_indices("10 32;3", 64) == [3, 10, 32]
    assert parse_indices("0-15, 40", 64) == [*list(range(16)), 40]
    assert parse_indices("4..6, 5–7", 64) == [4, 5, 6, 7]
    assert parse_indices("0-2047", 2048, max_count=2048) == list(range(2048))
    assert parse_indices("63", 64) == [63]


@pytest.mark.parametrize(
    ("text", "k", "message"),
    [
        ("3, ten", 64, "cannot read 'ten': use filter indices and ranges"),
        ("3-", 64, "cannot read '3-'"),
        ("5000", 2048, "filter 5000 does not exist: this layer has filters 0 to 2047"),
        ("0-2048", 2048, "filter 2048 does not exist: this layer has filters 0 to 2047"),
        ("9-2", 64, "the range '9-2' runs backwards; write it as 2-9"),
        ("-1", 64, "filter indices are 0 or more, got '-1'"),
        ("", 64, "no filter indices given"),
        (" , ;", 64, "no filter indices given"),
        ("0-300", 2048, "301 filters selected; choose at most 256"),
        ("0-200, 100-300", 2048, "301 filters selected; choose at most 256"),
        ("1" * (MAX_TEXT + 1), 64, "too long"),
        (str(MAX_INDEX), None, f"filter {MAX_INDEX} is far beyond any layer"),
    ],
)
def test_bad_lists_say_what_is_wrong_in_plain_words(text, k, message):
    with pytest.raises(ExplainerError, match=message):
        parse_indices(text, k, max_count=256 if k == 2048 else MAX_COUNT)


def test_overlapping_ranges_count_once():
    assert parse_indices("0-200, 100-255", 2048, max_count=256) == list(range(256))


@pytest.mark.parametrize(
    ("text", "k"),
    [
        ("0-999999999", 2048),  # beyond the layer
        ("0-999999999", None),  # the CLI, before the model is known
        ("0-60000", None),  # inside MAX_INDEX, beyond the count
        ("0-2047, " * 200, 2048),  # the same large range many times
    ],
)
def test_huge_ranges_are_refused_before_anything_is_built(text, k):
    tracemalloc.start()
    try:
        with pytest.raises(ExplainerError):
            parse_indices(text, k, max_count=256 if k else MAX_COUNT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000, peak  # bytes: the text and a few spans, never the range
