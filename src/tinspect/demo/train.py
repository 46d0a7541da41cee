"""Train the demo experiments into a logdir (``tinspect demo``).

Two experiments on the digits data, each a small tree of model variants:

* classifiers: ``dense_baseline`` → ``dense_skip`` (a residual connection) → ``conv``;
* auto-encoders: ``vae_90_10`` (reconstruction:KL = 90:10) → ``vae_25_75`` (25:75, with the
  careless ReLU on ``z_mean`` and ``z_log_var``) → ``vae_25_75_fixed`` (the ReLU removed);

and, in ``shortcut/``, a third (``demo/shortcut.py``): ``clean`` → ``shortcut``, a conv
classifier trained with a bright patch planted on every image of class 3, both recording
Integrated Gradients attributions for ``tinspect compare``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

import tinspect
from tinspect.demo import data, models
from tinspect.keras import InspectCheckpoint

_ID_NAMESPACE = uuid.UUID("6b1f7a52-3c1e-4f0a-9a53-1f2e0d6c7b11")


@dataclass(frozen=True)
class DemoConfig:
    """How much to train; the defaults make the full demo (~1-2 min on 2 cores)."""

    epochs: int = 20
    vae_epochs: int = 30
    max_samples: int = 500
    every: int = 1
    batch_size: int = 32
    seed: int = 0
    #: Derive model ids from the seed (reproducible fixtures) instead of random UUIDs.
    fixed_ids: bool = False
    conv_filters: tuple[int, int] = (16, 32)
    #: Train the third experiment (the planted shortcut, ``demo/shortcut.py``) too.
    shortcut: bool = True


def _id(config: DemoConfig, name: str) -> str | None:
    """A model id derived from the seed for fixtures; None (a random UUID) otherwise."""
    return uuid.uuid5(_ID_NAMESPACE, f"{config.seed}/{name}").hex if config.fixed_ids else None


def run_demo(
    logdir: str | Path, config: DemoConfig | None = None, progress: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Train all six models into ``logdir``; returns their headers in training order."""
    config = config or DemoConfig()
    digits = data.load_digits(seed=config.seed)
    logdir = Path(logdir)
    headers: list[dict[str, Any]] = []
    n = config.max_samples

    def fit(
        model: keras.Model,
        header: dict[str, Any],
        x: Any,
        y: Any,
        xv: Any,
        yv: Any,
        epochs: int,
        **kw: Any,
    ) -> None:
        progress(f"training {header['name']} ({header['label']}) for {epochs} epochs")
        samples = (xv[:n], yv[:n])
        callback = InspectCheckpoint(
            logdir,
            header,
            samples,
            every=config.every,
            max_samples=n,
            class_names=data.CLASS_NAMES,
            input_kind="image",
            **kw,
        )
        validation = (xv, yv) if kw.get("output_kind") == "classification" else (xv,)
        model.fit(
            x,
            y,
            validation_data=validation,
            epochs=epochs,
            batch_size=config.batch_size,
            verbose=0,
            callbacks=[callback],
        )
        headers.append(header)

    classes = {"output_kind": "classification"}
    keras.utils.set_random_seed(config.seed)
    base = tinspect.make_header(
        "dense_baseline",
        "Digits dense baseline",
        id=_id(config, "dense_baseline"),
        batch_size=config.batch_size,
        learning_rate=1e-3,
    )
    fit(
        models.compile_classifier(models.dense_baseline()),
        base,
        digits.x_train,
        digits.y_train,
        digits.x_val,
        digits.y_val,
        config.epochs,
        **classes,
    )

    keras.utils.set_random_seed(config.seed + 1)
    skip = tinspect.branch(
        base,
        "dense_skip",
        label="Digits dense + skip connection",
        id=_id(config, "dense_skip"),
        change="residual Add around hidden_2",
    )
    fit(
        models.compile_classifier(models.dense_skip()),
        skip,
        digits.x_train,
        digits.y_train,
        digits.x_val,
        digits.y_val,
        config.epochs,
        **classes,
    )

    keras.utils.set_random_seed(config.seed + 2)
    conv = tinspect.branch(
        skip,
        "conv",
        label="Digits convolutional",
        id=_id(config, "conv"),
        change="Conv2D layers on 8x8 images",
    )
    images = data.Digits.images
    fit(
        models.compile_classifier(models.conv(config.conv_filters)),
        conv,
        images(digits.x_train),
        digits.y_train,
        images(digits.x_val),
        digits.y_val,
        config.epochs,
        **classes,
    )

    recon = {"output_kind": "reconstruction"}
    keras.utils.set_random_seed(config.seed + 3)
    v1 = tinspect.make_header(
        "vae_90_10",
        "VAE reconstruction:KL 90:10",
        id=_id(config, "vae_90_10"),
        batch_size=config.batch_size,
        reconstruction_weight=0.9,
        kl_weight=0.1,
    )
    fit(
        models.vae(0.9, 0.1, seed=config.seed, name="vae_90_10"),
        v1,
        digits.x_train,
        None,
        digits.x_val,
        digits.y_val,
        config.vae_epochs,
        **recon,
    )

    keras.utils.set_random_seed(config.seed + 4)
    v2 = tinspect.branch(
        v1,
        "vae_25_75",
        label="VAE 25:75 (ReLU on z_mean/z_log_var)",
        id=_id(config, "vae_25_75"),
        reconstruction_weight=0.25,
        kl_weight=0.75,
        latent_activation="relu",
    )
    fit(
        models.vae(0.25, 0.75, latent_activation="relu", seed=config.seed, name="vae_25_75"),
        v2,
        digits.x_train,
        None,
        digits.x_val,
        digits.y_val,
        config.vae_epochs,
        **recon,
    )

    keras.utils.set_random_seed(config.seed + 5)
    v3 = tinspect.branch(
        v2,
        "vae_25_75_fixed",
        label="VAE 25:75, linear latent layers",
        id=_id(config, "vae_25_75_fixed"),
        latent_activation=None,
    )
    fit(
        models.vae(0.25, 0.75, seed=config.seed, name="vae_25_75_fixed"),
        v3,
        digits.x_train,
        None,
        digits.x_val,
        digits.y_val,
        config.vae_epochs,
        **recon,
    )
    if config.shortcut:
        from tinspect.demo.shortcut import run_shortcut

        headers += run_shortcut(
            logdir,
            epochs=config.epochs,
            max_samples=config.max_samples,
            every=config.every,
            batch_size=config.batch_size,
            seed=config.seed,
            conv_filters=config.conv_filters,
            attribution_epochs=max(1, config.epochs // 2),  # 0, the middle, the last
            ids=lambda name: _id(config, name),
            progress=progress,
        )
    return headers
