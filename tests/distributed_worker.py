"""One training process for the tests that need their own interpreter.

A Keras backend, TensorFlow's logical devices and XLA's host device count are all fixed
when a process starts, so tests/test_backends.py and tests/test_distributed.py run this
script as ``python tests/distributed_worker.py SCENARIO LOGDIR [RANK PORT]`` with the
environment set (``KERAS_BACKEND``, ``XLA_FLAGS``). It prints one JSON line starting with
``RESULT `` that the test reads.

Scenarios:
  same-weights   a small conv net with fixed weights; the initialization checkpoint is the
                 one every backend must agree on.
  mirrored       TensorFlow, ``tf.distribute.MirroredStrategy`` over two logical CPUs.
  data-parallel  JAX, ``keras.distribution.DataParallel`` over two host devices.
  jax-processes  one of two JAX processes (``jax.distributed`` on loopback, gloo).
  torch-processes one of two torch processes (``torch.distributed``, gloo on loopback).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any

os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="tinspect-keras-home-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

N_SAMPLES = 48


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(96, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    y += (x[:, :, :4].mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    return x, y


def conv_model() -> Any:
    """Conv, batch norm, pooling, flatten, dense, softmax: layers whose kernels share one
    layout on every backend (Keras keeps channels_last and (h, w, in, out) kernels)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)  # the same initial weights in every process
    inputs = keras.Input((8, 8, 1), name="image")
    h = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Activation("relu", name="relu")(h)
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(8, activation="tanh", name="hidden")(h)
    out = layers.Dense(3, activation="softmax", name="out")(h)
    model = keras.Model(inputs, out, name="conv")
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    return model


def fixed_weights(model: Any) -> None:
    """The same weights on every backend, from numpy (variances positive)."""
    rng = np.random.default_rng(42)
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if "variance" in w.path:
                values.append(rng.uniform(0.5, 1.5, size=shape).astype(np.float32))
            else:
                values.append(rng.normal(0, 0.5, size=shape).astype(np.float32))
        if values:
            layer.set_weights(values)


def result(**fields: Any) -> None:
    print("RESULT " + json.dumps(fields), flush=True)


def record(model: Any, logdir: str, epochs: int = 2, batch_size: int = 32, **fit: Any) -> Any:
    import tinspect
    from tinspect.keras import InspectCheckpoint

    x, y = data(fit.pop("seed", 0))
    header = tinspect.make_header("worker", id="0" * 32, batch_size=batch_size)
    callback = InspectCheckpoint(logdir, header, (x[:N_SAMPLES], y[:N_SAMPLES]))
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[callback], **fit)
    return callback


def same_weights(logdir: str) -> None:
    import keras

    model = conv_model()
    fixed_weights(model)
    callback = record(model, logdir, epochs=1, shuffle=False)
    result(backend=keras.backend.backend(), errors=[str(e) for _, e in callback.errors])


def mirrored(logdir: str) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices()])
    with strategy.scope():
        model = conv_model()
    callback = record(model, logdir)
    result(replicas=strategy.num_replicas_in_sync, errors=[str(e) for _, e in callback.errors])


def data_parallel(logdir: str) -> None:
    import jax
    import keras

    devices = jax.devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    model = conv_model()
    callback = record(model, logdir)
    kernel = model.get_layer("conv").kernel.value
    result(
        devices=len(devices),
        kernel_devices=len(kernel.sharding.device_set),
        errors=[str(e) for _, e in callback.errors],
    )


def jax_processes(logdir: str, rank: int, port: int) -> None:
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=rank)
    import keras

    distribution = keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    model = conv_model()
    # Each process trains on its own shard; the gradients are averaged over both.
    callback = record(model, logdir, seed=rank)
    result(
        rank=rank,
        processes=jax.process_count(),
        active=callback.active,
        kernel=np.asarray(model.get_layer("hidden").kernel.value).tolist(),
        errors=[str(e) for _, e in callback.errors],
    )


def torch_processes(logdir: str, rank: int, port: int) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        model = conv_model()
        callback = record(model, logdir, seed=rank)
        dist.barrier()  # both processes reach the end of training
        result(
            rank=rank,
            processes=dist.get_world_size(),
            active=callback.active,
            errors=[str(e) for _, e in callback.errors],
        )
    finally:
        dist.destroy_process_group()


def main(argv: list[str]) -> None:
    scenario, logdir, *rest = argv
    if scenario == "same-weights":
        same_weights(logdir)
    elif scenario == "mirrored":
        mirrored(logdir)
    elif scenario == "data-parallel":
        data_parallel(logdir)
    elif scenario == "jax-processes":
        jax_processes(logdir, int(rest[0]), int(rest[1]))
    elif scenario == "torch-processes":
        torch_processes(logdir, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
