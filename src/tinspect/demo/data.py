"""The digits data set (1797 images of 8×8 pixels, 10 classes), split reproducibly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES = [str(i) for i in range(10)]


@dataclass(frozen=True)
class Digits:
    """Pixels scaled to [0, 1] as float32, flat (n, 64); labels as int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @staticmethod
    def images(x: np.ndarray) -> np.ndarray:
        """Flat samples as (n, 8, 8, 1) images for convolutional models."""
        return x.reshape(-1, 8, 8, 1)


def load_digits(n_val: int = 500, seed: int = 0) -> Digits:
    """Shuffle with ``seed`` and hold out ``n_val`` samples for validation."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return Digits(x[n_val:], y[n_val:], x[:n_val], y[:n_val])
