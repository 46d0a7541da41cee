"""The read side: logdirs, models, checkpoints, problems, cache. No Keras, no Textual.

``Store(*logdirs)`` is the entry point; everything else is reached from it. Array data is
read through ``store.arrays`` (``Arrays``: handles on checkpoints, ``ArrayRef`` references).
This module is the read side's public face: query/ and analysis/ import nothing else of the
store (an import-linter contract keeps it so).
"""

from tinspect.store.arrays import ArrayRef, Arrays, ArrayView, CheckpointData, Value
from tinspect.store.attributions import (
    RECORDER_OPTION,
    AttributionMaps,
    attribution_epochs,
    read_attributions,
    recorded_inputs,
)
from tinspect.store.checkpoint import CheckpointUnreadable, DataError, SummaryTable
from tinspect.store.logdir import Changes, Store
from tinspect.store.model import Layer, ModelLogs
from tinspect.store.problems import Problem, Severity
from tinspect.store.uoa import UnitNotFound, UoA, UoAError

__all__ = [
    "RECORDER_OPTION",
    "ArrayRef",
    "ArrayView",
    "Arrays",
    "AttributionMaps",
    "Changes",
    "CheckpointData",
    "CheckpointUnreadable",
    "DataError",
    "Layer",
    "ModelLogs",
    "Problem",
    "Severity",
    "Store",
    "SummaryTable",
    "UnitNotFound",
    "UoA",
    "UoAError",
    "Value",
    "attribution_epochs",
    "read_attributions",
    "recorded_inputs",
]
