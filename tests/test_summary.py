"""Per-array summaries against numpy/scipy, including NaN, constant and integer arrays."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinspect import format as fmt
from tinspect.summary import summarize


def test_matches_scipy_on_a_skewed_sample(rng: np.random.Generator) -> None:
    values = rng.exponential(size=(200, 30)).astype(np.float32)
    values[values < 0.3] = 0.0
    s = summarize(values)
    flat = values.ravel().astype(np.float64)
    assert s["count"] == flat.size == s["finite"]
    assert s["mean"] == pytest.approx(flat.mean(), rel=1e-6)
    assert s["std"] == pytest.approx(flat.std(), rel=1e-6)
    assert s["min"] == flat.min() and s["max"] == flat.max()
    assert s["skew"] == pytest.approx(scipy.stats.skew(flat), rel=1e-6)
    assert s["kurtosis"] == pytest.approx(scipy.stats.kurtosis(flat), rel=1e-6)
    assert s["zero_fraction"] == pytest.approx(np.mean(flat == 0))
    for column, q in zip(fmt.SUMMARY_QUANTILE_COLUMNS, fmt.SUMMARY_QUANTILES, strict=True):
        assert s[column] == pytest.approx(np.quantile(flat, q), rel=1e-6)
    assert s.hist_counts.sum() == flat.size
    assert s.hist_edges[0] == flat.min() and s.hist_edges[-1] == pytest.approx(flat.max())
    assert len(s.hist_counts) == fmt.SUMMARY_BINS


def test_non_finite_values_are_counted_but_left_out() -> None:
    values = np.array([1.0, 2.0, np.nan, np.inf, 3.0, -np.inf], dtype=np.float32)
    s = summarize(values)
    assert (s["count"], s["finite"]) == (6, 3)
    assert s["mean"] == pytest.approx(2.0)
    assert (s["min"], s["max"]) == (1.0, 3.0)
    assert s.hist_counts.sum() == 3


def test_all_nan_gives_nan_statistics_not_an_error() -> None:
    s = summarize(np.full((4, 4), np.nan))
    assert (s["count"], s["finite"]) == (16, 0)
    assert np.isnan(s["mean"]) and np.isnan(s["q50"])
    assert s.hist_counts.sum() == 0


def test_constant_array_has_undefined_shape_moments() -> None:
    s = summarize(np.full(10, 3.5))
    assert s["std"] == 0 and s["min"] == s["max"] == 3.5
    assert np.isnan(s["skew"]) and np.isnan(s["kurtosis"])
    assert s.hist_counts.sum() == 10


def test_float16_and_integers_are_summarized() -> None:
    assert summarize(np.arange(10, dtype=np.float16))["mean"] == pytest.approx(4.5)
    assert summarize(np.arange(10, dtype=np.uint8))["max"] == 9
    assert summarize(np.array([True, False, False]))["zero_fraction"] == pytest.approx(2 / 3)


def test_non_numeric_arrays_are_refused() -> None:
    with pytest.raises(TypeError, match="dtype"):
        summarize(np.array(["a", "b"]))


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float16, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=7),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=16),
    )
)
def test_any_float_array_gives_consistent_statistics(values: np.ndarray) -> None:
    s = summarize(values)
    finite = values[np.isfinite(values)].astype(np.float64)
    assert s["count"] == values.size and s["finite"] == finite.size
    assert s.hist_counts.sum() == finite.size
    assert len(s.stats) == len(fmt.SUMMARY_COLUMNS)
    if finite.size:
        assert s["min"] <= s["q01"] <= s["q50"] <= s["q99"] <= s["max"]
        assert 0.0 <= s["zero_fraction"] <= 1.0
        assert np.all(np.diff(s.hist_edges) > 0)


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=np.float64,
        shape=st.integers(min_value=1, max_value=300),
        elements=st.floats(-1e3, 1e3, allow_nan=False),
    ),
    st.integers(min_value=1, max_value=7),
)
def test_streamed_moments_equal_in_memory(values: np.ndarray, n_blocks: int) -> None:
    from tinspect.summary import Moments

    whole = Moments().add(values)
    streamed = Moments()
    for block in np.array_split(values, n_blocks):
        streamed.add(block)
    assert streamed.n == whole.n and streamed.zeros == whole.zeros
    assert streamed.mean == pytest.approx(whole.mean, rel=1e-9, abs=1e-9)
    assert streamed.variance == pytest.approx(whole.variance, rel=1e-7, abs=1e-7)
    if np.isfinite(whole.skew) and whole.variance > 1e-6:
        assert streamed.skew == pytest.approx(whole.skew, rel=1e-5, abs=1e-6)
        assert streamed.kurtosis == pytest.approx(whole.kurtosis, rel=1e-5, abs=1e-6)


def test_streamed_summary_matches_in_memory(rng: np.random.Generator) -> None:
    from tinspect.summary import QUANTILE_BINS, summarize_blocks

    values = rng.normal(size=(1000, 50)).astype(np.float32)
    values[values < -1] = 0
    exact = summarize(values)
    streamed = summarize_blocks(lambda: (values[i : i + 128] for i in range(0, 1000, 128)))
    assert not streamed.exact_quantiles
    width = (values.max() - values.min()) / QUANTILE_BINS
    for column in COLUMNS_WITHOUT_QUANTILES:
        assert streamed[column] == pytest.approx(exact[column], rel=1e-6, abs=1e-9)
    for column in fmt.SUMMARY_QUANTILE_COLUMNS:
        assert abs(streamed[column] - exact[column]) <= width
    np.testing.assert_array_equal(streamed.hist_counts, exact.hist_counts)


COLUMNS_WITHOUT_QUANTILES = [
    c for c in fmt.SUMMARY_COLUMNS if c not in fmt.SUMMARY_QUANTILE_COLUMNS
]


def test_float16_path_is_exact_and_equals_the_general_path(rng: np.random.Generator) -> None:
    values = np.maximum(rng.normal(size=(64, 9, 7)), 0).astype(np.float16)
    values.ravel()[:4] = [np.nan, np.inf, -0.0, 65504]
    fast = summarize(values)
    general = summarize(values.astype(np.float64))
    np.testing.assert_allclose(fast.stats, general.stats, rtol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(fast.hist_counts, general.hist_counts)
    np.testing.assert_allclose(fast.hist_edges, general.hist_edges, rtol=1e-12)
    assert fast["min"] == 0.0 and str(fast["min"]) == "0.0"


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=np.float16,
        shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=9),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=16),
    ),
    st.integers(min_value=1, max_value=4),
)
def test_float16_streamed_equals_in_memory_exactly(values: np.ndarray, n_blocks: int) -> None:
    from tinspect.summary import summarize_blocks

    general = summarize(values.astype(np.float64))  # float64: no rounding in the reference
    streamed = summarize_blocks(lambda: iter(np.array_split(values, n_blocks)))
    np.testing.assert_allclose(streamed.stats, general.stats, rtol=1e-9, atol=1e-12, equal_nan=True)
    np.testing.assert_array_equal(streamed.hist_counts, general.hist_counts)


@pytest.mark.parametrize(
    "values",
    [
        np.full(3, 1e6, np.float32),
        np.array([1e7, 1e7 + 1], np.float32),
        np.array([-4.5e11], np.float32),
        np.array([np.inf, -np.inf, 1e38, -1e38, 0.5], np.float32),
    ],
    ids=["constant-1e6", "narrow-at-1e7", "huge-constant", "near-float32-max"],
)
def test_extreme_float32_values_are_summarized(values: np.ndarray) -> None:
    """Diverging models write such weights; a summary must not lose their checkpoint."""
    s = summarize(values)
    finite = values[np.isfinite(values)].astype(np.float64)
    assert s.hist_counts.sum() == finite.size
    assert s["min"] == finite.min() and s["max"] == finite.max()
