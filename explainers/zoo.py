"""The models a user can pick, each wrapped with what it needs to be fed correctly.

A ``ModelBundle`` carries the Keras model together with its input size, its own preprocessing,
its class names and whether its predictions mean anything (random weights do not). Three
sources:

* ``"skin-lesion"``: the HAM10000 classifier shipped in the ``sklesion`` package (two inputs:
  the image and a 10-value patient metadata vector, see ``skin_lesion_metadata``);
* Keras Applications (``"MobileNetV2"``, ``"ResNet50"``, ...) with ImageNet, random or file weights;
* the user's own ``.keras`` / ``.h5`` file, always loaded with ``safe_mode=True``: a file whose
  loading would run Python code (a ``Lambda`` layer) is refused, never executed.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence, Union

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError
from explainers.images import load_image, resize

DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLES_DIR = DATA_DIR / "samples"
IMAGENET_INDEX = DATA_DIR / "imagenet_class_index.json"

SKIN_LESION = "skin-lesion"
SKIN_LESION_PIP = "pip install --no-deps sklesion==0.2.2"
#: Default input size of user models whose input shape leaves height/width open.
DEFAULT_INPUT_SIZE = (224, 224)

ModelSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]
Preprocess = Callable[[np.ndarray], np.ndarray]

# --- the skin-lesion model ------------------------------------------------------------------

SKIN_CLASSES = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")
SKIN_CLASS_NAMES = {
    "akiec": "actinic keratosis / intraepithelial carcinoma",
    "bcc": "basal cell carcinoma",
    "bkl": "benign keratosis-like lesion",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "melanocytic nevus",
    "vasc": "vascular lesion",
}
SKIN_MALIGNANT = frozenset({"akiec", "bcc", "mel"})

#: The metadata encoding of sklesion 0.2.2 (its ``model_props.pkl``).
SEXES = ("female", "male", "unknown")
SITES = ("arm", "head-or-neck", "leg-or-genital", "trunk", "unknown")
AGE_MEAN = 51.90180032733224  # training mean, used when the age is unknown
AGE_MAX = 90.0  # the package divides the age by this
AGE_RANGE = (0.0, 120.0)
#: HAM10000's 15 ``localization`` values grouped into the model's 5 body sites (the package
#: does not publish its grouping; this is the natural one, see docs).
LOCALIZATION_SITES = {
    "upper extremity": "arm", "hand": "arm",
    "face": "head-or-neck", "scalp": "head-or-neck", "neck": "head-or-neck", "ear": "head-or-neck",
    "lower extremity": "leg-or-genital", "foot": "leg-or-genital", "genital": "leg-or-genital",
    "acral": "leg-or-genital",
    "back": "trunk", "trunk": "trunk", "abdomen": "trunk", "chest": "trunk",
    "unknown": "unknown",
}


def site_for_localization(localization: str | None) -> str:
    """The model's body site (``arm``, ``head-or-neck``, ...) for a site or HAM10000 localisation."""
    if localization is None:
        return "unknown"
    key = str(localization).strip().lower().replace("_", " ")
    if key in ("", "nan", "none"):
        return "unknown"
    if key.replace(" ", "-") in SITES:
        return key.replace(" ", "-")
    if key in LOCALIZATION_SITES:
        return LOCALIZATION_SITES[key]
    raise ExplainerError(
        f"unknown body site '{localization}'; choose from {', '.join(SITES)} or a HAM10000 "
        f"localisation ({', '.join(sorted(LOCALIZATION_SITES))})"
    )


