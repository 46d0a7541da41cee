"""The recorder on every Keras backend: its tests once per backend, and the same stored
activations on each for the same model and weights.

A Keras backend is fixed when Keras is first imported, so this process (TensorFlow unless
``KERAS_BACKEND`` says otherwise) runs the recorder's tests itself and starts one pytest
per other backend for them; ``make test`` thus runs them on all three.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .checkpoint_io import checkpoint, model_dir
from .test_distributed import ROOT, environment, finish, start

BACKENDS = ("tensorflow", "jax", "torch")
#: The recorder's own tests: the ones whose results depend on the backend.
RECORDER_TESTS = (
    "tests/test_record.py",
    "tests/test_callback_args.py",
    "tests/test_record_budget.py",
)
TIMEOUT = 3600  # generous: a loaded 2-core machine runs these 10× slower than idle

pytestmark = pytest.mark.slow


def current_backend() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != current_backend()])
def test_the_recorder_tests_pass_on(backend: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *RECORDER_TESTS],
        env=environment(backend),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert completed.returncode == 0, (
        f"recorder tests failed with KERAS_BACKEND={backend}:\n{completed.stdout[-6000:]}"
    )


def test_the_same_weights_give_the_same_activations_on_every_backend(tmp_path: Path) -> None:
    """A conv net with batch norm, pooling and dense layers, fixed weights: its
    initialization checkpoint (weights, activations, class means, predictions) is the same
    on TensorFlow, JAX and torch, within float16's precision for what is stored in it."""
    workers = {b: start("same-weights", tmp_path / b, environment(b)) for b in BACKENDS}
    for backend, worker in workers.items():
        assert finish(worker) == {"backend": backend, "errors": []}
    first = {b: checkpoint(model_dir(tmp_path / b), 0) for b in BACKENDS}
    reference = first["tensorflow"]
    layers = [k for k in reference if k.startswith("layers/") and k.endswith("/activations")]
    assert {k.split("/")[1] for k in layers} >= {"conv", "bn", "relu", "pool", "hidden", "out"}
    for backend in ("jax", "torch"):
        other = first[backend]
        assert set(other) - {"attrs"} == set(reference) - {"attrs"}, backend
        for key, expected in reference.items():
            if key.endswith("/weights/kernel") or key.startswith("data_samples/x"):
                np.testing.assert_array_equal(other[key], expected, err_msg=f"{backend} {key}")
        for key in layers:
            got, expected = other[key], reference[key]
            assert got.dtype == expected.dtype == np.float16, (backend, key)
            # One float16 step at the values' scale: float32 results that differ in their
            # last bits may round to neighbouring float16 values.
            scale = float(np.abs(expected.astype(np.float32)).max())
            np.testing.assert_allclose(
                got, expected, rtol=2**-9, atol=2**-10 * scale, err_msg=f"{backend} {key}"
            )
        for key in [k for k in reference if k.endswith("mean_class_activations")]:
            np.testing.assert_allclose(other[key], reference[key], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(
            other["data_samples/y_prediction"], reference["data_samples/y_prediction"], atol=1e-5
        )
