"""Reading one checkpoint file: attributes, the summary table, datasets by name.

Everything goes through ``h5.safe_get`` (hard links only) and the store's file manager;
a file that cannot be read raises ``DataError`` with one line for the user, and the store
records a ``Problem`` for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import h5py

from tinspect import format as fmt
from tinspect.store import h5
from tinspect.summary import Summary

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


class DataError(Exception):
    """The data asked for does not exist or cannot be read; the message is one line."""


class CheckpointUnreadable(DataError):
    """A checkpoint that cannot be used (damaged, truncated, emptied, a directory, another
    model's): the store has recorded one ``Problem`` for it and skips it for the session, and
    readers carry on with the other checkpoints. The message is one line naming the
    checkpoint and its model."""


@dataclass(frozen=True)
class SummaryTable:
    """The ``summary`` group of a checkpoint: one row per array (``layer/activations`` ...)."""

    names: tuple[str, ...]
    stats: np.ndarray
    hist_counts: np.ndarray
    hist_edges: np.ndarray

    def row(self, name: str) -> Summary | None:
        try:
            i = self.names.index(name)
        except ValueError:
            return None
        return Summary(self.stats[i], self.hist_counts[i], self.hist_edges[i])

    @staticmethod
    def empty() -> SummaryTable:
        n = len(fmt.SUMMARY_COLUMNS)
        return SummaryTable(
            (),
            np.zeros((0, n)),
            np.zeros((0, fmt.SUMMARY_BINS)),
            np.zeros((0, fmt.SUMMARY_BINS + 1)),
        )


def decode_attr(value: Any) -> Any:
    """Numpy scalars → Python; bytes → str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_attrs(f: h5py.File) -> dict[str, Any]:
    """The root attributes (``h5.ReadError`` when the root header is damaged)."""
    with h5.H5_LOCK:
        try:
            attrs = {k: decode_attr(f.attrs[k]) for k in f.attrs}
        except h5.H5PY_ERRORS as error:
            raise h5.ReadError(f"attributes: {h5.reason(error)}") from None
    metrics = attrs.get(fmt.ATTR_METRICS)
    if isinstance(metrics, str):
        try:
            attrs[fmt.ATTR_METRICS] = json.loads(metrics)
        except ValueError:
            attrs[fmt.ATTR_METRICS] = {}
    return attrs


def check_version(attrs: dict[str, Any]) -> None:
    version = attrs.get(fmt.ATTR_FORMAT_VERSION)
    if fmt.major_version(str(version)) != fmt.FORMAT_MAJOR:
        raise DataError(
            f"checkpoint format version {version!r} is not readable by this tinspect "
            f"(reads {fmt.FORMAT_MAJOR}.x)"
        )


def read_summary(f: h5py.File) -> SummaryTable:
    """The summary table, or an empty one when the file has none (then it is computed).

    ``h5.ReadError`` when the table exists but cannot be read (a damaged file): the caller
    marks the checkpoint, instead of silently computing what the table should have said.
    """
    group = f"{fmt.SUMMARY_GROUP}/"
    try:
        names_ds = h5.safe_get(f, group + fmt.SUMMARY_NAMES)
        stats_ds = h5.safe_get(f, group + fmt.SUMMARY_STATS)
        with h5.H5_LOCK:
            try:
                raw_names = names_ds.asstr()[()]
                raw_columns = stats_ds.attrs.get(fmt.ATTR_COLUMNS, "[]")
            except h5.H5PY_ERRORS as error:
                raise h5.ReadError(f"{fmt.SUMMARY_GROUP}: {h5.reason(error)}") from None
        stats = h5.read(stats_ds).astype(np.float64)
        counts = h5.read(h5.safe_get(f, group + fmt.SUMMARY_HIST_COUNTS))
        edges = h5.read(h5.safe_get(f, group + fmt.SUMMARY_HIST_EDGES))
    except (KeyError, h5.UnsafeObject):
        return SummaryTable.empty()
    try:
        names = tuple(str(n) for n in np.atleast_1d(raw_names))
        columns = json.loads(decode_attr(raw_columns))
    except (ValueError, TypeError):
        return SummaryTable.empty()
    if (
        not isinstance(columns, list)
        or stats.ndim != 2
        or stats.shape != (len(names), len(columns))
        or edges.shape != (len(names), fmt.SUMMARY_BINS + 1)
    ):
        return SummaryTable.empty()
    if list(columns) != list(fmt.SUMMARY_COLUMNS):
        # Another minor version with other columns: map the ones we know, NaN the rest.
        mapped = np.full((len(names), len(fmt.SUMMARY_COLUMNS)), np.nan)
        for j, column in enumerate(fmt.SUMMARY_COLUMNS):
            if column in columns:
                mapped[:, j] = stats[:, list(columns).index(column)]
        stats = mapped
    if counts.shape[1:] != (fmt.SUMMARY_BINS,) or len(counts) != len(names):
        return SummaryTable.empty()
    return SummaryTable(names, stats, counts, edges)


class ReshapedDataset:
    """A layer's activations (or class means) stored once as another layer's, reshaped.

    Format 1.1 stores the output of a layer such as Flatten, which repeats its input layer's
    values byte for byte, only once: the layer group names the other layer
    (``ATTR_ACTIVATIONS_OF``) and its own shape (``ATTR_ACTIVATIONS_SHAPE``). This view
    answers the part of the ``h5py.Dataset`` interface the store uses (``shape``, ``dtype``,
    ``ndim``, ``size``, indexing), reading the other layer's rows and reshaping them, so a
    reduction streams blocks of rows exactly as it does over a stored dataset.
    """

    is_virtual = False

    def __init__(self, source: h5py.Dataset, shape: tuple[int, ...]) -> None:
        self.source = source
        self.shape = shape
        self.dtype = source.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, selection: Any) -> np.ndarray:
        """Rows are selected in the source (the sample axis is shared), the rest after."""
        if not isinstance(selection, tuple):
            selection = (selection,)
        if not selection or selection[0] is Ellipsis:
            rows, rest = slice(None), selection
        else:
            rows, rest = selection[0], selection[1:]
        data = np.asarray(self.source[rows])
        if not isinstance(rows, slice) and np.ndim(rows) == 0:  # one row: its axis is gone
            data = data.reshape(self.shape[1:])
        else:
            data = data.reshape((-1, *self.shape[1:]))
        if not rest:
            return data
        if data.ndim == self.ndim - 1:
            return data[rest]
        return data[(slice(None), *rest)]


