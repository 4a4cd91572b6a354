"""Benchmark: batch evaluation against the passes it cannot avoid (its floor).

Evaluating one image as ``python -m explainers batch`` does (Grad-CAM and Grad-CAM++, plain and
smoothed with ``samples`` noisy copies, then Average Drop, Increase in Confidence, deletion
and insertion with ``steps`` steps) needs, per image:

- gradient passes: 1 (plain) + ``samples`` (the noisy copies), and one clean forward pass to
  pick the target;
- forward passes: 1 (the full image) + 4 (image × each map) + 4 × 2 × (steps + 1) (the
  deletion and insertion curves): 141 for 16 steps.

The floor runs exactly those passes back to back through the same compiled functions
(``explain`` for the gradients, the model's compiled forward for a stack of that many images),
with no perturbation, scoring or bookkeeping. ``ours / floor`` is the overhead of everything
else; rounds alternate between the two so drifting machine speed hits both alike.

Run: ``python -m explainers bench evaluation [--images N] [--samples 16] [--steps 16]``.
"""

from __future__ import annotations

import statistics

import numpy as np

from explainers import zoo
from explainers.bench.machine import clock, clock_name, machine
from explainers.engine.capture import get_runner
from explainers.engine.core import explain, predict
from explainers.evaluation import scoring as metrics


def forward_count(steps: int, n_maps: int = 4) -> int:
    """Forward passes evaluation needs per image: the full image, image × each map, and the
    deletion and insertion curves of every map."""
    return 1 + n_maps + n_maps * 2 * (int(steps) + 1)


def run_evaluation(
    model_name: str = "skin-lesion",
    images: int = 2,
    samples: int = 16,
    steps: int = 16,
    repeats: int = 2,
) -> dict:
    """Seconds per image of ``metrics.explain_and_evaluate`` (ours) and of its floor."""
    bundle = zoo.load_model(
        model_name, weights="imagenet" if model_name == zoo.SKIN_LESION else None
    )
    chosen = zoo.list_samples()[: max(1, int(images))]
    raws = [metrics.raw_image_for(bundle, s.path) for s in chosen]
    extras = [[s.metadata()] if bundle.metadata_input else None for s in chosen]
    n_forward = forward_count(steps)
    runner = get_runner(bundle.model)

    def ours() -> None:
        for raw, extra in zip(raws, extras, strict=False):
            metrics.explain_and_evaluate(
                bundle, raw, extra_inputs=extra, n_samples=samples, n_steps=steps, seed=0
            )

    def floor() -> None:
        for raw, extra in zip(raws, extras, strict=False):
            x = bundle.preprocess(raw[None])
            target = int(np.argmax(predict(bundle.model, x, extra).logits[0]))
            explain(bundle.model, x, target=target, extra_inputs=extra)
            explain(bundle.model, x, target=target, extra_inputs=extra, n_samples=samples, seed=0)
            stack = np.repeat(x, n_forward, axis=0)
            inputs = [stack] if extra is None else None
            if inputs is None:
                inputs = [np.repeat(e, n_forward, axis=0) for e in extra]
                inputs.insert(runner.image_index, stack)
            runner.logits(inputs)

    ours(), floor()  # warm-up: traces every compiled function once
    times: dict[str, list[float]] = {"ours": [], "floor": []}
    for r in range(int(repeats)):
        order = (
            (("ours", ours), ("floor", floor)) if r % 2 == 0 else (("floor", floor), ("ours", ours))
        )
        for name, fn in order:
            t0 = clock()
            fn()
            times[name].append((clock() - t0) / len(raws))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "machine": machine(),
        "model": model_name,
        "images": len(raws),
        "samples": samples,
        "steps": steps,
        "forwards": n_forward,
        "gradient_passes": 1 + samples,
        "ours_s": med["ours"],
        "floor_s": med["floor"],
        "ratio": med["ours"] / med["floor"],
        "rounds": {k: [round(t, 3) for t in v] for k, v in times.items()},
    }


def format_evaluation(r: dict) -> str:
    return (
        f"machine: {r['machine']}; timed in {clock_name()}\n"
        f"model: {r['model']}, {r['images']} image(s), {r['samples']} noise samples, "
        f"{r['steps']} deletion/insertion steps\n"
        f"floor per image: {r['gradient_passes']} gradient passes + {r['forwards']} forward "
        f"passes back to back: {r['floor_s']:.2f} s\n"
        f"ours per image (explain_and_evaluate): {r['ours_s']:.2f} s\n"
        f"ours / floor: {r['ratio']:.2f}  (rounds: ours {r['rounds']['ours']}, floor "
        f"{r['rounds']['floor']})"
    )
