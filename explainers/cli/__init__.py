"""Command line: ``python -m explainers explain|sanity|segment|report|layers|batch|bench``.

Every mistake the user can make ends the same way: exit status 2 and exactly one line on
stderr starting with ``error:``, no traceback, so scripts and people can both read it. Anything
else escaping is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # effective only if TensorFlow is not loaded yet

from explainers.errors import ExplainerError


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
    except Exception:  # noqa: BLE001 - absl is TensorFlow's; without it there is nothing to silence
        pass


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# --- the subcommands ---------------------------------------------------------------------


@dataclass(frozen=True)
class Subcommand:
    """One ``python -m explainers NAME``: the module gives ``add_arguments(parser)`` and
    ``run(args) -> exit status``; its docstring is the subcommand's ``--help`` text."""

    name: str
    module: str
    summary: str


#: Every subcommand, in the order of ``--help``. Only the chosen one's module is imported:
#: this is where TensorFlow is loaded, so ``--help`` and argument errors stay fast.
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand(
        "explain",
        "explainers.cli.explain",
        "explain one image: print the prediction, write maps or an overlay",
    ),
    Subcommand(
        "sanity",
        "explainers.cli.sanity",
        "sanity checks (model randomisation, random logit) per method",
    ),
    Subcommand(
        "segment",
        "explainers.cli.segment",
        "write the automatic lesion mask of an image (white lesion, black skin)",
    ),
    Subcommand("report", "explainers.cli.report", "write a one-file PDF case report"),
    Subcommand("layers", "explainers.cli.layers", "list the layers a map can be computed at"),
    Subcommand(
        "batch",
        "explainers.cli.batch",
        "explain a folder of images: overlays, maps and scores in results.csv",
    ),
    Subcommand("bench", "explainers.cli.bench", "time the methods against the passes they need"),
)


def _chosen(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``chosen`` (a subcommand's name) are added from its module,
    the others are listed by name and summary only."""
    parser = _Parser(
        prog="python -m explainers",
        description="Grad-CAM, Grad-CAM++ and the other CAM methods for Keras image "
        "classifiers, and how far to trust their maps.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in SUBCOMMANDS:
        if command.name != chosen:
            sub.add_parser(command.name, help=command.summary)
            continue
        module = importlib.import_module(command.module)
        p = sub.add_parser(
            command.name,
            help=command.summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(func=module.run)
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
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
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
    argv = list(sys.argv[1:] if argv is None else argv)
    with _native_stderr_silenced() as log:
        try:
            # The chosen subcommand's module loads TensorFlow: its start-up lines are held back.
            args = build_parser(_chosen(argv)).parse_args(argv)  # errors: exit 2, one line
            return int(args.func(args) or 0)
        except ExplainerError as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except SystemExit:
            raise
        except BaseException:
            _replay(log)
            raise
