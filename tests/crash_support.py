"""A model input step that crashes its process (os.abort: exit code 134, as a native library
that aborts) on a "poison" image: a solid colour no other test image has. Imported by the
worker processes of the batch through the pickled bundle (the tests directory is on the path
they inherit); production code knows nothing of it."""

import os

import numpy as np

POISON = (7, 77, 177)


def poison_image(size=(20, 24)):
    """The RGB pixels of the poison image."""
    return np.tile(np.array(POISON, np.uint8), (*size, 1))


def abort_on_poison(x):
    """Identity preprocessing, except that a batch holding the poison image aborts."""
    x = np.asarray(x, dtype=np.float32)
    if (np.abs(x - np.array(POISON, np.float32)).max(axis=-1) < 0.5).all(axis=(1, 2)).any():
        os.abort()
    return x


#: Test-only: a JSON file {"image": NAME, "marker": PATH}; a Ray worker about to load NAME
#: exits (os._exit) if PATH does not exist yet, after creating it: one killed worker.
KILL_ONCE_ENV = "CRASH_SUPPORT_KILL_ONCE"


def ray_worker_setup():
    """Ray's `worker_process_setup_hook` for tests/test_ray_engine.py: in each Ray worker,
    loading the poison image aborts the process (every time), and the image named in the
    KILL_ONCE_ENV file kills it once."""
    import json
    from pathlib import Path

    import explainers.images as images

    real = images.load_image

    def load_image(source, *args, **kwargs):
        image = real(source, *args, **kwargs)
        if np.array_equal(
            np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0),
            np.array([POISON], np.uint8),
        ):
            os.abort()
        fault = os.environ.get(KILL_ONCE_ENV)
        if fault and os.path.isfile(fault):
            spec = json.loads(Path(fault).read_text())
            marker = Path(spec["marker"])
            if Path(str(source)).name == spec["image"] and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)
        return image

    images.load_image = load_image
