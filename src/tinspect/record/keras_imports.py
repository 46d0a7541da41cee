"""Keep Keras from importing TensorFlow when the recorder describes a model on another backend.

Keras 3 serializes every layer config through ``serialize_keras_object``, which asks
``tf.available`` (a lazy module) before testing ``isinstance(obj, tf.TensorShape)``; where
TensorFlow is installed, that first question imports it, whatever the backend. A plain
``fit`` on JAX or torch never asks, but the recorder's ``clone_model`` (the shadow model)
and ``get_config`` (model.json) do. Measured on this machine with all three backends
installed: the first recorded torch fit of the demo conv model in a fresh process took
9.1 s against a plain fit's 3.6 s, most of it ``import tensorflow`` (~2000 modules) on
the training thread. The bench never saw it: its warm-up round is discarded.

While TensorFlow is not imported, no object can be a TensorFlow object, so answering
"not available" to Keras' question changes nothing but the import. The answer is given
only inside the recorder's own hooks (``no_tensorflow_import``) and only while Keras has
not decided yet; afterwards Keras decides as it would have.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import keras

F = TypeVar("F", bound=Callable[..., Any])


def _lazy_tensorflow() -> Any | None:
    """Keras' lazy TensorFlow module, or None where this Keras has none (then: nothing)."""
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return None
    lazy = getattr(module_utils, "tensorflow", None)
    return lazy if hasattr(lazy, "_available") else None


@contextmanager
def no_tensorflow_import() -> Iterator[None]:
    """Within: Keras' ``tf.available`` is False unless TensorFlow is imported already (or
    is the backend)."""
    if "tensorflow" in sys.modules or keras.backend.backend() == "tensorflow":
        yield
        return
    lazy = _lazy_tensorflow()
    if lazy is None or lazy._available is not None:  # decided (or nested): leave it
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        if lazy._available is False and "tensorflow" not in sys.modules:
            lazy._available = None  # undecided again, as Keras left it


def without_tensorflow_import(hook: F) -> F:
    """``hook`` (a callback method) run inside ``no_tensorflow_import``."""

    @functools.wraps(hook)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with no_tensorflow_import():
            return hook(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
