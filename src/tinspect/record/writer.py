"""Checkpoint files: the HDF5 layout of one checkpoint, written atomically, off the main thread.

``write_checkpoint`` turns a ``CheckpointRecord`` (plain numpy arrays) into one
``epoch-NNNN.h5`` file: it computes the per-array summaries (``tinspect.summary``) while the
arrays are in memory and stores them in one table, so overviews read three small datasets
per checkpoint instead of every tensor. ``BackgroundWriter`` runs such jobs in one daemon
thread with a bounded queue, so training continues while the previous checkpoint is written
and memory stays bounded if writing is slower than training (the queue then applies
back-pressure instead of growing).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tinspect import format as fmt
from tinspect.record.files import jsonable, write_atomic
from tinspect.record.threads import background_thread, openmp_threads
from tinspect.summary import summarize

#: Target size of one HDF5 chunk when compression is on (rows of the sample axis).
CHUNK_BYTES = 1 << 20

Compression = str | int | None


@dataclass
class LayerRecord:
    """What one layer contributes to a checkpoint."""

    name: str
    class_name: str
    activations: np.ndarray | None = None
    mean_class_activations: np.ndarray | None = None
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: str | None = None
    #: The earlier layer whose stored activations and class means these equal byte for
    #: byte (Flatten, Dropout…): they are stored once, see ``format.ATTR_ACTIVATIONS_OF``.
    same_as: str | None = None
    shape: tuple[int, ...] | None = None  # the activations' shape when ``same_as`` is set


@dataclass
class CheckpointRecord:
    """Everything in one checkpoint file, as numpy arrays and JSON-ready attributes."""

    attrs: dict[str, Any]
    samples: dict[str, np.ndarray]
    layers: list[LayerRecord]


def normalize_compression(compression: Compression) -> tuple[str | None, Any, bool]:
    """(h5py compression, its options, shuffle) for the callback's ``compression`` argument."""
    if compression is None or compression is False:
        return None, None, False
    if compression == "lzf":
        return "lzf", None, True
    if compression == "gzip":
        return "gzip", 4, True
    if isinstance(compression, int) and not isinstance(compression, bool) and 0 <= compression <= 9:
        return "gzip", compression, True
    raise ValueError(
        "compression must be None, 'lzf', 'gzip' or a gzip level 0-9. "
        f"Received: compression={compression!r}"
    )


