"""Every silent-bug check against a tiny real Keras program that has the bug, and the same
program fixed.

Each program trains for a few epochs with ``InspectCheckpoint(checks=False)``; the checks then
run post hoc with ``diagnose_model`` on what was recorded. A check must fire on the bug and
stay silent on the fix (a false positive on a correct program is as bad as a miss). Only the
check under test is asserted on: a buggy program may well trip other checks too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers
from typer.testing import CliRunner

import tinspect
from tinspect import cli
from tinspect import format as fmt
from tinspect.analysis.diagnose import CHECKS, Finding, Thresholds, diagnose_model
from tinspect.demo import models as demo_models
from tinspect.keras import InspectCheckpoint
from tinspect.store import Store

pytestmark = pytest.mark.slow

Program = Callable[[Path, bool], list[Finding]]


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


# --- recording -----------------------------------------------------------------------------------
def record(
    logdir: Path,
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    samples: Any = None,
    epochs: int = 2,
    batch_size: int = 32,
    validation_data: Any = None,
    input_kind: str | None = None,
    output_kind: str | None = None,
    checks: bool = False,
) -> list[Finding]:
    """Train ``model`` with the recorder, then run every check on what was recorded."""
    header = tinspect.make_header(logdir.name)
    if samples is None:
        samples = x if y is None else (x, y)
    callback = InspectCheckpoint(
        logdir,
        header,
        samples,
        input_kind=input_kind,
        output_kind=output_kind,
        checks=checks,
    )
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        verbose=0,
        callbacks=[callback],
    )
    with Store(logdir) as store:
        return diagnose_model(store, header["id"])


def tabular(n: int = 64, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples in [-1, 1], two classes learnable from the first feature."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, features)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def classifier(*hidden: layers.Layer, features: int = 8, classes: int = 2) -> keras.Model:
    model = keras.Sequential(
        [keras.Input((features,)), *hidden, layers.Dense(classes, activation="softmax")]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- one program per check: fixed=False has the bug, fixed=True is the corrected program --------
def input_not_normalized(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    if not fixed:
        x = (x + 1) * 127.5  # raw 0–255 "pixel" values
    model = classifier(layers.Dense(4, activation="relu"))
    return record(logdir, model, x, y)


def input_nan(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    if not fixed:
        x[5, 3] = np.nan  # one broken measurement
    model = classifier(layers.Dense(4, activation="relu"))
    return record(logdir, model, x, y)


def nan_loss(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = x[:, :1] * 2 + 0.5
    if not fixed:
        y[7, 0] = np.nan  # a missing target slipped into the training data
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(4, activation="relu"), layers.Dense(1)]
    )
    model.compile("adam", "mse")
    return record(logdir, model, x, y, output_kind="regression")


def input_not_float(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(64, 8, 8, 1), dtype=np.uint8)
    y = (pixels[:, :4].mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    x = pixels.astype(np.float32) / 255.0 if fixed else pixels
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return record(logdir, model, x, y, input_kind="image")


def image_shape_order(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 1, 8, 8)).astype(np.float32)  # NCHW, as from PyTorch
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    if fixed:
        x = np.transpose(x, (0, 2, 3, 1))
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return record(logdir, model, x, y, input_kind="image")


def suspicious_val_accuracy(logdir: Path, fixed: bool) -> list[Finding]:
    """Noisy training labels; the bug validates on an easy, clean subset of the training
    samples (a leak), the fix on a held-out split of the same noisy data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1024, 8)).astype(np.float32)
    clean = (x[:, 0] > 0).astype(np.int64)
    flip = rng.random(len(x)) < 0.2
    noisy = np.where(flip, 1 - clean, clean)
    x_train, y_train = x[:512], noisy[:512]
    if fixed:
        validation = (x[512:], noisy[512:])
    else:
        easy = np.abs(x_train[:, 0]) > 0.5
        validation = (x_train[easy], clean[:512][easy])
    model = classifier(layers.Dense(8, activation="relu"))
    return record(
        logdir,
        model,
        x_train,
        y_train,
        samples=(x_train[:64], y_train[:64]),
        epochs=8,
        batch_size=64,
        validation_data=validation,
    )


def missing_activation(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    model = classifier(layers.Dense(8, activation="relu" if fixed else None))
    return record(logdir, model, x, y)


def missing_softmax(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(8, activation="relu"), layers.Dense(3)]
    )
    loss = (
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if fixed
        else "sparse_categorical_crossentropy"
    )
    model.compile("adam", loss, metrics=["accuracy"])
    return record(logdir, model, x, y)


