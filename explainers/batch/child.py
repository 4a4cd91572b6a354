"""The local engine's worker process, `python -m explainers.batch.child` (started by
``isolation.ChildWorker``): it reads a pickled ``WorkerSpec`` on stdin, loads the model once,
answers ("ready", None) on its stdout, then for each pickled `(paths, stems)` batch sends
("row", row) per image and ("done", None). It ends at the end of stdin. A native crash here
(an abort in a library, the kernel killing it) costs this process only, never the run."""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any


def main() -> int:
    """Serve batches until stdin closes; 1 if the model cannot be loaded (said in "fatal")."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() and library chatter go to stderr, never into the answers
    inp = sys.stdin.buffer

    def send(kind: str, value: Any) -> None:
        pickle.dump((kind, value), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()

    try:
        spec = pickle.load(inp)
        from explainers.batch.worker import load_worker, safe_rows

        bundle, job = load_worker(spec)
    except Exception as exc:  # noqa: BLE001 - said to the parent in one line
        send("fatal", " ".join(f"{type(exc).__name__}: {exc}".split())[:300])
        return 1
    send("ready", None)
    while True:
        try:
            message = pickle.load(inp)
        except EOFError:
            return 0
        if message is None:
            return 0
        paths, stems = message
        for row in safe_rows(bundle, job, paths, stems):
            send("row", row)
        send("done", None)


if __name__ == "__main__":
    raise SystemExit(main())
