"""The local engine's crash isolation: the batches run in one worker process (``child``) that
loads the model once, so an image that crashes the process (an abort in a native library, the
kernel killing it for memory) costs that image, not the run. On a crash the batch's images
without a row are tried one at a time in a fresh worker; an image that kills its worker
``CRASH_TRIES`` times alone becomes an error row, and the run goes on."""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from explainers.batch.worker import CRASH_TRIES, WorkerSpec, crash_row, exit_code
from explainers.errors import ExplainerError


class WorkerCrashed(Exception):
    """The worker process ended without answering; `code` is its exit status."""

    def __init__(self, code: int | None):
        super().__init__(exit_code(code))
        self.code = code


class WorkerUnavailable(Exception):
    """No worker process could be started (the spec cannot be pickled, the model not loaded)."""


class ChildWorker:
    """One worker process, ready (model loaded) once constructed."""

    def __init__(self, spec: WorkerSpec):
        env = dict(os.environ)
        # The worker imports what this process imports (this package, a caller's modules).
        env["PYTHONPATH"] = os.pathsep.join(
            [p for p in sys.path if p] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - any object can refuse pickling
            raise WorkerUnavailable(
                f"the model cannot be sent to a worker process ({exc})"
            ) from None
        self.busy = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "explainers.batch.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            try:
                self._write(payload)
                kind, value = self._read()
            except WorkerCrashed as crash:
                raise WorkerUnavailable(
                    f"the worker process ended while loading the model ({exit_code(crash.code)})"
                ) from None
            if kind != "ready":
                raise WorkerUnavailable(f"the worker process could not load the model: {value}")
        except BaseException:
            self.close()
            raise

    def rows(self, paths: Sequence[Path], stems: dict[Path, str]) -> Iterator[dict[str, Any]]:
        """The rows of one batch as the worker sends them; `WorkerCrashed` if it dies."""
        self.busy = True
        self._write(
            pickle.dumps(
                (list(paths), {p: stems[p] for p in paths}), protocol=pickle.HIGHEST_PROTOCOL
            )
        )
        while True:
            kind, value = self._read()
            if kind == "done":
                self.busy = False
                return
            yield value

    def close(self) -> None:
        """Stop the worker: at once when it is mid-batch (the run was interrupted)."""
        if self.proc.poll() is None and self.busy:
            self.proc.kill()
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def _write(self, payload: bytes) -> None:
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except OSError:  # BrokenPipeError: it died
            raise WorkerCrashed(self._ended()) from None

    def _read(self) -> tuple[str, Any]:
        try:
            return pickle.load(self.proc.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            raise WorkerCrashed(self._ended()) from None

    def _ended(self) -> int | None:
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # closed its output but lives on: end it
            self.proc.kill()
            return self.proc.wait()


def isolated_rows(
    spec: WorkerSpec,
    files: Sequence[Path],
    stems: dict[Path, str],
    batch_size: int,
    first: ChildWorker | None = None,
    tries: int = CRASH_TRIES,
) -> Iterator[dict[str, Any]]:
    """Every image's row, batch by batch, in worker processes (`first`, if given, is used
    first). One worker serves the whole run while nothing crashes."""
    worker = first
    try:
        for start in range(0, len(files), batch_size):
            pending = list(files[start : start + batch_size])
            if worker is None:
                worker = _restart(spec)
            try:
                for row in worker.rows(pending, stems):
                    pending = [p for p in pending if p.name != row["image"]]
                    yield row
                continue
            except WorkerCrashed as crash:
                worker.close()
                worker, code = None, crash.code
            # Which image killed it is unknown: the ones without a row, one at a time. A lone
            # image's crash is its own (the first of its tries).
            crashes = {p: int(len(pending) == 1) for p in pending}
            codes = dict.fromkeys(pending, code)
            for p in pending:
                while True:
                    if crashes[p] >= tries:
                        yield crash_row(p.name, spec.layer, codes[p], tries)
                        break
                    if worker is None:
                        worker = _restart(spec)
                    given = False
                    try:
                        for row in worker.rows([p], stems):
                            given = True
                            yield row
                        break
                    except WorkerCrashed as crash:
                        worker.close()
                        worker = None
                        if given:  # its row came before the crash: it is done
                            break
                        crashes[p] += 1
                        codes[p] = crash.code
    finally:
        if worker is not None:
            worker.close()


def _restart(spec: WorkerSpec) -> ChildWorker:
    try:
        return ChildWorker(spec)
    except WorkerUnavailable as exc:
        raise ExplainerError(
            f"{exc}; the rows written so far are kept: run the same command again to resume"
        ) from None
