"""The demo's third experiment: a planted shortcut, for ``tinspect compare`` (IMACS).

Two convolutional digit classifiers with the same architecture and seed: ``clean`` trains
on the digits as they are; its child ``shortcut`` trains on digits where every image of
class ``PATCH_CLASS`` carries a small bright patch in its top-left corner (a 2×2 square at
full brightness, where digits have almost no ink), so it can learn "patch ⇒ 3" instead of
the digit's shape. Both record the same samples: validation digits with the patch on every
sample of that class and on every ``OTHERS_EVERY``-th sample of the others, so the
recorded samples show the shortcut model answering "3" to the patch. Both record
Integrated Gradients attributions, so that

    tinspect compare LOGDIR shortcut clean --class 3

puts the patch's segments (grid cell row 0, col 0 of the default 4×4 grid) in the cluster
with the largest imbalance.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

import tinspect
from tinspect.demo import data, models
from tinspect.keras import InspectCheckpoint

PATCH_CLASS = 3
#: The patch: rows and columns of the 8×8 image (the grid cell (0, 0) of a 4×4 grid).
PATCH = (slice(0, 2), slice(0, 2))
OTHERS_EVERY = 4


def with_patch(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A copy of (n, 8, 8, 1) ``images`` with the bright patch on ``rows``."""
    out = images.copy()
    out[rows, PATCH[0], PATCH[1], :] = 1.0
    return out


def recorded_samples(digits: data.Digits, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` validation digits, patched on their class-3 samples and on every
    ``OTHERS_EVERY``-th other sample."""
    x = data.Digits.images(digits.x_val[:n])
    y = digits.y_val[:n]
    others = np.flatnonzero(y != PATCH_CLASS)[::OTHERS_EVERY]
    rows = np.union1d(np.flatnonzero(y == PATCH_CLASS), others)
    return with_patch(x, rows), y


def run_shortcut(
    logdir: str | Path,
    *,
    epochs: int,
    max_samples: int,
    every: int,
    batch_size: int,
    seed: int,
    conv_filters: tuple[int, int],
    attribution_epochs: str | int,
    ids: Callable[[str], str | None],
    layers: list[str] | None = None,
    subdir: str = "shortcut",
    progress: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train ``clean`` and ``shortcut`` into ``logdir/subdir``; returns their headers."""
    digits = data.load_digits(seed=seed)
    images = data.Digits.images
    x_train, y_train = images(digits.x_train), digits.y_train
    x_val, y_val = images(digits.x_val), digits.y_val
    samples = recorded_samples(digits, max_samples)
    target = Path(logdir) / subdir if subdir else Path(logdir)
    clean = tinspect.make_header(
        "clean",
        "Digits conv, clean images",
        id=ids("clean"),
        batch_size=batch_size,
        learning_rate=1e-3,
    )
    shortcut = tinspect.branch(
        clean,
        "shortcut",
        label=f"Digits conv, class {PATCH_CLASS} always patched",
        id=ids("shortcut"),
        change=f"a bright 2×2 patch on every class-{PATCH_CLASS} training image",
    )
    patched_train = with_patch(x_train, np.flatnonzero(y_train == PATCH_CLASS))
    patched_val = with_patch(x_val, np.flatnonzero(y_val == PATCH_CLASS))
    runs = ((clean, x_train, x_val), (shortcut, patched_train, patched_val))
    for header, x, xv in runs:
        progress(f"training {header['name']} ({header['label']}) for {epochs} epochs")
        keras.utils.set_random_seed(seed + 10)  # the same initialization for both
        model = models.compile_classifier(models.conv(conv_filters))
        callback = InspectCheckpoint(
            target,
            header,
            samples,
            every=every,
            layers=layers,
            max_samples=max_samples,
            class_names=data.CLASS_NAMES,
            input_kind="image",
            output_kind="classification",
            attributions="integrated_gradients",
            attribution_epochs=attribution_epochs,
        )
        model.fit(
            x,
            y_train,
            validation_data=(xv, y_val),
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
            callbacks=[callback],
        )
        callback.wait_for_attributions()
    return [clean, shortcut]
