"""The projection step: 2-D PCA of per-sample activations, checked against numpy's SVD of
the arrays read with h5py, in memory and streamed (bounded reads), over epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tinspect.cli import app
from tinspect.query import Query, QueryError, projection, run
from tinspect.store import Store
from tinspect.store.checkpoint import ReshapedDataset

from .conftest import FIXTURES

DIGITS = FIXTURES / "digits"


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def store() -> Store:
    import os

    os.environ["TINSPECT_CACHE_DIR"] = "off"
    return Store(DIGITS)


def h5(store: Store, name: str, epoch: int, dataset: str) -> np.ndarray:
    with h5py.File(store.model(name).checkpoints[epoch], "r", locking=False) as f:
        return f[dataset][()]


def reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, directions (2, D), explained ratios) by numpy's SVD, written out here."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _u, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:2], (s[:2] ** 2) / (s**2).sum()


def same_up_to_sign(got: np.ndarray, expected: np.ndarray, **tolerance: Any) -> None:
    """Columns equal up to the sign of each (PCA directions have no intrinsic sign)."""
    for j in range(expected.shape[1]):
        sign = 1.0 if np.dot(got[:, j], expected[:, j]) >= 0 else -1.0
        np.testing.assert_allclose(got[:, j] * sign, expected[:, j], **tolerance)


def table_scores(table: Any, epoch: int) -> np.ndarray:
    rows = [r for r in table.rows() if r[1] == epoch]
    return np.array([[r[4], r[5]] for r in sorted(rows, key=lambda r: r[2])])


def test_projection_equals_numpy_svd_and_the_basis_applies_to_other_epochs(store: Store) -> None:
    table = run(store, Query(("conv/conv_2",), step="projection", epochs="all", basis_epoch="3"))
    assert table.columns == [
        "uoa",
        "epoch",
        "sample",
        "class",
        "pc1",
        "pc2",
        "predicted",
        "correct",
    ]
    x3 = h5(store, "conv", 3, "layers/conv_2/activations")
    mean, directions, explained = reference(x3)
    assert table.meta["explained_variance_ratio"]["conv/conv_2"] == pytest.approx(explained)
    assert table.meta["basis_epoch"] == {"conv/conv_2": 3}
    for epoch in (0, 1, 3):
        x = h5(store, "conv", epoch, "layers/conv_2/activations").reshape(48, -1)
        expected = (x.astype(np.float64) - mean) @ directions.T
        same_up_to_sign(table_scores(table, epoch), expected, rtol=1e-7, atol=1e-9)
    # One sign for every epoch: the frame is the same.
    a = table_scores(table, 3)
    b = (h5(store, "conv", 3, "layers/conv_2/activations").reshape(48, -1) - mean) @ directions.T
    signs = np.sign((a * b).sum(axis=0))
    e0 = (h5(store, "conv", 0, "layers/conv_2/activations").reshape(48, -1) - mean) @ directions.T
    np.testing.assert_allclose(table_scores(table, 0), e0 * signs, rtol=1e-7, atol=1e-9)


def test_projection_rows_follow_classes_samples_and_predictions(store: Store) -> None:
    y = h5(store, "dense_skip", 3, "data_samples/y_class")
    p = np.argmax(h5(store, "dense_skip", 3, "data_samples/y_prediction"), axis=1)
    full = run(store, Query(("dense_skip/hidden_2",), step="projection"))
    assert list(full.column("sample")) == list(range(48))
    assert list(full.column("class")) == y.tolist()
    assert list(full.column("predicted")) == p.tolist()
    assert list(full.column("correct")) == (p == y).tolist()
    part = run(store, Query(("dense_skip/hidden_2",), step="projection", samples="misclassified"))
    assert list(part.column("sample")) == np.flatnonzero(p != y).tolist()
    by_sample = {r[2]: r[4:6] for r in full.rows()}
    assert all(by_sample[r[2]] == r[4:6] for r in part.rows())  # same basis, same coordinates
    vae = run(store, Query(("vae_25_75/z_mean",), step="projection"))
    assert set(vae.column("predicted")) == {None} and set(vae.column("correct")) == {None}


class Recording:
    """A numpy array behind the part of the h5py.Dataset interface the reader uses,
    remembering the largest read."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.largest = 0

    def __getitem__(self, selection: Any) -> np.ndarray:
        out = self.array[selection]
        self.largest = max(self.largest, out.nbytes)
        return out


