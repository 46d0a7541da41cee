"""InspectCheckpoint on real Keras models: what lands in the files, checked with h5py.

Every test trains a tiny model for a few epochs (seconds) and reads the files back without
tinspect's read side, so these tests pin the log format as written.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers

import tinspect
from tinspect import format as fmt
from tinspect.demo import models as demo_models
from tinspect.keras import InspectCheckpoint
from tinspect.summary import summarize

from .checkpoint_io import checkpoint, epochs, metrics, model_dir, model_json, summary_table

XY = tuple[np.ndarray, np.ndarray]
#: This file runs once per Keras backend (tests/test_backends.py starts the other two).
BACKEND = keras.backend.backend()
only_compiled = pytest.mark.skipif(
    BACKEND not in ("tensorflow", "jax"), reason=f"the recorder runs eagerly on {BACKEND}"
)


def skip_model() -> keras.Model:
    """Functional: a skip connection around ``b`` and two outputs."""
    inputs = keras.Input((8,), name="features")
    a = layers.Dense(16, activation="relu", name="a")(inputs)
    b = layers.Dense(16, activation="relu", name="b")(a)
    merged = layers.Add(name="merge")([a, b])
    out = layers.Dense(3, activation="softmax", name="out")(merged)
    aux = layers.Dense(1, name="aux")(a)
    model = keras.Model(inputs, [out, aux], name="skip")
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    return model


def fit(model: keras.Model, data: XY, callback: InspectCheckpoint, epochs: int = 2, **kw) -> None:
    x, y = data
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[callback], **kw)


def test_sequential_without_input_records_everything(tmp_path: Path, tabular: XY) -> None:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            layers.Dense(12, activation="relu", name="h"),
            layers.Dropout(0.5, name="drop"),
            layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    header = tinspect.make_header("seq", batch_size=32)
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, header, (x[:40], y[:40]), class_names=["a", "b", "c"], every=1)
    fit(model, tabular, cb, epochs=3, validation_data=tabular)

    d = model_dir(tmp_path)
    assert d.name == f"seq-{header['id'][:8]}"
    assert epochs(d) == [0, 1, 2, 3]
    last = checkpoint(d, 3)
    attrs = last["attrs"]
    assert attrs[fmt.ATTR_FORMAT_VERSION] == fmt.FORMAT_VERSION
    assert attrs[fmt.ATTR_MODEL_ID] == header["id"] and attrs[fmt.ATTR_EPOCH] == 3
    assert attrs[fmt.ATTR_STEP] == 3 * 3  # 96 samples / 32 per batch, 3 epochs
    assert attrs[fmt.ATTR_RUNTIME_PER_SAMPLE] > 0
    assert attrs[fmt.ATTR_WEIGHTS_BYTES] == sum(w.nbytes for w in model.get_weights())
    assert set(eval_json(attrs[fmt.ATTR_METRICS])) >= {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
    }

    np.testing.assert_array_equal(last["data_samples/x"], x[:40])
    np.testing.assert_array_equal(last["data_samples/y_label"], y[:40])
    np.testing.assert_array_equal(last["data_samples/y_class"], y[:40])
    expected_pred = keras.ops.convert_to_numpy(model(x[:40], training=False))
    np.testing.assert_allclose(
        last["data_samples/y_prediction"], expected_pred, rtol=1e-5, atol=1e-6
    )

    # Activations: float16, equal to the trained model's own layer outputs.
    probe = keras.Model(model.inputs, [model.get_layer("h").output, model.get_layer("drop").output])
    h_expected, drop_expected = (keras.ops.convert_to_numpy(t) for t in probe([x[:40]]))
    h = last["layers/h/activations"]
    assert h.dtype == np.float16 and h.shape == (40, 12)
    np.testing.assert_allclose(h, h_expected, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(last["layers/drop/activations"], drop_expected, rtol=2e-3, atol=2e-3)
    # Per-class means from the float32 activations, NaN-free since every class occurs.
    mca = last["layers/h/mean_class_activations"]
    assert mca.shape == (3, 12) and mca.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(
            mca[c], h_expected[y[:40] == c].mean(axis=0), rtol=1e-5, atol=1e-6
        )
    # Weights equal the model's at the end of training.
    np.testing.assert_array_equal(
        last["layers/h/weights/kernel"], model.get_layer("h").kernel.numpy()
    )
    np.testing.assert_array_equal(
        last["layers/out/weights/bias"], model.get_layer("out").bias.numpy()
    )
    assert "layers/drop/weights/kernel" not in last

    # Summaries describe exactly the stored arrays.
    table = summary_table(last)
    for row, key in [
        ("h/activations", "layers/h/activations"),
        ("out/weights/kernel", "layers/out/weights/kernel"),
    ]:
        stored = summarize(last[key])
        assert table[row] == pytest.approx(stored.as_dict(), nan_ok=True)
    assert set(table) == {
        "h/activations",
        "h/weights/kernel",
        "h/weights/bias",
        "drop/activations",
        "out/activations",
        "out/weights/kernel",
        "out/weights/bias",
    }

    # The initialization checkpoint differs from the trained one, and has no metrics.
    first = checkpoint(d, 0)
    assert eval_json(first["attrs"][fmt.ATTR_METRICS]) == {}
    assert not np.array_equal(first["layers/h/weights/kernel"], last["layers/h/weights/kernel"])

    lines = metrics(d)
    assert [m["epoch"] for m in lines] == [1, 2, 3]
    assert {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "epoch_time_s",
        "time",
        "step",
    } <= set(lines[0])
    assert lines[-1]["learning_rate"] == pytest.approx(0.05)

    info = model_json(d)
    assert info["format_version"] == fmt.FORMAT_VERSION and info["header"] == header
    assert info["status"] == {**info["status"], "state": "finished", "epochs_completed": 3}
    arch = {layer["name"]: layer for layer in info["architecture"]["layers"]}
    assert arch["h"]["inbound"] == [info["architecture"]["inputs"][0]]
    assert arch["drop"]["inbound"] == ["h"] and arch["out"]["inbound"] == ["drop"]
    assert arch["h"]["operations"] == [
        {"op": "matmul", "variable": "kernel"},
        {"op": "add", "variable": "bias"},
        {"op": "relu"},
    ]
    assert arch["drop"]["operations"] == [{"op": "dropout", "rate": 0.5}]
    assert arch["h"]["params"] == {"trainable": 8 * 12 + 12, "non_trainable": 0}
    assert arch["h"]["output_shape"] == [None, 12]
    assert info["architecture"]["params"]["total"] == model.count_params()
    training = info["training"]
    assert training["optimizer"]["class_name"] == "SGD"
    assert training["optimizer"]["learning_rate"] == pytest.approx(0.05)
    assert training["loss"] == {"name": "sparse_categorical_crossentropy", "from_logits": False}
    assert training["epochs"] == 3 and training["batch_size"] == 32
    assert info["dataset"]["class_names"] == ["a", "b", "c"] and info["dataset"]["n_classes"] == 3
    assert info["recording"]["capture"] == "shadow"


def eval_json(text: str) -> dict:
    import json

    return json.loads(text)


def test_functional_skip_and_two_outputs(tmp_path: Path, tabular: XY) -> None:
    keras.utils.set_random_seed(2)
    model = skip_model()
    x, y = tabular
    cb = InspectCheckpoint(
        tmp_path, tinspect.make_header("skip"), (x, y), output_kind="classification"
    )
    model.fit(x, [y, x[:, :1]], epochs=2, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    info = model_json(d)
    arch = {layer["name"]: layer for layer in info["architecture"]["layers"]}
    assert arch["merge"]["inbound"] == ["a", "b"]
    assert arch["merge"]["operations"] == [{"op": "add"}]
    assert info["architecture"]["inputs"] == ["features"]
    assert info["architecture"]["outputs"] == ["out", "aux"]
    last = checkpoint(d, 2)
    assert last["data_samples/y_prediction"].shape == (96, 3)
    assert last["data_samples/y_prediction_1"].shape == (96, 1)
    for name in ("a", "b", "merge", "out", "aux"):
        assert last[f"layers/{name}/activations"].shape[0] == 96
    np.testing.assert_allclose(
        last["layers/merge/activations"].astype(np.float32),
        last["layers/a/activations"].astype(np.float32)
        + last["layers/b/activations"].astype(np.float32),
        atol=2e-2,
    )
    assert {"loss", "out_loss", "aux_loss"} <= set(metrics(d)[-1])


def test_conv_model_channels_last(tmp_path: Path, rng: np.random.Generator) -> None:
    keras.utils.set_random_seed(3)
    x = rng.uniform(0, 1, size=(64, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    model = demo_models.compile_classifier(demo_models.conv(filters=(4, 8)))
    cb = InspectCheckpoint(
        tmp_path, tinspect.make_header("conv"), (x, y), input_kind="image", every=2
    )
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 2, 3]  # every 2, and always the last
    last = checkpoint(d, 3)
    assert last["layers/conv_1/activations"].shape == (64, 8, 8, 4)
    assert last["layers/conv_1/mean_class_activations"].shape == (10, 8, 8, 4)
    assert last["layers/conv_1/weights/kernel"].shape == (3, 3, 1, 4)
    assert last["layers/flatten/activations"].shape == (64, 4 * 4 * 8)
    arch = {layer["name"]: layer for layer in model_json(d)["architecture"]["layers"]}
    assert arch["conv_1"]["operations"][0] == {"op": "conv2d", "variable": "kernel"}
    assert arch["pool"]["operations"] == [{"op": "max_pool", "size": [2, 2]}]
    assert arch["flatten"]["operations"] == [{"op": "reshape"}]


@pytest.mark.skipif(
    BACKEND != "tensorflow", reason="the demo VAE's train_step is TensorFlow's (GradientTape)"
)
def test_vae_with_custom_train_step(tmp_path: Path, rng: np.random.Generator) -> None:
    keras.utils.set_random_seed(4)
    x = rng.uniform(0, 1, size=(64, 64)).astype(np.float32)
    y = rng.integers(0, 10, size=64)
    model = demo_models.vae(0.25, 0.75, latent_activation="relu", seed=0, name="vae")
    cb = InspectCheckpoint(
        tmp_path, tinspect.make_header("vae"), (x, y), output_kind="reconstruction"
    )
    model.fit(x, epochs=2, batch_size=32, verbose=0, validation_data=(x,), callbacks=[cb])
    d = model_dir(tmp_path)
    lines = metrics(d)
    assert {"loss", "reconstruction_loss", "kl_loss", "val_kl_loss"} <= set(lines[-1])
    info = model_json(d)
    assert info["training"]["custom_train_step"] is True
    assert info["training"]["loss"] is None
    arch = {layer["name"]: layer for layer in info["architecture"]["layers"]}
    assert arch["z_mean"]["activation"] == "relu"
    assert arch["z"]["inbound"] == ["z_mean", "z_log_var"]
    last = checkpoint(d, 2)
    z_mean = last["layers/z_mean/activations"]
    assert z_mean.shape == (64, 4) and (z_mean >= 0).all()  # the ReLU's signature
    assert last["data_samples/y_prediction"].shape == (64, 64)  # the reconstruction
    assert last["layers/z_mean/mean_class_activations"].shape == (10, 4)


class Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = layers.Dense(6, activation="tanh", name="hidden")
        self.out = layers.Dense(3, activation="softmax", name="out")

    def call(self, inputs, training=False):
        return self.out(self.hidden(inputs))


def test_subclassed_model_warns_once_and_records_the_rest(tmp_path: Path, tabular: XY) -> None:
    model = Subclassed()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("sub"), (x, y))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, tabular, cb)
    ours = [w for w in caught if "tinspect" in str(w.message)]
    assert len(ours) == 1 and "no symbolic graph" in str(ours[0].message)
    d = model_dir(tmp_path)
    last = checkpoint(d, 2)
    assert last["data_samples/y_prediction"].shape == (96, 3)
    assert last["layers/hidden/weights/kernel"].shape == (8, 6)
    assert "layers/hidden/activations" not in last
    assert "no symbolic graph" in last["layer_attrs"]["hidden"][fmt.ATTR_SKIPPED]
    assert model_json(d)["architecture"]["graph"] is False


class NoConfig(layers.Layer):
    """A custom layer whose constructor cannot be rebuilt from its config (no clone)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def call(self, inputs):
        return inputs * self.scale


