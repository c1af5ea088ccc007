"""Test setup: pick the Keras backend and quiet TensorFlow before anything imports keras."""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
