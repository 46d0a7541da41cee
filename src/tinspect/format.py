"""The log format in code: every file, group, dataset and attribute name, and the version.

Both sides depend on this module and nothing else of each other: the recorder
(``tinspect.record``) writes these names and the store reads them. Changing a name here is
changing the contract described in ``docs/format.md``; bump ``FORMAT_VERSION`` when a reader
of the previous version would misread the new files.

This module imports only the standard library so that every tool (viewer, CLI, callback)
can use it at no start-up cost.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Final

#: Major.minor. Readers accept every minor version of their major version.
#: 1.1: activations stored once (ATTR_ACTIVATIONS_OF); 1.2: attribution files (ATTRIBUTIONS_DIR).
FORMAT_VERSION: Final = "1.2"
FORMAT_MAJOR: Final = 1

# --- files of one model directory -------------------------------------------------------
MODEL_JSON: Final = "model.json"
METRICS_JSONL: Final = "metrics.jsonl"
FINDINGS_JSONL: Final = "findings.jsonl"
CHECKPOINTS_DIR: Final = "checkpoints"
#: Integrated Gradients maps of the recorded samples, one file per checkpoint epoch, named
#: like checkpoints (``attributions/epoch-NNNN.h5``). A file of its own, not a group inside
#: the checkpoint: it is computed after the checkpoint (the last one after ``fit`` returned),
#: and a checkpoint file never changes once it has been renamed into place.
ATTRIBUTIONS_DIR: Final = "attributions"

CHECKPOINT_SUFFIX: Final = ".h5"
_CHECKPOINT_RE: Final = re.compile(r"^epoch-(\d{4,})\.h5$")
#: Temporary checkpoint files start with a dot and contain ``.tmp``; readers skip them.
TEMP_PREFIX: Final = "."
TEMP_MARKER: Final = ".tmp"

# --- groups, datasets and attributes of a checkpoint file ----------------------------------
SAMPLES_GROUP: Final = "data_samples"
SAMPLES_X: Final = "x"
SAMPLES_Y_LABEL: Final = "y_label"
SAMPLES_Y_CLASS: Final = "y_class"
SAMPLES_Y_PREDICTION: Final = "y_prediction"
LAYERS_GROUP: Final = "layers"
ACTIVATIONS: Final = "activations"
MEAN_CLASS_ACTIVATIONS: Final = "mean_class_activations"
WEIGHTS_GROUP: Final = "weights"
SUMMARY_GROUP: Final = "summary"
SUMMARY_NAMES: Final = "names"
SUMMARY_STATS: Final = "stats"
SUMMARY_HIST_COUNTS: Final = "hist_counts"
SUMMARY_HIST_EDGES: Final = "hist_edges"

# Root attributes of a checkpoint.
ATTR_FORMAT_VERSION: Final = "format_version"
ATTR_MODEL_ID: Final = "model_id"
ATTR_MODEL_NAME: Final = "model_name"
ATTR_EPOCH: Final = "epoch"
ATTR_STEP: Final = "step"
ATTR_TIME: Final = "time"
ATTR_METRICS: Final = "metrics"  # JSON text: {"loss": ..., "val_loss": ...}
ATTR_N_SAMPLES: Final = "n_samples"
ATTR_N_CLASSES: Final = "n_classes"
ATTR_RUNTIME_PER_SAMPLE: Final = "runtime_per_sample_s"
ATTR_WEIGHTS_BYTES: Final = "weights_bytes"
ATTR_ACTIVATIONS_DTYPE: Final = "activations_dtype"
# Attributes of a layer group.
ATTR_LAYER_CLASS: Final = "class_name"
ATTR_SKIPPED: Final = "skipped"  # why activations of this layer are absent
#: The layer whose stored activations (and class means) this layer's equal byte for byte,
#: e.g. Flatten or Dropout after it. Same shape: the datasets are hard links to that layer's.
#: Other shape: there are no datasets, and ``ATTR_ACTIVATIONS_SHAPE`` gives this layer's.
ATTR_ACTIVATIONS_OF: Final = "activations_of"
ATTR_ACTIVATIONS_SHAPE: Final = "activations_shape"  # JSON list, the sample axis first
# Attributes of the summary stats dataset.
ATTR_COLUMNS: Final = "columns"

# --- an attribution file (format 1.2) ------------------------------------------------------
#: (n_samples, *input shape) float16: attribution toward each sample's predicted class.
ATTRIBUTION_PREDICTED: Final = "predicted"
#: The same toward each sample's true class (absent without class labels).
ATTRIBUTION_TRUE: Final = "true"
ATTRIBUTION_PREDICTED_CLASS: Final = "predicted_class"  # (n,) int64, argmax at this epoch
ATTRIBUTION_TRUE_CLASS: Final = "true_class"  # (n,) int64
#: (n,) float32: sum of a map minus (f(x) - f(baseline)), the completeness error of IG.
ATTRIBUTION_DELTA_PREDICTED: Final = "delta_predicted"
ATTRIBUTION_DELTA_TRUE: Final = "delta_true"
# Root attributes of an attribution file (besides format_version, model_id, epoch).
ATTR_METHOD: Final = "method"  # "integrated_gradients"
ATTR_STEPS: Final = "steps"
ATTR_BASELINE: Final = "baseline"  # "blur" or "zeros"
ATTR_LAYOUT: Final = "layout"  # "channels_last" or "channels_first" (Keras' image format)
ATTRIBUTION_METHODS: Final = ("integrated_gradients",)
ATTRIBUTION_BASELINES: Final = ("blur", "zeros")

# --- the per-array summary (see tinspect.summary) -----------------------------------------
SUMMARY_QUANTILES: Final = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
SUMMARY_QUANTILE_COLUMNS: Final = tuple(f"q{round(q * 100):02d}" for q in SUMMARY_QUANTILES)
SUMMARY_COLUMNS: Final = (
    "count",
    "finite",
    "mean",
    "std",
    "min",
    "max",
    "skew",
    "kurtosis",
    "zero_fraction",
    *SUMMARY_QUANTILE_COLUMNS,
)
SUMMARY_BINS: Final = 64

# --- metrics.jsonl keys the recorder adds to what Keras reports -----------------------------
METRIC_EPOCH: Final = "epoch"
METRIC_TIME: Final = "time"
METRIC_WALL_TIME: Final = "epoch_time_s"
METRIC_LEARNING_RATE: Final = "learning_rate"
METRIC_STEP: Final = "step"  # optimizer iterations so far; -1 when unknown
#: Suffixes of extra inputs and outputs: ``x``, ``x_1``, ...; ``y_prediction``, ``y_prediction_1``.
SAMPLES_EXTRA_SUFFIX: Final = "_{index}"

#: Kinds a user may declare for the samples and the model's output.
INPUT_KINDS: Final = ("image", "tabular", "sequence")
OUTPUT_KINDS: Final = ("classification", "regression", "reconstruction")


def checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint after ``epoch`` epochs (0 is the initialization)."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0. Received: epoch={epoch}")
    return f"epoch-{epoch:04d}{CHECKPOINT_SUFFIX}"


def parse_checkpoint_name(name: str) -> int | None:
    """Epoch of a complete checkpoint file name, or None for anything else (temp files too)."""
    match = _CHECKPOINT_RE.match(name)
    return int(match.group(1)) if match else None


def is_temporary(name: str) -> bool:
    """True for a file that a writer has not finished (readers must not open it)."""
    return name.startswith(TEMP_PREFIX) and TEMP_MARKER in name


def temporary_name(final_name: str, token: str) -> str:
    """A name in the same directory that readers skip, unique per writer via ``token``."""
    return f"{TEMP_PREFIX}{final_name}{TEMP_MARKER}-{token}"


def slug(text: str, max_length: int = 40) -> str:
    """A file-system-safe form of a model name: ASCII letters, digits, ``-``, ``_`` and ``.``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_text).strip("-.")
    return cleaned[:max_length] or "model"


