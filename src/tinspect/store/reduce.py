"""Reductions of one checkpoint array, streamed in blocks along the sample axis.

Each function takes a dataset (lazy) plus an optional sorted selection of sample rows (a
class selection) and an optional unit (the last axis: a neuron or a channel), reads the
array block by block (``h5.iter_blocks``) and keeps only the running result, so memory is
bounded by one block whatever the size of the array. The statistics themselves are those
of ``tinspect.summary`` — one implementation for the recorder, the store and the viewer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from tinspect.store import h5
from tinspect.summary import (
    IN_MEMORY_VALUES,
    Summary,
    finite_values,
    float16_counts,
    float16_table,
    histogram,
    histogram_range,
    summarize,
    summarize_blocks,
)

if TYPE_CHECKING:
    import h5py
    import numpy as np
else:
    from tinspect.lazy import numpy as np

Blocks: TypeAlias = "Callable[[], Iterator[np.ndarray]]"  # numpy is imported on first use


def blocks(
    dataset: h5py.Dataset, rows: np.ndarray | None = None, unit: int | None = None
) -> Blocks:
    """A re-iterable source of blocks (rows selected, the unit axis sliced)."""

    def generate() -> Iterator[np.ndarray]:
        for _index, block in h5.iter_blocks(dataset, rows):
            yield block[..., unit] if unit is not None else block

    return generate


def n_values(dataset: h5py.Dataset, rows: np.ndarray | None, unit: int | None) -> int:
    with h5.H5_LOCK:
        shape = dataset.shape
    n = len(rows) if rows is not None and shape else (shape[0] if shape else 1)
    inner = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if unit is not None and len(shape) > 1:
        inner //= max(1, shape[-1])
    return int(n * inner)


def summary(source: Blocks, size: int) -> Summary:
    """Exact in memory when the selection is small enough, streamed otherwise."""
    if size <= IN_MEMORY_VALUES:
        parts = list(source())
        if not parts:
            return summarize(np.zeros(0, dtype=np.float32))
        return summarize(np.concatenate([p.reshape(-1) for p in parts]))
    return summarize_blocks(source)


def hist(source: Blocks, lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts over ``bins`` equal bins of ``[lo, hi]``, summed block by block."""
    counts = np.zeros(bins, dtype=np.int64)
    edges = np.linspace(lo, hi, bins + 1)
    counts16: np.ndarray | None = None
    for block in source():
        if block.dtype == np.float16:  # exact and ~10x faster: count the 65,536 values once
            block_counts16 = float16_counts(block)
            counts16 = block_counts16 if counts16 is None else counts16 + block_counts16
            continue
        flat, _ = finite_values(block)
        block_counts, edges = histogram(flat, lo, hi, bins)
        counts += block_counts
    if counts16 is not None:
        table = float16_table()
        present = np.flatnonzero(np.where(table.finite, counts16, 0))
        weighted, edges = np.histogram(
            table.values[present],
            bins=bins,
            range=histogram_range(lo, hi),
            weights=counts16[present],
        )
        counts += np.rint(weighted).astype(np.int64)
    return counts, edges


def unit_extremes(source: Blocks) -> tuple[np.ndarray, np.ndarray]:
    """Per unit of the last axis: (min, max) of the finite values, in the data's own dtype.

    What dead- and saturated-unit checks need, at a fraction of ``unit_stats``' cost (no
    float64 copy); NaN where a unit has no finite value.
    """
    lo = hi = None
    for block in source():
        units = block.shape[-1] if block.ndim > 1 else 1
        rows = block.reshape(-1, units)
        if rows.dtype.kind == "f":
            rows = np.where(np.isinf(rows), np.nan, rows)
            block_lo, block_hi = np.fmin.reduce(rows, axis=0), np.fmax.reduce(rows, axis=0)
        else:
            block_lo, block_hi = rows.min(axis=0), rows.max(axis=0)
        lo = block_lo if lo is None else np.fmin(lo, block_lo)
        hi = block_hi if hi is None else np.fmax(hi, block_hi)
    if lo is None or hi is None:
        return np.zeros(0), np.zeros(0)
    return lo.astype(np.float64), hi.astype(np.float64)


#: Values per vectorized step of ``unit_stats`` (bounds its float64 temporaries to ~32 MiB).
UNIT_STEP_VALUES = 1 << 22


