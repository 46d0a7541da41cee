"""Skip Keras' channels-first copies on torch in the recorder's own forward pass.

Keras' torch backend runs a channels-last convolution or pooling by permuting its input to
channels-first and making that contiguous (``_transpose_spatial_inputs``: a full copy of
the layer's input), then for a convolution converts it back to torch's channels-last
memory format (a second copy), and permutes the output back without a copy, which makes
the next layer's input a non-contiguous view that ``Flatten`` copies once more. torch's
kernels take the permuted view as it is: it *is* a channels-last tensor, and
``max_pool2d`` and ``conv2d`` have fast paths for exactly that layout. Measured on the demo
conv model with 512 samples, one thread, no autograd: the recorder's forward pass takes
22-27 ms of CPU with the copies, 8.3 ms without (``MaxPooling2D`` 6.1 → 0.4 ms, the second
``Conv2D`` 5.9 → 4.3, ``Flatten`` 0.19 → 0.02), with every stored value bitwise equal. On
torch the recorder's CPU is training's delay (its threads spin on both cores), so this is
the largest single saving per checkpoint there.

The copies are skipped only inside ``permuted_views()``, which the recorder enters around
its own eager, gradient-free forward pass, and only in the thread that entered it:
training, which may need the contiguous input for autograd or ``torch.export`` (the reason
Keras copies), is untouched. Where this Keras has no such function the recorder runs
Keras' code as it is, only slower. Nothing here imports torch: it is called on the torch
backend, where the recorder has imported it already.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: The permutation from channels-last to channels-first by number of spatial axes.
_TO_CHANNELS_FIRST = {1: (0, 2, 1), 2: (0, 3, 1, 2), 3: (0, 4, 1, 2, 3)}

_LOCAL = threading.local()
_INSTALL_LOCK = threading.Lock()
#: Attribute marking the wrapper, so that installing twice wraps once.
_MARK = "_tinspect_permuted_views"


def _views_active() -> bool:
    return bool(getattr(_LOCAL, "depth", 0))


def _wrap(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``original`` for every thread but one inside ``permuted_views``, where the input's
    permuted view is returned as it is."""

    def transpose(inputs: Any) -> Any:
        if _views_active():
            order = _TO_CHANNELS_FIRST.get(inputs.ndim - 2)
            if order is not None:
                return inputs.permute(order)
        return original(inputs)

    setattr(transpose, _MARK, original)
    transpose.__name__ = getattr(original, "__name__", "transpose")
    transpose.__doc__ = original.__doc__
    return transpose


def install() -> bool:
    """Put the wrapper in place of Keras' torch ``_transpose_spatial_inputs`` (once per
    process); True if it is in place. Its callers look it up as a module global at each
    call, so replacing the module attribute reaches all of them."""
    module: Any = sys.modules.get("keras.src.backend.torch.nn")
    if module is None:
        try:
            module = importlib.import_module("keras.src.backend.torch.nn")  # torch only
        except Exception:  # noqa: BLE001 - another Keras layout: keep Keras' code
            return False
    with _INSTALL_LOCK:
        current = getattr(module, "_transpose_spatial_inputs", None)
        if current is None or not callable(current):
            return False
        if not hasattr(current, _MARK):
            module._transpose_spatial_inputs = _wrap(current)
    return True


@contextmanager
def permuted_views() -> Iterator[bool]:
    """Within, this thread's channels-last convolutions and poolings on torch take their
    input's permuted view instead of a contiguous copy; yields whether that is in effect."""
    active = install()
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield active
    finally:
        _LOCAL.depth -= 1
