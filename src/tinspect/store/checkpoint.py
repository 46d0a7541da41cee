"""Reading one checkpoint file: attributes, the summary table, datasets by name.

Everything goes through ``h5.safe_get`` (hard links only) and the store's file manager;
a file that cannot be read raises ``DataError`` with one line for the user, and the store
records a ``Problem`` for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import h5py

from tinspect import format as fmt
from tinspect.store import h5
from tinspect.summary import Summary


class DataError(Exception):
    """The data asked for does not exist or cannot be read; the message is one line."""


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
    with h5.H5_LOCK:
        attrs = {k: decode_attr(f.attrs[k]) for k in f.attrs}
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
    """The summary table, or an empty one when the file has none (then it is computed)."""
    group = f"{fmt.SUMMARY_GROUP}/"
    try:
        names_ds = h5.safe_get(f, group + fmt.SUMMARY_NAMES)
        stats_ds = h5.safe_get(f, group + fmt.SUMMARY_STATS)
        with h5.H5_LOCK:
            names = tuple(str(n) for n in names_ds.asstr()[()])
            columns = json.loads(stats_ds.attrs.get(fmt.ATTR_COLUMNS, "[]"))
            stats = np.asarray(stats_ds[()], dtype=np.float64)
        counts = h5.read(h5.safe_get(f, group + fmt.SUMMARY_HIST_COUNTS))
        edges = h5.read(h5.safe_get(f, group + fmt.SUMMARY_HIST_EDGES))
    except (KeyError, h5.UnsafeObject, ValueError, OSError):
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
