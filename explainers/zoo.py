"""The models a user can pick, each wrapped with what it needs to be fed correctly.

A ``ModelBundle`` carries the Keras model together with its input size, its own preprocessing,
its class names and whether its predictions mean anything (random weights do not). Three
sources:

* ``"skin-lesion"``: the HAM10000 classifier shipped in the ``sklesion`` package (two inputs:
  the image and a 10-value patient metadata vector, see ``skin_lesion_metadata``);
* Keras Applications (``"MobileNetV2"``, ``"ResNet50"``, ...) with ImageNet, random or file weights;
* the user's own ``.keras`` / ``.h5`` file, always loaded with ``safe_mode=True``: a file whose
  loading would run Python code (a ``Lambda`` layer) is refused, never executed.

This module is the catalogue (names, Keras Applications, ``load_model``); the pieces live in
``bundle`` (ModelBundle, preprocessing, ``prepare``), ``skin_lesion`` (its classes, metadata,
samples), ``user_models`` (files, safe_mode) and ``imagenet`` (class names). Their public names
are re-exported here, so ``zoo.X`` keeps working.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from explainers.errors import ExplainerError, one_line
from explainers.models.bundle import (  # noqa: F401  (re-exported: the catalogue's public names)
    PREPROCESS_CHOICES,
    PREPROCESS_HELP,
    ModelBundle,
    Preprocess,
    prepare,
    resized_input,
)
from explainers.models.imagenet_names import IMAGENET_INDEX, imagenet_class_names  # noqa: F401
from explainers.models.skin_lesion import (  # noqa: F401
    AGE_MAX,
    AGE_MEAN,
    AGE_RANGE,
    LOCALIZATION_SITES,
    SAMPLES_DIR,
    SEXES,
    SITES,
    SKIN_CLASS_NAMES,
    SKIN_CLASSES,
    SKIN_LESION,
    SKIN_LESION_PIP,
    SKIN_MALIGNANT,
    Sample,
    default_extra_inputs,
    list_samples,
    load_skin_lesion,
    site_for_localization,
    skin_lesion_metadata,
    skin_lesion_model_path,
)
from explainers.models.user_files import (  # noqa: F401
    DEFAULT_INPUT_SIZE,
    ModelSource,
    load_model_file,
    parse_class_names,
)

# --- Keras Applications ---------------------------------------------------------------------


@dataclass(frozen=True)
class AppSpec:
    """How to build one Keras Application and where its ImageNet weights come from."""

    key: str
    module: str  # keras.applications submodule holding preprocess_input
    size: int
    weights_file: str
    weights_url: str
    preprocess_name: str


_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
APPLICATIONS: dict[str, AppSpec] = {
    s.key: s
    for s in (
        AppSpec(
            "MobileNetV2",
            "mobilenet_v2",
            224,
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
            _GCS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
            "-1..1",
        ),
        AppSpec(
            "ResNet50",
            "resnet50",
            224,
            "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            _GCS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            "imagenet caffe",
        ),
        AppSpec(
            "VGG16",
            "vgg16",
            224,
            "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            _GCS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
            "imagenet caffe",
        ),
        AppSpec(
            "Xception",
            "xception",
            299,
            "xception_weights_tf_dim_ordering_tf_kernels.h5",
            _GCS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5",
            "-1..1",
        ),
        AppSpec(
            "InceptionV3",
            "inception_v3",
            299,
            "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
            _GCS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
            "-1..1",
        ),
        AppSpec(
            "DenseNet121",
            "densenet",
            224,
            "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
            _GCS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
            "imagenet torch",
        ),
        AppSpec(
            "EfficientNetB0",
            "efficientnet",
            224,
            "efficientnetb0.h5",
            "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
            "none (inside the model)",
        ),
    )
}

MODEL_DESCRIPTIONS = {
    SKIN_LESION: "Skin lesions (HAM10000, 7 classes; Xception backbone + patient metadata)",
    "MobileNetV2": "MobileNetV2 — ImageNet, 224x224, small and fast",
    "ResNet50": "ResNet50 — ImageNet, 224x224",
    "VGG16": "VGG16 — ImageNet, 224x224, the original Grad-CAM paper's model",
    "Xception": "Xception — ImageNet, 299x299",
    "InceptionV3": "InceptionV3 — ImageNet, 299x299",
    "DenseNet121": "DenseNet121 — ImageNet, 224x224",
    "EfficientNetB0": "EfficientNetB0 — ImageNet, 224x224",
}


def model_names() -> list[str]:
    """The names ``load_model`` knows, the skin-lesion model first."""
    return [SKIN_LESION, *APPLICATIONS]


def _catalogue_key(name: str) -> str | None:
    wanted = name.strip().lower().replace("_", "-")
    if wanted in (SKIN_LESION, "skin", "sklesion", "skin-lesions"):
        return SKIN_LESION
    for key in APPLICATIONS:
        if key.lower() == wanted:
            return key
    return None


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` (default ``~/.keras/models``)."""
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except Exception:  # private API moved: fall back to Keras' documented default
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(os.path.expanduser(home)) / "models"


def _cached_weights(spec: AppSpec) -> Path | None:
    """The ImageNet weights file if it is already on disk (Keras' cache, or its /tmp fallback
    for read-only homes), so no download is attempted."""
    for folder in (keras_cache_dir(), Path(tempfile.gettempdir()) / ".keras" / "models"):
        path = folder / spec.weights_file
        if path.is_file() and path.stat().st_size > 0:
            return path
    return None


