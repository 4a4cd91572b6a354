"""A model upload is checked member by member before Keras reads it: a 1 MB zip bomb is
refused in one line with a bounded memory peak; .h5 sizes likewise; no message shows a server
path."""

import io
import struct
import tracemalloc
import zipfile
import zlib

import h5py
import numpy as np
import pytest

from explainers import zoo
from explainers.errors import ExplainerError
from explainers.models import archive_limits as L
from tests.helpers import small_cnn


def _deflated_spaces(inflated: int) -> tuple[bytes, int]:
    """Raw deflate of ``inflated`` spaces and its CRC, made in a second: one block of 4 MiB of
    spaces compressed once, ended with a full flush (so it stands alone), repeated."""
    chunk = b" " * 2**22
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = co.compress(chunk) + co.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated // len(chunk)):
        crc = zlib.crc32(chunk, crc)
    return block * (inflated // len(chunk)) + co.flush(), crc


def _zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of (name, deflated bytes, crc, inflated size) members, written by hand."""
    out, central = io.BytesIO(), []
    for name, body, crc, size in members:
        offset = out.tell()
        head = struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(body), size, len(name), 0
        )
        out.write(head + name.encode() + body)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(body),
                size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name.encode()
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(
        directory
        + struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), start, 0
        )
    )
    return out.getvalue()


def _member(name: str, data: bytes) -> tuple[str, bytes, int, int]:
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    return name, co.compress(data) + co.flush(), zlib.crc32(data), len(data)


def _bomb(inflated: int = 2**30) -> bytes:
    """A .keras-looking zip whose config.json inflates to ``inflated`` bytes of spaces."""
    body, crc = _deflated_spaces(inflated)
    return _zip(
        [
            _member("metadata.json", b'{"keras_version": "3.0.0"}'),
            ("config.json", body, crc, inflated),
            _member("model.weights.h5", b"\0" * 1024),
        ]
    )


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return _bomb()


def _peak(fn) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        try:
            fn()
            raised = None
        except BaseException as exc:
            raised = exc
        return raised, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_zip_bomb_is_refused_in_one_line_before_any_read(bomb):
    assert len(bomb) < 1.5 * 2**20  # about 1 MB on the wire
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        assert z.getinfo("config.json").file_size == 2**30  # 1 GiB once inflated
        assert z.open("config.json").read(2**20) == b" " * 2**20  # a valid deflate stream
    exc, peak = _peak(lambda: zoo.load_model_file(bomb, filename="bomb.keras"))
    assert isinstance(exc, ExplainerError), exc
    text = str(exc)
    assert "\n" not in text and text.startswith(
        "bomb.keras: its config.json would unpack to 1.0 GiB"
    )
    assert "refused before reading it" in text and "/tmp" not in text
    assert peak < 8 * 2**20, peak  # bytes: the upload (1 MB) and its temporary copy, not 1 GiB


def test_a_bomb_within_the_size_limit_is_refused_by_its_ratio():
    data = _bomb(16 * 2**20)  # 16 MiB of spaces: under the config limit, 1000:1
    with pytest.raises(
        ExplainerError, match=r"config.json is compressed \d[\d,]*:1 \(at most 100:1"
    ):
        zoo.load_model_file(data, filename="small-bomb.keras")


def test_too_many_members_and_a_damaged_zip_are_one_line(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(L.MAX_MEMBERS + 1):
            z.writestr(f"f{i}.txt", "x")
    with pytest.raises(ExplainerError, match=f"holds {L.MAX_MEMBERS + 1} files"):
        zoo.load_model_file(buf.getvalue(), filename="many.keras")
    # A member whose bytes do not match its record (here: flipped in the middle) is damaged.
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{" + '"a": 1, ' * 5000 + '"b": 2}')
    raw = bytearray(good.getvalue())
    raw[200:210] = b"\xff" * 10
    with pytest.raises(ExplainerError, match="damaged zip archive") as info:
        zoo.load_model_file(bytes(raw), filename="damaged.keras")
    assert "\n" not in str(info.value)


def test_declared_sizes_are_checked_member_by_member(tmp_path):
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("config.json", b" " * (L.MAX_CONFIG_BYTES + 1))
    with pytest.raises(
        ExplainerError, match=r"its config.json would unpack to 32 MiB \(at most 32 MiB"
    ):
        L.check_keras_zip(path, "big.keras")


def test_real_models_still_load(tmp_path):
    small_cnn().save(tmp_path / "cnn.keras")
    small_cnn().save(tmp_path / "cnn.h5")
    for name in ("cnn.keras", "cnn.h5"):
        bundle = zoo.load_model_file((tmp_path / name).read_bytes(), filename=name)
        assert bundle.n_classes == 3
    with pytest.raises(ExplainerError, match="contains Python code"):
        small_cnn(lam=True).save(tmp_path / "lam.keras")
        zoo.load_model_file((tmp_path / "lam.keras").read_bytes(), filename="lam.keras")


def test_an_h5_file_declaring_huge_arrays_is_refused_without_reading_them(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("w", shape=(2**30,), dtype="float32", chunks=(2**16,), compression="gzip")
    assert path.stat().st_size < 2**20
    exc, peak = _peak(lambda: zoo.load_model_file(path.read_bytes(), filename="huge.h5"))
    assert isinstance(exc, ExplainerError) and "would take 4.0 GiB" in str(exc), exc
    assert peak < 8 * 2**20, peak


def test_an_h5_error_shows_no_server_path(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(10))  # HDF5, but no Keras model in it
    with pytest.raises(ExplainerError) as info:
        zoo.load_model_file(path.read_bytes(), filename="plain.h5")
    text = str(info.value)
    assert "plain.h5" in text and "/tmp" not in text and "explainers-model-" not in text
    assert "\n" not in text


def test_class_names_files_are_bounded_before_they_are_split():
    from explainers.models.user_files import MAX_NAMES_BYTES, parse_class_names

    huge = b"\n" * (MAX_NAMES_BYTES + 1)  # a million empty lines: refused unsplit
    exc, peak = _peak(lambda: parse_class_names(huge, 3))
    assert isinstance(exc, ExplainerError) and "larger than 1024 KiB" in str(exc)
    assert peak < 2**16, peak
    with pytest.raises(ExplainerError, match="longer than 200 characters"):
        parse_class_names("cat\n" + "d" * 201 + "\nbird\n", 3)
    assert parse_class_names(b"\xef\xbb\xbfcat\r\ndog\n\nbird\n", 3) == ["cat", "dog", "bird"]
