"""Array facts of checkpoints: the one place where query/ and analysis/ get array data.

Everything a reader wants to know about an array of a checkpoint — its summary, a reduced
statistic, the sample rows of a class selection, the values themselves — is asked here with
a typed reference (``ArrayRef``: model, epoch, dataset, sample rows, unit), and answered by
this module, which

* builds the cache keys itself (``ArrayRef.key``), so two packages asking for the same
  reduction share one cache entry without copying a key format;
* is the only reader of array data outside the store's own modules: h5py and the one HDF5
  lock (``h5.H5_LOCK``) stay behind it, and blocks are streamed to reductions
  (``store.reduce``) so memory stays bounded by one block;
* turns every HDF5 read error into a ``Problem`` naming the file and the dataset, marks that
  checkpoint damaged for the session (``Store.mark_damaged``) and raises
  ``CheckpointUnreadable``, a ``DataError`` with one line, so callers skip the checkpoint
  and carry on with the others instead of showing a traceback.

A ``CheckpointData`` is a handle on one (model, epoch): the file's path and identity are
resolved once, datasets are looked up once, so a query that reads many arrays of one
checkpoint resolves it once (the runner keeps one handle per checkpoint it reads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeAlias

from tinspect import format as fmt
from tinspect.store import h5, reduce
from tinspect.store.checkpoint import (
    CheckpointUnreadable,
    DataError,
    ReshapedDataset,
    SummaryTable,
)
from tinspect.summary import Summary, finite_values, quantiles_from_histogram

if TYPE_CHECKING:
    import numpy as np

    from tinspect.store.logdir import Store
else:
    from tinspect.lazy import numpy as np

Value: TypeAlias = "dict[str, np.ndarray]"  # a string: numpy is imported on first use
#: A reduction of an array's blocks (``reduce.unit_stats``, a histogram ...) to named arrays.
Reduction: TypeAlias = "Callable[[reduce.Blocks], Value]"

CLASS_IDS = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_CLASS}"
#: Bins of the histogram that quantiles of a large selection are interpolated from.
QUANTILE_BINS = 8192


def _rows_text(rows: tuple[int, ...] | None) -> str:
    """Sample rows in a cache key: ``all``, or their count and a digest (a selection can
    hold thousands of rows; the key stays short and still changes with any row)."""
    if rows is None:
        return "all"
    digest = hashlib.sha1(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]
    return f"{len(rows)}:{digest}"


@dataclass(frozen=True)
class ArrayRef:
    """One array of one checkpoint, optionally restricted to sample rows and one unit.

    ``rows`` are sorted indices on the sample axis (None: every sample; weights have no
    sample axis and take None); ``classes`` keeps only the samples of these classes (resolved
    from the checkpoint's labels when the data is read, so a cached result needs no read);
    ``unit`` an index on the last axis (a neuron or channel); ``summary_row`` the array's row
    in the checkpoint's stored summary table, when it has one.
    """

    model: str
    epoch: int
    dataset: str
    rows: tuple[int, ...] | None = None
    unit: int | None = None
    summary_row: str | None = None
    classes: tuple[int, ...] | None = None

    @property
    def whole(self) -> bool:
        """Every sample and every unit: what the stored summary row describes."""
        return self.rows is None and self.classes is None and self.unit is None

    def at(self, epoch: int) -> ArrayRef:
        """The same array at another checkpoint."""
        return replace(self, epoch=epoch)

    def key(self, kind: str, *params: object) -> str:
        """The cache key text of reduction ``kind`` of this array with ``params`` (the file's
        identity is added by the cache): the one place such keys are built."""
        parts = [kind, self.dataset, _rows_text(self.rows), repr(self.classes), repr(self.unit)]
        return "|".join(parts + [repr(p) for p in params])

    def every_unit(self) -> ArrayRef:
        """The same array and samples, all units (reductions per unit pick one later)."""
        return replace(self, unit=None)


class CheckpointData:
    """Reads of one checkpoint of one model; see the module docstring.

    Every method raises ``DataError`` for data that is not there and
    ``CheckpointUnreadable`` (after recording a Problem) for a checkpoint that cannot be read.
    """

    def __init__(self, store: Store, model_id: str, epoch: int) -> None:
        self.store = store
        self.model_id = model_id
        self.epoch = epoch
        self._identity: h5.FileIdentity | None = None
        self._datasets: dict[str, Any] = {}

    # --- the file ------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """``checkpoint epoch-0004.h5 of model beta``."""
        return self.store.checkpoint_label(self.model_id, self.epoch)

    @property
    def identity(self) -> h5.FileIdentity:
        """The file's identity (a stat, no open: a cached result needs no read); refused for
        a checkpoint marked damaged."""
        reason = self.store.damaged(self.model_id, self.epoch)
        if reason is not None:
            raise CheckpointUnreadable(reason)
        if self._identity is None:
            self._identity = self.store.identity(self.model_id, self.epoch)
        return self._identity

    def ref(
        self,
        dataset: str,
        rows: tuple[int, ...] | None = None,
        unit: int | None = None,
        summary_row: str | None = None,
        classes: tuple[int, ...] | None = None,
    ) -> ArrayRef:
        return ArrayRef(self.model_id, self.epoch, dataset, rows, unit, summary_row, classes)

    def rows_of(self, ref: ArrayRef) -> np.ndarray | None:
        """The sorted sample rows ``ref`` selects (its rows, of its classes); None: all."""
        picked = self.class_rows(ref.classes)
        if ref.rows is None and picked is None:
            return None
        if picked is None:
            return np.asarray(ref.rows, dtype=np.int64)
        if ref.rows is None:
            return np.asarray(picked, dtype=np.int64)
        return np.intersect1d(np.asarray(ref.rows), np.asarray(picked)).astype(np.int64)

    @contextmanager
    def _reading(self, name: str, dataset: Any = None) -> Iterator[None]:
        """h5py failing on ``name`` marks the checkpoint damaged (one Problem) and raises.

        Unless the dataset's file was closed under it (the file manager keeps a bounded
        number open and another thread opened more): that is no damage, and says so.
        """
        try:
            yield
        except h5.ReadError:
            if dataset is not None and not h5.is_open(dataset):
                self._datasets.pop(name, None)
                raise DataError(
                    f"{self.label}: closed while {name} was read (many files in use); ask again"
                ) from None
            raise self.store.unreadable(self.model_id, self.epoch, name) from None

    def dataset(self, name: str) -> Any:
        """The (lazy) dataset ``name``; for the reductions of ``store.reduce``. Kept for the
        handle's life while its file stays open (a closed file's dataset is looked up anew)."""
        known = self._datasets.get(name)
        if known is None or not h5.is_open(known):
            known = self._datasets[name] = self.store.dataset(self.model_id, self.epoch, name)
        return known

    def has(self, name: str) -> bool:
        return self.store.has(self.model_id, self.epoch, name)

    def attrs(self) -> dict[str, Any]:
        return self.store.attrs(self.model_id, self.epoch)

    def summary_table(self) -> SummaryTable:
        return self.store.summary_table(self.model_id, self.epoch)

    # --- reads ---------------------------------------------------------------------------------
    def shape(self, name: str) -> tuple[int, ...]:
        dataset = self.dataset(name)
        with self._reading(name, dataset):
            return h5.shape(dataset)

    def read(self, name: str, selection: Any = ()) -> np.ndarray:
        """``dataset[selection]`` in memory: for small arrays (labels, a kernel, class means)."""
        dataset = self.dataset(name)
        with self._reading(name, dataset):
            return h5.read(dataset, selection)

    def blocks(
        self, name: str, rows: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row indices, block)`` along the sample axis, optionally only ``rows``."""
        dataset = self.dataset(name)
        with self._reading(name, dataset):
            yield from h5.iter_blocks(dataset, rows)

    def class_ids(self) -> np.ndarray | None:
        """Each sample's class id (None when the checkpoint has no class labels)."""
        if not self.has(CLASS_IDS):
            return None
        return self.read(CLASS_IDS).astype(np.int64).reshape(-1)

    def class_rows(self, classes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The sorted sample rows of a class selection (None: all samples)."""
        if classes is None:
            return None
        ids = self.class_ids()
        if ids is None:
            model = self.store.model_by_id(self.model_id)
            raise DataError(f"{model.name} has no class labels; drop the class selection")
        picked = np.flatnonzero(np.isin(ids, np.asarray(classes)))
        return tuple(int(i) for i in picked)

    # --- reductions, cached --------------------------------------------------------------------
    def cached(
        self, ref: ArrayRef, kind: str, compute: Callable[[], Value], *params: object
    ) -> Value:
        """``compute()`` cached under ``ref.key(kind, *params)`` and this file's identity."""
        key = ref.key(kind, *params)
        with self._reading(ref.dataset):
            return self.store.cache.get_or_compute([self.identity], key, compute)

    def cached_across(
        self,
        others: list[CheckpointData],
        ref: ArrayRef,
        kind: str,
        compute: Callable[[], Value],
        *params: object,
    ) -> Value:
        """Like ``cached``, for a result computed from this checkpoint and ``others`` (e.g. a
        projection fitted at one epoch, applied at another): keyed by every file's identity."""
        sources = [self.identity, *(o.identity for o in others)]
        with self._reading(ref.dataset):
            return self.store.cache.get_or_compute(sources, ref.key(kind, *params), compute)

    def array(self, name: str) -> ArrayView:
        """The stored array ``name`` for an algorithm that reads it its own way."""
        return ArrayView(self, name)

    def remember(self, ref: ArrayRef, kind: str, value: Value, *params: object) -> None:
        """Give the cache a result computed elsewhere (the recorder's extremes)."""
        self.store.cache.put([self.identity], ref.key(kind, *params), value)

    def source(self, ref: ArrayRef) -> reduce.Blocks:
        """The re-iterable blocks of ``ref`` (its rows, its unit) for a reduction."""
        dataset = self.dataset(ref.dataset)
        inner = reduce.blocks(dataset, self.rows_of(ref), ref.unit)

        def generate() -> Iterator[np.ndarray]:
            with self._reading(ref.dataset, dataset):
                yield from inner()

        return generate

    def n_values(self, ref: ArrayRef) -> int:
        dataset = self.dataset(ref.dataset)
        rows = self.rows_of(ref)
        with self._reading(ref.dataset, dataset):
            return reduce.n_values(dataset, rows, ref.unit)

    def reduced(self, ref: ArrayRef, kind: str, reduction: Reduction, *params: object) -> Value:
        """``reduction`` of ref's blocks, cached under ``kind`` and ``params``."""
        return self.cached(ref, kind, lambda: reduction(self.source(ref)), *params)

    def summary(self, ref: ArrayRef) -> Summary:
        """The summary of ``ref``: the stored row when it describes exactly this (all samples,
        no unit), else computed (exact in memory when small, streamed otherwise), cached."""
        if ref.whole and ref.summary_row is not None:
            table = self.summary_table()
            stored = table.row(ref.summary_row)
            if stored is not None:
                return stored

        def compute() -> Value:
            result = reduce.summary(self.source(ref), self.n_values(ref))
            return {
                "stats": result.stats,
                "counts": result.hist_counts,
                "edges": result.hist_edges,
                "exact": np.array(result.exact_quantiles),
            }

        value = self.cached(ref, "summary", compute)
        return Summary(value["stats"], value["counts"], value["edges"], bool(value["exact"]))

    def histogram(self, ref: ArrayRef, lo: float, hi: float, bins: int) -> Value:
        """``{"counts", "edges"}`` over ``bins`` equal bins of ``[lo, hi]``."""

        def compute() -> Value:
            counts, edges = reduce.hist(self.source(ref), lo, hi, bins)
            return {"counts": counts, "edges": edges}

        return self.cached(ref, "hist", compute, lo, hi, bins)

    def quantiles(self, ref: ArrayRef, qs: tuple[float, ...], lo: float, hi: float) -> np.ndarray:
        """The ``qs`` quantiles of the finite values: exact when the selection fits in memory,
        else from an 8192-bin histogram of ``[lo, hi]`` (the summary's min and max)."""

        def compute() -> Value:
            source = self.source(ref)
            if self.n_values(ref) <= reduce.IN_MEMORY_VALUES:
                flat = np.concatenate([finite_values(b)[0] for b in source()] or [np.zeros(0)])
                return {"values": np.quantile(flat, qs)}
            counts, edges = reduce.hist(source, lo, hi, QUANTILE_BINS)
            return {"values": quantiles_from_histogram(counts, edges, qs)}

        return self.cached(ref, "quantiles", compute, list(qs))["values"]

    def unit_stats(self, ref: ArrayRef) -> Value:
        """Per unit of the last axis: mean, std, min, max, zero_fraction."""
        return self.reduced(ref, "unit_stats", reduce.unit_stats)

    def unit_histograms(self, ref: ArrayRef, lo: float, hi: float, bins: int) -> np.ndarray:
        """(units, bins) counts: each unit's distribution over the same bins."""

        def histograms(source: reduce.Blocks) -> Value:
            return {"counts": reduce.unit_histograms(source, lo, hi, bins)}

        return self.reduced(ref, "density", histograms, lo, hi, bins)["counts"]

    def unit_extremes(self, ref: ArrayRef) -> Value:
        """``{"min", "max"}`` per unit of the last axis."""

        def compute() -> Value:
            lo, hi = reduce.unit_extremes(self.source(ref))
            return {"min": lo, "max": hi}

        return self.cached(ref, "unit_extremes", compute)

    def class_unit_means(self, ref: ArrayRef, class_ids: np.ndarray, n_classes: int) -> np.ndarray:
        """(n_classes, units) mean per class and unit, streamed (not cached: callers cache)."""
        dataset = self.dataset(ref.dataset)
        rows = self.rows_of(ref)
        with self._reading(ref.dataset, dataset):
            return reduce.class_unit_means(dataset, class_ids, n_classes, rows)

    def top_k(self, ref: ArrayRef, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, values) of the ``k`` largest entries by magnitude."""
        dataset = self.dataset(ref.dataset)
        with self._reading(ref.dataset, dataset):
            return reduce.top_k(dataset, k)


class ArrayView:
    """One stored array of a checkpoint for an algorithm that reads it its own way (the
    projection reads slabs of features): ``shape``, ``dtype`` and numpy-style indexing, each
    read under the HDF5 lock and guarded like every read of the service (damage → Problem).

    For a layer stored once as another layer's (format 1.1), the view is on the stored array:
    the same values in the same row-major order, in the other shape (algorithms that flatten
    each sample need no more).
    """

    def __init__(self, data: CheckpointData, name: str) -> None:
        self.data = data
        self.name = name

    def _stored(self) -> Any:
        dataset = self.data.dataset(self.name)
        return dataset.source if isinstance(dataset, ReshapedDataset) else dataset

    @property
    def shape(self) -> tuple[int, ...]:
        stored = self._stored()
        with self.data._reading(self.name, stored):
            return h5.shape(stored)

    @property
    def dtype(self) -> np.dtype:
        stored = self._stored()
        with self.data._reading(self.name, stored):
            return h5.dtype(stored)

    def __getitem__(self, selection: Any) -> np.ndarray:
        stored = self._stored()
        with self.data._reading(self.name, stored):
            return h5.read(stored, selection)


class Arrays:
    """The store's array service: handles on checkpoints, and shortcuts taking an ArrayRef."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def checkpoint(self, model_id: str, epoch: int) -> CheckpointData:
        """A handle on one checkpoint (cheap; the file is opened on the first read)."""
        return CheckpointData(self.store, model_id, epoch)

    def summary(self, ref: ArrayRef) -> Summary:
        return self.checkpoint(ref.model, ref.epoch).summary(ref)

    def read(self, ref: ArrayRef) -> np.ndarray:
        """The whole array of ``ref`` (its rows and unit), in memory."""
        data = self.checkpoint(ref.model, ref.epoch)
        rows = data.rows_of(ref)
        values = data.read(ref.dataset, () if rows is None else rows)
        return values if ref.unit is None else values[..., ref.unit]

    def reduced(self, ref: ArrayRef, kind: str, reduction: Reduction, *params: object) -> Value:
        return self.checkpoint(ref.model, ref.epoch).reduced(ref, kind, reduction, *params)

    def damaged(self, model_id: str, epoch: int) -> str | None:
        """Why this checkpoint was found damaged this session (None: not known to be)."""
        return self.store.damaged(model_id, epoch)

    def readable_epochs(self, model_id: str, epochs: list[int]) -> list[int]:
        """``epochs`` without the checkpoints already found damaged."""
        return [e for e in epochs if self.damaged(model_id, e) is None]


__all__ = ["ArrayRef", "ArrayView", "Arrays", "CheckpointData", "Reduction", "Value"]
