"""The recorder's cost controls as pure decisions with known answers: which epochs
``every="auto"`` writes, and how many samples ``max_activation_bytes`` keeps."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

import tinspect
from tinspect import format as fmt
from tinspect.keras import InspectCheckpoint
from tinspect.record.callback import (
    AUTO_MIN_CHECKPOINTS,
    MAX_ACTIVATION_BYTES,
    MIN_CAPPED_SAMPLES,
    auto_due,
    samples_within,
)

from .checkpoint_io import checkpoint, epochs, model_dir, model_json


def written(n_epochs: int, **kwargs: float | int | list[float]) -> list[int]:
    """The epochs ``auto_due`` writes in a fit of ``n_epochs`` (0 and the last always)."""
    args = {"costs": [], "pending": 0, "main_seconds": 0.0, "elapsed": 10.0, **kwargs}
    due = [d for d in range(1, n_epochs) if auto_due(d, n_epochs, **args)]  # type: ignore[arg-type]
    return [0, *due, n_epochs]


@pytest.mark.parametrize(
    ("n_epochs", "minimum", "expected"),
    [
        (5, AUTO_MIN_CHECKPOINTS, [0, 3, 5]),  # the bench's fits at the default, 3
        (5, 4, [0, 2, 4, 5]),
        (12, 4, [0, 4, 8, 12]),
        (10, 4, [0, 4, 7, 10]),
        (3, 4, [0, 1, 2, 3]),  # fewer epochs than the minimum: every one
        (100, 2, [0, 100]),
        (6, 3, [0, 3, 6]),
    ],
)
def test_without_a_measured_cost_auto_writes_the_even_minimum(
    n_epochs: int, minimum: int, expected: list[int]
) -> None:
    assert written(n_epochs, minimum=minimum) == expected


def test_the_budget_adds_checkpoints_while_the_measured_cost_fits() -> None:
    # First checkpoint 1 s (it traced), steady ones 0.1 s: 1.1 s spent, one more 0.1 s.
    costs = [1.0, 0.1]
    assert auto_due(3, 100, costs, 0, 0.0, elapsed=25.0)  # 1.2 <= 5 % of 25 s
    assert not auto_due(3, 100, costs, 0, 0.0, elapsed=23.0)  # 1.2 > 1.15
    # The training thread's own seconds count too: 1.3 > 1.25.
    assert not auto_due(3, 100, costs, 0, main_seconds=0.1, elapsed=25.0)
    # A queued, unfinished checkpoint is estimated as the dearest steady one (not the
    # traced first): 1.4 spent + 0.3 pending + 0.3 more = 2.0 s.
    dearer = [1.0, 0.3, 0.1]
    assert auto_due(3, 100, dearer, 1, 0.0, elapsed=41.0)
    assert not auto_due(3, 100, dearer, 1, 0.0, elapsed=39.0)
    # Only the traced first one measured: it is the estimate (2.0 s).
    assert not auto_due(3, 100, [1.0], 0, 0.0, elapsed=39.0)
    assert auto_due(3, 100, [1.0], 0, 0.0, elapsed=41.0)
    # The budget is a parameter: 10 % of 13 s holds 1.2 s.
    assert auto_due(3, 100, costs, 0, 0.0, elapsed=13.0, budget=0.10)


def test_the_minimum_is_kept_whatever_the_cost() -> None:
    ruinous = {"costs": [50.0, 50.0], "elapsed": 1.0}
    assert written(12, **ruinous) == [0, 6, 12]  # the default minimum, 3
    assert written(12, minimum=4, **ruinous) == [0, 4, 8, 12]


@pytest.mark.parametrize(
    ("n", "per_sample", "max_bytes", "expected"),
    [
        (512, 45_620, 8_000_000, 175),  # the bench's 28×28 conv net, float16
        (512, 8_340, 8_000_000, 512),  # the demo conv net fits whole
        (512, 43_268, None, 512),  # no cap
        (512, None, 8_000_000, 512),  # unknown size (a variable dimension): no cap
        (512, 10_000_000, 8_000_000, MIN_CAPPED_SAMPLES),  # never below the floor ...
        (20, 10_000_000, 8_000_000, 20),  # ... nor more than given
        (100, 1_000, 50_000, 64),
        (100, 1_000, 80_000, 80),
    ],
)
def test_samples_within_the_byte_cap(
    n: int, per_sample: int | None, max_bytes: int | None, expected: int
) -> None:
    assert samples_within(n, per_sample, max_bytes) == expected


def wide_model() -> keras.Model:
    """32 + 32 + 32 + 3 activation values per sample (the Dropout's, which repeat ``a``'s
    and are stored as a link, count too: the cap is an upper bound)."""
    inputs = keras.Input((8,), name="features")
    a = layers.Dense(32, activation="relu", name="a")(inputs)
    h = layers.Dropout(0.2, name="drop")(a)
    b = layers.Dense(32, activation="relu", name="b")(h)
    out = layers.Dense(3, activation="softmax", name="out")(b)
    model = keras.Model(inputs, out, name="wide")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_a_byte_cap_records_fewer_samples_and_says_so(
    tmp_path: Path, tabular: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = tabular
    keras.utils.set_random_seed(3)
    per_sample = (32 + 32 + 32 + 3) * 2  # float16
    cap = 70 * per_sample
    cb = InspectCheckpoint(
        tmp_path,
        tinspect.make_header("capped"),
        (x, y),
        every=1,
        max_activation_bytes=cap,
        checks=False,
    )
    assert cb.n_samples == 96  # decided when the model is known
    with pytest.warns(UserWarning, match=r"recording 70 of the 96 samples"):
        wide_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 1]
    info = model_json(d)
    assert info["recording"]["n_samples"] == 70 and info["dataset"]["n_samples"] == 70
    assert info["recording"]["max_activation_bytes"] == cap
    ckpt = checkpoint(d, 1)
    assert ckpt["attrs"][fmt.ATTR_N_SAMPLES] == 70
    np.testing.assert_array_equal(ckpt[f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_X}"], x[:70])
    np.testing.assert_array_equal(ckpt[f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_CLASS}"], y[:70])
    assert ckpt["layers/a/activations"].shape == (70, 32)
    assert ckpt["layers/out/activations"].shape == (70, 3)
    assert ckpt["layers/a/mean_class_activations"].shape == (3, 32)
    stored = sum(ckpt[f"layers/{n}/activations"].nbytes for n in ("a", "b", "out"))
    assert stored <= cap


def test_no_cap_records_every_sample(
    tmp_path: Path, tabular: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = tabular
    assert MAX_ACTIVATION_BYTES >= 96 * (32 + 32 + 32 + 3) * 2  # the default keeps them all
    cb = InspectCheckpoint(
        tmp_path,
        tinspect.make_header("all"),
        (x, y),
        every=1,
        max_activation_bytes=None,
        checks=False,
    )
    wide_model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    assert model_json(model_dir(tmp_path))["recording"]["n_samples"] == 96
