"""Shared fixtures: small Keras models with known structure, and the real skin-lesion model."""

import importlib.util
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "true")  # as every entry point does
# The dashboards the tests start save their first view here, not in the user's cache.
os.environ.setdefault("EXPLAINERS_FIRST_VIEW", tempfile.mkdtemp(prefix="first_view_"))

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def skin_lesion_model():
    """The real HAM10000 classifier (nested Xception backbone, two inputs, softmax head)."""
    import keras

    spec = importlib.util.find_spec("sklesion")
    assert spec is not None, (
        "sklesion is installed by run.sh (pip install --no-deps sklesion==0.2.2)"
    )
    path = Path(spec.origin).parent / "model.keras"
    return keras.saving.load_model(path, safe_mode=True)


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(1234)