def test_unclonable_model_is_captured_on_the_main_thread(tmp_path: Path, tabular: XY) -> None:
    inputs = keras.Input((8,))
    h = layers.Dense(5, name="h")(inputs)
    scaled = NoConfig(2.0)(h)
    out = layers.Dense(3, activation="softmax", name="out")(scaled)
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("noclone"), (x, y))
    fit(model, tabular, cb)
    d = model_dir(tmp_path)
    assert model_json(d)["recording"]["capture"] == "main-thread"
    last = checkpoint(d, 2)
    h_act = last["layers/h/activations"].astype(np.float32)
    scaled_name = next(n for n in last["layer_attrs"] if n.startswith("no_config"))
    np.testing.assert_allclose(
        last[f"layers/{scaled_name}/activations"], 2 * h_act, rtol=2e-3, atol=1e-2
    )


def test_layers_subset_float32_and_gzip(tmp_path: Path, tabular: XY) -> None:
    import h5py

    model = skip_model()
    x, y = tabular
    cb = InspectCheckpoint(
        tmp_path,
        tinspect.make_header("subset"),
        (x, y),
        layers=["b", "out"],
        activations_dtype="float32",
        compression="gzip",
        max_samples=80,
    )
    model.fit(x, [y, x[:, :1]], epochs=1, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    last = checkpoint(d, 1)
    assert set(last["layer_attrs"]) == {"b", "out"}
    assert last["layers/b/activations"].dtype == np.float32
    assert last["layers/b/activations"].shape == (80, 16)
    assert last["data_samples/y_prediction_1"].shape == (80, 1)  # predictions of every output
    with h5py.File(d / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1)) as f:
        assert f["layers/b/activations"].compression == "gzip"
    assert model_json(d)["recording"]["layers"] == ["b", "out"]


