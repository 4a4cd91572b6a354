"""What a model needs to be fed and read: ``ModelBundle`` (the Keras model, its input size,
preprocessing and class names), the preprocessing scalings a user can choose, and ``prepare``
(resize + preprocess an image for a bundle). Sources of bundles: ``zoo`` (catalogue),
``skin_lesion`` and ``user_models``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from explainers.errors import ExplainerError
from explainers.images import load_image, resize
from explainers.render import upsample

Preprocess = Callable[[np.ndarray], np.ndarray]


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


def identity(x: np.ndarray) -> np.ndarray:
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
    "none": identity,
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


def preprocess_choice(name: str | None) -> tuple[str, Preprocess]:
    key = "none" if name is None else str(name).strip().lower()
    key = {
        "identity": "none",
        "0-1": "0..1",
        "-1-1": "-1..1",
        "caffe": "imagenet caffe",
        "torch": "imagenet torch",
    }.get(key, key)
    if key not in PREPROCESS_CHOICES:
        raise ExplainerError(
            f"unknown preprocessing '{name}'; choose from {', '.join(PREPROCESS_CHOICES)}"
        )
    return key, PREPROCESS_CHOICES[key]


# --- feeding images -------------------------------------------------------------------------


def _tf_bilinear(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Bilinear without antialiasing (``tf.image.resize``'s default), float32 (H, W, 3)."""
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