def skin_lesion_metadata(age: float | None = None, sex: str | None = None,
                         site: str | None = None) -> np.ndarray:
    """The skin-lesion model's second input, float32 ``(1, 10)``:
    one-hot sex (female, male, unknown), one-hot site (arm, head-or-neck, leg-or-genital, trunk,
    unknown), ``age / 90``, and an age-missing flag. An unknown age is filled with the training
    mean (51.9 years) and flagged, exactly as the ``sklesion`` package does.
    """
    sex_key = "unknown" if sex is None else str(sex).strip().lower()
    sex_key = {"": "unknown", "f": "female", "m": "male", "nan": "unknown"}.get(sex_key, sex_key)
    if sex_key not in SEXES:
        raise ExplainerError(f"unknown sex '{sex}'; choose from {', '.join(SEXES)}")
    site_key = site_for_localization(site)
    if age is None or (isinstance(age, str) and not age.strip()):
        age_value, missing = AGE_MEAN, 1.0
    else:
        try:
            age_value = float(age)
        except (TypeError, ValueError):
            raise ExplainerError(f"age must be a number of years, got '{age}'") from None
        if np.isnan(age_value):
            age_value, missing = AGE_MEAN, 1.0
        elif not AGE_RANGE[0] <= age_value <= AGE_RANGE[1]:
            raise ExplainerError(
                f"age must be between {AGE_RANGE[0]:.0f} and {AGE_RANGE[1]:.0f} years, got {age_value:g}"
            )
        else:
            missing = 0.0
    vec = np.zeros((1, 10), dtype=np.float32)
    vec[0, SEXES.index(sex_key)] = 1.0
    vec[0, 3 + SITES.index(site_key)] = 1.0
    vec[0, 8] = age_value / AGE_MAX
    vec[0, 9] = missing
    return vec


# --- the bundle -----------------------------------------------------------------------------


@dataclass
class ModelBundle:
    """A model with everything needed to feed it and to read its output.

    ``preprocess`` takes float RGB 0..255 ``(N, H, W, 3)`` and returns the model's input;
    ``meaningful`` is False for random weights, whose predictions say nothing.
    """

    key: str
    label: str
    model: Any
    input_size: tuple[int, int]
    class_names: list[str]
    preprocess: Preprocess
    weights: str  # "bundled" | "imagenet" | "random" | "file"
    meaningful: bool = True
    metadata_input: bool = False
    class_descriptions: list[str] | None = None  # long names ("melanoma"), when known
    malignant: list[bool] | None = None  # per class, for the skin-lesion model
    preprocess_name: str = "none"
    #: "antialias" (Pillow bilinear, smooth when shrinking) or "tf-bilinear" (no antialiasing,
    #: what ``tf.image.resize`` did when the skin-lesion model was trained).
    resize_method: str = "antialias"
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def class_label(self, index: int) -> str:
        """``"mel — melanoma"`` when a long name is known, else the class name."""
        name = self.class_names[index]
        if self.class_descriptions and self.class_descriptions[index] != name:
            return f"{name} — {self.class_descriptions[index]}"
        return name


def default_extra_inputs(bundle: ModelBundle) -> list[np.ndarray] | None:
    """The extra inputs for "nothing known" (skin-lesion: all metadata unknown), else None."""
    return [skin_lesion_metadata()] if bundle.metadata_input else None