def test_unknown_layer_names_fail_before_training(tmp_path: Path, tabular: XY) -> None:
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("m"), tabular, layers=["nope"])
    with pytest.raises(ValueError, match=r"unknown layers \['nope'\]"):
        fit(skip_model(), (x, [y, x[:, :1]]), cb)


def test_samples_that_do_not_fit_the_model_fail_before_training(
    tmp_path: Path, tabular: XY
) -> None:
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("m"), (x[:, :5], y))
    with pytest.raises(ValueError, match=r"Received: samples x of shape \(96, 5\)"):
        model = skip_model()
        model.fit(x, [y, x[:, :1]], epochs=1, verbose=0, callbacks=[cb])


@pytest.mark.parametrize("inline", [False, True], ids=["writer", "inline"])
def test_writer_errors_warn_and_training_continues(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch, inline: bool
) -> None:
    """A checkpoint that fails, in the writer thread or inline, warns; training goes on."""
    from tinspect.record import callback as callback_module

    real = callback_module.write_checkpoint

    def flaky(path: Path, record, compression) -> None:
        if path.name == fmt.checkpoint_name(1):
            raise OSError("disk full (simulated)")
        real(path, record, compression)

    monkeypatch.setattr(callback_module, "write_checkpoint", flaky)
    monkeypatch.setattr(callback_module, "cores_saturated", lambda *_: inline)
    monkeypatch.setattr(callback_module, "INLINE_BACKENDS", {keras.backend.backend()})
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("flaky"), tabular, every=1)
    with pytest.warns(UserWarning, match="checkpoint epoch 1 of 'flaky' was not written: OSError"):
        history = model.fit(*tabular, epochs=3, verbose=0, callbacks=[cb])
    assert cb._inline is inline and len(history.history["loss"]) == 3
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 2, 3]
    assert [label for label, _ in cb.errors] == ["epoch 1"]
    assert not [p for p in (d / fmt.CHECKPOINTS_DIR).iterdir() if fmt.is_temporary(p.name)]


def test_early_stopping_still_writes_the_last_epoch(tmp_path: Path, tabular: XY) -> None:
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1.0)
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("stop"), tabular, every=5)
    model.fit(*tabular, epochs=20, verbose=0, callbacks=[stop, cb])
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 2]  # stopped after epoch 2; not a multiple of 5 but the last


def test_a_second_fit_continues_the_epoch_count(tmp_path: Path, tabular: XY) -> None:
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("twice"), tabular)
    model.fit(*tabular, epochs=2, verbose=0, callbacks=[cb])
    model.fit(*tabular, epochs=2, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 1, 2, 3, 4]
    assert [m["epoch"] for m in metrics(d)] == [1, 2, 3, 4]
    assert model_json(d)["status"]["epochs_completed"] == 4


def test_reusing_a_header_with_checkpoints_is_refused(tmp_path: Path, tabular: XY) -> None:
    header = tinspect.make_header("again")
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(
        *tabular, epochs=1, verbose=0, callbacks=[InspectCheckpoint(tmp_path, header, tabular)]
    )
    with pytest.raises(ValueError, match="already holds checkpoints"):
        InspectCheckpoint(tmp_path, header, tabular)


