"""Every silent-bug check against a tiny real Keras program that has the bug, and the same
program fixed.

Each program trains for a few epochs with ``InspectCheckpoint(checks=False)``; the checks then
run post hoc with ``diagnose_model`` on what was recorded. A check must fire on the bug and
stay silent on the fix: a false positive on a correct program is as bad as a miss. Only the
check under test is asserted on; a buggy program may well trip other checks too.

A program is a function ``(logdir, variant) -> findings``; ``variant`` is ``"bug"``,
``"fixed"`` or the name of a further variant (another way to write the bug or the fix).
"""

from __future__ import annotations

import json
import warnings
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
from tinspect.analysis.diagnose import CHECKS, Finding, diagnose_model
from tinspect.demo import models as demo_models
from tinspect.keras import InspectCheckpoint
from tinspect.store import Store

pytestmark = [
    pytest.mark.slow,
    # TensorFlow warns about a double softmax itself (the subject of one check).
    pytest.mark.filterwarnings("ignore:.*from_logits=True.*Softmax:UserWarning"),
]

Program = Callable[[Path, str], list[Finding]]


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
    callbacks: tuple[keras.callbacks.Callback, ...] = (),
    input_kind: str | None = None,
    output_kind: str | None = None,
) -> list[Finding]:
    """Train ``model`` with the recorder (checks off), then run every check post hoc."""
    header = tinspect.make_header(logdir.name)
    if samples is None:
        samples = x if y is None else (x, y)
    recorder = InspectCheckpoint(
        logdir,
        header,
        samples,
        every=1,  # every epoch, so that the checks see the same checkpoints on any machine
        input_kind=input_kind,
        output_kind=output_kind,
        checks=False,
    )
    model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        verbose=0,
        callbacks=[*callbacks, recorder],
    )
    with Store(logdir) as store:
        return diagnose_model(store, header["id"])


