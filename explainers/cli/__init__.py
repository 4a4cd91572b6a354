"""Command line: ``python -m explainers explain|sanity|segment|report|layers|batch|bench``.

Every mistake the user can make ends the same way: exit status 2 and exactly one line on
stderr starting with ``error:``, no traceback, so scripts and people can both read it. Anything
else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # effective only if TensorFlow is not loaded yet

from explainers.errors import ExplainerError  # noqa: E402



class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one ``error: ...`` line (its default starts with usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        text = " ".join(str(message).split())
        self.exit(2, f"error: {text} (see: {self.prog} --help)\n")


def _quiet() -> None:
    """Keep library chatter off stderr: it must carry only our one error line."""
    warnings.filterwarnings("ignore")
    for name in ("absl", "tensorflow", "keras", "h5py", "PIL", "matplotlib"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
        absl.logging.set_stderrthreshold("error")
    except Exception:  # absl is TensorFlow's; without it there is nothing to silence
        pass


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --- layers ---------------------------------------------------------------------------------


def cmd_layers(args: argparse.Namespace) -> int:
    from explainers import candidate_layers, resolve_layer
    from explainers.cli.common import load_bundle, shape_text

    bundle = load_bundle(args)
    layers = candidate_layers(bundle.model)
    default = resolve_layer(bundle.model, None)
    print(f"model: {bundle.label}")
    print(f"{len(layers)} layers with a spatial output (* = default):")
    width = max(len(layer.path) for layer in layers)
    for layer in layers:
        mark = "*" if layer.path == default.path else " "
        print(f"{mark} {layer.path:<{width}}  {shape_text(layer.output_shape)}")
    return 0


# --- the parser -----------------------------------------------------------------------------


def _register(sub, name: str, module) -> None:
    """A subcommand whose module documents it and gives ``add_arguments`` and ``run``."""
    doc = (module.__doc__ or "").strip().splitlines()
    p = sub.add_parser(name, help=doc[0] if doc else None, description=module.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(p)
    p.set_defaults(func=module.run)


def build_parser() -> argparse.ArgumentParser:
    from explainers import report
    from explainers.cli import batch as batch_command, explain as explain_command, sanity as sanity_command, segment as segment_command
    from explainers.bench import explaining as bench
    from explainers.cli.common import add_model_arguments

    parser = _Parser(prog="python -m explainers",
                     description="Grad-CAM, Grad-CAM++ and the other CAM methods for Keras image "
                                 "classifiers, and how far to trust their maps.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in (explain_command, sanity_command, segment_command, report):
        module.add_parser(sub)
    p = sub.add_parser("layers", help="list the layers a map can be computed at")
    add_model_arguments(p)
    p.set_defaults(func=cmd_layers)
    _register(sub, "batch", batch_command)
    _register(sub, "bench", bench)
    return parser


@contextlib.contextmanager
def _native_stderr_silenced():
    """Send what C++ libraries write straight to file descriptor 2 (TensorFlow's start-up and
    CUDA lines, which ignore TF_CPP_MIN_LOG_LEVEL in TF 2.21) to a temporary file, while
    Python's ``sys.stderr`` keeps the real stderr. ``EXPLAINERS_DEBUG=1`` turns this off.
    Yields the temporary file (None when nothing was redirected)."""
    if os.environ.get("EXPLAINERS_DEBUG"):
        yield None
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield None
        return
    try:
        python_uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by a capture object
        python_uses_fd2 = False
    old_stderr = sys.stderr
    real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)
    if python_uses_fd2:
        sys.stderr = real
    try:
        yield log
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = old_stderr
        os.dup2(saved, 2)
        os.close(saved)
        real.close()
        log.close()


def _replay(log) -> None:
    """Show the held-back native log: after a crash it may say why."""
    if log is None:
        return
    with contextlib.suppress(Exception):
        log.flush()
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
        if text:
            sys.stderr.write(text)
            sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for any user error, with one stderr line)."""
    from explainers.engine.allocator import prefer_system_allocator

    prefer_system_allocator()  # before any subcommand imports TensorFlow
    _quiet()
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse errors exit 2 through _Parser.error
    with _native_stderr_silenced() as log:
        try:
            return int(args.func(args) or 0)
        except ExplainerError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except BaseException:
            _replay(log)
            raise