def _identity(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _zero_one(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / np.float32(255.0)


def _minus_one_one(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


_CAFFE_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)  # BGR
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _caffe(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[..., ::-1] - _CAFFE_MEAN


def _torch(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32) / np.float32(255.0) - _TORCH_MEAN) / _TORCH_STD


#: Scalings a user can choose for their own model (its file must otherwise contain its own).
PREPROCESS_CHOICES: dict[str, Preprocess] = {
    "none": _identity,
    "0..1": _zero_one,
    "-1..1": _minus_one_one,
    "imagenet caffe": _caffe,
    "imagenet torch": _torch,
}
PREPROCESS_HELP = {
    "none": "raw RGB 0..255 (the model scales its input itself)",
    "0..1": "RGB divided by 255",
    "-1..1": "RGB scaled to -1..1 (MobileNet, Inception, Xception style)",
    "imagenet caffe": "BGR minus the ImageNet mean (VGG, ResNet50 style)",
    "imagenet torch": "0..1 then ImageNet mean/std (DenseNet style)",
}


def _preprocess_choice(name: str | None) -> tuple[str, Preprocess]:
    key = "none" if name is None else str(name).strip().lower()
    key = {"identity": "none", "0-1": "0..1", "-1-1": "-1..1", "caffe": "imagenet caffe",
           "torch": "imagenet torch"}.get(key, key)
    if key not in PREPROCESS_CHOICES:
        raise ExplainerError(f"unknown preprocessing '{name}'; choose from {', '.join(PREPROCESS_CHOICES)}")
    return key, PREPROCESS_CHOICES[key]


# --- ImageNet classes -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names in output order, from the copy shipped in the package
    (Keras would download it, which fails offline)."""
    with open(IMAGENET_INDEX, encoding="utf-8") as f:
        index = json.load(f)
    return tuple(index[str(i)][1] for i in range(len(index)))


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
        AppSpec("MobileNetV2", "mobilenet_v2", 224,
                "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                _GCS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                "-1..1"),
        AppSpec("ResNet50", "resnet50", 224, "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                _GCS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "imagenet caffe"),
        AppSpec("VGG16", "vgg16", 224, "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                _GCS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "imagenet caffe"),
        AppSpec("Xception", "xception", 299, "xception_weights_tf_dim_ordering_tf_kernels.h5",
                _GCS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5", "-1..1"),
        AppSpec("InceptionV3", "inception_v3", 299, "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                _GCS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "-1..1"),
        AppSpec("DenseNet121", "densenet", 224, "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                _GCS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5", "imagenet torch"),
        AppSpec("EfficientNetB0", "efficientnet", 224, "efficientnetb0.h5",
                "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
                "none (inside the model)"),
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
    return "~" + text[len(home):] if home and text.startswith(home + os.sep) else text


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
                    f"the cached ImageNet weights {cached} could not be loaded ({_one_line(exc)}); "
                    "delete the file so it is downloaded again"
                ) from None
        else:
            try:
                model = builder(weights="imagenet")
            except Exception as exc:
                text = _one_line(exc)
                reason = text.split(" -- ", 1)[1] if " -- " in text else _one_line(exc, 90)
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
                f"could not load weights for {spec.key} from {path.name}: {_one_line(exc)}"
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


def skin_lesion_model_path() -> Path:
    """The ``model.keras`` file inside the installed ``sklesion`` package."""
    spec = importlib.util.find_spec("sklesion")
    if spec is None or not spec.submodule_search_locations:
        raise ExplainerError(
            f"the skin-lesion model is not installed; run: {SKIN_LESION_PIP}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.keras"
    if not path.is_file():
        raise ExplainerError(
            f"the skin-lesion model file is missing from the sklesion package; run: {SKIN_LESION_PIP}"
        )
    return path


def _load_skin_lesion(weights: Any) -> ModelBundle:
    choice = _normalise_weights(weights)
    if choice != "imagenet":  # "imagenet" is load_model's default, it means "the usual weights"
        raise ExplainerError("the skin-lesion model comes with its own trained weights only; leave weights unset")
    import keras

    path = skin_lesion_model_path()
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise ExplainerError(
            f"could not load the skin-lesion model ({_one_line(exc)}); reinstall it: {SKIN_LESION_PIP}"
        ) from None
    return ModelBundle(
        key=SKIN_LESION,
        label="Skin lesions (HAM10000, sklesion 0.2.2)",
        model=model,
        input_size=(254, 254),
        class_names=list(SKIN_CLASSES),
        preprocess=_identity,  # a Normalization layer inside the model does the scaling
        weights="bundled",
        meaningful=True,
        metadata_input=True,
        class_descriptions=[SKIN_CLASS_NAMES[c] for c in SKIN_CLASSES],
        malignant=[c in SKIN_MALIGNANT for c in SKIN_CLASSES],
        preprocess_name="none (inside the model)",
        resize_method="tf-bilinear",
        source=str(path),
    )


def load_model(name: str | os.PathLike, weights: Any = "imagenet", *,
               class_names: Sequence[str] | None = None, preprocess: str | None = None) -> ModelBundle:
    """A catalogue model by name (``"skin-lesion"``, ``"MobileNetV2"``, ...; case-insensitive),
    or the user's model when ``name`` is a ``.keras`` / ``.h5`` file.

    ``weights``: ``"imagenet"`` (downloaded once into the Keras cache; offline, a clear error
    saying which file to put where), ``None`` for random weights (the architecture without
    meaningful predictions) or a weights file. ``class_names`` and ``preprocess`` apply to
    user files only.
    """
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
        raise ExplainerError(f"class names and preprocessing are set for your own model files only; {key} has its own")
    if key == SKIN_LESION:
        return _load_skin_lesion(weights)
    return _load_application(APPLICATIONS[key], weights)


# --- the user's own model file --------------------------------------------------------------

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _sniff_format(head: bytes, name: str) -> str:
    """".keras" (a zip) or ".h5" (HDF5) from the file's first bytes; the extension can lie."""
    if head.startswith(_ZIP_MAGIC):
        return ".keras"
    if head.startswith(_HDF5_MAGIC):
        return ".h5"
    raise ExplainerError(f"{name} is not a Keras model file (expected a .keras or .h5 file)")


def _read_model_source(source: ModelSource, filename: str | None) -> tuple[Path | None, bytes | None, str]:
    """(path, None, name) for files on disk, (None, data, name) for uploads."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        name = filename or path.name
        if not path.exists():
            raise ExplainerError(f"model file not found: {path}")
        if path.is_dir():
            raise ExplainerError(
                f"{path} is a folder (a TensorFlow SavedModel?); save the model as one .keras file"
            )
        if path.stat().st_size == 0:
            raise ExplainerError(f"{name} is empty (0 bytes)")
        return path, None, name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read()
        if isinstance(data, str):
            raise ExplainerError("the model file was opened in text mode; open it in binary mode ('rb')")
        data = bytes(data or b"")
        if filename is None:
            filename = os.path.basename(str(getattr(source, "name", "") or "")) or None
    else:
        raise ExplainerError(f"cannot read a model from a {type(source).__name__}")
    name = filename or "the uploaded model"
    if not data:
        raise ExplainerError(f"{name} is empty (0 bytes)")
    return None, data, name


def _keras_load(path: Path, name: str) -> Any:
    import keras

    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        text = str(exc)
        if "safe_mode" in text or "arbitrary code" in text or "unsafe" in text.lower():
            raise ExplainerError(
                f"{name} contains Python code (a Lambda layer or similar) that would run when "
                "the model is loaded, so it was not loaded; rebuild the model without Lambda layers"
            ) from None
        if "Could not locate" in text or "Unknown layer" in text or "custom_objects" in text:
            raise ExplainerError(
                f"{name} uses a custom layer or function this app does not know, so it cannot be "
                f"loaded ({_one_line(exc, 120)})"
            ) from None
        if "config.json" in text or "signature" in text or "not a valid" in text.lower():
            raise ExplainerError(f"{name} is not a Keras model file (expected a .keras or .h5 file)") from None
        raise ExplainerError(f"could not load {name} as a Keras model: {_one_line(exc)}") from None


def _load_any(source: ModelSource, filename: str | None) -> tuple[Any, str]:
    """Load the model from a path or bytes; bytes go to a private temp file deleted at once."""
    path, data, name = _read_model_source(source, filename)
    if path is not None:
        with open(path, "rb") as f:
            head = f.read(16)
        fmt = _sniff_format(head, name)
        if path.suffix.lower() == fmt or (fmt == ".h5" and path.suffix.lower() == ".hdf5"):
            return _keras_load(path, name), name
        with open(path, "rb") as f:
            data = f.read()  # Keras decides by extension: give it a copy with the right one
    fmt = _sniff_format(data[:16], name)
    folder = tempfile.mkdtemp(prefix="explainers-model-")  # mode 0700: private to this user
    try:
        tmp = Path(folder) / f"model{fmt}"
        with open(tmp, "wb") as f:
            f.write(data)
        return _keras_load(tmp, name), name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _has_spatial_layer(model: Any) -> bool:
    from explainers.adapter import candidate_layers

    return bool(candidate_layers(model))


def _check_user_model(model: Any, name: str) -> tuple[tuple[int, int], int, int]:
    """(input size, channels, number of classes) of a model we can explain, or an error."""
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        raise ExplainerError(f"{name} holds a model without defined inputs; save a functional or built model")
    shapes = [tuple(t.shape) for t in inputs]
    image = [s for s in shapes if len(s) == 4]
    if not image:
        raise ExplainerError(
            f"{name}: the model's input is not an image (input shape {', '.join(map(str, shapes))}; "
            "expected (batch, height, width, channels))"
        )
    if len(inputs) != 1:
        raise ExplainerError(
            f"{name}: the model has {len(inputs)} inputs; only models with a single image input "
            "can be loaded from a file"
        )
    _, h, w, c = image[0]
    if c not in (1, 3):
        hint = " (channels-first models are not supported)" if h in (1, 3) else ""
        raise ExplainerError(
            f"{name}: the model expects {c} colour channels; only RGB (3) or grayscale (1) works{hint}"
        )
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1 or len(outputs[0].shape) != 2 or not outputs[0].shape[-1]:
        out_shapes = ", ".join(str(tuple(o.shape)) for o in outputs)
        raise ExplainerError(
            f"{name}: the model's output {out_shapes} is not one vector of class scores (batch, classes)"
        )
    if not _has_spatial_layer(model):
        raise ExplainerError(
            f"{name}: the model has no layer with a spatial output (batch, height, width, channels "
            "larger than 1x1), so there is nothing to draw a heatmap on"
        )
    size = (int(h) if h else DEFAULT_INPUT_SIZE[0], int(w) if w else DEFAULT_INPUT_SIZE[1])
    return size, int(c), int(outputs[0].shape[-1])


def parse_class_names(text: str | bytes, n_classes: int | None = None) -> list[str]:
    """One class name per line (blank lines ignored); the count must match the model's outputs."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ExplainerError("the class-names file is not UTF-8 text") from None
    names = [line.strip() for line in str(text).splitlines() if line.strip()]
    if not names:
        raise ExplainerError("the class-names file has no names (one per line expected)")
    if n_classes is not None and len(names) != n_classes:
        raise ExplainerError(
            f"the class-names file has {len(names)} names but the model has {n_classes} outputs"
        )
    return names


def _gray(preprocess: Preprocess, key: str) -> Preprocess:
    """Grayscale models: ITU-R 601 luminance of the RGB input, then the chosen scaling."""
    if key.startswith("imagenet"):
        raise ExplainerError(f"the '{key}' preprocessing needs an RGB model, but this model is grayscale")

    def gray(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        lum = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
        return preprocess(lum[..., None])

    return gray


def load_model_file(source: ModelSource, filename: str | None = None,
                    class_names: Sequence[str] | str | None = None,
                    preprocess: str | None = "none") -> ModelBundle:
    """The user's ``.keras`` or ``.h5`` model, from a path, bytes or a binary file object.

    Always ``safe_mode=True``: a file that would run Python code when loaded is refused. The
    format is read from the file's magic bytes. ``preprocess`` is one of ``PREPROCESS_CHOICES``;
    the default "none" feeds raw RGB 0..255, so the file must contain its own scaling (a
    ``Rescaling`` or ``Normalization`` layer) unless another choice is made. ``class_names``: a
    list, or the text of a names file; default: ImageNet names for 1000 outputs, else
    "class 0", "class 1", ...
    """
    pre_key, pre_fn = _preprocess_choice(preprocess)
    model, name = _load_any(source, filename)
    size, channels, n_classes = _check_user_model(model, name)
    notes = []
    if class_names is None:
        if n_classes == 1000:
            names = list(imagenet_class_names())
            notes.append("1000 outputs: assumed to be the ImageNet classes")
        else:
            names = [f"class {i}" for i in range(n_classes)]
    elif isinstance(class_names, (str, bytes)):
        names = parse_class_names(class_names, n_classes)
    else:
        names = [str(c).strip() for c in class_names]
        if len(names) != n_classes:
            raise ExplainerError(f"{len(names)} class names were given but the model has {n_classes} outputs")
    if channels == 1:
        pre_fn = _gray(pre_fn, pre_key)
    return ModelBundle(
        key=f"file:{name}",
        label=f"{name} (your model, {n_classes} classes)",
        model=model,
        input_size=size,
        class_names=names,
        preprocess=pre_fn,
        weights="file",
        meaningful=True,
        preprocess_name=pre_key,
        source=name,
        notes=notes,
    )


# --- feeding images -------------------------------------------------------------------------


def _tf_bilinear(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Bilinear without antialiasing (``tf.image.resize``'s default), float32 (H, W, 3)."""
    from explainers.render import upsample

    arr = np.asarray(image, dtype=np.float32)
    out = np.moveaxis(upsample(np.moveaxis(arr, -1, 0), size), 0, -1)
    return np.clip(out, 0.0, 255.0)  # float rounding may overshoot 255 by a hair


def resized_input(bundle: ModelBundle, pil_image: Image.Image | Any) -> np.ndarray:
    """The image at the model's input size, before preprocessing: float32 ``(H, W, 3)`` in
    0..255, resized the way this model expects (see ``ModelBundle.resize_method``)."""
    image = pil_image if isinstance(pil_image, Image.Image) else load_image(pil_image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if bundle.resize_method == "tf-bilinear":
        return _tf_bilinear(image, bundle.input_size)
    return np.asarray(resize(image, bundle.input_size), dtype=np.float32)


def prepare(bundle: ModelBundle, pil_image: Image.Image | Any) -> np.ndarray:
    """The image resized to the model's input size and preprocessed: float32 ``(1, H, W, C)``.

    ``pil_image`` may also be anything ``load_image`` reads (a path, bytes, a file).
    """
    arr = resized_input(bundle, pil_image)
    return np.asarray(bundle.preprocess(arr[None]), dtype=np.float32)


# --- sample gallery -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A bundled HAM10000 image with its diagnosis and patient data (CC BY-NC-SA 4.0)."""

    image_id: str
    path: Path
    dx: str
    dx_name: str
    age: float | None
    sex: str
    localization: str

    @property
    def malignant(self) -> bool:
        return self.dx in SKIN_MALIGNANT

    def metadata(self) -> np.ndarray:
        """The skin-lesion model's metadata input for this patient."""
        return skin_lesion_metadata(self.age, self.sex, self.localization)


def list_samples() -> list[Sample]:
    """The bundled dermoscopy images (``explainers/data/samples``, see its LICENSE.md)."""
    samples = []
    with open(SAMPLES_DIR / "samples.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            age_text = (row.get("age") or "").strip()
            samples.append(
                Sample(
                    image_id=row["image_id"],
                    path=SAMPLES_DIR / f"{row['image_id']}.jpg",
                    dx=row["dx"],
                    dx_name=SKIN_CLASS_NAMES.get(row["dx"], row["dx"]),
                    age=float(age_text) if age_text else None,
                    sex=row.get("sex") or "unknown",
                    localization=row.get("localization") or "unknown",
                )
            )
    return samples


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