def unit_stats(source: Blocks) -> dict[str, np.ndarray]:
    """Per unit of the last axis (neurons, channels): mean, std, min, max and zero fraction
    of the finite values over samples and every other axis.

    Vectorized over units and merged block by block with Chan's parallel update, so a
    layer of thousands of units costs a few array operations per block, not a loop.
    """
    # Running per-unit count, mean, M2, min, max, zeros (None until the first block).
    n: Any = None
    mean: Any = None
    m2: Any = None
    lo: Any = None
    hi: Any = None
    zeros: Any = None
    for block in source():
        units = block.shape[-1] if block.ndim > 1 else 1
        rows = block.reshape(-1, units)
        step = max(1, UNIT_STEP_VALUES // units)
        for start in range(0, rows.shape[0], step):
            flat = rows[start : start + step].astype(np.float64)
            finite = np.isfinite(flat)
            n_b = finite.sum(axis=0)
            values = np.where(finite, flat, 0.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_b = values.sum(axis=0) / n_b
            centred = np.where(finite, flat - mean_b, 0.0)
            m2_b = (centred * centred).sum(axis=0)
            lo_b = np.where(finite, flat, np.inf).min(axis=0)
            hi_b = np.where(finite, flat, -np.inf).max(axis=0)
            zeros_b = ((flat == 0) & finite).sum(axis=0)
            if n is None:
                n, mean, m2, lo, hi, zeros = n_b, np.nan_to_num(mean_b), m2_b, lo_b, hi_b, zeros_b
                continue
            total = n + n_b
            with np.errstate(invalid="ignore", divide="ignore"):
                delta = np.nan_to_num(mean_b) - mean
                mean = np.where(total > 0, mean + delta * n_b / np.maximum(total, 1), mean)
                m2 = m2 + m2_b + delta * delta * n * n_b / np.maximum(total, 1)
            n, lo, hi, zeros = total, np.minimum(lo, lo_b), np.maximum(hi, hi_b), zeros + zeros_b
    if n is None:
        empty = np.zeros(0)
        return {"mean": empty, "std": empty, "min": empty, "max": empty, "zero_fraction": empty}
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = n > 0
        return {
            "mean": np.where(valid, mean, np.nan),
            "std": np.where(valid, np.sqrt(m2 / n), np.nan),
            "min": np.where(valid, lo, np.nan),
            "max": np.where(valid, hi, np.nan),
            "zero_fraction": np.where(valid, zeros / n, np.nan),
        }


def unit_histograms(source: Blocks, lo: float, hi: float, bins: int) -> np.ndarray:
    """(units, bins) counts: one distribution per unit (feature distribution)."""
    counts: np.ndarray | None = None
    for block in source():
        units = block.shape[-1] if block.ndim > 1 else 1
        flat = block.reshape(-1, units)
        if counts is None:
            counts = np.zeros((units, bins), dtype=np.int64)
        for j in range(units):
            values, _ = finite_values(flat[:, j])
            counts[j] += histogram(values, lo, hi, bins)[0]
    return counts if counts is not None else np.zeros((0, bins), dtype=np.int64)


def class_unit_means(
    dataset: h5py.Dataset, class_ids: np.ndarray, n_classes: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """(n_classes, units) mean activation per class and unit (spatial axes averaged too).

    NaN for a class without samples in the selection.
    """
    sums: np.ndarray | None = None
    counts = np.zeros(n_classes, dtype=np.int64)
    for index, block in h5.iter_blocks(dataset, rows):
        units = block.shape[-1] if block.ndim > 1 else 1
        per_sample = block.reshape(block.shape[0], -1, units).astype(np.float64).mean(axis=1)
        if sums is None:
            sums = np.zeros((n_classes, units))
        ids = class_ids[index]
        valid = (ids >= 0) & (ids < n_classes)
        np.add.at(sums, ids[valid], per_sample[valid])
        counts += np.bincount(ids[valid], minlength=n_classes)[:n_classes]
    if sums is None:
        return np.zeros((n_classes, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def top_k(dataset: h5py.Dataset, k: int, by_abs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices, values) of the ``k`` largest entries (by magnitude), largest first.

    Streams blocks, keeping at most ``k`` candidates per block and overall.
    """
    best_idx = np.zeros(0, dtype=np.int64)
    best_val = np.zeros(0, dtype=np.float64)
    with h5.H5_LOCK:
        shape = dataset.shape
    row_size = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    for index, block in h5.iter_blocks(dataset):
        flat = block.reshape(-1).astype(np.float64)
        base = int(index[0]) * row_size if len(shape) > 0 else 0
        idx = np.arange(flat.size, dtype=np.int64) + base
        values = np.concatenate([best_val, flat])
        indices = np.concatenate([best_idx, idx])
        score = np.abs(values) if by_abs else values
        score = np.where(np.isfinite(score), score, -np.inf)
        if values.size > k:
            keep = np.argpartition(-score, k - 1)[:k]
            values, indices, score = values[keep], indices[keep], score[keep]
        best_val, best_idx = values, indices
    score = np.abs(best_val) if by_abs else best_val
    order = np.lexsort((best_idx, -score))
    return best_idx[order], best_val[order]
