"""Sanity checks for saliency maps (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A map that explains the model must change when the model's weights are destroyed, and must
depend on the class it explains. Two tests, per model x layer x method x noise settings:

* cascading model randomisation: on a COPY of the model (``keras.models.clone_model``,
  recursive, then the trained weights set into it; the cached model other sessions use is
  never touched), re-initialise the weights from the top down in about 6 cumulative steps
  (the head after the explained layer; + the last block; + the one before; ...; the whole
  model). Kernels and biases are drawn from a normal with each variable's own standard
  deviation, batch normalisation is set to the identity. After each step the maps of the
  same images for the same (trained model's) classes are compared with the trained maps by
  Spearman rank correlation and SSIM;
* random logit: each image's map for its predicted class against its maps for other classes
  (all others up to 6, else 6 drawn with a fixed seed), Spearman.

Verdict (stated in docs/TRUST.md): **pass** when the mean Spearman has fallen below
``CASCADE_PASS`` (0.5) once the head and the last block are random, AND the random-logit
Spearman is below ``LOGIT_PASS`` (0.9), AND fewer than ``EMPTY_FAIL`` (half) of the trained
maps are empty (constant: a rank correlation of an empty map is 0 by convention, so a method
whose maps are mostly empty would "pass" without anything being tested); else **fail**.
Results are cached on disk
(one signed JSON file per method, at most ``CACHE_ENTRIES`` files; ``sanity_cache``) keyed by
the model's file hash; a file that is damaged, edited or forged is ignored and recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explainers import explain, predict, resolve_layer
from explainers.errors import ExplainerError
from explainers.images import load_image
from explainers.methods import DEFAULT_METHODS, REGISTRY, resolve_methods
from explainers.trust.cascade import _reinitialise, cascade_steps, model_copy
from explainers.trust.sanity_cache import CACHE_ENTRIES, cache_dir, read_entry, write_entry  # noqa: F401
from explainers.trust.similarity import spearman, ssim
from explainers.zoo import default_extra_inputs, list_samples, prepare

CASCADE_PASS = 0.5
LOGIT_PASS = 0.9
EMPTY_FAIL = 0.5
#: The step whose correlation decides the verdict: head + last block random.
VERDICT_STEP = 1
MAX_OTHER_CLASSES = 6
#: 4: signed entries (sanity_cache); 3: noise drawn per item from (seed, image, copy); 2: per chunk
CACHE_VERSION = 4
DEFAULT_SAMPLES = 8

ProgressFn = Callable[[float, str], None]


@dataclass
class Step:
    step: str
    spearman: float
    ssim: float


@dataclass
class MethodSanity:
    """One method's figures. ``maps``: ``(1 + steps, n_images, h, w)`` — the trained maps then
    each step's, for the cascade strip."""

    key: str
    cascade: list[Step]
    random_logit_spearman: float
    maps: np.ndarray = field(repr=False)
    #: the share recorded with a result that carries no maps (the shipped measurement)
    recorded_empty_share: float | None = None

    @property
    def empty_share(self) -> float:
        """Share of the trained maps that are constant (nothing to rank)."""
        if self.recorded_empty_share is not None:
            return float(self.recorded_empty_share)
        trained = np.asarray(self.maps[0]) if len(self.maps) else np.zeros((0, 1))
        if trained.size == 0:
            return 1.0
        flat = trained.reshape(len(trained), -1)
        return float(np.mean(flat.max(axis=1) - flat.min(axis=1) <= 0))

    @property
    def verdict(self) -> str:
        return verdict(self.cascade, self.random_logit_spearman, self.empty_share)

    def to_json(self) -> dict:
        return {
            "cascade": [
                {"step": s.step, "spearman": round(s.spearman, 4), "ssim": round(s.ssim, 4)}
                for s in self.cascade
            ],
            "random_logit_spearman": round(self.random_logit_spearman, 4),
            "verdict": self.verdict,
        }


@dataclass
class SanityReport:
    model: str
    layer: str
    images: list[str]
    methods: dict[str, MethodSanity]

    def to_json(self) -> dict:
        """The issue's shape: ``{"model", "layer", "images", "methods": {key: {...}}}``."""
        return {
            "model": self.model,
            "layer": self.layer,
            "images": list(self.images),
            "methods": {k: m.to_json() for k, m in self.methods.items()},
        }


