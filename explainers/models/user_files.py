"""The user's own ``.keras`` / ``.h5`` model file, always loaded with ``safe_mode=True``: a file
whose loading would run Python code (a ``Lambda`` layer) is refused, never executed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import keras
import numpy as np

from explainers.engine.adapter import candidate_layers
from explainers.errors import ExplainerError, one_line
from explainers.models.archive_limits import check_h5, check_keras_zip
from explainers.models.bundle import ModelBundle, Preprocess, preprocess_choice
from explainers.models.imagenet_names import imagenet_class_names

#: Default input size of user models whose input shape leaves height/width open.
DEFAULT_INPUT_SIZE = (224, 224)

ModelSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _sniff_format(head: bytes, name: str) -> str:
    """ ".keras" (a zip) or ".h5" (HDF5) from the file's first bytes; the extension can lie."""
    if head.startswith(_ZIP_MAGIC):
        return ".keras"
    if head.startswith(_HDF5_MAGIC):
        return ".h5"
    raise ExplainerError(f"{name} is not a Keras model file (expected a .keras or .h5 file)")


def _read_model_source(
    source: ModelSource, filename: str | None
) -> tuple[Path | None, bytes | None, str]:
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
            with contextlib.suppress(OSError, ValueError):
                source.seek(0)
        data = source.read()
        if isinstance(data, str):
            raise ExplainerError(
                "the model file was opened in text mode; open it in binary mode ('rb')"
            )
        data = bytes(data or b"")
        if filename is None:
            filename = os.path.basename(str(getattr(source, "name", "") or "")) or None
    else:
        raise ExplainerError(f"cannot read a model from a {type(source).__name__}")
    name = filename or "the uploaded model"
    if not data:
        raise ExplainerError(f"{name} is empty (0 bytes)")
    return None, data, name


def _check_limits(path: Path, fmt: str, name: str) -> None:
    """The archive's sizes, before Keras reads anything (``archive_limits``)."""
    (check_keras_zip if fmt == ".keras" else check_h5)(path, name)


def _keras_load(path: Path, name: str) -> Any:
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        # Keras names the file it read: for an upload a private temporary path, never shown.
        text = str(exc).replace(str(path), name).replace(str(path.parent), "")
        exc = ValueError(text)
        if "safe_mode" in text or "arbitrary code" in text or "unsafe" in text.lower():
            raise ExplainerError(
                f"{name} contains Python code (a Lambda layer or similar) that would run when "
                "the model is loaded, so it was not loaded; rebuild the model without Lambda layers"
            ) from None
        if "Could not locate" in text or "Unknown layer" in text or "custom_objects" in text:
            raise ExplainerError(
                f"{name} uses a custom layer or function this app does not know, so it cannot be "
                f"loaded ({one_line(exc, 120)})"
            ) from None
        if "config.json" in text or "signature" in text or "not a valid" in text.lower():
            raise ExplainerError(
                f"{name} is not a Keras model file (expected a .keras or .h5 file)"
            ) from None
        raise ExplainerError(f"could not load {name} as a Keras model: {one_line(exc)}") from None


def _load_any(source: ModelSource, filename: str | None) -> tuple[Any, str]:
    """Load the model from a path or bytes; bytes go to a private temp file deleted at once."""
    path, data, name = _read_model_source(source, filename)
    if path is not None:
        with open(path, "rb") as f:
            head = f.read(16)
        fmt = _sniff_format(head, name)
        if path.suffix.lower() == fmt or (fmt == ".h5" and path.suffix.lower() == ".hdf5"):
            _check_limits(path, fmt, name)
            return _keras_load(path, name), name
        with open(path, "rb") as f:
            data = f.read()  # Keras decides by extension: give it a copy with the right one
    fmt = _sniff_format(data[:16], name)
    folder = tempfile.mkdtemp(prefix="explainers-model-")  # mode 0700: private to this user
    try:
        tmp = Path(folder) / f"model{fmt}"
        with open(tmp, "wb") as f:
            f.write(data)
        _check_limits(tmp, fmt, name)
        return _keras_load(tmp, name), name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _has_spatial_layer(model: Any) -> bool:
    return bool(candidate_layers(model))


def _check_user_model(model: Any, name: str) -> tuple[tuple[int, int], int, int]:
    """(input size, channels, number of classes) of a model we can explain, or an error."""
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        raise ExplainerError(
            f"{name} holds a model without defined inputs; save a functional or built model"
        )
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


#: The largest class-names file and the longest name accepted (checked before it is split).
MAX_NAMES_BYTES = 2**20
MAX_NAME_CHARS = 200


def parse_class_names(text: str | bytes, n_classes: int | None = None) -> list[str]:
    """One class name per line (blank lines ignored); the count must match the model's outputs.
    Its size is checked before it is split into lines."""
    if len(text) > MAX_NAMES_BYTES:
        raise ExplainerError(
            f"the class-names file is larger than {MAX_NAMES_BYTES // 2**10} KiB; "
            "it should hold one short name per line"
        )
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ExplainerError("the class-names file is not UTF-8 text") from None
    names = [line.strip() for line in str(text).splitlines() if line.strip()]
    if any(len(n) > MAX_NAME_CHARS for n in names):
        raise ExplainerError(
            f"a class name in the class-names file is longer than {MAX_NAME_CHARS} "
            "characters; give one short name per line"
        )
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
        raise ExplainerError(
            f"the '{key}' preprocessing needs an RGB model, but this model is grayscale"
        )

    def gray(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        lum = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
        return preprocess(lum[..., None])

    return gray


def load_model_file(
    source: ModelSource,
    filename: str | None = None,
    class_names: Sequence[str] | str | None = None,
    preprocess: str | None = "none",
) -> ModelBundle:
    """The user's ``.keras`` or ``.h5`` model, from a path, bytes or a binary file object.

    Always ``safe_mode=True``: a file that would run Python code when loaded is refused. The
    format is read from the file's magic bytes. ``preprocess`` is one of ``PREPROCESS_CHOICES``;
    the default "none" feeds raw RGB 0..255, so the file must contain its own scaling (a
    ``Rescaling`` or ``Normalization`` layer) unless another choice is made. ``class_names``: a
    list, or the text of a names file; default: ImageNet names for 1000 outputs, else
    "class 0", "class 1", ...
    """
    pre_key, pre_fn = preprocess_choice(preprocess)
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
            raise ExplainerError(
                f"{len(names)} class names were given but the model has {n_classes} outputs"
            )
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
