"""Reading images: every colour mode becomes RGB, every bad file becomes one plain ExplainerError."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explainers.errors import ExplainerError
from explainers.images import MAX_PIXELS, load_image, resize, to_array


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR declaring width x height, with no pixel data at all:
    a few dozen bytes that would need gigabytes if decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_png_from_path_bytes_and_file_object_give_the_same_rgb_pixels(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(pixels), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for source in (path, str(path), data, bytearray(data), io.BytesIO(data)):
        im = load_image(source)
        assert im.mode == "RGB" and im.size == (17, 12)
        np.testing.assert_array_equal(to_array(im), pixels)


def test_a_file_object_read_before_is_rewound():
    data = _encode(Image.new("RGB", (4, 3), (1, 2, 3)), "PNG")
    f = io.BytesIO(data)
    f.read()
    assert to_array(load_image(f))[0, 0].tolist() == [1, 2, 3]


def test_grayscale_and_bilevel_become_equal_rgb_channels():
    gray = load_image(_encode(Image.new("L", (5, 4), 77), "PNG"))
    assert to_array(gray)[2, 3].tolist() == [77, 77, 77]
    bilevel = load_image(_encode(Image.new("1", (5, 4), 1), "BMP"))
    assert to_array(bilevel)[0, 0].tolist() == [255, 255, 255]


def test_transparent_pixels_are_composited_on_white():
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red: white
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black: mid grey
    out = to_array(load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG")))
    assert out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [255, 0, 0]
    assert all(abs(int(v) - 127) <= 1 for v in out[1, 0])


def test_palette_with_transparency_and_la_are_composited_on_white():
    pal = Image.new("P", (3, 3), 0)
    pal.putpalette([0, 0, 255] + [0, 0, 0] * 255)
    assert to_array(load_image(_encode(pal, "PNG", transparency=0)))[1, 1].tolist() == [
        255,
        255,
        255,
    ]
    assert to_array(load_image(_encode(pal, "PNG")))[1, 1].tolist() == [0, 0, 255]
    la = Image.new("LA", (3, 3), (0, 0))
    assert to_array(load_image(_encode(la, "PNG")))[0, 0].tolist() == [255, 255, 255]


def test_cmyk_is_converted_to_rgb():
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 0, 0))  # full magenta ink
    assert to_array(load_image(_encode(cmyk, "TIFF")))[0, 0].tolist() == [255, 0, 255]


def test_16_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = to_array(load_image(data))
    assert out[0, :, 0].tolist() == [0, 100, 255]


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ExplainerError, match="image file not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ExplainerError, match="is a folder"):
        load_image(tmp_path)


def test_empty_file_and_empty_bytes(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ExplainerError, match=r"empty \(0 bytes\)"):
        load_image(path)
    with pytest.raises(ExplainerError, match="empty"):
        load_image(b"")


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some text, not pixels\n" * 10)
    with pytest.raises(ExplainerError, match="is not an image file") as info:
        load_image(path)
    assert "notes.png" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_is_refused_not_half_decoded(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), fmt)
    with pytest.raises(ExplainerError, match="truncated") as info:
        load_image(data[: len(data) // 2])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 10_000), (8_000, 7_000)])
def test_decompression_bomb_is_refused_from_the_header(size):
    # Beyond Pillow's own limit, between ours and Pillow's, and just above ours (56 MP): the
    # file has no pixel data, so had it been decoded the message would say "truncated".
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ExplainerError, match="decompression bomb") as info:
        load_image(_png_header_only(*size))
    assert "truncated" not in str(info.value)
    assert before == Image.MAX_IMAGE_PIXELS  # Pillow's global limit is left alone


def test_a_real_large_one_colour_png_is_refused_and_a_lower_limit_applies():
    big = _encode(Image.new("L", (10_000, 10_000), 0), "PNG", optimize=True)
    assert len(big) < 200_000  # small on disk, 100 MP decoded
    with pytest.raises(ExplainerError, match="100 megapixels"):
        load_image(big)
    small = _encode(Image.new("RGB", (20, 20)), "PNG")
    assert load_image(small, max_pixels=400).size == (20, 20)
    with pytest.raises(ExplainerError, match="too large"):
        load_image(small, max_pixels=399)
    assert MAX_PIXELS == 50_000_000


def test_exif_rotation_is_applied():
    im = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    out = load_image(_encode(im, "JPEG", exif=exif.tobytes()))
    assert out.size == (10, 30)


def test_resize_takes_height_then_width():
    im = Image.new("RGB", (40, 30), (10, 20, 30))
    out = resize(im, (12, 25))
    assert out.size == (25, 12) and out.mode == "RGB"
    assert to_array(out)[5, 5].tolist() == [10, 20, 30]
    with pytest.raises(ExplainerError):
        resize(im, (0, 10))


def _big_jpeg(width: int, height: int) -> bytes:
    """A real photo-like JPEG of width × height made here (a gradient with noise), small on disk."""
    rng = np.random.default_rng(0)
    tile = (rng.random((height // 16, width // 16, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(tile).resize((width, height), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=40)
    return buf.getvalue()


_DECODE = """
import sys
from explainers.images import load_image

def hwm():  # this process's peak resident memory in kB (ru_maxrss would carry pytest's over)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

data = open(sys.argv[1], "rb").read()
before = hwm()
im = load_image(data, max_side=None if sys.argv[2] == "full" else 2048)
print(im.size[0], im.size[1], (hwm() - before) * 1024)
"""


def _decode_in_a_fresh_process(path, how: str) -> tuple[tuple[int, int], int]:
    """(size, growth of the peak resident memory in bytes) of decoding the file, measured in a
    process of its own (Pillow's pixels are outside tracemalloc's view)."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-c", _DECODE, str(path), how],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    w, h, grown = (int(v) for v in out.stdout.split())
    return (w, h), grown


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_a_48_megapixel_jpeg_is_decoded_small_with_a_bounded_peak(tmp_path):
    from explainers.images import MAX_SIDE

    path = tmp_path / "big.jpg"
    path.write_bytes(_big_jpeg(8000, 6000))  # 48 MP in about 1 MB
    size, grown = _decode_in_a_fresh_process(path, "reduced")
    assert size == (2000, 1500) and max(size) <= MAX_SIDE
    # Decoded at 1/4 scale straight from the DCT (2000 × 1500 × 3 = 9 MB): never the full 144 MB.
    assert grown < 32 * 2**20, grown
    full_size, full_grown = _decode_in_a_fresh_process(path, "full")  # the measurement sees it
    assert full_size == (8000, 6000) and full_grown > 140 * 2**20, full_grown
    im = load_image(path)
    assert 60 < np.asarray(im).mean() < 200  # the picture, not a blank


def test_every_format_is_reduced_to_the_longest_side_and_small_ones_are_untouched():
    from explainers.images import MAX_SIDE

    for fmt in ("PNG", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGB", (3000, 1000), (10, 200, 30)).save(buf, format=fmt)
        im = load_image(buf.getvalue())
        assert im.size == (MAX_SIDE, round(1000 * MAX_SIDE / 3000)), fmt
        assert tuple(np.asarray(im)[5, 5]) == pytest.approx((10, 200, 30), abs=3)
    small = io.BytesIO()
    Image.new("RGB", (640, 480)).save(small, format="JPEG")
    assert load_image(small.getvalue()).size == (640, 480)
    assert load_image(_big_jpeg(4096, 64), max_side=None).size == (4096, 64)
