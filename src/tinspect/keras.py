"""Public entry point of the recording side: ``from tinspect.keras import InspectCheckpoint``.

Importing this module imports Keras (and its backend); nothing on the read side does.
"""

from tinspect.record.callback import InspectCheckpoint

__all__ = ["InspectCheckpoint"]