def test_dict_samples_are_matched_to_inputs_by_name(tmp_path: Path, tabular: XY) -> None:
    a_in, b_in = keras.Input((8,), name="a_in"), keras.Input((3,), name="b_in")
    merged = layers.Concatenate(name="cat")([a_in, b_in])
    out = layers.Dense(3, activation="softmax", name="out")(merged)
    model = keras.Model([a_in, b_in], out)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = tabular
    b = x[:, :3] * 10
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("two"), ({"b_in": b, "a_in": x}, y))
    model.fit([x, b], y, epochs=1, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    last = checkpoint(d, 1)
    np.testing.assert_array_equal(last["data_samples/x"], x)
    np.testing.assert_array_equal(last["data_samples/x_1"], b)
    assert model_json(d)["dataset"]["input_names"] == ["a_in", "b_in"]
    cat = last["layers/cat/activations"].astype(np.float32)
    np.testing.assert_allclose(cat[:, 8:], b, rtol=1e-2)


def test_nested_model_variables_have_unique_names(tmp_path: Path, tabular: XY) -> None:
    inner_in = keras.Input((8,))
    inner = keras.Model(
        inner_in, layers.Dense(4, name="d2")(layers.Dense(5, name="d1")(inner_in)), name="inner"
    )
    inputs = keras.Input((8,))
    out = layers.Dense(3, activation="softmax", name="out")(inner(inputs))
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("nested"), tabular)
    fit(model, tabular, cb, epochs=1)
    d = model_dir(tmp_path)
    arch = {layer["name"]: layer for layer in model_json(d)["architecture"]["layers"]}
    names = [v["name"] for v in arch["inner"]["variables"]]
    assert names == ["d1.kernel", "d1.bias", "d2.kernel", "d2.bias"]
    assert [layer["name"] for layer in arch["inner"]["submodel"]["layers"]][1:] == ["d1", "d2"]
    last = checkpoint(d, 1)
    assert last["layers/inner/weights/d1.kernel"].shape == (8, 5)
    assert last["layers/inner/activations"].shape == (96, 4)


def test_checks_run_on_the_last_epoch_after_early_stopping(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = InspectCheckpoint._run_checks

    def spy(self: InspectCheckpoint, epoch: int, extremes: Any = None) -> None:
        calls.append(epoch)
        real(self, epoch, extremes)

    monkeypatch.setattr(InspectCheckpoint, "_run_checks", spy)
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=1.0)
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("stop"), tabular, every=1)
    model.fit(*tabular, epochs=20, verbose=0, callbacks=[stop, cb])
    assert calls[0] == 0 and calls[-1] == 2


def repeat_model() -> keras.Model:
    """Conv → pool → Flatten (same values, other shape) → Dropout (same values and shape) →
    Dense(32) → Dense(32) (same size as its input, other values) → softmax."""
    inputs = keras.Input((4, 4, 2), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dropout(0.5, name="drop")(h)
    h = layers.Dense(16, activation="relu", name="d1")(h)
    h = layers.Dense(16, activation="tanh", name="d2")(h)
    outputs = layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inputs, outputs, name="repeat")
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_repeated_activations_are_stored_once(
    tmp_path: Path, rng: np.random.Generator, compression: str | None
) -> None:
    import h5py

    keras.utils.set_random_seed(5)
    x = rng.normal(size=(48, 4, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=48)
    model = repeat_model()
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("rep"), (x, y), compression=compression)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    d = model_dir(tmp_path)
    path = d / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(2)
    with h5py.File(path) as f:
        flat, drop = f["layers/flat"], f["layers/drop"]
        # Flatten: no datasets, the layer holding the values and the shape to reshape to.
        assert fmt.ACTIVATIONS not in flat and fmt.MEAN_CLASS_ACTIVATIONS not in flat
        assert flat.attrs[fmt.ATTR_ACTIVATIONS_OF] == "pool"
        assert json.loads(flat.attrs[fmt.ATTR_ACTIVATIONS_SHAPE]) == [48, 2 * 2 * 4]
        # Dropout repeats Flatten, which repeats pool: the chain resolves to pool, and the
        # shapes differ from pool's, so Dropout is stored like Flatten.
        assert drop.attrs[fmt.ATTR_ACTIVATIONS_OF] == "pool"
        # Same size as the input but other values: stored as usual.
        assert fmt.ATTR_ACTIVATIONS_OF not in f["layers/d2"].attrs
        assert f["layers/d2/activations"].shape == (48, 16)
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in ("pool", "flat", "d2")])
    pool, flat_values, d2 = (keras.ops.convert_to_numpy(t) for t in probe([x]))
    last = checkpoint(d, 2)  # reshapes stored-once arrays as docs/format.md says
    np.testing.assert_allclose(last["layers/flat/activations"], flat_values, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(
        last["layers/flat/activations"], last["layers/pool/activations"].reshape(48, -1)
    )
    np.testing.assert_array_equal(
        last["layers/flat/mean_class_activations"],
        last["layers/pool/mean_class_activations"].reshape(3, -1),
    )
    np.testing.assert_allclose(last["layers/d2/activations"], d2, rtol=2e-3, atol=2e-3)
    assert pool.shape == (48, 2, 2, 4)
    table = summary_table(last)
    assert table["flat/activations"] == table["pool/activations"]
    assert table["flat/activations"] == pytest.approx(
        summarize(last["layers/flat/activations"]).as_dict(), nan_ok=True
    )


def test_a_dropout_of_the_same_shape_is_a_hard_link(tmp_path: Path, tabular: XY) -> None:
    import h5py

    keras.utils.set_random_seed(6)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(12, activation="relu", name="h"),
            layers.Dropout(0.3, name="drop"),
            layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("link"), tabular)
    fit(model, tabular, cb, epochs=1)
    path = model_dir(tmp_path) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1)
    with h5py.File(path) as f:
        assert f["layers/drop"].attrs[fmt.ATTR_ACTIVATIONS_OF] == "h"
        assert fmt.ATTR_ACTIVATIONS_SHAPE not in f["layers/drop"].attrs
        for name in (fmt.ACTIVATIONS, fmt.MEAN_CLASS_ACTIVATIONS):
            assert isinstance(f["layers/drop"].get(name, getlink=True), h5py.HardLink)
            assert f[f"layers/drop/{name}"] == f[f"layers/h/{name}"]  # one object, two names


