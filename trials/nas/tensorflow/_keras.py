"""Import Keras (3, TensorFlow backend) once, or stop with the one line that says how to get it."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up banners are not our output

try:
    import keras
    import tensorflow as tf
except ImportError:
    raise ImportError(
        "trials.nas.tensorflow needs TensorFlow 2 with Keras: pip install 'nasctl[tensorflow]'"
    ) from None

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"trials.nas.tensorflow needs Keras' TensorFlow backend, but KERAS_BACKEND is {keras.backend.backend()!r}"
    )

__all__ = ["keras", "tf"]
