"""Every value a link can carry is checked against its bound before anything is built from it:
lengths, counts, ranges (dashboard.frame.url_values, through state.URL_KEYS as init() uses them)."""

import contextlib
import tracemalloc

import pytest

from dashboard.frame import state
from dashboard.frame import url_values as U


def _parse(key: str, text: str):
    _name, parse = state.URL_KEYS[key]
    return U.bounded(parse)(text)


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        with contextlib.suppress(ValueError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("key", list(state.URL_KEYS))
def test_a_megabyte_value_of_any_parameter_is_refused_unread(key):
    for text in ("1," * 500_000, "1-1," * 250_000, "a" * 1_000_000, "9" * 1_000_000):
        with pytest.raises(ValueError):
            _parse(key, text)
        assert _peak(lambda: _parse(key, text)) < 64_000  # bytes: nothing built from the text


@pytest.mark.parametrize(
    ("key", "bad", "good"),
    [
        (state.N_SAMPLES, ["51", "-1", "1e9", "nan"], {"50": 50, "0": 0}),
        (state.SIGMA, ["1.01", "-0.1", "nan", "inf", "1e308"], {"0.3": 0.3, "1": 1.0}),
        (state.SEED, [str(2**31), "-1"], {"7": 7}),
        (state.AGE, ["121", "-1", "50.5"], {"120": 120, "unknown": None}),
        (state.TOP_K, ["0", "65"], {"64": 64}),
        (state.TARGET, ["100000", "-1"], {"3": 3, "top1": None}),
        (
            state.REGION,
            ["1,2,3", "1,2,3,4,5", "5,0,1,1", "0,0,10000,1", "0,0,-1,1"],
            {"0,1,2,3": [0, 1, 2, 3], "none": None},
        ),
        (
            state.POSITIONS,
            ["1-2-3", "10000-1", "-1-2", "1-", ",".join(["1-1"] * 1025)],
            {"1-2,3-4,1-2": [[1, 2], [3, 4]], "": []},
        ),
        (state.EVAL_SAMPLES, [",".join(["x"] * 101), "a,,b", "a" * 201], {"a,b,a": ["a", "b"]}),
        (state.EVAL_STEPS, ["7", "64"], {"32": 32}),
        (
            state.FILTERS,
            ["", "1" * 201],
            {"0-20000000": "0-20000000"},
        ),  # checked on the page, against K
        (
            state.METHODS,
            ["gradcam,nope", "", ",".join(["gradcam"] * 50)],
            {"gradcam,gradcam": ["gradcam"]},
        ),
    ],
)
def test_each_value_is_checked_against_its_bound(key, bad, good):
    for text in bad:
        with pytest.raises(ValueError):
            _parse(key, text)
    for text, value in good.items():
        assert _parse(key, text) == value


def test_filters_from_a_link_are_checked_against_the_layer_before_building():
    from dashboard.widgets.filter_views import parse_indices
    from explainers.errors import ExplainerError

    text = _parse(state.FILTERS, "0-999999999")
    tracemalloc.start()
    try:
        with pytest.raises(
            ExplainerError,
            match="filter 999999999 does not exist: this layer has filters 0 to 2047",
        ):
            parse_indices(text, 2048)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64_000, peak