@pytest.mark.parametrize(("shape", "path"), [((60, 7, 5, 3), "gram"), ((300, 12), "covariance")])
def test_the_streamed_paths_equal_the_in_memory_svd_with_bounded_reads(
    rng: np.random.Generator, shape: tuple[int, ...], path: str
) -> None:
    x = (rng.normal(size=shape) * np.linspace(0.2, 3, shape[-1])).astype(np.float16)
    budget = 4096  # bytes: far below the array (60 × 105 × 8 = 50 kB; 300 × 12 × 8 = 29 kB)
    data = Recording(x)
    streamed = projection.fit(data, budget=budget)
    assert data.largest <= budget
    memory = projection.fit(x)
    mean, directions, explained = reference(x)
    np.testing.assert_allclose(streamed.mean, mean, rtol=1e-9, atol=1e-12)
    # The Gram path multiplies in float32 (summed in float64); the covariance path in float64.
    tol = 1e-6 if path == "gram" else 1e-9
    np.testing.assert_allclose(streamed.explained, explained, rtol=100 * tol)
    np.testing.assert_allclose(streamed.components, memory.components, atol=tol)
    scale = np.abs(memory.scores).max()
    np.testing.assert_allclose(streamed.scores, memory.scores, atol=tol * scale)
    same_up_to_sign(memory.components.T, directions.T, rtol=1e-9, atol=1e-12)
    projected = projection.project(Recording(x[::-1].copy()), streamed, budget=budget)
    np.testing.assert_allclose(projected, streamed.scores[::-1], atol=tol * scale)


def test_constant_and_rank_one_layers_give_zero_components(rng: np.random.Generator) -> None:
    constant = np.ones((10, 4), np.float32)
    basis = projection.fit(constant)
    assert np.all(basis.scores == 0) and np.all(basis.explained == 0)
    line = np.outer(rng.normal(size=20), [1.0, 2.0, -1.0])
    for budget in (projection.BUDGET, 64):
        basis = projection.fit(line, budget=budget)
        assert basis.explained[0] == pytest.approx(1.0) and basis.explained[1] == 0
        assert np.all(basis.scores[:, 1] == 0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple),
    st.integers(1, 40),
)
def test_feature_slabs_tile_a_sample_in_row_major_order(
    inner: tuple[int, ...], columns: int
) -> None:
    shape = (2, *inner)
    values = np.arange(int(np.prod(shape))).reshape(shape)
    slabs = list(projection.feature_slabs(shape, columns))
    parts = [values[s].reshape(2, -1) for s in slabs]
    assert np.array_equal(np.concatenate(parts, axis=1), values.reshape(2, -1))
    assert all(p.shape[1] <= max(columns, inner[-1] if inner else 1) for p in parts)


def test_a_layer_stored_as_another_is_projected_from_the_same_values(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    x = rng.normal(size=(30, 4, 3)).astype(np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = x
    with h5py.File(tmp_path / "a.h5", "r") as f:
        view = ReshapedDataset(f["x"], (30, 12))
        np.testing.assert_allclose(
            projection.fit(view, budget=512).scores, projection.fit(x.reshape(30, 12)).scores
        )


def test_projection_errors_and_the_cli(store: Store) -> None:
    with pytest.raises(QueryError, match="basis_epoch must be one epoch"):
        Query(("conv/conv_2",), step="projection", basis_epoch="all")
    with pytest.raises(QueryError, match="not a unit"):
        run(store, Query(("conv/conv_2/#1",), step="projection"))
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", str(DIGITS), "conv/conv_1", "--stat", "projection", "--basis-epoch", "7"]
    )
    assert result.exit_code == 1 and "no checkpoint matches basis_epoch='7'" in result.output
    result = runner.invoke(
        app, ["export", str(DIGITS), "conv/conv_1", "--stat", "projection", "--basis-epoch", "0:2"]
    )
    assert result.exit_code == 2
    result = runner.invoke(
        app, ["export", str(DIGITS), "conv/conv_1", "-s", "projection", "--samples", "class:4"]
    )
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert lines[0] == "uoa,epoch,sample,class,pc1,pc2,predicted,correct"
    assert {line.split(",")[3] for line in lines[1:]} == {"4"}
