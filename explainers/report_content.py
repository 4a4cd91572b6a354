"""The case report's content, built by ONE function for both entry points: the dashboard's
"Case report (PDF)" button and ``python -m explainers report``. Whatever the report
says (verdicts beside the maps on page 1, the trust figures, the fingerprint, the patient
line) comes from here, so the two PDFs say the same.

No Streamlit here. The sanity verdicts are read (disk cache, else the shipped measurement,
``explainers.trust.verdicts.known_result``), never computed: a report never starts a 40 s check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError
from explainers.report import CaseData, file_sha256, weights_sha256
from explainers.trust import card
from explainers.trust.card import trust_figures
from explainers.trust.sanity import model_fingerprint
from explainers.trust.segmentation import segment_lesion
from explainers.trust.verdicts import known_result, plain_verdict, technical_lines
from explainers.zoo import list_samples, site_for_localization, skin_lesion_model_path

TRUST_TITLE = "How far to trust the maps"
DISPLAY_MAX_SIDE = 512  # the overlays are drawn on the image at most this large (as on screen)


def display_image(image, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """The image as uint8 RGB, at most ``max_side`` pixels on its longer side (the dashboard's
    ``loaders.display_image``: Lanczos, aspect kept, never enlarged)."""
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def fingerprint_text(bundle, model_file: str | None = None) -> str:
    """SHA-256 of the bundled model file or of the ``model_file`` the command was given, else
    of the model's weights (uploads, catalogue)."""
    if model_file and Path(str(model_file)).is_file() and bundle.key != "skin-lesion":
        return f"SHA-256 of {Path(model_file).name}: {file_sha256(model_file)}"
    if bundle.key == "skin-lesion":
        path = skin_lesion_model_path()
        return f"SHA-256 of {path.name}: {file_sha256(path)}"
    return f"SHA-256 of the weights: {weights_sha256(bundle.model)}"


def patient_text(age: float | None, sex: str | None, site: str | None) -> str:
    """ "60 years, male, trunk": what the skin-lesion model was given (a HAM10000 localisation
    such as "back" is the model's site "trunk", as ``skin_lesion_metadata`` encodes it)."""
    years = "age unknown" if age is None else f"{float(age):g} years"
    key = site_for_localization(site) if site else "unknown"
    return f"{years}, {sex or 'unknown'}, {str(key).replace('-', ' ')}"


def sample_record(image_name: str) -> str:
    """The recorded diagnosis when ``image_name`` is one of the bundled samples, else ""."""
    stem = Path(str(image_name)).stem
    for s in list_samples():
        if s.image_id == stem or s.path.name == image_name:
            return f"{s.dx} — {s.dx_name} (HAM10000 record of {s.image_id})"
    return ""


def trust_figures_for(
    bundle,
    x: np.ndarray,
    extra,
    image,
    maps: Mapping[str, np.ndarray],
    target: int,
    probabilities: np.ndarray,
    layer: str,
    n_samples: int,
    sigma: float,
    seed: int,
    with_seeds: bool = False,
    lesion_mask: np.ndarray | None = None,
) -> dict:
    """The trust card of each map (``explainers.trust.card``), with the lesion outline for the
    dermoscopy model (``lesion_mask``, else the automatic one)."""
    mask = lesion_mask
    if mask is None and bundle.metadata_input:
        try:
            mask = segment_lesion(image)
        except ExplainerError:
            mask = None
    return trust_figures(
        bundle.model,
        x,
        dict(maps),
        int(target),
        np.asarray(probabilities),
        extra_inputs=extra,
        layer=layer,
        n_samples=n_samples,
        sigma=sigma,
        seed=seed,
        mask=mask,
        with_seeds=with_seeds,
    )


