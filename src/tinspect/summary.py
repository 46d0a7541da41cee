"""Summaries of arrays: the numbers an overview needs without reading the array again.

The recorder computes them while the arrays are still in memory and stores them in each
checkpoint's ``summary`` table; the store computes the same thing, with these same functions,
for files that lack it or for a subset of samples (a class selection), block by block.
One implementation of each statistic, so writer, store, CLI and viewer never disagree.

* ``Moments`` accumulates count, mean, central moments, extremes and zeros over blocks and
  merges exactly (Pébay's pairwise update), so a streamed result equals the in-memory one
  up to floating-point rounding.
* ``summarize`` is the in-memory summary (exact quantiles); ``summarize_blocks`` streams any
  number of blocks in bounded memory (quantiles then come from a fine histogram).

Only numpy: both the write side and the read side import this module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tinspect import format as fmt

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

COLUMNS = fmt.SUMMARY_COLUMNS
_INDEX = {name: i for i, name in enumerate(COLUMNS)}
#: Bins of the histogram that approximates quantiles when streaming.
QUANTILE_BINS = 8192
#: Arrays up to this many values are summarized in memory, exactly.
IN_MEMORY_VALUES = 1 << 24


def finite_values(array: np.ndarray) -> tuple[np.ndarray, int]:
    """A flat numeric view of ``array`` without NaN/±inf, and the total number of values.

    Booleans become uint8 and float16 becomes float32 (numpy's float16 arithmetic is slow).
    """
    values = np.asarray(array)
    if values.dtype.kind not in "fiub":
        raise TypeError(f"summaries need a numeric array. Received: dtype={values.dtype}")
    flat = values.reshape(-1)
    if flat.dtype.kind == "b":
        flat = flat.astype(np.uint8)
    elif flat.dtype.kind == "f" and flat.dtype.itemsize < 4:
        flat = flat.astype(np.float32)
    if flat.dtype.kind == "f":
        mask = np.isfinite(flat)
        if not mask.all():
            flat = flat[mask]
    return flat, values.size


@dataclass
class Moments:
    """Streaming count, mean, central moment sums (M2..M4), min, max and zeros."""

    count: int = 0  # every value, finite or not
    n: int = 0  # finite values
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    zeros: int = 0

    def add(self, array: np.ndarray) -> Moments:
        """Include the values of ``array`` (any shape); returns self."""
        flat, total = finite_values(array)
        return self.merge(_block_moments(flat, total))

    def merge(self, other: Moments) -> Moments:
        """Combine with the moments of another block; returns self."""
        na, nb = self.n, other.n
        self.count += other.count
        if nb == 0:
            return self
        if na == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = (
                nb,
                other.mean,
                other.m2,
                other.m3,
                other.m4,
            )
        else:
            n = na + nb
            delta = other.mean - self.mean
            d_n = delta / n
            m2 = self.m2 + other.m2 + delta * d_n * na * nb
            m3 = (
                self.m3
                + other.m3
                + delta * d_n * d_n * na * nb * (na - nb)
                + 3.0 * d_n * (na * other.m2 - nb * self.m2)
            )
            m4 = (
                self.m4
                + other.m4
                + delta * d_n**3 * na * nb * (na * na - na * nb + nb * nb)
                + 6.0 * d_n * d_n * (na * na * other.m2 + nb * nb * self.m2)
                + 4.0 * d_n * (na * other.m3 - nb * self.m3)
            )
            self.n, self.mean, self.m2, self.m3, self.m4 = n, self.mean + d_n * nb, m2, m3, m4
        self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        self.zeros += other.zeros
        return self

    @property
    def variance(self) -> float:
        return self.m2 / self.n if self.n else float("nan")

    @property
    def skew(self) -> float:
        """Biased sample skewness (scipy's default); NaN for constant values."""
        denominator = self.m2**1.5
        if not self.n or denominator <= 0 or self.hi <= self.lo:  # constant, or m2 underflows
            return float("nan")
        return float(np.sqrt(self.n) * self.m3 / denominator)

    @property
    def kurtosis(self) -> float:
        """Excess kurtosis, biased (scipy's default: 0 for a normal); NaN for constants."""
        denominator = self.m2 * self.m2
        if not self.n or denominator <= 0 or self.hi <= self.lo:  # constant, or m2 underflows
            return float("nan")
        return float(self.n * self.m4 / denominator - 3.0)


def _block_moments(flat: np.ndarray, total: int) -> Moments:
    """Moments of finite values ``flat`` (from ``finite_values``) of an array of ``total``."""
    block = Moments(count=total)
    if flat.size:
        mean = float(np.mean(flat, dtype=np.float64))
        centred = flat.astype(np.float64) - mean
        sq = centred * centred
        block.n = int(flat.size)
        block.mean = mean
        block.m2 = float(sq.sum())
        block.m3 = float((sq * centred).sum())
        block.m4 = float((sq * sq).sum())
        block.lo, block.hi = float(flat.min()), float(flat.max())
        block.zeros = int(flat.size - np.count_nonzero(flat))
    return block


@dataclass(frozen=True)
class Summary:
    """Statistics of one array, in the column order of ``format.SUMMARY_COLUMNS``.

    ``hist_counts`` has ``format.SUMMARY_BINS`` bins over ``[min, max]`` of the finite values;
    ``hist_edges`` holds the bin edges (one more than the counts). ``exact_quantiles`` is
    False when the quantiles come from a fine histogram (streamed summaries).
    """

    stats: np.ndarray
    hist_counts: np.ndarray
    hist_edges: np.ndarray
    exact_quantiles: bool = field(default=True)

    def __getitem__(self, column: str) -> float:
        return float(self.stats[_INDEX[column]])

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in zip(COLUMNS, self.stats, strict=True)}


def _stats(moments: Moments, quantiles: Iterable[float]) -> np.ndarray:
    stats = np.full(len(COLUMNS), np.nan, dtype=np.float64)
    stats[_INDEX["count"]] = moments.count
    stats[_INDEX["finite"]] = moments.n
    if moments.n:
        stats[_INDEX["mean"]] = moments.mean
        stats[_INDEX["std"]] = np.sqrt(moments.variance)
        stats[_INDEX["min"]] = moments.lo
        stats[_INDEX["max"]] = moments.hi
        stats[_INDEX["skew"]] = moments.skew
        stats[_INDEX["kurtosis"]] = moments.kurtosis
        stats[_INDEX["zero_fraction"]] = moments.zeros / moments.n
        for column, value in zip(fmt.SUMMARY_QUANTILE_COLUMNS, quantiles, strict=True):
            stats[_INDEX[column]] = value
    return stats


class _Float16Table:
    """Every float16 value once: a float16 array is summarized exactly from its value counts.

    float16 has only 65,536 bit patterns, so ``np.bincount`` of the uint16 view gives the
    exact distribution in one fast pass; moments, extremes, quantiles and the histogram then
    cost a few operations on 65,536 entries, whatever the array size. Counts also add up
    across blocks, so a streamed summary of float16 data is exact too.
    """

    def __init__(self) -> None:
        values = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
        self.finite = np.isfinite(values)
        self.values = np.where(self.finite, values, 0.0)
        #: The finite bit patterns in ascending order of value, and those values: counts
        #: taken in this order are a sorted distribution without a sort per summary.
        self.order = np.flatnonzero(self.finite)[np.argsort(values[self.finite], kind="stable")]
        self.sorted_values = values[self.order]


_F16: _Float16Table | None = None


def float16_table() -> _Float16Table:
    """The shared table of every float16 value (built once, on first use)."""
    return _f16()


def _f16() -> _Float16Table:
    global _F16
    if _F16 is None:
        _F16 = _Float16Table()
    return _F16


#: Values per ``np.bincount`` call in ``float16_counts``.
COUNT_CHUNK = 1 << 18


def float16_counts(array: np.ndarray) -> np.ndarray:
    """How often each of the 65,536 float16 bit patterns occurs in ``array``.

    Counted in chunks of ``COUNT_CHUNK`` values: ``np.bincount`` first converts its input
    to a new intp array (8 bytes per value) and scans it for its extremes, which for a
    whole activation array runs at memory speed; a chunk's conversion stays in the CPU
    cache. Measured on 6.4 M ReLU-like values: 46 ms in one call, 13-15 ms in chunks of
    2^16-2^20 values (2^14 is slow again: the 65,536-entry result is added per chunk).
    """
    bits = np.ascontiguousarray(array, dtype=np.float16).view(np.uint16).reshape(-1)
    if bits.size <= COUNT_CHUNK:
        return np.bincount(bits, minlength=1 << 16).astype(np.int64, copy=False)
    counts = np.zeros(1 << 16, dtype=np.int64)
    for start in range(0, bits.size, COUNT_CHUNK):
        counts += np.bincount(bits[start : start + COUNT_CHUNK], minlength=1 << 16)
    return counts


def summarize_float16_counts(counts: np.ndarray, bins: int = fmt.SUMMARY_BINS) -> Summary:
    """The exact summary of float16 data given its ``float16_counts``."""
    table = _f16()
    by_value = counts[table.order]  # finite values only, ascending
    # Only the values that occur (typically a few thousand of the 65,536) take part.
    present = np.nonzero(by_value != 0)[0]  # ~3x faster than flatnonzero of int64
    found = by_value[present]
    n = int(found.sum())
    moments = Moments(count=int(counts.sum()), n=n)
    if n == 0:
        empty = np.zeros(bins, dtype=np.int64)
        return Summary(_stats(moments, []), empty, np.zeros(bins + 1, dtype=np.float64))
    v = table.sorted_values[present]
    weights = found.astype(np.float64)
    mean = float((weights * v).sum() / n)
    d = v - mean
    d2 = d * d
    moments.mean = mean
    moments.m2 = float((weights * d2).sum())
    moments.m3 = float((weights * d2 * d).sum())
    moments.m4 = float((weights * d2 * d2).sum())
    moments.lo, moments.hi = float(v[0]) + 0.0, float(v[-1]) + 0.0  # + 0.0: no -0.0
    moments.zeros = int(counts[0x0000] + counts[0x8000])
    cumulative = np.cumsum(found)

    def order_statistic(rank: int) -> float:
        return float(v[np.searchsorted(cumulative, rank, side="right")])

    quantiles = []
    for q in fmt.SUMMARY_QUANTILES:
        h = (n - 1) * q  # numpy's default 'linear' method
        below = int(np.floor(h))
        low = order_statistic(below)
        high = order_statistic(min(below + 1, n - 1))
        quantiles.append(low + (h - below) * (high - low))
    lo, hi = histogram_range(moments.lo, moments.hi)
    hist, edges = np.histogram(v, bins=bins, range=(lo, hi), weights=weights)
    return Summary(_stats(moments, quantiles), np.rint(hist).astype(np.int64), edges)


def summarize(array: np.ndarray, bins: int = fmt.SUMMARY_BINS) -> Summary:
    """Count, moments, extremes, zero fraction, exact quantiles and a histogram of ``array``.

    Non-finite values (NaN, ±inf) are counted in ``count`` but not in ``finite``, and left out
    of every other statistic, so a single NaN does not hide the shape of the rest. Skew and
    kurtosis are the biased moment estimators (scipy's defaults; kurtosis is the excess
    kurtosis, 0 for a normal distribution) and NaN when the values are constant.
    float16 arrays (the recorded activations) take the exact value-count path.
    """
    values = np.asarray(array)
    if values.dtype == np.float16:
        return summarize_float16_counts(float16_counts(values), bins)
    flat, total = finite_values(values)
    moments = Moments()
    moments.merge(_block_moments(flat, total))
    if not moments.n:
        empty = np.zeros(bins, dtype=np.int64)
        return Summary(_stats(moments, []), empty, np.zeros(bins + 1, dtype=np.float64))
    quantiles = np.quantile(flat, fmt.SUMMARY_QUANTILES)
    counts, edges = histogram(flat, moments.lo, moments.hi, bins)
    return Summary(_stats(moments, quantiles), counts, edges)


def summarize_blocks(
    blocks: Callable[[], Iterable[np.ndarray]], bins: int = fmt.SUMMARY_BINS
) -> Summary:
    """The summary of all values of ``blocks()``, in memory bounded by one block.

    ``blocks`` is called twice (moments and range first, then histograms), so it must
    return a fresh iterable each time. Quantiles are read off a histogram of
    ``QUANTILE_BINS`` bins: exact to within (max - min) / QUANTILE_BINS.
    """
    counts16: np.ndarray | None = None
    moments = Moments()
    for block in blocks():
        if block.dtype == np.float16 and moments.count == 0:
            counts16 = (
                float16_counts(block) if counts16 is None else counts16 + float16_counts(block)
            )
            continue
        if counts16 is not None:  # mixed dtypes: fall back to the general path
            counts16 = None
            return summarize_blocks(lambda: (b.astype(np.float32) for b in blocks()), bins)
        moments.add(block)
    if counts16 is not None:
        return summarize_float16_counts(counts16, bins)
    if not moments.n:
        empty = np.zeros(bins, dtype=np.int64)
        return Summary(_stats(moments, []), empty, np.zeros(bins + 1, dtype=np.float64))
    counts = np.zeros(bins, dtype=np.int64)
    fine = np.zeros(QUANTILE_BINS, dtype=np.int64)
    for block in blocks():
        flat, _ = finite_values(block)
        counts += histogram(flat, moments.lo, moments.hi, bins)[0]
        fine += histogram(flat, moments.lo, moments.hi, QUANTILE_BINS)[0]
    fine_edges = histogram_edges(moments.lo, moments.hi, QUANTILE_BINS)
    quantiles = quantiles_from_histogram(fine, fine_edges, fmt.SUMMARY_QUANTILES)
    edges = histogram_edges(moments.lo, moments.hi, bins)
    return Summary(_stats(moments, quantiles), counts, edges, exact_quantiles=False)


def histogram_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """``bins + 1`` equal-width edges over ``[lo, hi]``; a unit-wide range around a constant."""
    lo, hi = histogram_range(lo, hi)
    return np.linspace(lo, hi, bins + 1)


def histogram_range(lo: float, hi: float) -> tuple[float, float]:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"histogram range must be finite. Received: lo={lo}, hi={hi}")
    if hi <= lo:  # a constant: a unit-wide range, or wider at magnitudes float cannot split
        pad = max(0.5, abs(lo) * 1e-6)
        return lo - pad, lo + pad
    return lo, hi