@only_compiled
def test_compiled_and_eager_runs_record_the_same(rng: np.random.Generator) -> None:
    """The traced recorder (long fits) and the eager one (short fits, other backends) agree;
    the extremes handed to the checks equal those of the stored arrays exactly."""
    from tinspect.record.capture import Capture, class_weights
    from tinspect.store.reduce import unit_extremes

    keras.utils.set_random_seed(7)
    model = repeat_model()
    x = rng.normal(size=(40, 4, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    capture = Capture(model, None, class_weights(y, 3), "float16")
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    eager = capture.run([x], weights, extremes=True, compiled=False)
    compiled = capture.run([x], weights, extremes=True, compiled=True)
    again = capture.run([x], weights, extremes=True, compiled=True)  # traced once, reused
    assert capture._compile_error is None and len(capture._functions) == 1
    assert compiled.seconds > 0 and again.seconds > 0
    assert compiled.extremes is not None and eager.extremes is not None
    for i, _name in enumerate(capture.plan.captured):
        np.testing.assert_allclose(compiled.stored[i], eager.stored[i], rtol=2e-3, atol=2e-3)
        assert compiled.stored[i].dtype == np.float16
        np.testing.assert_allclose(
            compiled.class_means[i], eager.class_means[i], rtol=1e-4, atol=1e-5
        )
        for run in (compiled, eager):
            lo, hi = unit_extremes(lambda run=run, i=i: iter([run.stored[i]]))
            np.testing.assert_array_equal(run.extremes[i][0], lo)
            np.testing.assert_array_equal(run.extremes[i][1], hi)
    np.testing.assert_allclose(compiled.predictions[0], eager.predictions[0], rtol=1e-4)
    assert (
        compiled.aliases(capture.plan)
        == eager.aliases(capture.plan)
        == {
            "flat": "pool",
            "drop": "pool",
        }
    )


@pytest.mark.skipif(BACKEND != "torch", reason="autograd is torch's")
def test_the_torch_recorder_runs_without_autograd(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder never differentiates: its forward pass and post-processing run under
    ``torch.no_grad`` (~half a checkpoint's CPU time otherwise), which ends with the run."""
    import torch

    from tinspect.record import capture as capture_module
    from tinspect.record.capture import Capture, class_weights

    seen: list[bool] = []
    real = capture_module.post_process

    def spy(outputs: Any, *args: Any) -> Any:
        seen.append(torch.is_grad_enabled() or any(t.requires_grad for t in outputs))
        return real(outputs, *args)

    monkeypatch.setattr(capture_module, "post_process", spy)
    model = repeat_model()
    x = rng.normal(size=(40, 4, 4, 2)).astype(np.float32)
    capture = Capture(model, None, class_weights(rng.integers(0, 3, size=40), 3), "float16")
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    for given in (weights, None):  # the shadow (writer thread), the live model (main)
        run = capture.run([x], given, extremes=True)
        assert run.stored and run.stored[0].dtype == np.float16
    assert seen == [False, False] and torch.is_grad_enabled()


def layout_model() -> keras.Model:
    """Every Keras layer whose torch op permutes a channels-last input: convolutions (1D,
    2D, 3D, depthwise, separable, transposed; strided, dilated, "same"), max, average,
    global and padded poolings, then Flatten and Dense on the result."""
    image = keras.Input((9, 9, 3), name="image")
    h = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    h = layers.Conv2D(5, 3, strides=2, padding="same", name="strided")(h)
    h = layers.DepthwiseConv2D(3, padding="same", dilation_rate=2, name="depthwise")(h)
    h = layers.SeparableConv2D(6, 3, padding="same", name="separable")(h)
    h = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="transposed")(h)
    h = layers.MaxPooling2D(3, strides=2, padding="same", name="max")(h)
    h = layers.AveragePooling2D(2, padding="same", name="average")(h)
    flat = layers.Flatten(name="flat")(h)
    pooled = layers.GlobalAveragePooling2D(name="global")(h)
    series = keras.Input((12, 2), name="series")
    s = layers.Conv1D(3, 3, padding="same", name="conv1d")(series)
    s = layers.MaxPooling1D(2, name="max1d")(s)
    s = layers.AveragePooling1D(2, padding="same", name="average1d")(s)
    volume = keras.Input((4, 4, 4, 1), name="volume")
    v = layers.Conv3D(2, 2, padding="same", name="conv3d")(volume)
    v = layers.MaxPooling3D(2, name="max3d")(v)
    merged = layers.Concatenate(name="merged")(
        [flat, pooled, layers.Flatten(name="flat1d")(s), layers.Flatten(name="flat3d")(v)]
    )
    out = layers.Dense(3, activation="softmax", name="out")(layers.Dense(8, name="hidden")(merged))
    return keras.Model([image, series, volume], out, name="layout")


@pytest.mark.skipif(BACKEND != "torch", reason="Keras' layout copies are its torch backend's")
def test_the_torch_recorder_skips_keras_layout_copies_with_the_same_values(
    rng: np.random.Generator,
) -> None:
    """On torch the recorder runs channels-last convolutions and poolings on permuted views
    instead of Keras' contiguous copies (``record.keras_torch_layout``): every stored activation,
    class mean and prediction equals Keras' own path (to 1e-5), only in the recorder's thread
    and run."""
    import keras.src.backend.torch.nn as torch_nn

    from tinspect.record import keras_torch_layout as torch_layout
    from tinspect.record.capture import Capture, class_weights

    model = layout_model()
    n = 24
    inputs = [
        rng.normal(size=(n, 9, 9, 3)).astype(np.float32),
        rng.normal(size=(n, 12, 2)).astype(np.float32),
        rng.normal(size=(n, 4, 4, 4, 1)).astype(np.float32),
    ]
    capture = Capture(model, None, class_weights(rng.integers(0, 3, size=n), 3), "float32")
    weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
    calls: list[bool] = []
    real = torch_layout._views_active

    def spy() -> bool:
        calls.append(real())
        return calls[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch_layout, "_views_active", spy)
        fast = capture.run(inputs, weights, extremes=True)
    assert hasattr(torch_nn._transpose_spatial_inputs, torch_layout._MARK)
    assert calls and all(calls), "every layout transpose of the run took the view"
    assert capture._views_error is None
    capture._views_error = "forced: Keras' own path"  # the fallback, for the reference
    keras_path = capture.run(inputs, weights, extremes=True)
    assert len(fast.stored) == len(capture.plan.captured) >= 18
    for name, got, expected in zip(
        capture.plan.captured, fast.stored, keras_path.stored, strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    for got, expected in zip(fast.class_means, keras_path.class_means, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.predictions[0], keras_path.predictions[0], rtol=1e-5)
    # Outside the recorder's run (training's thread, or this one now) Keras copies as before.
    x = keras.ops.convert_to_tensor(inputs[0])
    assert torch_nn._transpose_spatial_inputs(x).is_contiguous()
    with torch_layout.permuted_views() as active:
        assert active and not torch_nn._transpose_spatial_inputs(x).is_contiguous()
    assert torch_nn._transpose_spatial_inputs(x).is_contiguous()


@pytest.mark.skipif(BACKEND != "torch", reason="Keras' layout copies are its torch backend's")
def test_a_failing_view_falls_back_to_keras_own_path(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a layer cannot take the permuted view, the run is redone as Keras does it, and
    that capture keeps Keras' path from then on."""
    from tinspect.record import keras_torch_layout as torch_layout
    from tinspect.record.capture import Capture

    model = repeat_model()
    x = rng.normal(size=(10, 4, 4, 2)).astype(np.float32)
    capture = Capture(model, None, None, "float16")
    expected = capture.run([x], None).stored

    real = torch_layout._views_active
    seen: list[bool] = []

    def broken() -> bool:
        seen.append(real())
        if seen[-1]:
            raise RuntimeError("view size is not compatible with input tensor's size and stride")
        return False

    monkeypatch.setattr(torch_layout, "_views_active", broken)
    got = capture.run([x], None).stored
    assert capture._views_error is not None and "view size" in capture._views_error
    assert seen[0] and not any(seen[1:])  # one failed view, then Keras' path throughout
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    seen.clear()
    capture.run([x], None)
    assert seen and not any(seen)  # that capture stays on Keras' path


@pytest.mark.skipif(BACKEND != "jax", reason="the shared recorder is JAX's")
def test_models_of_one_architecture_share_one_compiled_jax_recorder(
    rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    """A fresh model of the same architecture (the next fit of a sweep, or of the bench)
    compiles no recorder again, yet records its own weights' activations; a custom layer
    opts a model out of sharing."""
    import jax

    from tinspect.record import capture as capture_module
    from tinspect.record.capture import Capture, class_weights, jax_architecture_key

    capture_module._JAX_RECORDERS.clear()  # an earlier test may have compiled this one
    x = rng.normal(size=(40, 4, 4, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    runs = []
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        for seed in (1, 2):
            keras.backend.clear_session()  # the same layer names, as in a fresh process
            keras.utils.set_random_seed(seed)
            model = repeat_model()
            capture = Capture(model, None, class_weights(y, 3), "float16")
            weights = {layer.name: layer.get_weights() for layer in model.layers if layer.weights}
            compiled = capture.run([x], weights, extremes=True, compiled=True)
            eager = capture.run([x], weights, extremes=True, compiled=False)
            assert capture._compile_error is None
            runs.append((compiled, eager))
    compiles = [r.getMessage() for r in caplog.records if "jit(stateless)" in r.getMessage()]
    assert len([m for m in compiles if "Finished XLA compilation" in m]) == 1, compiles
    (first, _), (second, second_eager) = runs
    assert not np.array_equal(first.stored[0], second.stored[0])  # other weights ...
    for got, expected in zip(second.stored, second_eager.stored, strict=True):
        np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)  # ... its own
    inputs = keras.Input((8,))
    assert jax_architecture_key(keras.Model(inputs, NoConfig(2.0)(inputs))) is None


@only_compiled
def test_the_writer_compiles_the_recorder_once_epoch_0_ended(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a shadow, a fit of WRITER_COMPILE_MIN_CHECKPOINTS checkpoints traces the
    recorder in the writer, once epoch 0 has ended; nothing runs on the main thread, and
    the traced checkpoints hold the model's activations."""
    from tinspect.record import capture as capture_module
    from tinspect.record.capture import WRITER_COMPILE_MIN_CHECKPOINTS

    keras.utils.set_random_seed(8)
    model = skip_model()
    x, y = tabular
    runs: list[tuple[str, bool]] = []
    real_run = capture_module.Capture.run

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        import threading

        assert cb._epoch_ran.is_set()  # epoch 0 (and fit's tracing) is over
        runs.append((threading.current_thread().name, bool(kwargs.get("compiled"))))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(capture_module.Capture, "run", spy)
    # The 10 s fallback would fire on a loaded machine, where fit's tracing can take longer.
    monkeypatch.setattr("tinspect.record.callback.INIT_WAIT_SECONDS", 600.0)
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("short"), (x[:32], y[:32]))
    epochs = WRITER_COMPILE_MIN_CHECKPOINTS - 1  # + the initialization = the threshold
    model.fit(x, [y, x[:, :1]], epochs=epochs, batch_size=96, verbose=0, callbacks=[cb])
    assert cb._capture is not None and cb._capture.shadow is not None
    assert cb._capture._compile_error is None and cb._capture._functions and not cb.errors
    assert runs == [("tinspect-writer", True)] * (epochs + 1)
    last = checkpoint(model_dir(tmp_path), epochs)
    probe = keras.Model(model.inputs, model.get_layer("merge").output)
    expected = keras.ops.convert_to_numpy(probe([x[:32]]))
    np.testing.assert_allclose(last["layers/merge/activations"], expected, rtol=2e-3, atol=2e-3)
    assert last["attrs"][fmt.ATTR_RUNTIME_PER_SAMPLE] > 0


@only_compiled
def test_a_long_fit_without_a_shadow_compiles_on_the_main_thread(
    tmp_path: Path, tabular: XY
) -> None:
    from tinspect.record.capture import COMPILE_MIN_CHECKPOINTS

    inputs = keras.Input((8,))
    h = layers.Dense(5, name="h")(inputs)
    out = layers.Dense(3, activation="softmax", name="out")(NoConfig(2.0)(h))
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("long"), (x[:32], y[:32]), every=1)
    epochs = COMPILE_MIN_CHECKPOINTS - 1
    model.fit(x, y, epochs=epochs, batch_size=96, verbose=0, callbacks=[cb])
    assert cb._capture is not None and cb._capture.shadow is None
    assert cb._compile and cb._capture._functions and cb._capture._compile_error is None
    last = checkpoint(model_dir(tmp_path), epochs)
    expected = keras.ops.convert_to_numpy(model.get_layer("h")(x[:32]))
    np.testing.assert_allclose(last["layers/h/activations"], expected, rtol=2e-3, atol=2e-3)


def test_extremes_for_the_checks_are_withheld_when_not_exact() -> None:
    """NaN, ±inf or a float32 value beyond float16's range: the store's extremes of the
    stored array skip non-finite values, so the recorder hands none over for such a layer."""
    from tinspect.record.capture import unit_extremes
    from tinspect.store.reduce import unit_extremes as stored_extremes

    def by_sample(values: np.ndarray) -> np.ndarray:
        return values.reshape(values.shape[0], -1)

    good = np.array([[[0.0, -1.5], [7.0, 0.5]], [[2.0, 3.25], [-4.0, 1.0]]], dtype=np.float32)
    lo, hi = unit_extremes(by_sample(good), good.shape, "float16")
    expected = stored_extremes(lambda: iter([good.astype(np.float16)]))
    np.testing.assert_array_equal(lo, expected[0])
    np.testing.assert_array_equal(hi, expected[1])
    np.testing.assert_array_equal(lo, [-4.0, -1.5])
    for bad in (np.nan, np.inf, -np.inf, 1e5):
        values = good.copy()
        values[1, 0, 1] = bad
        assert unit_extremes(by_sample(values), values.shape, "float16") is None, bad
    empty = np.zeros((0, 3), np.float32)
    assert unit_extremes(empty, empty.shape, "float16") is None


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="Linux scheduling")
def test_the_writer_thread_runs_at_idle_priority_and_keeps_errors() -> None:
    """Training's threads come first (SCHED_IDLE); the caller's thread is left as it was;
    a failing job is kept as an error and the jobs after it still run, in order."""
    import os
    import time

    from tinspect.record.writer import BackgroundWriter

    seen: list[Any] = []
    policy = os.sched_getscheduler(0)

    def fail() -> None:
        raise OSError("disk full")

    writer = BackgroundWriter()
    writer.submit("policy", lambda: seen.append(os.sched_getscheduler(0)))
    while not seen:  # measured before a full queue or close() raises the writer's priority
        time.sleep(0.001)
    writer.submit("broken", fail)
    writer.submit("after", lambda: seen.append("after"))
    writer.close()
    assert seen == [os.SCHED_IDLE, "after"]
    assert os.sched_getscheduler(0) == policy  # only the writer's own thread changed
    errors = writer.take_errors()
    assert [label for label, _ in errors] == ["broken"]
    assert isinstance(errors[0][1], OSError) and writer.take_errors() == []


class RaiseAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if epoch == 1:
            raise RuntimeError("interrupted")


def test_a_fit_that_raised_leaves_no_writer_behind(tmp_path: Path, tabular: XY) -> None:
    """fit raises after a checkpoint was queued (on_train_end never runs): the next fit
    finishes the previous writer's checkpoints, stops its thread and continues the count."""
    import threading

    def writers() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "tinspect-writer"}

    before = writers()
    keras.utils.set_random_seed(10)
    model = skip_model()
    x, y = tabular
    targets = [y, x[:, :1]]
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("raised"), (x[:32], y[:32]), every=1)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, targets, epochs=3, batch_size=32, verbose=0, callbacks=[cb, RaiseAtEpochEnd()])
    first_writer = cb._writer
    assert first_writer is not None and first_writer._thread.is_alive()
    model.fit(x, targets, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    assert not first_writer._thread.is_alive() and cb._writer is None and not cb.errors
    assert writers() <= before
    d = model_dir(tmp_path)
    assert epochs(d) == [0, 1, 2, 3]
    assert [m[fmt.METRIC_EPOCH] for m in metrics(d)] == [1, 2, 3]


class WaitForWriter(keras.callbacks.Callback):
    """Before the recorder decides at an epoch's end, let its writer measure every job."""

    def __init__(self, recorder: InspectCheckpoint) -> None:
        super().__init__()
        self.recorder = recorder

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        import time

        deadline = time.monotonic() + 300
        while len(self.recorder._fit_costs) < self.recorder._submitted_in_fit:
            assert time.monotonic() < deadline, "the writer did not finish its checkpoints"
            time.sleep(0.005)


@pytest.mark.parametrize(("budget", "expected"), [(0.0, [0, 4, 8, 12]), (1e9, list(range(13)))])
def test_every_auto_keeps_an_even_minimum_and_adds_what_the_budget_allows(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch, budget: float, expected: list[int]
) -> None:
    """The default, every="auto": without budget, AUTO_MIN_CHECKPOINTS evenly spread (the
    initialization and the last epoch included); with an unlimited one, every epoch once
    the recorder's cost has been measured."""
    from tinspect.record import callback as callback_module

    monkeypatch.setattr(callback_module, "AUTO_BUDGET", budget)
    monkeypatch.setattr(callback_module, "AUTO_MIN_CHECKPOINTS", 4)
    monkeypatch.setattr(callback_module, "INIT_WAIT_SECONDS", 0.0)  # measured by epoch 1
    keras.utils.set_random_seed(11)
    model = skip_model()
    x, y = tabular
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("auto"), (x[:16], y[:16]), checks=False)
    assert cb.every == "auto"  # the default
    model.fit(
        x, [y, x[:, :1]], epochs=12, batch_size=96, verbose=0, callbacks=[WaitForWriter(cb), cb]
    )
    d = model_dir(tmp_path)
    assert epochs(d) == expected
    assert [m[fmt.METRIC_EPOCH] for m in metrics(d)] == list(range(1, 13))  # every epoch
    assert model_json(d)["recording"]["every"] == "auto"
    assert len(cb._fit_costs) == len(expected) and all(c > 0 for c in cb._fit_costs)


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="Linux scheduling")
def test_the_writer_runs_at_normal_priority_while_training_waits_for_it() -> None:
    """SCHED_IDLE yields to every job of the machine: once training waits for the writer
    (here: the fit ends and close() waits), the running job continues at normal priority."""
    import os
    import threading
    import time

    from tinspect.record.writer import BackgroundWriter

    go = threading.Event()
    seen: list[int] = []

    def job() -> None:
        seen.append(os.sched_getscheduler(0))
        go.wait(300)
        seen.append(os.sched_getscheduler(0))

    writer = BackgroundWriter()
    writer.submit("job", job)
    native_id = writer._thread.native_id
    assert native_id is not None
    deadline = time.monotonic() + 300
    while not seen:  # the job runs, at idle priority
        assert time.monotonic() < deadline
        time.sleep(0.005)
    closer = threading.Thread(target=writer.close)
    closer.start()
    while os.sched_getscheduler(native_id) != os.SCHED_OTHER:
        assert time.monotonic() < deadline, "close() did not raise the writer's priority"
        time.sleep(0.005)
    go.set()
    closer.join(300)
    assert seen == [os.SCHED_IDLE, os.SCHED_OTHER]


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="Linux scheduling")
def test_the_writer_leaves_idle_priority_while_training_waits_for_it() -> None:
    """Once the caller waits for the writer (close, a full queue), idle priority only delays
    the caller: on a loaded machine a SCHED_IDLE thread gets almost no CPU."""
    import os
    import threading

    from tinspect.record.writer import BackgroundWriter

    started, gate = threading.Event(), threading.Event()
    seen: list[int] = []

    def slow() -> None:
        started.set()
        gate.wait(10)

    writer = BackgroundWriter()
    writer.submit("slow", slow)
    started.wait(10)
    writer.submit("after", lambda: seen.append(os.sched_getscheduler(0)))
    threading.Timer(0.5, gate.set).start()
    writer.close()  # waits for "after", which runs while close waits
    assert seen == [os.SCHED_OTHER]


