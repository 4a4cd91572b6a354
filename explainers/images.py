"""Reading the user's images safely: one RGB Pillow image, or one plain error.

Uploads are decoded from memory and never written to disk. The pixel count is checked from
the header *before* any pixel is decoded, so a small file that declares a huge image (a
decompression bomb) is refused without allocating it. Pillow's global ``MAX_IMAGE_PIXELS`` is
left alone: other code in the same process may rely on it.

The limits, in one place (the README repeats them):

- ``MAX_PIXELS``: larger images (width × height, from the header) are refused;
- ``MAX_SIDE``: what any page or command needs (the model sees ~300 px, the pages draw at most
  512, a report page ~1000): a decoded image is at most this many pixels on its longer side.
  A JPEG is decoded at the first of 1/2, 1/4 or 1/8 scale that fits (Pillow's ``draft``, straight
  from the DCT), so a 48-megapixel photo (8000 × 6000) is decoded at 2000 × 1500 for tens of
  megabytes; other formats are decoded whole (up to ``MAX_PIXELS``), then reduced.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explainers.errors import ExplainerError

#: Largest image accepted, in pixels (width x height). 50 MP is a 8660x5773 photo; a
#: classifier looks at ~0.05 MP, so anything bigger is almost certainly a mistake or an attack.
MAX_PIXELS = 50_000_000
#: Longest side, in pixels, of every decoded image (larger ones are reduced, aspect kept).
MAX_SIDE = 2048

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# Opaque background for transparent images: what a viewer shows on a white page.
_BACKGROUND = (255, 255, 255)


def _name_of(source: object) -> str:
    """A short name for messages: the file name, or 'the uploaded image'."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    name = getattr(source, "name", None)
    if isinstance(name, str) and name:
        return os.path.basename(name)
    return "the uploaded image"


def _read_bytes(source: ImageSource) -> tuple[bytes, str]:
    """All bytes of the source (images are small next to a model), and its name for messages."""
    name = _name_of(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ExplainerError(f"image file not found: {path}")
        if path.is_dir():
            raise ExplainerError(f"{path} is a folder, not an image file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExplainerError(f"cannot read image file {path}: {exc.strerror or exc}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)  # Streamlit's UploadedFile may have been read already
            except (OSError, ValueError):
                pass
        data = source.read()
        if isinstance(data, str):
            raise ExplainerError(f"{name} was opened in text mode; open it in binary mode ('rb')")
        data = bytes(data or b"")
    else:
        raise ExplainerError(
            f"cannot read an image from a {type(source).__name__}; give a path, bytes or a file"
        )
    if not data:
        raise ExplainerError(f"{name} is empty (0 bytes)")
    return data, name


def _check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ExplainerError(f"{name} declares an empty image ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ExplainerError(
            f"{name} is too large: {width}x{height} = {width * height / 1e6:.0f} megapixels "
            f"(limit {max_pixels / 1e6:.0f}); refusing it as a possible decompression bomb"
        )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency composited on white, 16-bit scaled, not clipped."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        # Pillow's convert() clips 16-bit values at 255 (a white image); scale instead.
        arr = np.asarray(im, dtype=np.float64)
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0  # float images are conventionally 0..1
        elif arr.size and arr.max() > 255.0:
            arr = arr / 257.0  # a 32-bit container holding 16-bit data (e.g. 16-bit PNG)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([gray] * 3, axis=-1), "RGB")
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def load_image(
    source: ImageSource, *, max_pixels: int = MAX_PIXELS, max_side: int | None = MAX_SIDE
) -> Image.Image:
    """Decode a path, bytes or binary file into a fully loaded 8-bit RGB ``PIL.Image``.

    Every failure the user can cause (missing, empty, truncated, not an image, too large, an
    unsupported colour mode) is an ``ExplainerError`` with a one-line message. EXIF rotation is
    applied so phone photos are explained the way they are seen. Truncation is detected as long
    as ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default (False); it is not changed here.
    The result is at most ``max_side`` pixels on its longer side (None: full size), a JPEG being
    decoded at that scale directly.
    """
    data, name = _read_bytes(source)
    try:
        with warnings.catch_warnings():
            # Pillow warns above ~89 MP; our own, lower limit below gives the user the message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        # Pillow's own limit (about 179 MP by default) fired while reading the header.
        raise ExplainerError(
            f"{name} is too large (over {max_pixels / 1e6:.0f} megapixels); refusing it as a "
            "possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        raise ExplainerError(
            f"{name} is not an image file Pillow can read (expected PNG, JPEG, BMP, TIFF, WebP, ...)"
        ) from None
    except Exception as exc:  # malformed headers raise anything from SyntaxError to struct.error
        if _looks_truncated(exc):
            raise ExplainerError(
                f"{name} is truncated or damaged: the image data ends early"
            ) from None
        raise ExplainerError(f"{name} is not a readable image: {_one_line(exc)}") from None

    with im:
        width, height = im.size
        _check_size(width, height, name, max_pixels)
        try:
            if max_side and im.format == "JPEG" and max(width, height) > max_side:
                # Decode straight at 1/2, 1/4 or 1/8 scale: the first that fits max_side.
                k = next((k for k in (2, 4, 8) if max(width, height) / k <= max_side), 8)
                im.draft(
                    im.mode if im.mode in ("RGB", "L") else None,
                    (max(1, -(-width // k)), max(1, -(-height // k))),
                )
            im.load()  # force the full decode now, so a truncated file fails here, not later
        except Image.DecompressionBombError:
            raise ExplainerError(
                f"{name} is too large; refusing it as a possible decompression bomb"
            ) from None
        except MemoryError:
            raise ExplainerError(f"{name} is too large to decode in memory") from None
        except Exception as exc:
            if _looks_truncated(exc):
                raise ExplainerError(
                    f"{name} is truncated or damaged: the image data ends early"
                ) from None
            raise ExplainerError(f"{name} could not be decoded: {_one_line(exc)}") from None
        try:
            ImageOps.exif_transpose(im, in_place=True)  # no copy when the photo is upright
        except Exception:
            pass  # a broken EXIF block is no reason to refuse the pixels
        try:
            rgb = _to_rgb(im)
        except (ValueError, OSError) as exc:
            raise ExplainerError(
                f"{name} has colour mode {im.mode}, which cannot be converted to RGB: {_one_line(exc)}"
            ) from None
        rgb.load()
        if max_side and max(rgb.size) > max_side:
            rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return rgb


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size = (height, width)`` (the order models use), bilinear with antialiasing.

    The aspect ratio is not kept: Keras models are trained on squashed, not cropped, images.
    """
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ExplainerError(f"cannot resize to {height}x{width} pixels")
    if image.mode != "RGB":
        image = _to_rgb(image)
    if image.size == (width, height):
        return image.copy()
    return image.resize((width, height), Image.Resampling.BILINEAR)


def to_array(image: Image.Image) -> np.ndarray:
    """The image as uint8 (H, W, 3), the form ``render.overlay`` takes."""
    if image.mode != "RGB":
        image = _to_rgb(image)
    return np.asarray(image, dtype=np.uint8).copy()


def _looks_truncated(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, EOFError) or any(
        w in text for w in ("truncated", "broken", "premature end")
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
