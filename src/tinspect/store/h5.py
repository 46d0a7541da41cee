"""Safe, lazy, read-only access to checkpoint files.

* One lock around every h5py call: HDF5 is not thread-safe, and the viewer reads from
  worker threads (the habit of xarray's ``backends/locks.py``).
* A small manager keeps at most ``max_open`` files open (least recently used closed first)
  and re-opens a file whose size or modification time changed.
* Every object is reached through hard links only; external links, soft links and virtual
  datasets, which could point outside the logdir, are refused, as are object references.
* Arrays are read by blocks of rows along the first (sample) axis, so a reduction over a
  tensor larger than memory holds one block at a time.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # h5py is imported when the first file is opened (start-up time)
    import h5py
    import numpy as np
else:
    from tinspect.lazy import numpy as np

#: The one lock around h5py for the whole process.
H5_LOCK = threading.RLock()

#: Rows per block are chosen so one block holds about this many bytes.
BLOCK_BYTES = 32 << 20


class UnsafeObject(Exception):
    """An HDF5 object the store refuses to follow (external/soft link, virtual dataset)."""


class ReadError(Exception):
    """h5py failed on an object that exists: the file is damaged or truncated.

    HDF5 reports a damaged file late: a file whose superblock and headers are intact opens
    fine, and the failure comes when a dataset's bytes are read (``OSError: Can't
    synchronously read data``), or as a ``KeyError``/``RuntimeError``/``ValueError`` from an
    object header that does not parse. Every h5py call of this module turns those into this
    one exception, so the store can tell "damaged" from "absent" (a ``KeyError`` of ours)
    and turn it into a ``Problem``; nothing else catches h5py's own exceptions.
    """


#: What h5py raises for damaged files (see ``ReadError``).
H5PY_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class FileIdentity:
    """What must stay equal for cached results of a file to remain valid."""

    path: str
    size: int
    mtime_ns: int

    @staticmethod
    def of(path: Path | str) -> FileIdentity:
        st = os.stat(path)
        return FileIdentity(str(path), st.st_size, st.st_mtime_ns)


class H5Files:
    """Read-only h5py handles, at most ``max_open`` at once, re-opened when a file changes."""

    def __init__(self, max_open: int = 16) -> None:
        self.max_open = max_open
        self._open: OrderedDict[str, tuple[FileIdentity, h5py.File]] = OrderedDict()

    def get(self, path: Path) -> h5py.File:
        """The open file at ``path`` (raises OSError for unreadable or corrupt files)."""
        key = str(path)
        identity = FileIdentity.of(path)
        with H5_LOCK:
            cached = self._open.get(key)
            if cached is not None:
                if cached[0] == identity:
                    self._open.move_to_end(key)
                    return cached[1]
                self._close(key)
            import h5py

            handle = h5py.File(path, "r", locking=False)
            self._open[key] = (identity, handle)
            while len(self._open) > self.max_open:
                self._close(next(iter(self._open)))
            return handle

    def _close(self, key: str) -> None:
        _identity, handle = self._open.pop(key)
        with contextlib.suppress(Exception):  # closing a broken file must not raise
            handle.close()

    def close(self, path: Path | None = None) -> None:
        """Close one file, or all of them."""
        with H5_LOCK:
            keys = [str(path)] if path is not None else list(self._open)
            for key in keys:
                if key in self._open:
                    self._close(key)


def safe_get(root: h5py.Group, name: str) -> Any:
    """The object at ``name`` under ``root``, following hard links only."""
    import h5py

    node: Any = root
    for part in [p for p in name.split("/") if p]:
        with H5_LOCK:
            try:
                link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
            except H5PY_ERRORS as error:
                raise ReadError(f"{name!r}: {reason(error)}") from None
            if link is None:
                raise KeyError(f"{name!r} not found")
            if not isinstance(link, h5py.HardLink):
                raise UnsafeObject(f"{name!r} is a {type(link).__name__}, which is not followed")
            try:
                node = node[part]
            except H5PY_ERRORS as error:  # the link exists, its object does not open
                raise ReadError(f"{name!r}: {reason(error)}") from None
    if isinstance(node, h5py.Dataset):
        with H5_LOCK:
            try:
                virtual = node.is_virtual
                dtype = node.dtype
                references = dtype.kind == "O" and h5py.check_string_dtype(dtype) is None
            except H5PY_ERRORS as error:
                raise ReadError(f"{name!r}: {reason(error)}") from None
            if virtual:
                raise UnsafeObject(f"{name!r} is a virtual dataset, which is not followed")
            if references:
                raise UnsafeObject(f"{name!r} holds object references, which are not followed")
    return node


def reason(error: BaseException) -> str:
    """h5py's message, one line (its messages name the HDF5 function that failed)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