def _dataset(group: h5py.Group, name: str, data: np.ndarray, compression: Compression) -> None:
    codec, options, shuffle = normalize_compression(compression)
    if codec is None or data.ndim == 0 or data.size < 1024:
        _contiguous_dataset(group, name, data)
        return
    row_bytes = max(1, data[0].nbytes if data.ndim > 1 else data.itemsize)
    rows = int(max(1, min(data.shape[0], CHUNK_BYTES // row_bytes)))
    chunks = (rows, *data.shape[1:])
    group.create_dataset(
        name,
        data=data,
        chunks=chunks,
        compression=codec,
        compression_opts=options,
        shuffle=shuffle,
    )


def _contiguous_dataset(group: h5py.Group, name: str, data: np.ndarray) -> None:
    """An uncompressed dataset through h5py's low-level API: the same bytes on disk as
    ``create_dataset(name, data=data)`` (contiguous layout, no timestamps; a test compares
    the files), without the high-level checks of options a plain array never uses.

    h5py's own call costs ~0.23 ms of CPU per dataset beyond writing the data, this ~0.1
    ms, and a checkpoint holds ~3 datasets per layer: measured 70 → 58 ms for 150 datasets
    (a 50-layer model's checkpoint). On a CPU that training keeps busy (PyTorch's OpenMP
    team spins between ops) the writer's CPU time is training's time. Other dtypes
    (strings) keep h5py's conversion.
    """
    array = np.asarray(data, order="C")  # (ascontiguousarray makes a scalar 1-d)
    if array.dtype.kind not in "fiub":
        group.create_dataset(name, data=array)
        return
    space = h5py.h5s.create_simple(array.shape) if array.ndim else h5py.h5s.create(h5py.h5s.SCALAR)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)  # h5py's default: files do not differ by creation time
    kind = h5py.h5t.py_create(array.dtype, logical=True)
    dataset = h5py.h5d.create(group.id, name.encode(), kind, space, dcpl=dcpl)
    if array.size:
        dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, array)


def _attr(value: Any) -> Any:
    """An attribute value HDF5 can hold: numbers and strings as is, the rest as JSON text."""
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value
    return json.dumps(jsonable(value))


def _link_same(layers: h5py.Group, group: h5py.Group, layer: LayerRecord) -> None:
    """Store ``layer``'s activations as those of ``layer.same_as``: hard links when the
    shapes agree (any HDF5 reader sees the arrays), else the shape to reshape them to."""
    assert layer.same_as is not None and layer.shape is not None
    source = layers[fmt.h5_key(layer.same_as)]
    group.attrs[fmt.ATTR_ACTIVATIONS_OF] = layer.same_as
    if tuple(source[fmt.ACTIVATIONS].shape) == tuple(layer.shape):
        for name in (fmt.ACTIVATIONS, fmt.MEAN_CLASS_ACTIVATIONS):
            if name in source:
                group[name] = source[name]  # a hard link: the same dataset, stored once
    else:
        group.attrs[fmt.ATTR_ACTIVATIONS_SHAPE] = json.dumps([int(d) for d in layer.shape])


def write_checkpoint(path: Path, record: CheckpointRecord, compression: Compression) -> None:
    """Write ``record`` to ``path`` atomically (temporary name, fsync, rename)."""
    names: list[str] = []
    stats: list[np.ndarray] = []
    counts: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    rows: dict[str, int] = {}

    def add_summary(row: str, array: np.ndarray) -> None:
        if array.dtype.kind not in "fiub" or array.size == 0:
            return
        try:
            summary = summarize(array)
        except (ValueError, IndexError, FloatingPointError):
            return  # no stored row: the store computes it when asked; the arrays are kept
        add_row(row, summary.stats, summary.hist_counts, summary.hist_edges)

    def add_row(row: str, stat: np.ndarray, count: np.ndarray, edge: np.ndarray) -> None:
        rows[row] = len(names)
        names.append(row)
        stats.append(stat)
        counts.append(count)
        edges.append(edge)

    def copy_summary(row: str, of: str) -> None:
        """The same values have the same summary: computed once, stored under both rows."""
        if of in rows:
            i = rows[of]
            add_row(row, stats[i], counts[i], edges[i])

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            for key, value in record.attrs.items():
                f.attrs[key] = _attr(value)
            samples = f.create_group(fmt.SAMPLES_GROUP)
            for key, array in record.samples.items():
                _dataset(samples, key, array, compression)
            layers = f.create_group(fmt.LAYERS_GROUP)
            # Layers stored as another's come last: that one's datasets exist by then.
            for layer in sorted(record.layers, key=lambda r: r.same_as is not None):
                group = layers.create_group(fmt.h5_key(layer.name))
                group.attrs[fmt.ATTR_LAYER_CLASS] = layer.class_name
                if layer.skipped:
                    group.attrs[fmt.ATTR_SKIPPED] = layer.skipped
                if layer.same_as is not None:
                    _link_same(layers, group, layer)
                    copy_summary(
                        fmt.summary_row_name(layer.name, fmt.ACTIVATIONS),
                        of=fmt.summary_row_name(layer.same_as, fmt.ACTIVATIONS),
                    )
                if layer.activations is not None:
                    _dataset(group, fmt.ACTIVATIONS, layer.activations, compression)
                    add_summary(
                        fmt.summary_row_name(layer.name, fmt.ACTIVATIONS), layer.activations
                    )
                if layer.mean_class_activations is not None:
                    _dataset(
                        group, fmt.MEAN_CLASS_ACTIVATIONS, layer.mean_class_activations, compression
                    )
                if layer.weights:
                    wgroup = group.create_group(fmt.WEIGHTS_GROUP)
                    for var, array in layer.weights.items():
                        _dataset(wgroup, fmt.h5_key(var), array, compression)
                        row = fmt.summary_row_name(layer.name, f"{fmt.WEIGHTS_GROUP}/{var}")
                        add_summary(row, array)
            summary = f.create_group(fmt.SUMMARY_GROUP)
            summary.create_dataset(
                fmt.SUMMARY_NAMES, data=np.array(names, dtype=object), dtype=h5py.string_dtype()
            )
            table = summary.create_dataset(
                fmt.SUMMARY_STATS,
                data=np.array(stats, dtype=np.float64).reshape(
                    len(names), len(fmt.SUMMARY_COLUMNS)
                ),
            )
            table.attrs[fmt.ATTR_COLUMNS] = json.dumps(list(fmt.SUMMARY_COLUMNS))
            summary.create_dataset(
                fmt.SUMMARY_HIST_COUNTS,
                data=np.array(counts, dtype=np.int64).reshape(len(names), fmt.SUMMARY_BINS),
            )
            summary.create_dataset(
                fmt.SUMMARY_HIST_EDGES,
                data=np.array(edges, dtype=np.float64).reshape(len(names), fmt.SUMMARY_BINS + 1),
            )

    write_atomic(path, write)


class BackgroundWriter:
    """One daemon thread that runs checkpoint jobs in order, at idle priority and with one
    OpenMP thread for torch (``tinspect.record.threads``); errors are kept, not raised.

    A job that fails (disk full, a layer that cannot be computed) must not stop training:
    the error is stored with the job's label and the callback reports it from the main
    thread. ``close`` waits for every submitted job.

    While training waits for the writer (a full queue, ``close``) it runs at the normal
    policy. The job of the last checkpoint (``waited=True``: training is over and waits
    for it) also runs torch ops on torch's own thread count, so a large model's last
    checkpoint is not computed on one core while the others idle. Only that one: an
    OpenMP team, once made, stays with the writer thread, and mid-fit it would make
    training's team sleep between ops (``tinspect.record.threads``); measured when a full
    queue also switched it: ``every=1`` on the torch demo fit 1.1× → 1.4×.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._queue: queue.Queue[tuple[str, Callable[[], None]] | None] = queue.Queue(max_pending)
        self._errors: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()
        self._training_over = False  # set with the last job; read by the writer before each
        self._thread = threading.Thread(target=self._run, name="tinspect-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        full = background_thread()  # torch's threads for the process; None without torch
        threads = 1
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            label, job = item
            wanted = full if full is not None and self._training_over else 1
            if full is not None and wanted != threads:
                openmp_threads(wanted)
                threads = wanted
            try:
                job()
            except BaseException as error:  # noqa: BLE001 - reported by the callback
                with self._lock:
                    self._errors.append((label, error))
            finally:
                self._queue.task_done()

    def submit(self, label: str, job: Callable[[], None], waited: bool = False) -> None:
        """Queue ``job``; blocks while ``max_pending`` jobs are waiting (back-pressure).

        ``waited``: training is over and will wait for this job (the last checkpoint).
        """
        if not self._thread.is_alive():
            raise RuntimeError("the checkpoint writer thread has stopped")
        if waited:
            self._training_over = True
        try:
            self._queue.put_nowait((label, job))
        except queue.Full:
            with self._boosted():
                self._queue.put((label, job))

    def drain(self) -> None:
        """Wait until every job submitted so far is done (the writer at the normal policy)."""
        if self._thread.is_alive():
            with self._boosted():
                self._queue.join()

    def run_here(self, label: str, job: Callable[[], None]) -> None:
        """Run ``job`` on the calling thread, after every job submitted before it.

        For training that keeps every core busy (``InspectCheckpoint``'s inline mode): a job
        in the writer thread then costs training 2-3× its own CPU (docs/design.md); run by
        the caller it costs what it takes. Errors are kept like the thread's, except a
        ``KeyboardInterrupt`` or ``SystemExit``: on the training thread that is the user
        stopping training, which a checkpoint must not swallow (its file is never half
        written: ``write_atomic`` removes the temporary one).
        """
        self.drain()
        try:
            job()
        except Exception as error:  # noqa: BLE001 - reported by the callback
            with self._lock:
                self._errors.append((label, error))

    @contextlib.contextmanager
    def _boosted(self) -> Iterator[None]:
        """The normal policy for the writer while training waits for it.

        Idle priority is right while training runs; once training blocks on the writer
        (full queue, ``close``), it only delays training: under ``SCHED_IDLE`` the writer
        gets CPU only when no other process of the machine wants it, and on a shared,
        loaded machine that made a torch bench loop wait seconds per checkpoint.
        """
        tid = self._thread.native_id
        try:
            if tid is None:
                raise OSError("the writer thread has not started")
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except (AttributeError, OSError):
            yield  # not Linux, or no such thread any more: nothing to restore
            return
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))

    def take_errors(self) -> list[tuple[str, BaseException]]:
        """Errors since the last call, oldest first."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def close(self) -> None:
        """Finish every queued job and stop the thread."""
        if self._thread.is_alive():
            with self._boosted():
                self._queue.put(None)
                self._thread.join()
