"""The trust card: class sensitivity flags a class-insensitive map, centre-prior likeness,
seed agreement with smoothing, lesion figures beside the centre prior's, the JSON shape."""

import numpy as np
import pytest

from explainers import explain, predict
from explainers.evaluation.baselines import centre_prior
from explainers.evaluation.scoring import energy_in_mask
from explainers.trust.card import CLASS_FLAG, centre_likeness, runner_up, trust_figures, trust_json
from explainers.trust.similarity import spearman
from tests.test_sanity import images, tiny_model


def _card(model, **kw):
    x = images(1)
    probs = predict(model, x).probabilities[0]
    target = int(np.argmax(probs))
    maps = explain(
        model,
        x,
        layer="block2_conv",
        methods=("gradcam", "gradcam++"),
        target=target,
        n_samples=kw.get("n_samples", 0),
        seed=kw.get("seed", 0),
    )
    return (
        x,
        target,
        probs,
        maps,
        trust_figures(model, x, maps, target, probs, layer="block2_conv", **kw),
    )


def test_class_insensitive_map_is_flagged():
    model = tiny_model(same_head=True)
    *_, figures = _card(model)
    assert figures["gradcam"].class_sensitivity == pytest.approx(1.0)
    assert figures["gradcam"].flags["class_sensitivity"]


def test_class_sensitivity_is_the_spearman_with_the_runner_up_map():
    model = tiny_model()
    x, target, probs, maps, figures = _card(model)
    second = runner_up(probs, target)
    assert second != target and probs[second] == max(p for i, p in enumerate(probs) if i != target)
    other = explain(model, x, layer="block2_conv", methods=("gradcam",), target=second)["gradcam"][
        0
    ]
    fig = figures["gradcam"]
    assert fig.runner_up == second
    assert fig.class_sensitivity == pytest.approx(spearman(maps["gradcam"][0], other), abs=1e-6)
    assert fig.flags["class_sensitivity"] == (fig.class_sensitivity >= CLASS_FLAG)
    assert fig.seed_agreement is None and fig.lesion_energy is None
    assert trust_json(figures)["gradcam"] == {
        "class_sensitivity": round(fig.class_sensitivity, 4),
        "centre_prior": round(fig.centre_prior, 4),
        "seed_agreement": None,
    }


def test_centre_likeness():
    prior = centre_prior((8, 8))
    assert centre_likeness(prior) == pytest.approx(1.0)
    assert centre_likeness(prior.max() - prior) == pytest.approx(-1.0)


def test_seed_agreement_with_smoothing_and_lesion_figures():
    model = tiny_model()
    mask = np.zeros((24, 24), bool)
    mask[6:18, 6:18] = True
    _x, _target, _probs, maps, figures = _card(model, n_samples=4, seed=3, mask=mask)
    fig = figures["gradcam"]
    assert -1 <= fig.seed_agreement <= 1 and fig.seed_std.shape == maps["gradcam"].shape[1:]
    assert np.isfinite(fig.seed_std).all()
    assert fig.lesion_energy == pytest.approx(energy_in_mask(maps["gradcam"][0], mask))
    assert fig.prior_energy == pytest.approx(energy_in_mask(centre_prior((20, 20)), mask))
    assert fig.prior_pointing is True


def test_two_sided_map_uses_one_shared_scale():
    from explainers.render import diverging_overlay, two_sided

    pro = np.array([[4.0, 0.0], [1.0, 0.0]])
    con = np.array([[0.0, 2.0], [1.0, 0.0]])
    signed, peak = two_sided(pro, con)
    assert peak == 4.0
    np.testing.assert_allclose(signed, [[1.0, -0.5], [0.0, 0.0]])
    assert two_sided(np.zeros((2, 2)), np.zeros((2, 2)))[1] == 0.0
    img = np.full((8, 8, 3), 128, np.uint8)
    out = diverging_overlay(img, pro, con, opacity=1.0)
    assert out[0, 0, 0] > out[0, 0, 2]  # for: red
    assert out[0, -1, 2] > out[0, -1, 0]  # against: blue


def test_seed_draws_only_on_request_and_the_shown_map_is_the_first():
    model = tiny_model()
    x = images(1)
    probs = predict(model, x).probabilities[0]
    t = int(np.argmax(probs))
    maps = explain(
        model, x, layer="block2_conv", methods=("gradcam",), target=t, n_samples=4, seed=0
    )
    off = trust_figures(
        model, x, maps, t, probs, layer="block2_conv", n_samples=4, seed=0, with_seeds=False
    )
    assert off["gradcam"].seed_agreement is None
    flat = {"gradcam": np.ones_like(maps["gradcam"])}  # a constant "shown" map has no order
    on = trust_figures(model, x, flat, t, probs, layer="block2_conv", n_samples=4, seed=0)
    # pairs with the constant map score 0: the mean is the one remaining pair over 3
    assert on["gradcam"].seed_agreement < 0.34


def test_every_class_spearman_matches_one_map_per_class():
    from explainers.trust.card import every_class_spearman

    model = tiny_model(classes=4)
    x = images(1)
    maps = explain(model, x, layer="block2_conv", methods=("gradcam",), target=1)
    table = every_class_spearman(model, x, maps, 1, 4, layer="block2_conv")["gradcam"]
    assert list(table) == [0, 2, 3]
    for c in (0, 2, 3):
        other = explain(model, x, layer="block2_conv", methods=("gradcam",), target=c)["gradcam"][0]
        assert table[c] == pytest.approx(spearman(maps["gradcam"][0], other), abs=1e-6)
