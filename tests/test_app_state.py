"""dashboard.frame.state: a widget callback can never raise, whatever the browser sends back (a stale
label of options that changed under the widget, None, a value a converter refuses), and the
URL round-trips every picture setting. Driven with AppTest on a tiny script, no model."""

from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from dashboard.frame import state

    state.init()
    state.notices_here(st.container())
    probs = st.session_state.setdefault("_probs", [10, 20, 70])
    options = [-1, *sorted(range(3), key=lambda i: -probs[i])]

    def label(i):
        return "top-1" if i == -1 else f"class {i} ({probs[i]} %)"

    def from_widget(v):
        if st.session_state.get("_refuse"):
            raise ValueError("refused")
        return None if v == -1 else int(v)

    def boom():
        if st.session_state.get("_boom"):
            raise RuntimeError("internal detail")

    sent = st.session_state.pop("_browser_sends", "nothing")
    if sent != "nothing":  # what a browser may send, then the callback, before the script
        st.session_state["w:target"] = sent
        st.session_state["_callback"]()
    kwargs = state.bind(
        state.TARGET,
        options=options,
        labels=label,
        to_widget=lambda v: -1 if v is None else int(v),
        from_widget=from_widget,
        on_change=boom,
    )
    st.session_state["_callback"] = kwargs["on_change"]
    st.selectbox("Class", options, format_func=label, **kwargs)
    st.write(f"target={state.get(state.TARGET)!r}")
    state.end_of_run()


def _app(**query) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=30)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception
    return at


def _send(at: AppTest, value, **flags) -> AppTest:
    at.session_state["_browser_sends"] = value
    for k, v in flags.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _target(at: AppTest) -> str:
    return [m.value for m in at.markdown if m.value.startswith("target=")][-1]


def test_a_stale_label_is_mapped_back_to_its_class():
    at = _app()
    assert _target(at) == "target=None"
    at.session_state["_probs"] = [50, 30, 20]  # a new image: every label changes
    at.run()
    # The browser still shows the old labels; the user picks "class 2 (70 %)".
    _send(at, "class 2 (70 %)")
    assert _target(at) == "target=2"
    assert not at.info and not at.error


def test_unknown_label_falls_back_to_the_default_with_a_notice():
    at = _app(target="1")
    assert _target(at) == "target=1"
    _send(at, "no such label")
    assert _target(at) == "target=None"
    assert any("back at its default" in i.value for i in at.info)


def test_an_echo_of_a_replaced_value_is_not_a_choice():
    """A run that replaced a widget's value (here: a code change of the setting) and was cut
    short by the next click: the browser's copy of the old value is not the user's choice."""
    from dashboard.frame import state

    at = _app(target="1")
    at.session_state["_browser_sends"] = 1
    at.session_state["_bind:target"]["stale"] = 1  # as bind/set record it in a cut-short run
    at.run()
    assert _target(at) == "target=1"
    at.session_state[state.TARGET] = 2
    at.session_state["_bind:target"]["stale"] = 1
    at.session_state["_browser_sends"] = 1
    at.run()
    assert _target(at) == "target=2"  # the echo of 1 did not undo the change to 2


def test_an_emptied_box_keeps_the_setting():
    at = _app(target="2")
    _send(at, None)
    assert _target(at) == "target=2" and not at.info


def test_a_refusing_converter_and_a_failing_callback_become_messages():
    at = _app()
    _send(at, 1, _refuse=True)
    assert _target(at) == "target=None"
    assert any("could not be used" in i.value for i in at.info)
    at.session_state["_refuse"] = False
    _send(at, 1, _boom=True)
    assert _target(at) == "target=1"
    errors = [e.value for e in at.error]
    assert errors and errors[0].startswith("Something went wrong while applying your change")
    assert not any("internal detail" in e for e in errors)


def test_a_bad_link_value_says_so_in_one_line():
    at = _app(target="x", cmap="rainbow", opacity="0.3")
    notes = [i.value for i in at.info]
    assert notes == [
        "The link's target=x, cmap=rainbow are not valid; the default is used instead."
    ]
    assert _target(at) == "target=None"
    assert at.session_state["opacity"] == 0.3


def test_every_picture_setting_round_trips_through_the_url():
    from dashboard.frame import state

    values = {
        state.CMAP: "inferno",
        state.OPACITY: 0.35,
        state.SCALE: "shared",
        state.FILTER_MODE: "list",
        state.FILTERS: "3, 10-12",
        state.TOP_K: 12,
        state.NEURON_MODE: "positions",
        state.REGION: [1, 2, 5, 6],
        state.POSITIONS: [[0, 1], [7, 7]],
        state.EVAL_MODE: "several",
        state.EVAL_SOURCE: "upload",
        state.EVAL_SAMPLES: ["ISIC_0024338", "ISIC_0024550"],
        state.EVAL_STEPS: 32,
        state.N_SAMPLES: 8,
        state.SIGMA: 0.2,
        state.SEED: 3,
        state.TARGET: 4,
        state.LAYER: "xception/block13_sepconv2_act",
    }
    for key, value in values.items():
        name, parse = state.URL_KEYS[key]
        assert parse(state._url_text(key, value)) == value, (key, name)
    assert state.DEFAULTS[state.CMAP] == "viridis" and {"viridis", "inferno", "jet"} <= set(
        state.CMAPS
    )
    assert state.URL_KEYS[state.SCALE][0] == "scale" and state.DEFAULTS[state.SCALE] == "own"


def _numbers_script():
    import streamlit as st

    from dashboard.frame import state

    state.init()
    state.notices_here(st.container())
    for key, value in st.session_state.pop("_browser_sends", {}).items():
        st.session_state[state.widget_key(key)] = value  # what a forged message may carry
        st.session_state[f"_cb:{key}"]()
    for key in (state.N_SAMPLES, state.SIGMA, state.AGE):
        kwargs = state.bind(key)
        st.session_state[f"_cb:{key}"] = kwargs["on_change"]
        st.number_input(key, **kwargs)
    st.write(f"values={[state.get(k) for k in (state.N_SAMPLES, state.SIGMA, state.AGE)]!r}")
    state.end_of_run()


def test_a_forged_number_outside_the_widgets_bounds_is_not_used():
    """The browser enforces a slider's bounds; a forged websocket message does not. A million
    noise samples (or NaN for σ, an age of 500) falls back to the default with a notice, the
    same check a link's value gets; values within bounds are kept."""
    at = AppTest.from_function(_numbers_script, default_timeout=30)
    at.run()
    at.session_state["_browser_sends"] = {"n_samples": 8, "sigma": 0.3, "age": 40}
    at.run()
    assert not at.exception and not at.info
    assert [m.value for m in at.markdown if m.value.startswith("values=")] == [
        "values=[8, 0.3, 40]"
    ]
    at.session_state["_browser_sends"] = {
        "n_samples": 1_000_000,
        "sigma": float("nan"),
        "age": 500,
    }
    at.run()
    assert not at.exception
    assert [m.value for m in at.markdown if m.value.startswith("values=")] == [
        "values=[0, 0.15, None]"
    ]
    notes = [i.value for i in at.info]
    assert len(notes) == 3 and all("could not be used" in n for n in notes), notes
