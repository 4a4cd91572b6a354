"""Command line: ``python -m explainers explain|layers|batch|bench``.

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
from pathlib import Path
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


# --- argument types -------------------------------------------------------------------------




def parse_index_list(text: str) -> list[int]:
    """``"3,10,32"`` and ranges ``"0-15"`` (inclusive), mixed: ``"0-3,8"`` → [0, 1, 2, 3, 8]."""
    out: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        if part.startswith("-"):
            raise ExplainerError(f"indices must be 0 or more, got {part}")
        lo_text, dash, hi_text = part.partition("-")
        try:
            lo, hi = int(lo_text), int(hi_text if dash else lo_text)
        except ValueError:
            raise ExplainerError(f"cannot read '{part}' in '{text}': use numbers and ranges like 0-15") from None
        if hi < lo:
            raise ExplainerError(f"the range '{part}' runs backwards")
        if hi - lo > 100_000:
            raise ExplainerError(f"the range '{part}' is far larger than any layer")
        out.extend(range(lo, hi + 1))
    if not out:
        raise ExplainerError(f"no numbers in '{text}'")
    return list(dict.fromkeys(out))


def parse_positions(text: str) -> list[tuple[int, int]]:
    """Neuron positions on the layer's grid: ``"3,4;5,6"`` or ``"3:4,5:6"`` (row, column)."""
    text = str(text).strip()
    if ";" in text or ":" not in text:
        pieces = [p for p in text.split(";") if p.strip()]
        pairs = [p.split(",") for p in pieces]
    else:
        pairs = [p.split(":") for p in text.split(",") if p.strip()]
    out = []
    for pair in pairs:
        try:
            row, col = (int(v) for v in pair)
        except ValueError:
            raise ExplainerError(
                f"cannot read neuron positions '{text}': give row,col pairs like 3,4;5,6"
            ) from None
        out.append((row, col))
    if not out:
        raise ExplainerError("no neuron positions given")
    return out


# --- shared steps ---------------------------------------------------------------------------


def _weights_arg(text: str | None):
    if text is None:
        return "imagenet"
    return None if text.strip().lower() in ("none", "random") else text


def _load_bundle(args: argparse.Namespace):
    from explainers.zoo import load_model, parse_class_names

    class_names = None
    if getattr(args, "class_names", None):
        path = Path(args.class_names)
        if not path.is_file():
            raise ExplainerError(f"class-names file not found: {path}")
        class_names = path.read_bytes().decode("utf-8-sig", errors="replace")
        parse_class_names(class_names)  # fail early on an empty file
    return load_model(args.model, weights=_weights_arg(args.weights), class_names=class_names,
                      preprocess=getattr(args, "preprocess", None))


def _extra_inputs(bundle, args: argparse.Namespace):
    from explainers.zoo import skin_lesion_metadata

    given = [v is not None for v in (args.age, args.sex, args.site)]
    if bundle.metadata_input:
        return [skin_lesion_metadata(args.age, args.sex, args.site)]
    if any(given):
        raise ExplainerError("--age, --sex and --site are only for the skin-lesion model")
    return None


def _target(bundle, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        lowered = text.strip().lower()
        matches = [i for i, n in enumerate(bundle.class_names) if n.lower() == lowered]
        if not matches:
            raise ExplainerError(f"unknown target class '{text}'; give a class index or an exact class name") from None
        return matches[0]
    if not 0 <= value < bundle.n_classes:
        raise ExplainerError(
            f"target {value} is outside the model's classes (0 to {bundle.n_classes - 1})"
        )
    return value


def _shape_text(shape: Sequence) -> str:
    return "x".join("?" if s is None else str(s) for s in tuple(shape)[1:])


# --- explain --------------------------------------------------------------------------------


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="NAME|FILE",
                   help="skin-lesion, MobileNetV2, ResNet50, VGG16, Xception, InceptionV3, "
                        "DenseNet121, EfficientNetB0, or your .keras/.h5 file")
    p.add_argument("--weights", default=None, metavar="imagenet|none|FILE",
                   help="Keras Applications only: imagenet (default; downloaded once), none "
                        "(random weights) or a weights file")
    p.add_argument("--class-names", metavar="FILE",
                   help="your model only: a text file with one class name per line")
    p.add_argument("--preprocess", default=None,
                   choices=("none", "0..1", "-1..1", "imagenet caffe", "imagenet torch"),
                   help="your model only: how to scale RGB 0..255 (default none: the model "
                        "file scales its input itself)")


# --- layers ---------------------------------------------------------------------------------


def cmd_layers(args: argparse.Namespace) -> int:
    from explainers import candidate_layers, resolve_layer

    bundle = _load_bundle(args)
    layers = candidate_layers(bundle.model)
    default = resolve_layer(bundle.model, None)
    print(f"model: {bundle.label}")
    print(f"{len(layers)} layers with a spatial output (* = default):")
    width = max(len(layer.path) for layer in layers)
    for layer in layers:
        mark = "*" if layer.path == default.path else " "
        print(f"{mark} {layer.path:<{width}}  {_shape_text(layer.output_shape)}")
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
    parser = _Parser(prog="python -m explainers",
                     description="Grad-CAM, Grad-CAM++ and Smooth Grad-CAM++ for Keras image classifiers.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    from explainers import explain_command

    explain_command.add_parser(sub)
    from explainers import sanity_command, segment_command

    sanity_command.add_parser(sub)
    segment_command.add_parser(sub)
    p = sub.add_parser("layers", help="list the layers a map can be computed at")
    _add_model_arguments(p)
    p.set_defaults(func=cmd_layers)
    for name in ("batch_command", "bench"):
        _register(sub, name.split("_")[0], importlib.import_module(f"explainers.{name}"))
    from explainers import report  # noqa: PLC0415 - the report subcommand (its own module)

    report.add_parser(sub)
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