def is_open(dataset: Any) -> bool:
    """Whether a dataset's file is still open (the manager may close it for another file);
    a view of another dataset (``ReshapedDataset``) asks its source."""
    node = getattr(dataset, "source", dataset)
    identifier = getattr(node, "id", None)
    if identifier is None:
        return True
    with H5_LOCK:
        return bool(identifier.valid)


def has(root: h5py.Group, name: str) -> bool:
    """Whether ``name`` exists and may be followed (``ReadError`` when the file is damaged)."""
    try:
        safe_get(root, name)
    except (KeyError, UnsafeObject):
        return False
    return True


def read(dataset: h5py.Dataset, selection: Any = ()) -> np.ndarray:
    """``dataset[selection]`` under the lock; ``ReadError`` when h5py fails to read it."""
    with H5_LOCK:
        try:
            return np.asarray(dataset[selection])
        except H5PY_ERRORS as error:
            raise ReadError(reason(error)) from None


def dtype(dataset: h5py.Dataset) -> np.dtype:
    """The dataset's dtype under the lock (``ReadError`` when its header is damaged)."""
    with H5_LOCK:
        try:
            return np.dtype(dataset.dtype)
        except H5PY_ERRORS as error:
            raise ReadError(reason(error)) from None


def shape(dataset: h5py.Dataset) -> tuple[int, ...]:
    """The dataset's shape under the lock (``ReadError`` when its header is damaged)."""
    with H5_LOCK:
        try:
            return tuple(int(d) for d in dataset.shape)
        except H5PY_ERRORS as error:
            raise ReadError(reason(error)) from None


def block_rows(shape: tuple[int, ...], itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows of the first axis per block so that a block holds about ``block_bytes``."""
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize if len(shape) > 1 else itemsize
    return max(1, block_bytes // max(1, row))


def iter_blocks(
    dataset: h5py.Dataset, rows: np.ndarray | None = None, block_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(row indices, block)`` along axis 0, optionally only the given sorted ``rows``.

    Each block is read under the lock and released before the caller computes, so other
    threads interleave their reads.
    """
    with H5_LOCK:
        try:
            shape, itemsize = tuple(dataset.shape), dataset.dtype.itemsize
        except H5PY_ERRORS as error:
            raise ReadError(reason(error)) from None
    if len(shape) == 0:
        yield np.zeros(1, dtype=np.int64), read(dataset)[None]
        return
    step = block_rows(shape, itemsize, block_bytes)
    if rows is None:
        for start in range(0, shape[0], step):
            stop = min(shape[0], start + step)
            yield np.arange(start, stop), read(dataset, np.s_[start:stop])
        return
    for i in range(0, len(rows), step):
        picked = rows[i : i + step]
        if len(picked) == 0:
            continue
        lo, hi = int(picked[0]), int(picked[-1]) + 1
        if hi - lo <= 2 * len(picked):  # dense enough: one slice, then select
            yield picked, read(dataset, np.s_[lo:hi])[picked - lo]
        else:
            yield picked, read(dataset, picked)