def _home_short(path: Path) -> str:
    home = os.path.expanduser("~")
    text = str(path)
    return "~" + text[len(home) :] if home and text.startswith(home + os.sep) else text


def _app_preprocess(spec: AppSpec) -> Preprocess:
    import keras

    fn = getattr(keras.applications, spec.module).preprocess_input

    def preprocess(x: np.ndarray) -> np.ndarray:
        # Keras' preprocess_input scales NumPy arrays in place: always hand it a copy.
        return np.asarray(fn(np.array(x, dtype=np.float32, copy=True)), dtype=np.float32)

    preprocess.__doc__ = f"keras.applications.{spec.module}.preprocess_input on a copy"
    return preprocess


def _normalise_weights(weights: Any) -> str | Path | None:
    """None / "none" / "random" → None; "imagenet"; anything else is a file path."""
    if weights is None:
        return None
    if isinstance(weights, os.PathLike):
        return Path(weights)
    text = str(weights).strip()
    if text.lower() in ("none", "random", ""):
        return None
    if text.lower() in ("imagenet", "default", "bundled"):
        return "imagenet"
    return Path(text)


def _load_application(spec: AppSpec, weights: Any) -> ModelBundle:
    import keras

    builder = getattr(keras.applications, spec.key)
    choice = _normalise_weights(weights)
    notes: list[str] = []
    if choice is None:
        model = builder(weights=None)
        kind, meaningful = "random", False
        label = f"{spec.key} (random weights — predictions are meaningless)"
    elif choice == "imagenet":
        cached = _cached_weights(spec)
        if cached is not None:
            try:
                model = builder(weights=str(cached))
            except Exception as exc:
                raise ExplainerError(
                    f"the cached ImageNet weights {cached} could not be loaded ({one_line(exc)}); "
                    "delete the file so it is downloaded again"
                ) from None
        else:
            try:
                model = builder(weights="imagenet")
            except Exception as exc:
                text = one_line(exc)
                reason = text.split(" -- ", 1)[1] if " -- " in text else one_line(exc, 90)
                raise ExplainerError(
                    f"could not download the ImageNet weights for {spec.key} "
                    f"(no internet connection? {reason}): put the file {spec.weights_file} (from "
                    f"{spec.weights_url}) into {_home_short(keras_cache_dir())}/, or use random "
                    "weights (weights=None, --weights none)"
                ) from None
        kind, meaningful = "imagenet", True
        label = f"{spec.key} (ImageNet weights)"
    else:
        path = Path(choice)
        if not path.is_file():
            raise ExplainerError(f"weights file not found: {path}")
        try:
            model = builder(weights=str(path))
        except Exception as exc:
            raise ExplainerError(
                f"could not load weights for {spec.key} from {path.name}: {one_line(exc)}"
            ) from None
        kind, meaningful = "file", True
        label = f"{spec.key} (weights from {path.name})"
        notes.append("weights from a file: predictions assume its classes are ImageNet's")
    return ModelBundle(
        key=spec.key,
        label=label,
        model=model,
        input_size=(spec.size, spec.size),
        class_names=list(imagenet_class_names()),
        preprocess=_app_preprocess(spec),
        weights=kind,
        meaningful=meaningful,
        preprocess_name=spec.preprocess_name,
        source=f"keras.applications.{spec.key}",
        notes=notes,
    )


def load_model(
    name: str | os.PathLike,
    weights: Any = "imagenet",
    *,
    class_names: Sequence[str] | None = None,
    preprocess: str | None = None,
) -> ModelBundle:
    """A catalogue model by name (``"skin-lesion"``, ``"MobileNetV2"``, ...; case-insensitive),
    or the user's model when ``name`` is a ``.keras`` / ``.h5`` file.

    ``weights``: ``"imagenet"`` (downloaded once into the Keras cache; offline, a clear error
    saying which file to put where), ``None`` for random weights (the architecture without
    meaningful predictions) or a weights file. ``class_names`` and ``preprocess`` apply to
    user files only.
    """
    from explainers.engine.allocator import prefer_system_allocator

    prefer_system_allocator()  # loading a model is often the first use of TensorFlow
    text = os.fspath(name) if isinstance(name, os.PathLike) else str(name)
    key = None if isinstance(name, os.PathLike) else _catalogue_key(text)
    if key is None:
        path = Path(text).expanduser()
        if path.is_file():
            return load_model_file(path, class_names=class_names, preprocess=preprocess)
        if path.suffix.lower() in (".keras", ".h5", ".hdf5") or os.sep in text:
            raise ExplainerError(f"model file not found: {text}")
        raise ExplainerError(
            f"unknown model '{text}'; choose from {', '.join(model_names())} or give a .keras/.h5 file"
        )
    if class_names is not None or preprocess is not None:
        raise ExplainerError(
            f"class names and preprocessing are set for your own model files only; {key} has its own"
        )
    if key == SKIN_LESION:
        if _normalise_weights(weights) != "imagenet":  # load_model's default: "the usual weights"
            raise ExplainerError(
                "the skin-lesion model comes with its own trained weights only; leave weights unset"
            )
        return load_skin_lesion()
    return _load_application(APPLICATIONS[key], weights)
