"""Public entry point for PyTorch training loops: ``from tinspect.torch import Recorder``.

Importing this module imports torch; ``tinspect`` itself and the read side never do.
"""

from tinspect.record.torch_recorder import Recorder

__all__ = ["Recorder"]
