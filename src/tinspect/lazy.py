"""numpy, imported the first time it is used: by the commands that may never touch an array.

``tinspect ls`` and the viewer's first screen read JSON headers only, yet the store, query
and widget modules they import use numpy in their functions; importing numpy took 0.05-0.1 s
of a 0.5 s ``ls`` of 2,000 models. Those modules write::

    if TYPE_CHECKING:
        import numpy as np
    else:
        from tinspect.lazy import numpy as np

so type checkers see numpy itself, and at run time ``np`` is a proxy that imports numpy
when one of its attributes is first read, then copies numpy's namespace into its own: later
lookups cost what a module attribute costs. (``importlib.util.LazyLoader`` cannot do this:
any later ``import numpy`` statement reads ``numpy.__spec__``, and that loads it.)

A module that needs numpy at import time (a constant, a default argument) must import it
plainly; ``tests/test_lazy.py`` checks that the viewer, the store and ``ls`` do not.
"""

from __future__ import annotations

import importlib
import threading
import types
from typing import Any


class LazyModule(types.ModuleType):
    """A stand-in for the module ``name`` that imports it on first attribute access."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._lazy_lock = threading.Lock()

    def __getattr__(self, attribute: str) -> Any:
        # Only called for names not (yet) in this object's namespace.
        if attribute.startswith("_lazy"):
            raise AttributeError(attribute)
        with self._lazy_lock:
            module = importlib.import_module(self.__name__)
            self.__dict__.update(
                (k, v) for k, v in vars(module).items() if not k.startswith("_lazy")
            )
        return getattr(module, attribute)  # also names the module creates on demand


#: The stand-in for numpy (see the module's docstring).
numpy = LazyModule("numpy")
