"""Limits a model file must keep *before* Keras reads it: a 1 MB upload must not cost gigabytes.

Why: a ``.keras`` file is a zip, and Keras reads its ``config.json`` whole; a member that
inflates to 1 GiB (a zip bomb) would be read into memory before any check. So every member is
checked first: how many there are, each one's declared size, the total, the compression ratio,
and then each member's actual size, streamed in small chunks and stopped at its limit (the
declared size can lie). An ``.h5`` file is HDF5: its datasets' declared sizes, the total and
the ratio to the file's size, and the size of the model's configuration are checked likewise
(by h5py, reading only metadata).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from explainers.errors import ExplainerError

#: The most files one .keras archive may hold (Keras writes 3: metadata, config, weights).
MAX_MEMBERS = 1000
#: The largest configuration (config.json, metadata.json; an .h5 file's model_config).
MAX_CONFIG_BYTES = 32 * 2**20
#: The largest uncompressed member and the largest uncompressed total (the weights).
MAX_MEMBER_BYTES = 2 * 2**30
MAX_TOTAL_BYTES = 4 * 2**30
#: The largest compression ratio of a member over 1 MiB: weights compress about 1.1:1, JSON
#: about 10:1; a zip bomb 1000:1.
MAX_RATIO = 100
_RATIO_FROM = 2**20
_CHUNK = 2**20


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


def _is_config(member: str) -> bool:
    return member.lower().endswith(".json")


def check_keras_zip(path: str | Path, name: str) -> None:
    """ExplainerError in one line unless the zip at ``path`` keeps every limit; reads the
    members in bounded chunks only (never a whole member into memory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_MEMBERS:
                raise ExplainerError(
                    f"{name} holds {len(infos)} files; a Keras model file holds a few "
                    f"(at most {MAX_MEMBERS} accepted)"
                )
            total = 0
            for info in infos:
                limit = MAX_CONFIG_BYTES if _is_config(info.filename) else MAX_MEMBER_BYTES
                _check_declared(info, limit, name)
                total += info.file_size
                if total > MAX_TOTAL_BYTES:
                    raise ExplainerError(
                        f"{name} would unpack to more than {_mib(MAX_TOTAL_BYTES)}; "
                        "refused before reading it"
                    )
            for info in infos:
                limit = MAX_CONFIG_BYTES if _is_config(info.filename) else MAX_MEMBER_BYTES
                _check_actual(archive, info, min(limit, info.file_size), name)
    except ExplainerError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        NotImplementedError,
        EOFError,
        RuntimeError,
    ) as exc:
        raise ExplainerError(
            f"{name} is not a readable Keras model file (a damaged zip archive: "
            f"{type(exc).__name__})"
        ) from None


def _check_declared(info: zipfile.ZipInfo, limit: int, name: str) -> None:
    if info.file_size > limit:
        raise ExplainerError(
            f"{name}: its {info.filename} would unpack to {_mib(info.file_size)} "
            f"(at most {_mib(limit)} accepted); refused before reading it"
        )
    if info.file_size > _RATIO_FROM and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        raise ExplainerError(
            f"{name}: its {info.filename} is compressed {info.file_size // max(info.compress_size, 1):,}:1 "
            f"(at most {MAX_RATIO}:1 accepted): a zip bomb? Refused before reading it"
        )


def _check_actual(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, name: str) -> None:
    """Stream the member and count what it really inflates to, stopping past ``limit``."""
    seen = 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(_CHUNK)
            if not chunk:
                break
            seen += len(chunk)
            if seen > limit:
                raise ExplainerError(
                    f"{name}: its {info.filename} unpacks to more than it declares "
                    f"({_mib(limit)}); refused"
                )


def check_h5(path: str | Path, name: str) -> None:
    """ExplainerError in one line unless the HDF5 file's declared sizes keep the limits (only
    metadata is read: no dataset is loaded)."""
    import h5py

    file_size = max(Path(path).stat().st_size, 1)
    totals = {"bytes": 0, "objects": 0}

    def visit(_key: str, obj) -> None:
        totals["objects"] += 1
        if totals["objects"] > 100 * MAX_MEMBERS:
            raise ExplainerError(f"{name} holds more than {100 * MAX_MEMBERS} objects; refused")
        if isinstance(obj, h5py.Dataset):
            size = int(obj.size or 0) * int(obj.dtype.itemsize)
            if size > MAX_MEMBER_BYTES:
                raise ExplainerError(
                    f"{name}: one of its arrays would take {_mib(size)} "
                    f"(at most {_mib(MAX_MEMBER_BYTES)} accepted); refused"
                )
            totals["bytes"] += size
            if totals["bytes"] > MAX_TOTAL_BYTES:
                raise ExplainerError(
                    f"{name} would unpack to more than {_mib(MAX_TOTAL_BYTES)}; refused"
                )

    try:
        with h5py.File(path, "r") as f:
            if "model_config" in f.attrs:  # its size, without reading it
                size = f.attrs.get_id("model_config").get_storage_size()
                if size > MAX_CONFIG_BYTES:
                    raise ExplainerError(
                        f"{name}: its model configuration is {_mib(size)} "
                        f"(at most {_mib(MAX_CONFIG_BYTES)} accepted); refused"
                    )
            f.visititems(visit)
    except ExplainerError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ExplainerError(
            f"{name} is not a readable Keras .h5 file ({type(exc).__name__})"
        ) from None
    if totals["bytes"] > _RATIO_FROM and totals["bytes"] > MAX_RATIO * file_size:
        raise ExplainerError(
            f"{name}: its arrays are compressed {totals['bytes'] // file_size:,}:1 "
            f"(at most {MAX_RATIO}:1 accepted); refused before reading them"
        )