def stacked_activations(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    extra = [] if fixed else [layers.Activation("relu")]
    model = classifier(layers.Dense(8, activation="relu"), *extra)
    return record(logdir, model, x, y)


def learning_rate_range(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(learning_rate=1e-3 if fixed else 0.5),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return record(logdir, model, x, y)


def overfitting(logdir: Path, fixed: bool) -> list[Finding]:
    """A wide model on a small noisy training set memorizes it; the fix trains the same
    model on enough data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_train = 512 if fixed else 32
    x = rng.uniform(-1, 1, size=(n_train + 256, 8)).astype(np.float32)
    clean = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    y = np.where(rng.random(len(x)) < 0.25, 1 - clean, clean)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(64, activation="relu"),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    return record(
        logdir,
        model,
        x[:n_train],
        y[:n_train],
        samples=(x[:32], y[:32]),
        epochs=12,
        batch_size=32,
        validation_data=(x[n_train:], y[n_train:]),
    )


def high_dropout(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    model = classifier(layers.Dense(8, activation="relu"), layers.Dropout(0.2 if fixed else 0.6))
    return record(logdir, model, x, y)


def dead_units(logdir: Path, fixed: bool) -> list[Finding]:
    """A bias initialized far below zero: every pre-activation is negative, the ReLUs output
    0 on every sample, get no gradient and stay dead."""
    keras.utils.set_random_seed(0)
    x, y = tabular(n=128)
    bias = "zeros" if fixed else keras.initializers.Constant(-10.0)
    model = classifier(layers.Dense(16, activation="relu", bias_initializer=bias, name="hidden"))
    return record(logdir, model, x, y)


def saturated_units(logdir: Path, fixed: bool) -> list[Finding]:
    """Raw, all-positive 0–255 inputs pin sigmoid units at 1 or 0; the fix scales them."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 255, size=(64, 8)).astype(np.float32)
    y = (raw[:, 0] > 127).astype(np.int64)
    x = raw / 127.5 - 1 if fixed else raw
    model = classifier(layers.Dense(8, activation="sigmoid", name="hidden"))
    return record(logdir, model, x, y)


def one_sided_latent(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, demo_models.N_PIXELS)).astype(np.float32)
    model = demo_models.vae(0.9, 0.1, latent_activation=None if fixed else "relu", seed=0)
    return record(logdir, model, x, output_kind="reconstruction")


def output_activation_mismatch(logdir: Path, fixed: bool) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = (x[:, :1] * 5).astype(np.float32)  # targets in [-5, 5]
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation=None if fixed else "sigmoid"),
        ]
    )
    model.compile("adam", "mse")
    return record(logdir, model, x, y, output_kind="regression")


def exploding_or_vanishing(logdir: Path, fixed: bool) -> list[Finding]:
    """A deep ReLU stack initialized with a far too large std: activations grow ~6× per
    layer; the fix uses He initialization."""
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = x[:, :1]
    init = "he_normal" if fixed else keras.initializers.RandomNormal(stddev=2.0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            *[layers.Dense(16, activation="relu", kernel_initializer=init) for _ in range(4)],
            layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    return record(logdir, model, x, y, output_kind="regression")


PROGRAMS: dict[str, Program] = {
    "input-not-normalized": input_not_normalized,
    "input-nan": input_nan,
    "nan-loss": nan_loss,
    "input-not-float": input_not_float,
    "image-shape-order": image_shape_order,
    "suspicious-val-accuracy": suspicious_val_accuracy,
    "missing-activation": missing_activation,
    "missing-softmax": missing_softmax,
    "stacked-activations": stacked_activations,
    "learning-rate-range": learning_rate_range,
    "overfitting": overfitting,
    "high-dropout": high_dropout,
    "dead-units": dead_units,
    "saturated-units": saturated_units,
    "one-sided-latent": one_sided_latent,
    "output-activation-mismatch": output_activation_mismatch,
    "exploding-or-vanishing": exploding_or_vanishing,
}


def lines(findings: list[Finding]) -> str:
    return "\n".join(f.line() for f in findings) or "(no findings)"


def test_every_check_has_a_program() -> None:
    assert set(PROGRAMS) == {check.id for check in CHECKS}


@pytest.mark.parametrize("check_id", list(PROGRAMS))
def test_check_fires_on_the_bug_and_not_on_the_fix(check_id: str, tmp_path: Path) -> None:
    program = PROGRAMS[check_id]
    bug = program(tmp_path / "bug", False)
    assert check_id in {f.id for f in bug}, f"missed on the bug:\n{lines(bug)}"
    fixed = program(tmp_path / "fixed", True)
    assert check_id not in {f.id for f in fixed}, f"fired on the fix:\n{lines(fixed)}"