def histogram(values: np.ndarray, lo: float, hi: float, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts of finite ``values`` in ``bins`` equal bins over ``[lo, hi]`` (outside: dropped).

    Uses numpy's uniform-bins fast path (``bins=int, range=...``), several times faster
    than passing explicit edges.
    """
    lo, hi = histogram_range(lo, hi)
    if values.dtype != np.float64 and _needs_float64(lo, hi, bins):
        # numpy bins in the data's precision: float32 cannot resolve bins narrower than its
        # spacing at large magnitudes, and overflows scaling ranges near 1e38.
        values = values.astype(np.float64)
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    return counts.astype(np.int64), edges


def _needs_float64(lo: float, hi: float, bins: int) -> bool:
    magnitude = max(abs(lo), abs(hi))
    return magnitude > 1e30 or (hi - lo) / bins < magnitude * 1e-5


def quantiles_from_histogram(
    counts: np.ndarray, edges: np.ndarray, qs: Iterable[float]
) -> np.ndarray:
    """Quantiles by linear interpolation inside the bin where the cumulative count crosses."""
    total = counts.sum()
    out = []
    cumulative = np.cumsum(counts)
    for q in qs:
        if total == 0:
            out.append(np.nan)
            continue
        target = q * (total - 1) + 1  # 1-based rank, as np.quantile's 'linear' method
        i = int(np.searchsorted(cumulative, target))
        i = min(i, len(counts) - 1)
        before = cumulative[i - 1] if i else 0
        inside = counts[i]
        frac = (target - before) / inside if inside else 0.0
        out.append(edges[i] + min(max(frac, 0.0), 1.0) * (edges[i + 1] - edges[i]))
    return np.array(out, dtype=np.float64)