def tabular(n: int = 64, features: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples in [-1, 1]; two classes, learnable from the first feature."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, features)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def sequential(*hidden: layers.Layer, features: int = 8, classes: int = 2) -> keras.Model:
    """``hidden`` layers and a softmax classifier on top (not compiled)."""
    return keras.Sequential(
        [keras.Input((features,)), *hidden, layers.Dense(classes, activation="softmax")]
    )


def classifier(*hidden: layers.Layer, features: int = 8, classes: int = 2) -> keras.Model:
    model = sequential(*hidden, features=features, classes=classes)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --- one program per check ------------------------------------------------------------------------
def input_not_normalized(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    if variant == "bug":
        x = (x + 1) * 127.5  # raw 0–255 "pixel" values
    return record(logdir, classifier(layers.Dense(4, activation="relu")), x, y)


def input_nan(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    if variant == "bug":
        x[5, 3] = np.nan  # one broken measurement
    return record(logdir, classifier(layers.Dense(4, activation="relu")), x, y)


def nan_loss(logdir: Path, variant: str) -> list[Finding]:
    """Bug: a missing (NaN) target in the training data, or a far too large learning rate on
    unscaled targets."""
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = x[:, :1] * 2 + 0.5
    learning_rate = 1e-3
    if variant == "bug":
        y[7, 0] = np.nan
    elif variant == "huge-learning-rate":
        y, learning_rate = y * 1e6, 1e6
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(4, activation="relu"), layers.Dense(1)]
    )
    model.compile(keras.optimizers.SGD(learning_rate), "mse")
    return record(logdir, model, x, y, output_kind="regression")


def input_not_float(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(64, 8, 8, 1), dtype=np.uint8)
    y = (pixels[:, :4].mean(axis=(1, 2, 3)) > 127).astype(np.int64)
    x = pixels if variant == "bug" else pixels.astype(np.float32) / 255.0
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


def image_shape_order(logdir: Path, variant: str) -> list[Finding]:
    """Bug: NCHW images (as from PyTorch) fed to a channels-last Conv2D that accepts them
    as 1×8 images with 8 channels."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0.5).astype(np.int64)
    if variant == "fixed":
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


def suspicious_val_accuracy(logdir: Path, variant: str) -> list[Finding]:
    """20 % noisy training labels. Bug: validation on an easy, clean subset of the training
    samples (a leak); fix: validation on a held-out split of the same data."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1024, 8)).astype(np.float32)
    clean = (x[:, 0] > 0).astype(np.int64)
    noisy = np.where(rng.random(len(x)) < 0.2, 1 - clean, clean)
    x_train, y_train = x[:512], noisy[:512]
    if variant == "bug":
        easy = np.abs(x_train[:, 0]) > 0.5
        validation = (x_train[easy], clean[:512][easy])
    else:
        validation = (x[512:], noisy[512:])
    return record(
        logdir,
        classifier(layers.Dense(8, activation="relu")),
        x_train,
        y_train,
        samples=(x_train[:64], y_train[:64]),
        epochs=8,
        batch_size=64,
        validation_data=validation,
    )


def too_good_val_accuracy(logdir: Path, variant: str) -> list[Finding]:
    """5 % noisy training labels, so training accuracy stays near 95 %. Bug: validation on
    a clean subset of the training samples (a leak: ~100 %); fix: a held-out split with the
    same noise (below 95 %)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(1024, 8)).astype(np.float32)
    clean = (x[:, 0] > 0).astype(np.int64)
    noisy = np.where(rng.random(len(x)) < 0.05, 1 - clean, clean)
    x_train, y_train = x[:512], noisy[:512]
    validation = (x_train, clean[:512]) if variant == "bug" else (x[512:], noisy[512:])
    model = sequential(layers.Dense(16, activation="relu"))
    model.compile(
        keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return record(
        logdir,
        model,
        x_train,
        y_train,
        samples=(x_train[:64], y_train[:64]),
        epochs=10,
        batch_size=32,
        validation_data=validation,
    )


def missing_activation(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    hidden = {
        "bug": [layers.Dense(8)],
        "through-dropout": [layers.Dense(8), layers.Dropout(0.2)],
        "through-batchnorm": [layers.Dense(8), layers.BatchNormalization()],
        "batchnorm-then-relu": [
            layers.Dense(8),
            layers.BatchNormalization(),
            layers.Activation("relu"),
        ],
        "fixed": [layers.Dense(8, activation="relu")],
    }[variant]
    return record(logdir, classifier(*hidden), x, y)


def missing_activation_conv(logdir: Path, variant: str) -> list[Finding]:
    """Two convolutions with only an average pooling between them (a linear map) in the bug;
    a max pooling (not linear) or a ReLU in the fix."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    pool = layers.MaxPooling2D(2) if variant == "max-pooling" else layers.AveragePooling2D(2)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu" if variant == "fixed" else None),
            pool,
            layers.Conv2D(4, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return record(logdir, model, x, y, input_kind="image")


def missing_softmax(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    output, loss = {
        "bug": (None, "sparse_categorical_crossentropy"),
        "loss-object": (None, keras.losses.SparseCategoricalCrossentropy()),
        "fixed": (None, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        "softmax-output": ("softmax", "sparse_categorical_crossentropy"),
    }[variant]
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(8, activation="relu"), layers.Dense(3, activation=output)]
    )
    model.compile("adam", loss, metrics=["accuracy"])
    return record(logdir, model, x, y)


def double_softmax(logdir: Path, variant: str) -> list[Finding]:
    """Bug: a softmax output trained with from_logits=True (the loss applies a second
    softmax). Fix: from_logits=False; or (variant ``logits``) a linear output with
    from_logits=True."""
    keras.utils.set_random_seed(0)
    x, y = tabular()
    output, from_logits = {
        "bug": ("softmax", True),
        "softmax-layer": ("softmax-layer", True),
        "fixed": ("softmax", False),
        "logits": (None, True),
    }[variant]
    top = (
        [layers.Dense(3, name="logits"), layers.Softmax(name="probabilities")]
        if output == "softmax-layer"
        else [layers.Dense(3, activation=output, name="output")]
    )
    model = keras.Sequential([keras.Input((8,)), layers.Dense(8, activation="relu"), *top])
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    return record(logdir, model, x, y)


def classification_loss_on_regression(logdir: Path, variant: str) -> list[Finding]:
    """Bug: real-valued targets in [0, 1] (a regression) trained with binary cross-entropy.
    Fix: mean squared error."""
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = ((x[:, :1] + 1) / 2).astype(np.float32)  # targets in [0, 1]
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid", name="value"),
        ]
    )
    model.compile("adam", "binary_crossentropy" if variant == "bug" else "mse")
    return record(logdir, model, x, y, output_kind="regression")


