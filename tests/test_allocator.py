"""TensorFlow's CPU allocator: the package asks for system malloc before TensorFlow loads, keeps a
user's own choice, and says in one log line when it is too late (explainers/engine/allocator.py).
Each case runs in a fresh interpreter: the choice is made once per process."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIABLE = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k != VARIABLE}
    clean.update(env, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_first_use_of_the_package_chooses_the_system_allocator_before_tensorflow_loads():
    code = (
        "import os, sys, explainers; V = 'TF_ONEDNN_USE_SYSTEM_ALLOCATOR'\n"
        "assert V not in os.environ  # importing the package does nothing\n"
        "explainers.explain  # the first public name imports TensorFlow\n"
        "assert 'tensorflow' in sys.modules\n"
        "print(os.environ[V])"
    )
    assert python(code).stdout.strip() == "true"


def test_loading_a_model_first_chooses_it_too_and_a_user_s_setting_is_kept():
    code = (
        "import os\nfrom explainers import zoo\n"
        "zoo.load_model('skin-lesion')\n"
        "print(os.environ['TF_ONEDNN_USE_SYSTEM_ALLOCATOR'])"
    )
    assert python(code).stdout.strip() == "true"
    assert python(code, **{VARIABLE: "false"}).stdout.strip() == "false"


def test_too_late_is_said_once_in_the_log_and_changes_nothing():
    code = (
        "import logging, os, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stdout,"
        " format='%(name)s: %(message)s')\nimport tensorflow\n"
        "from explainers.engine.allocator import prefer_system_allocator\n"
        "print(prefer_system_allocator(), prefer_system_allocator())\n"
        "print('TF_ONEDNN_USE_SYSTEM_ALLOCATOR' in os.environ)"
    )
    lines = python(code).stdout.strip().splitlines()
    logged = [line for line in lines if line.startswith("explainers:")]
    assert len(logged) == 1 and "imported before explainers could set" in logged[0], lines
    assert lines[-2:] == ["False False", "False"]
