"""The trust card: per map, a few numbers that say how far it can be read as evidence.

* class sensitivity — Spearman between the map for the explained class and the map for the
  runner-up class. At or above ``CLASS_FLAG`` (0.9) the map does not tell the two apart;
* centre-prior likeness — Spearman with a centred Gaussian (σ = ¼ of the grid,
  ``evaluation.baselines.centre_prior``). At or above ``CENTRE_FLAG`` (0.8) the map is mostly "the middle";
* seed agreement (smoothed maps only) — mean pairwise Spearman of the maps from
  ``SEEDS`` independent noise draws, and the per-pixel standard deviation across them.
  Below ``SEED_FLAG`` (0.8) the map depends on the noise draw;
* with a lesion mask — the map's energy inside the lesion and whether its maximum falls in
  it (pointing game), beside the same figures for the centre prior.

The extra maps (runner-up class, the extra seeds) come from ONE ``explain`` call over the
image repeated, with a target per copy, so the card costs one batched pass (the seeds only
on request: with smoothing they cost about twice the smoothed maps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explainers import explain
from explainers.evaluation.baselines import centre_prior
from explainers.evaluation.scoring import energy_in_mask, pointing_game
from explainers.trust.similarity import mean_pairwise_spearman, spearman

CLASS_FLAG = 0.9
CENTRE_FLAG = 0.8
SEED_FLAG = 0.8
SEEDS = 3


@dataclass
class TrustFigures:
    """One method's card. ``seed_std``: per-pixel std over the seeds, ``(h, w)`` (None
    without smoothing). Lesion figures are None without a mask."""

    method: str
    class_sensitivity: float
    runner_up: int
    centre_prior: float
    seed_agreement: float | None = None
    seed_std: np.ndarray | None = None
    lesion_energy: float | None = None
    lesion_pointing: bool | None = None
    prior_energy: float | None = None
    prior_pointing: bool | None = None

    @property
    def flags(self) -> dict[str, bool]:
        """Which figures cross their threshold (True = a warning)."""
        out = {
            "class_sensitivity": self.class_sensitivity >= CLASS_FLAG,
            "centre_prior": self.centre_prior >= CENTRE_FLAG,
        }
        if self.seed_agreement is not None:
            out["seed_agreement"] = self.seed_agreement < SEED_FLAG
        if self.lesion_energy is not None and self.prior_energy is not None:
            out["lesion_energy"] = self.lesion_energy <= self.prior_energy
        return out

    def to_json(self) -> dict:
        return {
            "class_sensitivity": round(self.class_sensitivity, 4),
            "centre_prior": round(self.centre_prior, 4),
            "seed_agreement": None
            if self.seed_agreement is None
            else round(self.seed_agreement, 4),
        }


def centre_likeness(cam: np.ndarray) -> float:
    """Spearman of the map with a centred Gaussian of σ = ¼ of its grid."""
    cam = np.asarray(cam)
    return spearman(cam, centre_prior(cam.shape[-2:], 0.25))


def runner_up(probabilities: np.ndarray, target: int) -> int:
    """The most probable class other than ``target``."""
    p = np.asarray(probabilities, dtype=np.float64).ravel().copy()
    p[int(target)] = -np.inf
    return int(np.argmax(p))


def lesion_figures(cam: np.ndarray, mask: np.ndarray) -> tuple[float, bool, float, bool]:
    """(energy in lesion, pointing hit) for the map and for the centre prior."""
    prior = centre_prior(np.asarray(cam).shape[-2:], 0.25)
    return (
        float(energy_in_mask(cam, mask)),
        bool(pointing_game(cam, mask) > 0),
        float(energy_in_mask(prior, mask)),
        bool(pointing_game(prior, mask) > 0),
    )


def trust_figures(
    model,
    x: np.ndarray,
    maps: dict[str, np.ndarray],
    target: int,
    probabilities: np.ndarray,
    *,
    extra_inputs: Sequence[np.ndarray] | None = None,
    layer: str | None = None,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    mask: np.ndarray | None = None,
    with_seeds: bool = True,
) -> dict[str, TrustFigures]:
    """The card for each CAM map in ``maps`` (``{key: (h, w) or (1, h, w)}``, the maps the page
    already shows for ``target``) of the single preprocessed image ``x`` (1, H, W, C).
    With smoothing and ``with_seeds``, the given map is the first of the ``SEEDS`` draws and
    the others come from the same batched call (each copy gets its own noise)."""
    x = np.asarray(x, dtype=np.float32)
    x = x[None] if x.ndim == 3 else x[:1]
    keys = tuple(maps)
    second = runner_up(probabilities, target)
    copies = 1 + (SEEDS - 1 if n_samples > 0 and with_seeds else 0)
    targets = [second] + [int(target)] * (copies - 1)
    rep = np.repeat(x, copies, axis=0)
    rep_extra = (
        None
        if extra_inputs is None
        else [np.repeat(np.asarray(e)[:1], copies, axis=0) for e in extra_inputs]
    )
    extra_maps = explain(
        model,
        rep,
        layer=layer,
        target=targets,
        extra_inputs=rep_extra,
        methods=keys,
        n_samples=n_samples,
        sigma=sigma,
        seed=int(seed) + 1,
    )
    out = {}
    for k in keys:
        cam = np.asarray(maps[k])
        cam = cam[0] if cam.ndim == 3 else cam
        fig = TrustFigures(k, spearman(cam, extra_maps[k][0]), second, centre_likeness(cam))
        if copies > 1:
            seeds = np.concatenate([cam[None], extra_maps[k][1:]]).astype(np.float64)
            fig.seed_agreement = mean_pairwise_spearman(seeds)
            fig.seed_std = np.std(seeds / max(float(seeds.max()), 1e-12), axis=0).astype(np.float32)
        if mask is not None:
            (fig.lesion_energy, fig.lesion_pointing, fig.prior_energy, fig.prior_pointing) = (
                lesion_figures(cam, mask)
            )
        out[k] = fig
    return out


def every_class_spearman(
    model,
    x: np.ndarray,
    maps: dict[str, np.ndarray],
    target: int,
    n_classes: int,
    *,
    extra_inputs: Sequence[np.ndarray] | None = None,
    layer: str | None = None,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
) -> dict[str, dict[int, float]]:
    """Spearman of each shown map with the same method's map for every other class (one
    batched call over the image repeated): ``{key: {class: rho}}``."""
    x = np.asarray(x, dtype=np.float32)
    x = x[None] if x.ndim == 3 else x[:1]
    others = [c for c in range(int(n_classes)) if c != int(target)]
    if not others:
        return {k: {} for k in maps}
    rep = np.repeat(x, len(others), axis=0)
    rep_extra = (
        None
        if extra_inputs is None
        else [np.repeat(np.asarray(e)[:1], len(others), axis=0) for e in extra_inputs]
    )
    other_maps = explain(
        model,
        rep,
        layer=layer,
        target=others,
        extra_inputs=rep_extra,
        methods=tuple(maps),
        n_samples=n_samples,
        sigma=sigma,
        seed=int(seed) + 1,
    )
    out = {}
    for k, cam in maps.items():
        cam = np.asarray(cam)
        cam = cam[0] if cam.ndim == 3 else cam
        out[k] = {c: spearman(cam, other_maps[k][i]) for i, c in enumerate(others)}
    return out


def trust_json(figures: dict[str, TrustFigures]) -> dict:
    """``{key: {"class_sensitivity", "centre_prior", "seed_agreement"}}`` for ``explain --json``."""
    return {k: f.to_json() for k, f in figures.items()}