def model_dir_name(name: str, model_id: str) -> str:
    """Directory of one model inside a logdir: its name and the first 8 characters of its id."""
    return f"{slug(name)}-{model_id.replace('-', '')[:8]}"


def h5_key(name: str) -> str:
    """A layer or variable name as one HDF5 path component (``/`` would nest groups)."""
    if name in ("", ".", ".."):
        return f"_{name}_"
    return name.replace("/", "|")


def layer_path(layer: str, *members: str) -> str:
    """HDF5 path of a layer's group in a checkpoint, or of ``members`` inside it:
    ``layer_path("dense", ACTIVATIONS)`` → ``layers/dense/activations``. The layer name is
    escaped here; members are given as stored (escape variable names with ``h5_key``)."""
    return "/".join((LAYERS_GROUP, h5_key(layer), *members))


def summary_row_name(layer: str, array: str) -> str:
    """Row name in the summary table: ``<layer>/activations`` or ``<layer>/weights/<var>``."""
    return f"{layer}/{array}"


def major_version(version: str) -> int | None:
    """The major number of a ``"major.minor"`` version string, or None if it is not one."""
    head = str(version).split(".", 1)[0]
    return int(head) if head.isdigit() else None


_SYMBOLS = {"matmul": "x·{v}", "add": "+ {v}", "multiply": "× {v}"}


def operations_text(steps: list[dict[str, Any]]) -> str:
    """One line such as ``x·kernel + bias → relu``, for headers, summaries and the viewer."""
    parts: list[str] = []
    for step in steps:
        op = str(step.get("op", "?"))
        variable = step.get("variable")
        if variable and op in _SYMBOLS:
            text = _SYMBOLS[op].format(v=variable)
            if parts and op in ("add", "multiply"):
                parts[-1] = f"{parts[-1]} {text}"
                continue
            parts.append(text)
            continue
        params = [f"{k}={v}" for k, v in step.items() if k not in ("op", "variable", "functional")]
        if variable:
            params.insert(0, str(variable))
        parts.append(f"{op}({', '.join(params)})" if params else op)
    return " → ".join(parts)
