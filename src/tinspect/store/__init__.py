"""The read side: logdirs, models, checkpoints, problems, cache. No Keras, no Textual.

``Store(*logdirs)`` is the entry point; everything else is reached from it.
"""

from tinspect.store.attributions import (
    RECORDER_OPTION,
    AttributionMaps,
    attribution_epochs,
    read_attributions,
    recorded_inputs,
)
from tinspect.store.checkpoint import DataError
from tinspect.store.logdir import Changes, Store
from tinspect.store.model import Layer, ModelLogs
from tinspect.store.problems import Problem, Severity
from tinspect.store.uoa import UoA, UoAError

__all__ = [
    "RECORDER_OPTION",
    "AttributionMaps",
    "Changes",
    "DataError",
    "Layer",
    "ModelLogs",
    "Problem",
    "Severity",
    "Store",
    "UoA",
    "UoAError",
    "attribution_epochs",
    "read_attributions",
    "recorded_inputs",
]
