"""Integrated Gradients recorded by InspectCheckpoint: the numbers and the files.

IG is checked against its defining property (completeness: a map sums to
f(x) - f(baseline)) on tiny smooth models where the quadrature converges, computed by the
same code the callback runs; the files are read back with h5py.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from keras import layers

import tinspect
from tinspect import format as fmt
from tinspect.keras import InspectCheckpoint
from tinspect.record.attributions import (
    AttributionOptions,
    _Backend,
    baseline_of,
    integrated_gradients,
    path_points,
)


def tiny_images(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """6×6 one-channel images; class = which half holds the brighter blob (3 classes)."""
    x = rng.uniform(0, 0.3, size=(n, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    for i, c in enumerate(y):
        x[i, :, 2 * c : 2 * c + 2, 0] += 0.7
    return x, y.astype(np.int64)


def smooth_model() -> keras.Model:
    inputs = keras.Input((6, 6, 1), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="tanh", name="conv")(inputs)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(8, activation="tanh", name="hidden")(h)
    out = layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inputs, out, name="tiny")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_path_points_integrate_polynomials_exactly() -> None:
    alphas, weights = path_points(4)
    assert np.isclose(weights.sum(), 1.0)
    assert np.all((alphas > 0) & (alphas < 1))
    for degree in range(8):  # Gauss-Legendre with 4 nodes: exact up to degree 7
        assert np.isclose((weights * alphas**degree).sum(), 1 / (degree + 1), atol=1e-6)


@pytest.mark.parametrize("baseline", ["zeros", "blur"])
def test_completeness_on_a_tiny_model(rng: np.random.Generator, baseline: str) -> None:
    keras.utils.set_random_seed(0)
    model = smooth_model()
    x, y = tiny_images(rng)
    model.fit(x, y, epochs=3, verbose=0)
    backend = _Backend(model)
    base = baseline_of(x, baseline, "channels_last")
    classes = np.argmax(backend.forward(x), axis=1)
    maps = integrated_gradients(backend.gradient, x, base, classes, steps=32)
    rows = np.arange(len(x))
    expected = backend.forward(x)[rows, classes] - backend.forward(base)[rows, classes]
    total = maps.reshape(len(x), -1).sum(axis=1)
    assert np.abs(expected).max() > 0.05  # a real difference to account for
    np.testing.assert_allclose(total, expected, atol=2e-3, rtol=1e-2)
    # The maps are per class: another class's maps do not add up to this one's change.
    other = integrated_gradients(backend.gradient, x, base, (classes + 1) % 3, steps=32)
    assert np.abs(other.reshape(len(x), -1).sum(axis=1) - expected).max() > 0.05


def test_blur_baseline_needs_images() -> None:
    with pytest.raises(ValueError, match="needs image samples"):
        baseline_of(np.zeros((4, 8), np.float32), "blur", "channels_last")
    blurred = baseline_of(np.eye(8, dtype=np.float32)[None], "blur", "channels_last")
    assert blurred.shape == (1, 8, 8) and blurred.std() < np.eye(8).std()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attributions": "saliency"}, "attributions must be one of integrated_gradients"),
        ({"attribution_steps": 0}, "attribution_steps must be an integer >= 1"),
        ({"attribution_epochs": "first"}, "attribution_epochs must be 'last', 'all'"),
        ({"attribution_baseline": "noise"}, "attribution_baseline must be one of blur, zeros"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    args = {"attributions": "integrated_gradients", **kwargs}
    header = tinspect.make_header("m")
    x = np.zeros((4, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match=match):
        InspectCheckpoint(tmp_path, header, (x, np.zeros(4, np.int64)), **args)  # type: ignore[arg-type]


def test_refuses_regression_and_several_inputs(tmp_path: Path) -> None:
    x = np.zeros((4, 6, 6, 1), np.float32)
    with pytest.raises(ValueError, match="need a classifier"):
        InspectCheckpoint(
            tmp_path,
            tinspect.make_header("r"),
            (x, np.zeros(4)),
            output_kind="regression",
            attributions="integrated_gradients",
        )
    with pytest.raises(ValueError, match="one input"):
        InspectCheckpoint(
            tmp_path,
            tinspect.make_header("two"),
            ([x, x], np.zeros(4, np.int64)),
            attributions="integrated_gradients",
        )
    tabular = (np.zeros((4, 8), np.float32), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="needs image samples"):
        InspectCheckpoint(
            tmp_path,
            tinspect.make_header("tab"),
            tabular,
            attributions="integrated_gradients",
            attribution_baseline="blur",
        )
    # Tabular inputs are allowed from the zeros baseline (compare refuses to segment them).
    InspectCheckpoint(
        tmp_path, tinspect.make_header("tab"), tabular, attributions="integrated_gradients"
    )


def test_options_due() -> None:
    every2 = AttributionOptions.parse("integrated_gradients", 8, 2, "zeros")
    assert every2 is not None
    assert [e for e in range(6) if every2.due(e, final=e == 5)] == [0, 2, 4, 5]
    last = AttributionOptions.parse("integrated_gradients", 8, "last", "zeros")
    assert last is not None and [e for e in range(4) if last.due(e, e == 3)] == [3]


def test_callback_writes_attribution_files(tmp_path: Path, rng: np.random.Generator) -> None:
    keras.utils.set_random_seed(0)
    model = smooth_model()
    x, y = tiny_images(rng)
    header = tinspect.make_header("tiny")
    callback = InspectCheckpoint(
        tmp_path,
        header,
        (x, y),
        input_kind="image",
        attributions="integrated_gradients",
        attribution_steps=16,
        attribution_epochs="all",
        attribution_baseline="zeros",
    )
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert callback.wait_for_attributions(timeout=120)
    model_dir = tmp_path / fmt.model_dir_name("tiny", header["id"])
    files = sorted((model_dir / fmt.ATTRIBUTIONS_DIR).iterdir())
    assert [f.name for f in files] == [fmt.checkpoint_name(e) for e in (0, 1, 2)]
    info = json.loads((model_dir / fmt.MODEL_JSON).read_text())
    assert info["format_version"] == "1.2"
    assert info["recording"]["attributions"]["steps"] == 16
    with h5py.File(files[-1], "r") as f:
        assert f.attrs[fmt.ATTR_FORMAT_VERSION] == fmt.FORMAT_VERSION
        assert f.attrs[fmt.ATTR_EPOCH] == 2 and f.attrs[fmt.ATTR_BASELINE] == "zeros"
        predicted = f[fmt.ATTRIBUTION_PREDICTED][()]
        assert predicted.dtype == np.float16 and predicted.shape == x.shape
        truth = f[fmt.ATTRIBUTION_TRUE][()]
        pred_class = f[fmt.ATTRIBUTION_PREDICTED_CLASS][()]
        np.testing.assert_array_equal(f[fmt.ATTRIBUTION_TRUE_CLASS][()], y)
        same = pred_class == y
        np.testing.assert_array_equal(truth[same], predicted[same])
        assert np.abs(f[fmt.ATTRIBUTION_DELTA_PREDICTED][()]).max() < 0.02
        assert np.abs(f[fmt.ATTRIBUTION_DELTA_TRUE][()]).max() < 0.02
    with h5py.File(model_dir / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(2), "r") as f:
        scores = f[fmt.SAMPLES_GROUP][fmt.SAMPLES_Y_PREDICTION][()]
    np.testing.assert_array_equal(np.argmax(scores, axis=1), pred_class)


def test_last_only_by_default(tmp_path: Path, rng: np.random.Generator) -> None:
    keras.utils.set_random_seed(0)
    model = smooth_model()
    x, y = tiny_images(rng, 16)
    header = tinspect.make_header("last")
    callback = InspectCheckpoint(
        tmp_path, header, (x, y), attributions="integrated_gradients", attribution_steps=4
    )
    model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    assert callback.wait_for_attributions(timeout=120)
    directory = tmp_path / fmt.model_dir_name("last", header["id"]) / fmt.ATTRIBUTIONS_DIR
    assert [p.name for p in directory.iterdir()] == [fmt.checkpoint_name(3)]


BACKEND_SCRIPT = """
import json, sys
import keras, numpy as np
from keras import layers
from tinspect.record.attributions import _Backend, baseline_of, integrated_gradients
rng = np.random.default_rng(0)
x = rng.uniform(0, 1, size=(24, 6, 6, 1)).astype(np.float32)
y = rng.integers(0, 3, 24)
keras.utils.set_random_seed(0)
inputs = keras.Input((6, 6, 1))
h = layers.Flatten()(layers.Conv2D(4, 3, activation="tanh")(inputs))
out = layers.Dense(3, activation="softmax")(layers.Dense(8, activation="tanh")(h))
model = keras.Model(inputs, out)
model.compile("adam", "sparse_categorical_crossentropy")
model.fit(x, y, epochs=2, verbose=0)
backend = _Backend(model)
base = baseline_of(x, "blur", "channels_last")
scores = backend.forward(x)
classes = np.argmax(scores, 1)
maps = integrated_gradients(backend.gradient, x, base, classes, 32)
rows = np.arange(len(x))
expected = scores[rows, classes] - backend.forward(base)[rows, classes]
error = np.abs(maps.reshape(len(x), -1).sum(1) - expected).max()
print(json.dumps({"backend": keras.backend.backend(), "error": float(error),
                  "expected": float(np.abs(expected).max())}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_completeness_on_other_backends(tmp_path: Path, backend: str) -> None:
    """The same IG through jax.grad of stateless_call, and torch autograd (when installed)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    env = dict(os.environ, KERAS_BACKEND=backend, KERAS_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == backend
    assert result["expected"] > 0.01 and result["error"] < 1e-3
