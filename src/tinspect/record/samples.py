"""The fixed samples and the recorder's keyword arguments, without any framework.

Every recorder (the Keras callback, the PyTorch ``Recorder``) takes the same ``samples``,
``class_names``, ``input_kind`` ... arguments and must refuse the same bad values with the
same ``Received: name=value`` messages; this module holds what they share and imports only
numpy, so a torch user never loads Keras and a Keras user never loads torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tinspect import format as fmt
from tinspect.record.writer import normalize_compression

ACTIVATION_DTYPES = ("float16", "float32")
#: Default ``max_activation_bytes``: the activations of one checkpoint (every recorded
#: layer, in the activations dtype) stay under this many bytes; a model whose activations
#: are larger per sample is recorded on fewer of the given samples. Every part of a
#: checkpoint's cost but the fixed ones grows with its bytes (the forward pass, the
#: extremes, the summaries, the HDF5 write), in the Keras callback and the
#: PyTorch ``Recorder`` alike: see ``docs/design.md``, "What the defaults cost".
MAX_ACTIVATION_BYTES = 8_000_000
#: ... but ``max_activation_bytes`` never cuts the samples below this many.
MIN_CAPPED_SAMPLES = 64


def samples_within(
    n_samples: int,
    bytes_per_sample: int | None,
    max_bytes: int | None,
    floor: int = MIN_CAPPED_SAMPLES,
) -> int:
    """How many of ``n_samples`` to record so that their activations, ``bytes_per_sample``
    each, stay within ``max_bytes`` per checkpoint; never fewer than ``floor`` (or all of
    them, when fewer were given). ``None`` for either size: no cap.

    >>> samples_within(512, 45_620, 8_000_000)  # the bench's 28×28 conv net, float16
    175
    """
    if max_bytes is None or not bytes_per_sample:
        return n_samples
    return min(n_samples, max(floor, max_bytes // bytes_per_sample))


def check_max_activation_bytes(value: Any) -> int | None:
    """``max_activation_bytes`` validated: an integer >= 1, or None for no cap."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(
            "max_activation_bytes must be an integer >= 1 or None. "
            f"Received: max_activation_bytes={value!r}"
        )
    return value


def cap_notice(keep: int, given: int, name: str, per_sample: int, max_bytes: int) -> str:
    """The one warning a recorder gives when ``max_activation_bytes`` keeps fewer samples."""
    return (
        f"recording {keep} of the {given} samples given for {name!r}: their activations "
        f"take {per_sample:,} bytes each, and max_activation_bytes={max_bytes:,} per "
        "checkpoint (pass max_activation_bytes=None to record all)"
    )


def as_array(value: Any, what: str) -> np.ndarray:
    """``value`` (a numpy array, a list, a CPU or GPU tensor) as a numeric numpy array."""
    detach = getattr(value, "detach", None)  # a torch tensor: off the graph and the device
    if callable(detach):
        value = detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except Exception as error:  # noqa: BLE001
        raise TypeError(
            f"{what} must be array-like. Received: {type(value).__name__} ({error})"
        ) from None
    if array.dtype == object:
        raise TypeError(f"{what} must be a numeric array. Received: an array of Python objects")
    if array.ndim == 0:
        raise ValueError(f"{what} must have a sample axis. Received: a scalar {array!r}")
    return array


def split_samples(samples: Any) -> tuple[list[np.ndarray], np.ndarray | None, list[str] | None]:
    """``x``, ``(x,)``, ``(x, y)`` or ``([x1, x2], y)`` → (inputs, labels or None, dict keys).

    The keys are those of ``x`` when it was a dict (else None), in the order given.
    """
    if isinstance(samples, tuple):
        if len(samples) not in (1, 2):
            raise ValueError(
                f"samples must be x, (x,) or (x, y). Received: a tuple of {len(samples)} items"
            )
        x, y = samples[0], samples[1] if len(samples) == 2 else None
    else:
        x, y = samples, None
    keys = None
    if isinstance(x, Mapping):
        keys = [str(k) for k in x]
        inputs = [as_array(v, f"samples x[{k!r}]") for k, v in x.items()]
    elif isinstance(x, list):
        inputs = [as_array(v, f"samples x[{i}]") for i, v in enumerate(x)]
    else:
        inputs = [as_array(x, "samples x")]
    if not inputs:
        raise ValueError("samples must contain at least one input array. Received: x=[]")
    labels = None if y is None else as_array(y, "samples y")
    lengths = {a.shape[0] for a in inputs} | ({labels.shape[0]} if labels is not None else set())
    if len(lengths) != 1:
        raise ValueError(
            "every samples array must have the same number of samples. "
            f"Received: lengths {sorted(lengths)}"
        )
    if inputs[0].shape[0] == 0:
        raise ValueError("samples must hold at least one sample. Received: 0 samples")
    return inputs, labels, keys