def stacked_activations(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    hidden = {
        "bug": [layers.Dense(8, activation="relu"), layers.Activation("relu")],
        "fixed": [layers.Dense(8, activation="relu")],
        "separate-activation": [layers.Dense(8), layers.Activation("relu")],
    }[variant]
    return record(logdir, classifier(*hidden), x, y)


def learning_rate_range(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    optimizer = {
        "bug": lambda: keras.optimizers.Adam(learning_rate=0.5),
        "fixed": lambda: keras.optimizers.Adam(learning_rate=1e-3),
        # Plain SGD with momentum at 0.1 is a textbook setting (e.g. ResNet on ImageNet).
        "sgd-momentum": lambda: keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
    }[variant]()
    model = sequential(layers.Dense(8, activation="relu"))
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return record(logdir, model, x, y)


def overfitting(logdir: Path, variant: str) -> list[Finding]:
    """Bug: a wide model memorizes a small noisy training set (32 samples, 25 % wrong labels)
    for 12 epochs. Fix: enough data (512 samples) and a gentler learning rate. The variant
    ``early-stopping`` is the bug with the check's own fix (EarlyStopping, patience=3)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_train = 512 if variant == "fixed" else 32
    x = rng.uniform(-1, 1, size=(n_train + 256, 8)).astype(np.float32)
    clean = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    y = np.where(rng.random(len(x)) < 0.25, 1 - clean, clean)
    model = sequential(layers.Dense(64, activation="relu"))
    model.compile(
        keras.optimizers.Adam(1e-3 if variant == "fixed" else 1e-2),
        "sparse_categorical_crossentropy",
    )
    callbacks = (
        (keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),)
        if variant == "early-stopping"
        else ()
    )
    return record(
        logdir,
        model,
        x[:n_train],
        y[:n_train],
        samples=(x[:32], y[:32]),
        epochs=12,
        validation_data=(x[n_train:], y[n_train:]),
        callbacks=callbacks,
    )


def high_dropout(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, y = tabular()
    rate = 0.6 if variant == "bug" else 0.2
    return record(
        logdir, classifier(layers.Dense(8, activation="relu"), layers.Dropout(rate)), x, y
    )


class SetBias(keras.callbacks.Callback):
    """Sets a layer's bias at the end of one epoch (before the recorder's checkpoint): units
    that recover after initialization, or that die during training, on demand."""

    def __init__(self, layer: str, epoch: int, value: float) -> None:
        super().__init__()
        self.layer, self.epoch, self.value = layer, epoch, value

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch + 1 == self.epoch:
            bias = self.model.get_layer(self.layer).bias
            bias.assign(np.full(bias.shape, self.value, dtype="float32"))


def dead_units(logdir: Path, variant: str) -> list[Finding]:
    """Bug: a bias initialized far below zero, so every pre-activation is negative: the ReLUs
    output 0 on all 128 samples, get no gradient and stay dead. Fix: the default bias.

    Variants: ``recovers`` starts dead and is revived after epoch 1 (inactive at
    initialization only: not dead); ``dies-later`` is healthy until its bias is pushed far
    below zero after epoch 2 (dead since epoch 2)."""
    keras.utils.set_random_seed(0)
    x, y = tabular(n=128)
    bias = keras.initializers.Constant(-10.0) if variant in ("bug", "recovers") else "zeros"
    hidden = layers.Dense(16, activation="relu", bias_initializer=bias, name="hidden")
    callbacks = {
        "recovers": (SetBias("hidden", 1, 0.0),),
        "dies-later": (SetBias("hidden", 2, -10.0),),
    }.get(variant, ())
    return record(logdir, classifier(hidden), x, y, epochs=4, callbacks=callbacks)


def saturated_units(logdir: Path, variant: str) -> list[Finding]:
    """Bug: raw 0–255 pixels whose values share each image's brightness push every sigmoid
    unit to the same bound on every sample. Fix: standardized inputs."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    brightness = rng.uniform(60, 235, size=(64, 1))
    raw = (brightness + rng.uniform(-20, 20, size=(64, 8))).astype(np.float32)
    y = (raw[:, 0] > raw[:, 1]).astype(np.int64)
    x = raw if variant == "bug" else (raw - raw.mean(axis=0)) / raw.std(axis=0)
    return record(logdir, classifier(layers.Dense(8, activation="sigmoid", name="hidden")), x, y)


def one_sided_latent(logdir: Path, variant: str) -> list[Finding]:
    """The demo's VAE: a ReLU on z_mean and z_log_var (the bug) or no activation."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, demo_models.N_PIXELS)).astype(np.float32)
    model = demo_models.vae(
        0.9, 0.1, latent_activation="relu" if variant == "bug" else None, seed=0
    )
    return record(logdir, model, x, output_kind="reconstruction")


def output_activation_mismatch(logdir: Path, variant: str) -> list[Finding]:
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    y = (x[:, :1] * 5).astype(np.float32)  # targets in [-5, 5]
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(8, activation="relu"),
            layers.Dense(1, activation="sigmoid" if variant == "bug" else None),
        ]
    )
    model.compile("adam", "mse")
    return record(logdir, model, x, y, output_kind="regression")


def exploding_or_vanishing(logdir: Path, variant: str) -> list[Finding]:
    """Bug: a deep ReLU stack initialized with a far too large std, so activations grow ~6×
    per layer. Fix: He initialization."""
    keras.utils.set_random_seed(0)
    x, _ = tabular()
    init = keras.initializers.RandomNormal(stddev=2.0) if variant == "bug" else "he_normal"
    model = keras.Sequential(
        [
            keras.Input((8,)),
            *[layers.Dense(16, activation="relu", kernel_initializer=init) for _ in range(4)],
            layers.Dense(1),
        ]
    )
    model.compile("adam", "mse")
    return record(logdir, model, x, x[:, :1], output_kind="regression")


PROGRAMS: dict[str, Program] = {
    "input-not-normalized": input_not_normalized,
    "input-nan": input_nan,
    "nan-loss": nan_loss,
    "input-not-float": input_not_float,
    "image-shape-order": image_shape_order,
    "suspicious-val-accuracy": suspicious_val_accuracy,
    "missing-activation": missing_activation,
    "double-softmax": double_softmax,
    "classification-loss-on-regression": classification_loss_on_regression,
    "too-good-val-accuracy": too_good_val_accuracy,
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


def fires(check_id: str, findings: list[Finding]) -> bool:
    return check_id in {f.id for f in findings}


def test_every_check_has_a_program() -> None:
    assert set(PROGRAMS) == {check.id for check in CHECKS}


@pytest.mark.parametrize("check_id", list(PROGRAMS))
def test_check_fires_on_the_bug_and_not_on_the_fix(check_id: str, tmp_path: Path) -> None:
    program = PROGRAMS[check_id]
    bug = program(tmp_path / "bug", "bug")
    assert fires(check_id, bug), f"{check_id} missed the bug:\n{lines(bug)}"
    fixed = program(tmp_path / "fixed", "fixed")
    assert not fires(check_id, fixed), f"{check_id} fired on the fix:\n{lines(fixed)}"


@pytest.mark.parametrize(
    ("check_id", "variant", "expected"),
    [
        pytest.param(
            "nan-loss",
            "huge-learning-rate",
            True,
            # The lost checkpoint is test_a_diverging_model_keeps_every_checkpoint's subject.
            marks=[
                pytest.mark.filterwarnings("ignore::RuntimeWarning"),
                pytest.mark.filterwarnings("ignore:tinspect. checkpoint:UserWarning"),
            ],
        ),
        ("missing-activation", "through-dropout", True),
        ("missing-activation", "through-batchnorm", True),
        ("missing-activation", "batchnorm-then-relu", False),
        ("double-softmax", "softmax-layer", True),
        ("double-softmax", "logits", False),
        ("dead-units", "recovers", False),
        ("dead-units", "dies-later", True),
        ("missing-softmax", "loss-object", True),
        ("missing-softmax", "softmax-output", False),
        ("stacked-activations", "separate-activation", False),
        ("learning-rate-range", "sgd-momentum", False),
        ("overfitting", "early-stopping", False),
    ],
)
def test_other_ways_to_write_the_bug_or_the_fix(
    check_id: str, variant: str, expected: bool, tmp_path: Path
) -> None:
    findings = PROGRAMS[check_id](tmp_path / variant, variant)
    assert fires(check_id, findings) == expected, lines(findings)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_model_keeps_every_checkpoint(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nan_loss(tmp_path / "diverging", "huge-learning-rate")
    lost = [str(w.message) for w in caught if "was not written" in str(w.message)]
    assert not lost, lost


# --- the checks inside the callback, and on the command line -------------------------------------
def test_callback_writes_each_finding_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """checks=True (the default): raw inputs are reported at the first checkpoint and not
    again at the next three; training is not disturbed."""
    keras.utils.set_random_seed(0)
    x, y = tabular()
    x = (x + 1) * 127.5
    model = classifier(layers.Dense(4, activation="relu"), layers.Dropout(0.6))
    header = tinspect.make_header("raw")
    recorder = InspectCheckpoint(tmp_path, header, (x, y))
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[recorder])

    assert len(history.history["loss"]) == 3 and not recorder.errors
    model_dir = tmp_path / fmt.model_dir_name("raw", header["id"])
    status = json.loads((model_dir / fmt.MODEL_JSON).read_text())["status"]
    assert status["state"] == "finished" and status["epochs_completed"] == 3
    written = [
        json.loads(line) for line in (model_dir / fmt.FINDINGS_JSONL).read_text().splitlines()
    ]
    keys = [(f["id"], f["uoa"]) for f in written]
    assert len(keys) == len(set(keys)), keys
    by_id = {f["id"]: f for f in written}
    assert by_id["input-not-normalized"]["epoch"] == 0
    assert by_id["high-dropout"]["epoch"] == 0
    assert by_id["input-not-normalized"]["context"]["max"] > 200
    printed = capsys.readouterr().out
    assert printed.count("tinspect: warning: input-not-normalized") == 1
    # Whatever the checks find post hoc was reported while training.
    with Store(tmp_path) as store:
        post_hoc = {(f.id, f.uoa) for f in diagnose_model(store, header["id"])}
    assert post_hoc <= set(keys)


def test_check_command_exit_code_follows_fail_on(tmp_path: Path) -> None:
    findings = missing_softmax(tmp_path / "logs", "bug")  # an error, nothing critical
    assert {f.severity for f in findings} == {"error"}
    runner = CliRunner()
    logdir = str(tmp_path / "logs")

    result = runner.invoke(cli.app, ["check", logdir, "--json", "--fail-on", "error"])
    assert result.exit_code == 1, result.output
    payload = json.loads(result.stdout)
    assert [(f["id"], f["severity"]) for f in payload] == [("missing-softmax", "error")]

    result = runner.invoke(cli.app, ["check", logdir, "--json", "--fail-on", "critical"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == payload


@pytest.mark.parametrize(
    ("variant", "expected"), [("bug", True), ("fixed", False), ("max-pooling", False)]
)
def test_missing_activation_through_average_pooling(
    variant: str, expected: bool, tmp_path: Path
) -> None:
    findings = missing_activation_conv(tmp_path / variant, variant)
    assert fires("missing-activation", findings) == expected, lines(findings)


# --- findings that explain themselves ------------------------------------------------------------
def test_fixes_name_the_programs_own_layers(tmp_path: Path) -> None:
    """A fix is the user's own layer with its real arguments, not a generic snippet."""
    latent = {f.uoa.rsplit("/", 1)[-1]: f for f in one_sided_latent(tmp_path / "vae", "bug")}
    units = demo_models.vae(0.9, 0.1).get_layer("z_log_var").units
    assert latent["z_log_var"].fix.startswith(
        f'z_log_var = layers.Dense({units}, name="z_log_var")('
    )
    assert latent["z_mean"].fix.startswith(f'z_mean = layers.Dense({units}, name="z_mean")(')
    assert "zero fraction" in latent["z_log_var"].context_text()

    dead = [f for f in dead_units(tmp_path / "dead", "bug") if f.id == "dead-units"]
    assert dead[0].fix.startswith(
        'layers.Dense(16, activation="leaky_relu", bias_initializer="zeros", name="hidden")'
    )
    assert dead[0].title == "16/16 units of hidden inactive since epoch 0"
    assert dead[0].context["since_epoch"] == 0 and dead[0].epochs == (0, 1, 2, 3, 4)


def test_dead_units_since_the_epoch_they_died(tmp_path: Path) -> None:
    findings = [f for f in dead_units(tmp_path / "late", "dies-later") if f.id == "dead-units"]
    assert [f.context["since_epoch"] for f in findings] == [2], lines(findings)
    assert findings[0].epochs == (2, 3, 4)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_check_report_shows_context_with_hanging_indents(tmp_path: Path, width: int) -> None:
    logdir = tmp_path / "logs"
    one_sided_latent(logdir, "bug")
    result = CliRunner().invoke(cli.app, ["check", str(logdir)], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    report = result.stdout.splitlines()
    assert all(len(line) <= width for line in report), "\n".join(report)
    assert all(line == line.rstrip() for line in report)
    body = report[1:-1]  # between the model's name and the counts
    assert body and all(line.startswith("  ") for line in body), "\n".join(report)
    # Continuation lines of the explanation stay under its text, right of the labels.
    why = next(i for i, line in enumerate(body) if line.lstrip().startswith("why "))
    column = body[why].index(body[why].split("why", 1)[1].strip())
    assert body[why + 1][:column].strip() == "" and body[why + 1][column] != " "
    text = " ".join(result.stdout.split())  # words, whatever the wrapping
    assert "measured" in text and "zero fraction" in text and "min 0" in text
    assert 'name="z_log_var"' in text


def test_the_clean_demo_conv_model_prints_no_finding_while_training(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's conv net on digits, as ``tinspect demo`` trains it, checks on (the default):
    nothing to report, in particular no dead units that were inactive only at initialization
    and no overfitting for its 4-epoch val_loss bump (epochs 9-12). The checks' time budget is
    lifted so they run after every checkpoint, not at the moments a timer picks."""
    from tinspect.demo import data
    from tinspect.demo.train import DemoConfig
    from tinspect.record import callback

    monkeypatch.setattr(callback, "CHECK_BUDGET", 1e9)

    config = DemoConfig()
    digits = data.load_digits(seed=config.seed)
    keras.utils.set_random_seed(config.seed + 2)
    images = data.Digits.images
    header = tinspect.make_header("conv")
    n = config.max_samples
    recorder = InspectCheckpoint(
        tmp_path,
        header,
        (images(digits.x_val)[:n], digits.y_val[:n]),
        max_samples=n,
        class_names=data.CLASS_NAMES,
        input_kind="image",
        output_kind="classification",
    )
    model = demo_models.compile_classifier(demo_models.conv(config.conv_filters))
    model.fit(
        images(digits.x_train),
        digits.y_train,
        validation_data=(images(digits.x_val), digits.y_val),
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=0,
        callbacks=[recorder],
    )
    assert not recorder.errors
    printed = [line for line in capsys.readouterr().out.splitlines() if "tinspect:" in line]
    assert printed == []
    findings = tmp_path / fmt.model_dir_name("conv", header["id"]) / fmt.FINDINGS_JSONL
    assert not findings.exists() or not findings.read_text().strip()