class ChannelsLastDataset:
    """A channels-first array (torch's (N, C, H, W)) seen with its channel axis last.

    Every unit-wise reduction of the store (neurons, channels, class × unit means, unit
    extremes for the checks) works on the last axis, the Keras layout. A layer whose
    model.json entry names another ``channel_axis`` is read through this view, so the same
    reductions see channels as units; the file keeps the framework's own layout. Rows
    (the sample axis) are read from the source block by block, then the axis is moved:
    ``np.moveaxis`` returns a view, no copy.
    """

    is_virtual = False

    def __init__(self, source: Any, axis: int) -> None:
        self.source = source
        self.axis = axis
        shape = tuple(source.shape)
        self.shape = (*shape[:axis], *shape[axis + 1 :], shape[axis])
        self.dtype = source.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, selection: Any) -> np.ndarray:
        """Rows are selected in the source (the sample axis is not moved), the rest after."""
        if not isinstance(selection, tuple):
            selection = (selection,)
        if not selection or selection[0] is Ellipsis:
            rows, rest = slice(None), selection
        else:
            rows, rest = selection[0], selection[1:]
        data = np.asarray(self.source[rows])
        one_row = not isinstance(rows, slice) and np.ndim(rows) == 0
        data = np.moveaxis(data, self.axis - 1 if one_row else self.axis, -1)
        if not rest:
            return data
        return data[rest] if one_row else data[(slice(None), *rest)]


def stored_once(f: h5py.File, name: str) -> ReshapedDataset | None:
    """The view of ``layers/<layer>/activations`` (or ``…/mean_class_activations``) of a
    layer stored as another layer's, or None when ``name`` is not such an array."""
    parts = name.strip("/").split("/")
    arrays = (fmt.ACTIVATIONS, fmt.MEAN_CLASS_ACTIVATIONS)
    if len(parts) != 3 or parts[0] != fmt.LAYERS_GROUP or parts[2] not in arrays:
        return None
    try:
        group = h5.safe_get(f, f"{fmt.LAYERS_GROUP}/{parts[1]}")
        with h5.H5_LOCK:
            try:
                source = decode_attr(group.attrs.get(fmt.ATTR_ACTIVATIONS_OF))
                shape_text = decode_attr(group.attrs.get(fmt.ATTR_ACTIVATIONS_SHAPE))
            except h5.H5PY_ERRORS as error:
                raise h5.ReadError(f"{parts[1]!r}: {h5.reason(error)}") from None
    except (KeyError, h5.UnsafeObject):
        return None
    if not isinstance(source, str) or not isinstance(shape_text, str):
        return None
    try:
        shape = tuple(int(d) for d in json.loads(shape_text))
    except (ValueError, TypeError):
        what = f"malformed {fmt.ATTR_ACTIVATIONS_SHAPE} {shape_text!r}"
        raise DataError(f"{name!r}: {what}") from None
    if fmt.h5_key(source) == parts[1]:
        raise DataError(f"{name!r} is stored as itself ({fmt.ATTR_ACTIVATIONS_OF} loops)")
    try:
        data = h5.safe_get(f, fmt.layer_path(source, parts[2]))
    except KeyError:
        raise DataError(f"{name!r} is stored as layer {source!r}'s, which is missing") from None
    if not hasattr(data, "dtype"):
        raise DataError(f"{name!r}: layer {source!r}'s {parts[2]} is not a dataset")
    source_shape = h5.shape(data)
    if parts[2] == fmt.MEAN_CLASS_ACTIVATIONS:
        shape = (source_shape[0], *shape[1:]) if source_shape else shape
    if (
        not source_shape
        or int(np.prod(shape)) != int(np.prod(source_shape))
        or (shape[0] != source_shape[0])
    ):
        raise DataError(
            f"{name!r}: shape {list(shape)} does not fit layer {source!r}'s {list(source_shape)}"
        )
    return ReshapedDataset(data, shape)