def class_ids_from_labels(labels: np.ndarray | None) -> np.ndarray | None:
    """Integer class ids from class labels or one-hot rows; None for regression targets."""
    if labels is None:
        return None
    y = labels
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        if y.dtype.kind in "iub":
            return y.astype(np.int64) if (y >= 0).all() else None
        if (
            y.dtype.kind == "f"
            and np.isfinite(y).all()
            and (y >= 0).all()
            and (y == np.round(y)).all()
        ):
            return y.astype(np.int64)
        return None
    if y.ndim == 2 and y.shape[1] > 1 and y.dtype.kind in "fiub":
        rows = y.sum(axis=1)
        if ((y >= 0) & (y <= 1)).all() and np.allclose(rows, 1.0, atol=1e-3):
            return np.argmax(y, axis=1).astype(np.int64)
    return None


def class_weights(class_ids: np.ndarray | None, n_classes: int) -> np.ndarray | None:
    """A (n_classes × n_samples) matrix whose product with activations gives class means."""
    if class_ids is None or n_classes <= 0:
        return None
    onehot = np.zeros((n_classes, class_ids.shape[0]), dtype=np.float32)
    valid = (class_ids >= 0) & (class_ids < n_classes)
    onehot[class_ids[valid], np.nonzero(valid)[0]] = 1.0
    counts = onehot.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return onehot / counts  # NaN rows for classes absent from the samples


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)} or None. Received: {name}={value!r}"
        )


def finite_extremes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) as float64 when every one is finite, else None: a NaN or ±inf input, no
    units, or a float32 value that overflows float16 all mean the checks read the file."""
    if not lo.size or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    return lo.astype(np.float64), hi.astype(np.float64)


class Options:
    """The keyword arguments every recorder shares, validated once.

    Messages end in ``Received: name=value`` like Keras' own callbacks, so a bad argument
    fails in the user's script with the value that was wrong.
    """

    def __init__(
        self,
        logdir: Any,
        header: Any,
        *,
        every: Any = 1,
        layers: Any = None,
        max_samples: Any = 512,
        max_activation_bytes: Any = MAX_ACTIVATION_BYTES,
        activations_dtype: Any = "float16",
        compression: Any = None,
        class_names: Any = None,
        input_kind: Any = None,
        output_kind: Any = None,
        checks: Any = True,
    ) -> None:
        if not isinstance(logdir, (str, Path)) or not str(logdir):
            raise TypeError(f"logdir must be a path. Received: logdir={logdir!r}")
        self.logdir = Path(logdir)
        if self.logdir.exists() and not self.logdir.is_dir():
            raise ValueError(
                f"logdir must be a directory, but it is a file. Received: logdir={str(logdir)!r}"
            )
        if not isinstance(header, Mapping):
            raise TypeError(
                "header must be a dict from tinspect.make_header(). "
                f"Received: header of type {type(header).__name__}"
            )
        for key in ("id", "name"):
            if not isinstance(header.get(key), str) or not header.get(key):
                raise ValueError(
                    f"header must have a non-empty string {key!r} (use tinspect.make_header). "
                    f"Received: header={dict(header)!r}"
                )
        self.header: dict[str, Any] = dict(header)
        if every == "epoch":
            every = 1
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1 or 'epoch'. Received: every={every!r}")
        self.every: int = every
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(
                f"max_samples must be an integer >= 1. Received: max_samples={max_samples!r}"
            )
        self.max_samples: int = max_samples
        self.max_activation_bytes = check_max_activation_bytes(max_activation_bytes)
        if layers is not None:
            if isinstance(layers, str) or not all(isinstance(n, str) for n in layers):
                raise TypeError(
                    f"layers must be a list of layer names or None. Received: layers={layers!r}"
                )
            layers = list(layers)
        self.layers: list[str] | None = layers
        check_choice("activations_dtype", activations_dtype, ACTIVATION_DTYPES)
        if activations_dtype is None:
            raise ValueError("activations_dtype must be 'float16' or 'float32'. Received: None")
        self.activations_dtype: str = activations_dtype
        normalize_compression(compression)  # validates
        self.compression = compression
        check_choice("input_kind", input_kind, fmt.INPUT_KINDS)
        check_choice("output_kind", output_kind, fmt.OUTPUT_KINDS)
        self.input_kind: str | None = input_kind
        self.output_kind: str | None = output_kind
        if not isinstance(checks, bool):
            raise TypeError(f"checks must be True or False. Received: checks={checks!r}")
        self.checks: bool = checks
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
                raise TypeError(
                    f"class_names must be a list of strings. Received: class_names={class_names!r}"
                )
            class_names = list(class_names)
        self.class_names: list[str] | None = class_names
        self.model_dir = self.logdir / fmt.model_dir_name(self.header["name"], self.header["id"])

    def refuse_existing(self) -> None:
        """A directory that already holds checkpoints of this id belongs to another run."""
        existing = self.model_dir / fmt.CHECKPOINTS_DIR
        if existing.is_dir() and any(
            fmt.parse_checkpoint_name(p.name) is not None for p in existing.iterdir()
        ):
            raise ValueError(
                f"{self.model_dir} already holds checkpoints of model id {self.header['id']}; "
                "give each training run its own header (tinspect.make_header or tinspect.branch)"
            )