def trust_lines(
    figures: Mapping, titles: Mapping[str, str], verdicts: Mapping[str, tuple], class_label
) -> list[str]:
    """The sanity verdicts and the trust card in words, per map."""
    lines = []
    for m, name in titles.items():
        verdict, result = verdicts[m]
        lines.append(f"{name}: {verdict.sentence}")
        lines += [f"{name}: {t}" for t in technical_lines(result)]
        if verdict.source:
            lines.append(f"{name}: sanity figures from the {verdict.source}")
        f = figures.get(m)
        if f is None:
            continue
        lines.append(
            f"{name}: class sensitivity {f.class_sensitivity:.2f} (Spearman with the map of "
            f"{class_label(f.runner_up)}; flagged from {card.CLASS_FLAG}); centre-prior "
            f"likeness {f.centre_prior:.2f} (flagged from {card.CENTRE_FLAG})"
            + ("" if f.seed_agreement is None else f"; seed agreement {f.seed_agreement:.2f}")
            + (
                ""
                if f.lesion_energy is None
                else f"; energy in the automatic lesion outline {f.lesion_energy:.2f}× chance "
                f"(centre prior: {f.prior_energy:.2f}×)"
            )
        )
    return lines


def build_case(
    bundle,
    ex,
    prediction,
    *,
    image,
    x: np.ndarray,
    extra,
    image_name: str,
    titles: Mapping[str, str],
    patient: str = "",
    record: str = "",
    cmap: str = "viridis",
    opacity: float = 0.5,
    scale: str = "own",
    absolute_max: float | None = None,
    seed: int = 0,
    figures: Mapping | None = None,
    display: np.ndarray | None = None,
    meaningful: bool | None = None,
    extra_figures: Mapping | None = None,
    model_file: str | None = None,
    extra_lines: Mapping[str, Sequence[str]] | None = None,
) -> CaseData:
    """The report of explanation ``ex`` (its CAM maps named by ``titles``: key → title) of the
    PIL ``image`` (preprocessed ``x``, ``extra`` inputs) under ``bundle``. ``figures``: the
    trust cards already computed (the dashboard's), else computed here."""
    t = int(ex.targets[0])
    probs = np.asarray(prediction.probabilities[0])
    fp = model_fingerprint(bundle)
    verdicts = {}
    for m in titles:
        result, source = known_result(
            bundle, ex.layer.path, m, int(ex.n_samples), float(ex.sigma), fingerprint=fp
        )
        verdicts[m] = (plain_verdict(result, source), result)
    if figures is None:
        figures = trust_figures_for(
            bundle,
            x,
            extra,
            image,
            {m: ex.maps[m][0] for m in titles},
            t,
            probs,
            ex.layer.path,
            int(ex.n_samples),
            float(ex.sigma),
            int(seed),
        )
    lines = {TRUST_TITLE: trust_lines(figures, titles, verdicts, bundle.class_label)}
    lines.update(extra_lines or {})
    return CaseData(
        image=display if display is not None else display_image(image),
        image_name=image_name or "image",
        model_label=bundle.label,
        model_fingerprint=fingerprint_text(bundle, model_file),
        class_labels=[bundle.class_label(i) for i in range(prediction.probabilities.shape[-1])],
        probabilities=probs,
        logits=np.asarray(prediction.logits[0]),
        explained=f"{bundle.class_label(t)} ({probs[t] * 100:.1f} %)",
        maps={titles[m]: ex.maps[m][0] for m in titles},
        methods={titles[m]: m for m in titles},
        settings={
            "layer": ex.layer.path,
            "noise": (f"{ex.n_samples} samples, σ = {ex.sigma:.2f}" if ex.n_samples else "none"),
        },
        cmap=cmap,
        opacity=opacity,
        scale=scale,
        absolute_max=absolute_max,
        softmax_head=prediction.softmax_head,
        meaningful=bundle.meaningful if meaningful is None else meaningful,
        patient=patient,
        record=record,
        verdicts={titles[m]: (v.level, v.sentence) for m, (v, _) in verdicts.items()},
        extra_figures=dict(extra_figures or {}),
        extra_lines=lines,
    )