def verdict(cascade: Sequence[Step], random_logit: float, empty_share: float = 0.0) -> str:
    """pass/fail by the rule in the module docstring."""
    if not cascade or empty_share >= EMPTY_FAIL:
        return "fail"
    decisive = cascade[min(VERDICT_STEP, len(cascade) - 1)]
    return "pass" if decisive.spearman < CASCADE_PASS and random_logit < LOGIT_PASS else "fail"


# --- running it -----------------------------------------------------------------------------


def _other_classes(predicted: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    others = np.array([c for c in range(n_classes) if c != predicted])
    if len(others) > MAX_OTHER_CLASSES:
        others = np.sort(rng.choice(others, MAX_OTHER_CLASSES, replace=False))
    return others


def run_sanity(
    model,
    images: np.ndarray,
    extra_inputs: Sequence[np.ndarray] | None = None,
    *,
    layer: str | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    model_name: str = "model",
    image_ids: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> SanityReport:
    """Both tests for preprocessed ``images`` (N, H, W, C); see the module docstring."""
    methods = resolve_methods(methods)
    for m in methods:
        if not REGISTRY[m].cam:
            raise ExplainerError(f"the sanity check compares CAM maps; '{m}' is a pixel map")
    info = resolve_layer(model, layer)
    images = np.asarray(images, dtype=np.float32)
    extra = None if extra_inputs is None else [np.asarray(e) for e in extra_inputs]
    noise = {"n_samples": n_samples, "sigma": sigma, "seed": seed}
    say = progress or (lambda fraction, text: None)

    say(0.0, "maps of the trained model")
    logits = predict(model, images, extra_inputs=extra).logits
    n_classes = logits.shape[-1]
    targets = np.argmax(logits, axis=1)
    trained = explain(
        model, images, layer=info.path, target=targets, extra_inputs=extra, methods=methods, **noise
    )

    rng = np.random.default_rng(seed)
    logit_scores: dict[str, list[float]] = {m: [] for m in methods}
    n = len(images)
    for i in range(n):
        say(0.05 + 0.35 * i / n, f"random logit: image {i + 1} of {n}")
        others = _other_classes(int(targets[i]), n_classes, rng)
        rep = np.repeat(images[i : i + 1], len(others), axis=0)
        rep_extra = (
            None if extra is None else [np.repeat(e[i : i + 1], len(others), axis=0) for e in extra]
        )
        other_maps = explain(
            model,
            rep,
            layer=info.path,
            target=others,
            extra_inputs=rep_extra,
            methods=methods,
            **noise,
        )
        for m in methods:
            logit_scores[m].extend(spearman(trained[m][i], om) for om in other_maps[m])

    say(0.4, "copying the model")
    clone = model_copy(model)
    steps = cascade_steps(clone, info.name)
    steps_total = len(steps)
    done: set[int] = set()
    cascade: dict[str, list[Step]] = {m: [] for m in methods}
    strips: dict[str, list[np.ndarray]] = {m: [trained[m]] for m in methods}
    layer_rng = np.random.default_rng(seed)
    for s, (name, layers) in enumerate(steps):
        say(0.45 + 0.55 * s / steps_total, f"randomised: {name} (step {s + 1} of {steps_total})")
        for l in layers:
            if id(l) not in done:
                _reinitialise(l, layer_rng)
                done.add(id(l))
        maps = explain(
            clone,
            images,
            layer=info.path,
            target=targets,
            extra_inputs=extra,
            methods=methods,
            **noise,
        )
        for m in methods:
            cascade[m].append(
                Step(
                    name,
                    float(np.mean([spearman(trained[m][i], maps[m][i]) for i in range(n)])),
                    float(np.mean([ssim(trained[m][i], maps[m][i]) for i in range(n)])),
                )
            )
            strips[m].append(maps[m])
    del clone
    say(1.0, "done")
    return SanityReport(
        model=model_name,
        layer=info.path,
        images=list(image_ids) if image_ids is not None else [str(i) for i in range(n)],
        methods={
            m: MethodSanity(
                m,
                cascade[m],
                float(np.mean(logit_scores[m])) if logit_scores[m] else 0.0,
                np.stack(strips[m]).astype(np.float32),
            )
            for m in methods
        },
    )


# --- the bundled images and the disk cache ----------------------------------------------------


def sample_inputs(bundle, n: int = DEFAULT_SAMPLES) -> tuple[np.ndarray, list | None, list[str]]:
    """The first ``n`` bundled samples prepared for ``bundle`` (with each patient's metadata
    for the skin-lesion model): ``(images, extra inputs, ids)``."""
    samples = list_samples()[: max(1, int(n))]
    images = np.concatenate([prepare(bundle, load_image(s.path)) for s in samples])
    if bundle.metadata_input:
        extra = [
            np.concatenate(
                [s.metadata()[None] if s.metadata().ndim == 1 else s.metadata() for s in samples]
            )
        ]
    else:
        default = default_extra_inputs(bundle)
        extra = (
            None
            if default is None
            else [np.repeat(np.asarray(e)[:1], len(samples), axis=0) for e in default]
        )
    return images, extra, [s.image_id for s in samples]


def model_fingerprint(bundle) -> str:
    """SHA-256 of the model's file when it has one, else of its weights."""
    digest = hashlib.sha256()
    source = Path(str(getattr(bundle, "source", "") or ""))
    if source.is_file():
        with open(source, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(str(getattr(bundle, "weights", "")).encode())
    else:
        for w in bundle.model.get_weights():
            digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def cache_key(
    fingerprint: str,
    layer: str,
    method: str,
    n_samples: int,
    sigma: float,
    seed: int,
    image_ids: Sequence[str],
) -> str:
    text = json.dumps(
        [
            CACHE_VERSION,
            fingerprint,
            layer,
            method,
            int(n_samples),
            round(float(sigma), 6),
            int(seed),
            list(image_ids),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def save_cached(key: str, report: SanityReport, method: str) -> None:
    """One method's result as a signed JSON file (`sanity_cache.write_entry`)."""
    m = report.methods[method]
    write_entry(
        key,
        {
            "model": report.model,
            "layer": report.layer,
            "images": list(report.images),
            "key": method,
            **m.to_json(),
            "maps": np.round(m.maps, 6).tolist(),
        },
    )


def load_cached(key: str) -> tuple[dict, MethodSanity] | None:
    """``(header, result)`` from the cache, or None: also for a file that is not this
    installation's signed, well-formed entry, or whose verdict does not follow from its
    figures (then the checks are computed again)."""
    found = read_entry(key)
    if found is None:
        return None
    data, maps = found
    result = MethodSanity(
        data["key"],
        [Step(s["step"], float(s["spearman"]), float(s["ssim"])) for s in data["cascade"]],
        float(data["random_logit_spearman"]),
        maps,
    )
    if result.verdict != data["verdict"]:
        return None
    return {"model": data["model"], "layer": data["layer"], "images": data["images"]}, result


def cached_verdict(
    bundle,
    layer: str,
    method: str,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    n_images: int = DEFAULT_SAMPLES,
    fingerprint: str | None = None,
) -> MethodSanity | None:
    """The cached result for these settings, never computed here (the Explain page's badge)."""
    ids = [s.image_id for s in list_samples()[:n_images]]
    key = cache_key(
        fingerprint or model_fingerprint(bundle), layer, method, n_samples, sigma, seed, ids
    )
    found = load_cached(key)
    return None if found is None else found[1]


def sanity_for_bundle(
    bundle,
    *,
    layer: str | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    n_images: int = DEFAULT_SAMPLES,
    n_samples: int = 0,
    sigma: float = 0.15,
    seed: int = 0,
    progress: ProgressFn | None = None,
    use_cache: bool = True,
) -> SanityReport:
    """The checks on the bundled samples, each method read from the disk cache when there,
    computed (all missing methods together) and stored otherwise."""
    methods = resolve_methods(methods)
    info = resolve_layer(bundle.model, layer)
    images, extra, ids = sample_inputs(bundle, n_images)
    fingerprint = model_fingerprint(bundle)
    keys = {m: cache_key(fingerprint, info.path, m, n_samples, sigma, seed, ids) for m in methods}
    found = {m: load_cached(k) for m, k in keys.items()} if use_cache else dict.fromkeys(methods)
    results = {m: f[1] for m, f in found.items() if f is not None}
    missing = [m for m in methods if m not in results]
    if missing:
        report = run_sanity(
            bundle.model,
            images,
            extra,
            layer=info.path,
            methods=missing,
            n_samples=n_samples,
            sigma=sigma,
            seed=seed,
            model_name=bundle.key,
            image_ids=ids,
            progress=progress,
        )
        for m in missing:
            save_cached(keys[m], report, m)
            results[m] = report.methods[m]
    elif progress:
        progress(1.0, "read from the cache")
    return SanityReport(bundle.key, info.path, ids, {m: results[m] for m in methods})
