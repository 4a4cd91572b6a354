"""The sanity verdict beside each map on Explain: one plain sentence, red for "do not rely on
it" and nothing else red; known at once from the disk cache or the shipped measurement
(``explainers.trust.verdicts``), and, where neither has it (another model or layer, smoothed
maps), a button that runs the check in place with a progress bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

from explainers.trust import sanity
from explainers.trust.verdicts import (
    FAIL,
    PASS,
    Verdict,
    known_result,
    plain_verdict,
    technical_lines,
)

#: Roughly what the check costs on the default model (8 images, 6 randomisation steps), for
#: the button's label; measured at 36-40 s on a 2-core CPU.
CHECK_SECONDS = 40


@st.cache_data(show_spinner=False, max_entries=32)
def _fingerprint(model_token: str, _bundle) -> str:
    return sanity.model_fingerprint(_bundle)


def known(
    sel, method: str, n_samples: int, sigma: float, seed: int = 0
) -> tuple[sanity.MethodSanity | None, str]:
    """``(result, source)`` from the cache or the shipped file; ``(None, "")`` when unknown
    or unreadable (a broken cache never breaks the page)."""
    try:
        fp = _fingerprint(sel.model_token, sel.bundle)
        return known_result(
            sel.bundle, sel.layer.path, method, n_samples, sigma, seed, fingerprint=fp
        )
    except Exception:
        return None, ""


def verdicts_for(
    sel, methods: Sequence[str], n_samples: int, sigma: float, seed: int = 0
) -> dict[str, tuple[Verdict, sanity.MethodSanity | None]]:
    """Each method's verdict in words, with the figures behind it (None when unknown)."""
    out = {}
    for m in methods:
        result, source = known(sel, m, n_samples, sigma, seed)
        out[m] = (plain_verdict(result, source), result)
    return out


def sentence_markdown(verdict: Verdict) -> str:
    """Red means "do not rely on it", green "passed the checks", no colour "unknown"."""
    if verdict.level == FAIL:
        return f":red[**{verdict.sentence}**]"
    if verdict.level == PASS:
        return f":green[{verdict.sentence}]"
    return verdict.sentence


def show_sentence(
    col,
    method: str,
    verdict: Verdict,
    sel,
    missing: Sequence[str],
    n_samples: int,
    sigma: float,
    seed: int = 0,
) -> None:
    """The sentence under one map; when unknown, the button that checks the shown maps here."""
    col.markdown(sentence_markdown(verdict))
    if verdict.level in (FAIL, PASS):
        return
    cost = (
        f"about {CHECK_SECONDS} s" if not n_samples else f"about {CHECK_SECONDS} s per noise sample"
    )
    if col.button(
        f"Check now ({cost})",
        key=f"sanity:run:{method}",
        icon=":material/fact_check:",
        help="Runs the sanity checks of Adebayo et al. for this model and layer on the "
        f"{sanity.DEFAULT_SAMPLES} bundled images, for every map shown here; the "
        "result is kept on disk.",
    ):
        run_in_place(col, sel, missing, n_samples, sigma, seed)


def run_in_place(
    container, sel, methods: Sequence[str], n_samples: int, sigma: float, seed: int = 0
) -> None:
    """The check for ``methods`` with a progress bar in a status box in ``container``; the
    result lands in the disk cache, and the page is drawn again to show it."""
    with container.status("Running the sanity checks…", expanded=True) as box:
        bar = st.progress(0.0, text="starting")

        def progress(fraction: float, text: str) -> None:
            bar.progress(min(1.0, max(0.0, float(fraction))), text=text)

        try:
            sanity.sanity_for_bundle(
                sel.bundle,
                layer=sel.layer.path,
                methods=tuple(methods),
                n_samples=n_samples,
                sigma=sigma,
                seed=seed,
                progress=progress,
            )
        except Exception as exc:
            box.update(label="The sanity check could not run", state="error")
            st.error(f"The sanity check could not run on this model: {' '.join(str(exc).split())}")
            return
        box.update(label="Sanity checks done", state="complete", expanded=False)
    st.rerun()


def technical_markdown(
    name: str, verdict: Verdict, result: sanity.MethodSanity | None, shipped: Mapping | None = None
) -> list[str]:
    """The figures behind one map's sentence, with where they come from (neutral styling)."""
    if result is None:
        return [f"**{name}**: not checked yet for this model and layer."]
    lines = [f"**{name}**: sanity check {result.verdict}"]
    lines += [f"- {line}" for line in technical_lines(result)]
    if verdict.source == "shipped measurement" and shipped:
        lines.append(
            f"- from the measurement shipped with the app ({shipped.get('created', '?')}, "
            f"`{shipped.get('command', '')}`); the disk cache had none"
        )
    elif verdict.source:
        lines.append(f"- {verdict.source} (disk cache)")
    return lines
