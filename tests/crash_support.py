"""A model input step that crashes its process (os.abort: exit code 134, as a native library
that aborts) on a "poison" image: a solid colour no other test image has. Imported by the
worker processes of the batch through the pickled bundle (the tests directory is on the path
they inherit); production code knows nothing of it."""

import os

import numpy as np

POISON = (7, 77, 177)


def poison_image(size=(20, 24)):
    """The RGB pixels of the poison image."""
    return np.tile(np.array(POISON, np.uint8), size + (1,))


def abort_on_poison(x):
    """Identity preprocessing, except that a batch holding the poison image aborts."""
    x = np.asarray(x, dtype=np.float32)
    if (np.abs(x - np.array(POISON, np.float32)).max(axis=-1) < 0.5).all(axis=(1, 2)).any():
        os.abort()
    return x