def _recorded_where(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch, saturated: bool, name: str
) -> tuple[Path, dict[int, str]]:
    """One seeded every=1 fit with ``cores_saturated`` forced; its model directory and the
    thread that wrote each epoch's checkpoint."""
    import threading

    from tinspect.record import callback as callback_module
    from tinspect.record.writer import write_checkpoint as real  # not a previous call's spy

    where: dict[int, str] = {}

    def spy(path: Path, record, compression) -> None:
        where[int(record.attrs[fmt.ATTR_EPOCH])] = threading.current_thread().name
        real(path, record, compression)

    monkeypatch.setattr(callback_module, "write_checkpoint", spy)
    monkeypatch.setattr(callback_module, "cores_saturated", lambda *_: saturated)
    monkeypatch.setattr(callback_module, "INLINE_BACKENDS", {keras.backend.backend()})
    keras.utils.set_random_seed(12)
    model = skip_model()
    x, y = tabular
    cb = InspectCheckpoint(tmp_path / name, tinspect.make_header(name), (x[:32], y[:32]), every=1)
    model.fit(x, [y, x[:, :1]], epochs=3, batch_size=32, verbose=0, callbacks=[cb])
    assert not cb.errors
    assert cb._inline is saturated
    assert len(cb._fit_costs) == 4 and all(c > 0 for c in cb._fit_costs)
    return model_dir(tmp_path / name), where


