"""Summaries of one array: the numbers an overview needs without reading the array again.

The recorder computes them while the arrays are still in memory and stores them in each
checkpoint's ``summary`` table; the store computes the same thing (with this same function)
for files that lack it. One implementation, so the two can never disagree.

Only numpy: both the write side and the read side import this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinspect import format as fmt

COLUMNS = fmt.SUMMARY_COLUMNS
_INDEX = {name: i for i, name in enumerate(COLUMNS)}


@dataclass(frozen=True)
class Summary:
    """Statistics of one array, in the column order of ``format.SUMMARY_COLUMNS``.

    ``hist_counts`` has ``format.SUMMARY_BINS`` bins over ``[min, max]`` of the finite values;
    ``hist_edges`` holds the bin edges (one more than the counts).
    """

    stats: np.ndarray
    hist_counts: np.ndarray
    hist_edges: np.ndarray

    def __getitem__(self, column: str) -> float:
        return float(self.stats[_INDEX[column]])

    def as_dict(self) -> dict[str, float]:
        return {name: float(value) for name, value in zip(COLUMNS, self.stats, strict=True)}


def summarize(array: np.ndarray, bins: int = fmt.SUMMARY_BINS) -> Summary:
    """Count, moments, extremes, zero fraction, quantiles and a histogram of ``array``.

    Non-finite values (NaN, ±inf) are counted in ``count`` but not in ``finite``, and left out
    of every other statistic, so a single NaN does not hide the shape of the rest. Skew and
    kurtosis are the biased moment estimators (scipy's defaults; kurtosis is the excess
    kurtosis, 0 for a normal distribution) and NaN when the values are constant.
    """
    values = np.asarray(array)
    if values.dtype.kind not in "fiub":
        raise TypeError(f"summarize needs a numeric array. Received: dtype={values.dtype}")
    flat = values.reshape(-1)
    if flat.dtype.kind == "b":
        flat = flat.astype(np.uint8)
    elif flat.dtype.kind == "f" and flat.dtype.itemsize < 4:
        flat = flat.astype(np.float32)
    count = flat.size
    if flat.dtype.kind == "f":
        finite_mask = np.isfinite(flat)
        n_finite = int(np.count_nonzero(finite_mask))
        if n_finite != count:
            flat = flat[finite_mask]
    else:
        n_finite = count
    stats = np.full(len(COLUMNS), np.nan, dtype=np.float64)
    stats[_INDEX["count"]] = count
    stats[_INDEX["finite"]] = n_finite
    counts = np.zeros(bins, dtype=np.int64)
    if n_finite == 0:
        return Summary(stats, counts, np.zeros(bins + 1, dtype=np.float64))

    mean = float(np.mean(flat, dtype=np.float64))
    centred = flat.astype(np.float64) - mean
    sq = centred * centred
    m2 = float(np.mean(sq))
    lo, hi = float(np.min(flat)), float(np.max(flat))
    stats[_INDEX["mean"]] = mean
    stats[_INDEX["std"]] = np.sqrt(m2)
    stats[_INDEX["min"]] = lo
    stats[_INDEX["max"]] = hi
    if m2 > 0 and hi > lo:
        m3 = float(np.mean(sq * centred))
        m4 = float(np.mean(sq * sq))
        stats[_INDEX["skew"]] = m3 / m2**1.5
        stats[_INDEX["kurtosis"]] = m4 / (m2 * m2) - 3.0
    stats[_INDEX["zero_fraction"]] = 1.0 - np.count_nonzero(flat) / n_finite
    quantiles = np.quantile(flat, fmt.SUMMARY_QUANTILES)
    for column, value in zip(fmt.SUMMARY_QUANTILE_COLUMNS, quantiles, strict=True):
        stats[_INDEX[column]] = value
    edges = histogram_edges(lo, hi, bins)
    counts, _ = np.histogram(flat, bins=edges)
    return Summary(stats, counts.astype(np.int64), edges)


def histogram_edges(lo: float, hi: float, bins: int) -> np.ndarray:
    """``bins + 1`` equal-width edges over ``[lo, hi]``; a unit-wide range around a constant."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"histogram range must be finite. Received: lo={lo}, hi={hi}")
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
    return np.linspace(lo, hi, bins + 1)
