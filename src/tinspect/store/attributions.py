"""Attribution files (format 1.2): the Integrated Gradients maps the recorder wrote.

``<model dir>/attributions/epoch-NNNN.h5`` sits beside the checkpoint of the same epoch
(see ``format.ATTRIBUTIONS_DIR`` for why it is a file of its own). Read like checkpoints:
through the store's file manager and its one HDF5 lock, hard links only, the version
checked; a file that cannot be read becomes a ``Problem`` and a one-line ``DataError``.
The directory is listed when asked (no refresh bookkeeping): the files are few and small
next to the checkpoints, and the CLI and the compare tool ask once per command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tinspect import format as fmt
from tinspect.store import h5
from tinspect.store.checkpoint import DataError, check_version, read_attrs
from tinspect.store.problems import problem

if TYPE_CHECKING:
    import numpy as np

    from tinspect.store.logdir import Store
    from tinspect.store.model import ModelLogs
else:
    from tinspect.lazy import numpy as np

#: The option that records attributions, for messages.
RECORDER_OPTION = 'InspectCheckpoint(..., attributions="integrated_gradients")'


def attribution_epochs(model: ModelLogs) -> list[int]:
    """Epochs with an attribution file, ascending (temporary files skipped)."""
    directory = model.directory / fmt.ATTRIBUTIONS_DIR
    try:
        names = [entry.name for entry in os.scandir(directory) if entry.is_file()]
    except OSError:
        return []
    epochs = [fmt.parse_checkpoint_name(name) for name in names]
    return sorted(e for e in epochs if e is not None)


@dataclass(frozen=True)
class AttributionMaps:
    """The maps of one model at one epoch, in memory (float32), with their metadata.

    ``true`` and ``true_class`` are None when the model recorded no class labels.
    """

    model_id: str
    epoch: int
    predicted: np.ndarray
    true: np.ndarray | None
    predicted_class: np.ndarray
    true_class: np.ndarray | None
    method: str
    steps: int
    baseline: str
    layout: str

    def toward(self, cls: int | None) -> np.ndarray:
        """Per sample, its map toward ``cls`` where one was recorded (the true-class map for
        samples of ``cls``, the predicted-class map for samples predicted as ``cls``), else
        its predicted-class map; ``cls`` None: the predicted-class maps."""
        if cls is None or self.true is None or self.true_class is None:
            return self.predicted
        use_true = self.true_class == cls
        return np.where(
            use_true.reshape((-1,) + (1,) * (self.predicted.ndim - 1)), self.true, self.predicted
        )


def read_attributions(store: Store, model: ModelLogs, epoch: int) -> AttributionMaps:
    """The maps of ``model`` at ``epoch``; DataError when there are none or they cannot be
    read (then also a Problem naming the file)."""
    path = model.directory / fmt.ATTRIBUTIONS_DIR / fmt.checkpoint_name(epoch)
    if not path.is_file():
        have = attribution_epochs(model)
        if not have:
            raise DataError(f"{model.name} has no attributions; record them with {RECORDER_OPTION}")
        raise DataError(
            f"{model.name} has no attributions at epoch {epoch}; epochs with attributions: "
            f"{', '.join(map(str, have))}"
        )
    if not _inside(model.root, path):
        raise _fail(store, path, "leads outside the logdir; not read")
    try:
        f = store.files.get(path)
        attrs = read_attrs(f)
        check_version(attrs)

        def get(name: str) -> np.ndarray | None:
            if not h5.has(f, name):
                return None
            return h5.read(h5.safe_get(f, name))

        predicted = get(fmt.ATTRIBUTION_PREDICTED)
        predicted_class = get(fmt.ATTRIBUTION_PREDICTED_CLASS)
        true = get(fmt.ATTRIBUTION_TRUE)
        true_class = get(fmt.ATTRIBUTION_TRUE_CLASS)
    except DataError as error:
        raise _fail(store, path, str(error)) from None
    except h5.ReadError:
        raise _fail(store, path, "cannot be read (file damaged or truncated)") from None
    except (OSError, KeyError, h5.UnsafeObject, ValueError) as error:
        raise _fail(store, path, f"cannot be read ({type(error).__name__}: {error})") from None
    if predicted is None or predicted_class is None:
        raise _fail(store, path, f"has no {fmt.ATTRIBUTION_PREDICTED!r} map")
    n = predicted.shape[0]
    if predicted_class.shape != (n,) or (true is not None and true.shape != predicted.shape):
        raise _fail(store, path, "maps and classes disagree in shape")
    return AttributionMaps(
        model.id,
        epoch,
        predicted.astype(np.float32),
        None if true is None else true.astype(np.float32),
        predicted_class.astype(np.int64),
        None if true_class is None else true_class.astype(np.int64).reshape(-1),
        str(attrs.get(fmt.ATTR_METHOD, "")),
        int(attrs.get(fmt.ATTR_STEPS, 0) or 0),
        str(attrs.get(fmt.ATTR_BASELINE, "")),
        str(attrs.get(fmt.ATTR_LAYOUT, "channels_last")),
    )


def recorded_inputs(store: Store, model: ModelLogs, epoch: int) -> np.ndarray:
    """The recorded samples ``x`` (the first input) of ``model``'s checkpoint ``epoch``,
    or of its latest earlier checkpoint (the samples are the same in every one)."""
    earlier = [e for e in model.epochs if e <= epoch] or model.epochs
    if not earlier:
        raise DataError(f"{model.name} has no checkpoint, so no recorded samples")
    data = store.arrays.checkpoint(model.id, earlier[-1])
    return data.read(f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_X}")


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _fail(store: Store, path: Path, what: str) -> DataError:
    store.problems.add(problem(path, what, "other attribution files remain usable"))
    store.files.close(path)
    return DataError(f"{path}: {what}")


__all__ = [
    "RECORDER_OPTION",
    "AttributionMaps",
    "attribution_epochs",
    "read_attributions",
    "recorded_inputs",
]
