"""``python -m dashboard.frame.serve [streamlit options]``: ``streamlit run app.py`` with the warm-up
started at the same moment as the server (``bash run.sh dashboard`` runs this).

Why: ``streamlit run`` executes nothing of the app before the first visitor's session opens, so
the first visitor waited for TensorFlow's import, the model file's loading and the first traces
(about 11 s on a 2-core CPU, docs/BENCHMARKS.md). Started here, that work overlaps Streamlit's
own start and the browser's first request. The warm-up is the one ``app.py`` uses
(``dashboard.frame.bootstrap.start_warmup``, a cached resource): the first run finds it under way or
done and waits for nothing it has not already started. Plain ``streamlit run app.py`` still
works; it starts the same warm-up at the first visit.

Local by default: ``.streamlit/config.toml`` binds 127.0.0.1. ``--shared`` (or
``EXPLAINERS_SHARED=1``) binds 0.0.0.0, and any address other than this machine's is refused
with one ``error: ...`` line (exit 2) unless sign-in is configured completely (``[auth]`` in
the secrets, docs/DEPLOY.md): a server on the network must not be open to everyone.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

APP = Path(__file__).resolve().parents[2] / "app.py"
SHARED_FLAG = "--shared"
SHARED_ENV = "EXPLAINERS_SHARED"


class Refused(Exception):
    """The server must not start as asked; the message is the one line to print."""


def shared_args(args: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """Streamlit's options for this start: ``--shared`` (or ``EXPLAINERS_SHARED=1``) becomes
    ``--server.address 0.0.0.0``; then ``check_open`` refuses an address other than this
    machine's without sign-in."""
    environ = os.environ if environ is None else environ
    shared = SHARED_FLAG in args or environ.get(SHARED_ENV, "").lower() in ("1", "true", "yes")
    args = [a for a in args if a != SHARED_FLAG]
    if shared and not any(a.startswith("--server.address") for a in args):
        args = [*args, "--server.address", "0.0.0.0"]
    return check_open(args)


def check_open(args: list[str]) -> list[str]:
    """``args``, when the server they describe is either this machine's only or signs people
    in; raises ``Refused`` otherwise. Reads the options as ``streamlit run`` will (its own
    parser: flags, ``STREAMLIT_*`` variables, config.toml) and the secrets files it will load.
    On the network, the browser address defaults to the host of ``redirect_uri`` (the name
    people type), so Streamlit's origin check never asks an outside service for this
    machine's IP."""
    import click
    from streamlit import config
    from streamlit.web import bootstrap, cli

    from dashboard.frame import auth

    if "--help" in args:
        return args  # Streamlit prints its options; nothing starts
    try:
        ctx = cli.main_run.make_context("run", [str(APP), *args])
    except click.ClickException:
        return args  # options Streamlit itself will reject: nothing starts
    bootstrap.load_config_options(
        {k: v for k, v in ctx.params.items() if k not in ("target", "args")}
    )
    address = config.get_option("server.address")
    if auth.is_loopback(address):
        return args
    where = address or "every network interface"
    section = auth.read_secrets(config.get_option("secrets.files")).get("auth")
    if section is None:
        raise Refused(
            f"refusing to listen on {where} without sign-in: add [auth] to "
            ".streamlit/secrets.toml (docs/DEPLOY.md)"
        )
    why = auth.problem(section)
    if why:
        raise Refused(f"refusing to listen on {where}: {why} (docs/DEPLOY.md)")
    try:
        import authlib  # noqa: F401
    except ImportError:
        raise Refused(
            "refusing to listen on the network: sign-in needs the Authlib package "
            "(pip install -r requirements.txt)"
        ) from None
    if not any(a.startswith("--browser.serverAddress") for a in args):
        host = urlsplit(str(section["redirect_uri"]).replace("{port}", "0")).hostname
        if host:
            args = [*args, "--browser.serverAddress", host]
    return args


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        args = shared_args(args)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from explainers.engine.allocator import prefer_system_allocator

    prefer_system_allocator()  # before the warm-up imports TensorFlow: memory returned after each call
    # The warm-up says in the server's log where a cold start's seconds went (or why it failed).
    log = logging.getLogger("dashboard")
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s dashboard: %(message)s"))
    log.addHandler(handler)
    from streamlit.web import cli

    from dashboard.frame.bootstrap import keep_tensorflow_state, prefer_navigation, start_warmup

    prefer_navigation()  # before the first session: no run in the pages-folder mode
    keep_tensorflow_state()  # no clear_session() after every run
    start_warmup()  # a background thread: returns at once
    sys.argv = ["streamlit", "run", str(APP), *args]
    cli.main()  # Streamlit's own command line: it parses the options and serves until stopped


if __name__ == "__main__":
    main()