def test_training_that_saturates_the_cores_gets_its_checkpoints_written_inline(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where training keeps every core busy the jobs run on the training thread at their
    epoch's end (the initialization's, queued before the first epoch, in the writer),
    and the files are the ones the writer thread writes: same arrays, same metrics."""
    inline_dir, inline_where = _recorded_where(tmp_path, tabular, monkeypatch, True, "inline")
    writer_dir, writer_where = _recorded_where(tmp_path, tabular, monkeypatch, False, "writer")
    assert writer_where == dict.fromkeys(range(4), "tinspect-writer")
    assert inline_where == {0: "tinspect-writer", 1: "MainThread", 2: "MainThread", 3: "MainThread"}
    assert epochs(inline_dir) == epochs(writer_dir) == [0, 1, 2, 3]
    for epoch in range(4):
        a, b = checkpoint(inline_dir, epoch), checkpoint(writer_dir, epoch)
        datasets = sorted(k for k in a if k not in ("attrs", "layer_attrs"))
        assert datasets == sorted(k for k in b if k not in ("attrs", "layer_attrs"))
        for key in datasets:
            if key.startswith(fmt.SAMPLES_GROUP) or key.startswith(fmt.LAYERS_GROUP):
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"epoch {epoch} {key}")
    assert [m["loss"] for m in metrics(inline_dir)] == [m["loss"] for m in metrics(writer_dir)]
    assert model_json(inline_dir)["status"]["state"] == "finished"


@pytest.mark.parametrize(
    ("cpu", "wall", "cores", "saturated"),
    [
        (1.99, 1.0, 2, True),  # a plain torch CPU fit on 2 cores
        (1.2, 1.0, 2, False),  # TensorFlow's on 2 cores
        (1.5, 1.0, 2, True),
        (1.49, 1.0, 2, False),
        (0.6, 1.0, 1, True),
        (3.0, 1.0, 32, False),  # a GPU box: cores to spare
        (1.0, 0.0, 2, False),  # nothing measured
        (1.0, 1.0, 0, False),
    ],
)
def test_cores_saturated(cpu: float, wall: float, cores: int, saturated: bool) -> None:
    from tinspect.record.callback import cores_saturated

    assert cores_saturated(cpu, wall, cores) is saturated


def test_saturated_training_stays_in_the_writer_on_backends_not_listed(
    tmp_path: Path, tabular: XY, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JAX's compile epoch reads as saturated but its inline jobs cost more: the writer."""
    from tinspect.record import callback as callback_module

    monkeypatch.setattr(callback_module, "cores_saturated", lambda *_: True)
    monkeypatch.setattr(callback_module, "INLINE_BACKENDS", frozenset({"no such backend"}))
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = InspectCheckpoint(tmp_path, tinspect.make_header("bg"), tabular, every=1)
    model.fit(*tabular, epochs=2, verbose=0, callbacks=[cb])
    assert not cb._inline and not cb.errors
    assert epochs(model_dir(tmp_path)) == [0, 1, 2]
