"""Shared test setup: quiet TensorFlow, a private Keras home, tiny seeded data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before anything imports Keras: importing it writes ~/.keras/keras.json otherwise.
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="tinspect-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The disk cache and the header index of every test go to a private directory, not the
# user's cache (tests that need none set "off" themselves).
os.environ.setdefault("TINSPECT_CACHE_DIR", tempfile.mkdtemp(prefix="tinspect-cache-"))

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tabular(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """96 samples × 8 features in [-1, 1], 3 classes learnable from the features."""
    x = rng.uniform(-1, 1, size=(96, 8)).astype(np.float32)
    y = (x[:, 0] > 0.3).astype(np.int64) + (x[:, 1] > 0.3).astype(np.int64)
    return x, y
