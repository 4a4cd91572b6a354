"""Project-level promises: nothing phones home, the README's two commands, the layout."""

import re

import tomllib

from tests.conftest import ROOT


def test_streamlit_config_sends_no_usage_statistics():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["browser"]["serverAddress"] == "localhost"  # no external-IP lookup
    assert 1 <= config["server"]["maxUploadSize"] <= 1000  # megabytes


def test_readme_gives_exactly_two_setup_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\s*(bash run\.sh \w+)\s*$", readme, flags=re.MULTILINE)
    assert sorted(set(commands)) == ["bash run.sh dashboard", "bash run.sh test"]
    assert "bash run.sh test" in (ROOT / ".ci" / "run").read_text()


def test_package_imports_nothing_from_streamlit():
    for path in (ROOT / "explainers").glob("*.py"):
        assert not re.search(
            r"^\s*(import|from)\s+streamlit", path.read_text(), flags=re.MULTILINE
        ), path


def test_pages_hold_no_tensorflow_math():
    for path in [*list((ROOT / "pages").glob("*.py")), ROOT / "app.py"]:
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+tensorflow", text, flags=re.MULTILINE), path
        assert "GradientTape" not in text, path


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's Python block, run as written on a bundled sample image."""
    import shutil

    import numpy as np

    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, flags=re.DOTALL).group(1)
    sample = min((ROOT / "explainers" / "data" / "samples").glob("*.jpg"))
    shutil.copy(sample, tmp_path / "lesion.jpg")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["maps"]["gradcam++"].shape == (1, 8, 8)
    assert np.isfinite(scope["maps"]["gradcam"]).all()
    picture = scope["picture"]
    assert picture.dtype == np.uint8 and picture.shape == (254, 254, 3)


def test_importing_the_package_has_no_side_effects():
    """``import explainers`` imports neither TensorFlow nor Keras and leaves stderr alone; the
    public names still resolve (lazily)."""
    import subprocess
    import sys

    code = (
        "import os, sys, explainers; fd = os.fstat(2).st_ino; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "assert callable(explainers.explain) and explainers.ExplainerError; "
        "assert os.fstat(2).st_ino == fd; print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
