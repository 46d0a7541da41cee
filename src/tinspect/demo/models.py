"""The demo's models: three digit classifiers and three variational auto-encoders.

The auto-encoders reproduce use case 3 of the iNNspector paper: a VAE whose ``z_mean`` and
``z_log_var`` layers carry a ReLU, so the latent mean can never be negative and the
log-variance never below 0 (variance ≥ 1): a careless, silent mistake that tinspect's
activation views should make obvious. The VAE is a functional model with a custom
``train_step`` that reports its reconstruction and KL losses as extra metrics.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

N_PIXELS = 64
N_CLASSES = 10


def dense_baseline() -> keras.Model:
    inputs = keras.Input((N_PIXELS,), name="pixels")
    h = layers.Dense(64, activation="relu", name="hidden_1")(inputs)
    h = layers.Dense(32, activation="relu", name="hidden_2")(h)
    outputs = layers.Dense(N_CLASSES, activation="softmax", name="output")(h)
    return keras.Model(inputs, outputs, name="dense_baseline")


def dense_skip() -> keras.Model:
    """The baseline with a residual connection around a second 64-unit layer."""
    inputs = keras.Input((N_PIXELS,), name="pixels")
    h1 = layers.Dense(64, activation="relu", name="hidden_1")(inputs)
    h2 = layers.Dense(64, activation="relu", name="hidden_2")(h1)
    merged = layers.Add(name="skip_add")([h1, h2])
    h3 = layers.Dense(32, activation="relu", name="hidden_3")(merged)
    h3 = layers.Dropout(0.2, name="dropout")(h3)
    outputs = layers.Dense(N_CLASSES, activation="softmax", name="output")(h3)
    return keras.Model(inputs, outputs, name="dense_skip")


def conv(filters: tuple[int, int] = (16, 32)) -> keras.Model:
    inputs = keras.Input((8, 8, 1), name="image")
    h = layers.Conv2D(filters[0], 3, padding="same", activation="relu", name="conv_1")(inputs)
    h = layers.Conv2D(filters[1], 3, padding="same", activation="relu", name="conv_2")(h)
    h = layers.MaxPooling2D(2, name="pool")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dense(64, activation="relu", name="hidden")(h)
    outputs = layers.Dense(N_CLASSES, activation="softmax", name="output")(h)
    return keras.Model(inputs, outputs, name="conv")


def compile_classifier(model: keras.Model, learning_rate: float = 1e-3) -> keras.Model:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@keras.saving.register_keras_serializable(package="tinspect_demo")
class Sampling(layers.Layer):
    """z = mean + exp(log_var / 2) · ε, the reparameterization trick."""

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any) -> Any:
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


class VAE(keras.Model):
    """A functional VAE with a custom ``train_step``: loss = w_r · reconstruction + w_kl · KL."""

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        reconstruction_weight: float,
        kl_weight: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.reconstruction_weight = reconstruction_weight
        self.kl_weight = kl_weight
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self) -> list[Any]:
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def _vae_losses(self, x: Any, training: bool) -> tuple[Any, Any, Any]:
        reconstruction, z_mean, z_log_var = self(x, training=training)
        eps = 1e-7
        rec = ops.clip(reconstruction, eps, 1 - eps)
        bce = -(x * ops.log(rec) + (1 - x) * ops.log(1 - rec))
        reconstruction_loss = ops.mean(ops.sum(bce, axis=1))
        kl = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
        kl_loss = ops.mean(ops.sum(kl, axis=1))
        total = self.reconstruction_weight * reconstruction_loss + self.kl_weight * kl_loss
        return total, reconstruction_loss, kl_loss

    def _update(self, total: Any, reconstruction_loss: Any, kl_loss: Any) -> dict[str, Any]:
        self.loss_tracker.update_state(total)
        self.reconstruction_tracker.update_state(reconstruction_loss)
        self.kl_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Any]:
        import tensorflow as tf  # the demo trains with the TensorFlow backend

        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            total, reconstruction_loss, kl_loss = self._vae_losses(x, training=True)
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return self._update(total, reconstruction_loss, kl_loss)

    def test_step(self, data: Any) -> dict[str, Any]:
        x = data[0] if isinstance(data, tuple) else data
        return self._update(*self._vae_losses(x, training=False))


def vae(
    reconstruction_weight: float,
    kl_weight: float,
    latent_activation: str | None = None,
    latent_dim: int = 4,
    seed: int | None = None,
    name: str = "vae",
) -> VAE:
    """Encoder 64→64→32→(z_mean, z_log_var), decoder 32→64→64 (sigmoid)."""
    inputs = keras.Input((N_PIXELS,), name="pixels")
    h = layers.Dense(64, activation="relu", name="enc_1")(inputs)
    h = layers.Dense(32, activation="relu", name="enc_2")(h)
    z_mean = layers.Dense(latent_dim, activation=latent_activation, name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, activation=latent_activation, name="z_log_var")(h)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    d = layers.Dense(32, activation="relu", name="dec_1")(z)
    d = layers.Dense(64, activation="relu", name="dec_2")(d)
    reconstruction = layers.Dense(N_PIXELS, activation="sigmoid", name="reconstruction")(d)
    model = VAE(
        inputs,
        [reconstruction, z_mean, z_log_var],
        reconstruction_weight=reconstruction_weight,
        kl_weight=kl_weight,
        name=name,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model
