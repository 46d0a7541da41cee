"""A 2-D principal-component projection of a layer's per-sample activations, in bounded memory.

The functions take any array with ``shape``, ``dtype`` and numpy-style indexing: a numpy
array, or the store's ``ArrayView`` (``CheckpointData.array``), which reads under the HDF5
lock and turns read errors into the store's Problems.

Each recorded sample's activations are flattened to one vector of D values (N samples).
The basis (mean and the first two principal directions) is fitted at one checkpoint and
applied to others, so the samples of several epochs are drawn in one frame.

* Small layers (N × D float64 within ``budget``): ``numpy.linalg.svd`` of the centred data.
* Large layers, streamed, two passes over the basis checkpoint and one per projected one:
  - D > N (the usual case: 512 samples of a convolution's output): the N × N Gram matrix
    of the centred data, accumulated over *feature slabs* (every sample, a range of its
    values), whose top eigenvectors give the scores; a second pass over the slabs turns
    them into the D-long directions;
  - D ≤ N: the D × D covariance, accumulated over blocks of samples.
  Both are the SVD of the centred data computed through its symmetric square, so the
  result equals the in-memory path up to rounding and sign (the Gram products of data
  stored in float16/float32 are taken in float32 and summed in float64: ~7× faster on
  2 cores, ~1e-7 relative per entry, far below the float16 storage's own 1e-3).
  Memory: one slab or block (``budget``), min(N, D)² for the square, 3 × D for the mean
  and directions.
* Signs are fixed like scikit-learn's ``svd_flip``: each direction's largest-magnitude
  entry is positive, so two runs (and the two paths) agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


#: Bytes of float64 working data per slab or block (and the in-memory limit).
BUDGET = 64 << 20
COMPONENTS = 2


@dataclass(frozen=True)
class Basis:
    """Mean (D,), directions (2, D), explained variance ratios (2,) and the basis scores."""

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    scores: np.ndarray  # (N, 2): the basis checkpoint's own samples


def _source(dataset: Any) -> Any:
    """The stored array behind a layer stored as another's (the store's ``ReshapedDataset``
    has a ``source``): the same values in the same row-major order, read without reshaping."""
    return getattr(dataset, "source", dataset)


def _shape(dataset: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in dataset.shape)


def _read(dataset: Any, selection: Any = ()) -> np.ndarray:
    return np.asarray(dataset[selection])


def _blocks(dataset: Any, block_bytes: int) -> Iterator[tuple[slice, np.ndarray]]:
    """Blocks of whole samples (axis 0) of about ``block_bytes`` each."""
    shape = _shape(dataset)
    if not shape:
        yield slice(0, 1), _read(dataset)[None]
        return
    row = int(np.prod(shape[1:], dtype=np.int64)) * np.dtype(dataset.dtype).itemsize
    step = max(1, block_bytes // max(1, row))
    for start in range(0, shape[0], step):
        rows = slice(start, min(shape[0], start + step))
        yield rows, _read(dataset, rows)


def feature_slabs(shape: tuple[int, ...], columns: int) -> Iterator[tuple[Any, ...]]:
    """Selections ``(all samples, ...)`` that tile one sample's values in row-major order,
    each holding at most ``columns`` values per sample (at least one index of the last axis)."""
    inner = shape[1:]
    if not inner:
        yield (slice(None),)
        return
    tail = 1
    k = len(inner)  # inner[k:] fits in one slab
    while k > 0 and tail * inner[k - 1] <= columns:
        tail *= inner[k - 1]
        k -= 1
    if k == 0:
        yield (slice(None),)
        return
    axis = k - 1  # split this axis into ranges; iterate over the axes before it
    step = max(1, columns // tail)
    for index in np.ndindex(*inner[:axis]):
        for start in range(0, inner[axis], step):
            stop = min(inner[axis], start + step)
            yield (slice(None), *index, slice(start, stop))


def _signs(components: np.ndarray) -> np.ndarray:
    """+1/-1 per direction so that its largest-magnitude entry becomes positive."""
    signs = np.ones(components.shape[0])
    for i in range(components.shape[0]):
        if components[i].size and components[i, np.argmax(np.abs(components[i]))] < 0:
            signs[i] = -1.0
    return signs


def _pad(components: np.ndarray, variances: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly two directions: zero ones where the data has fewer (rank < 2, or constant)."""
    keep = variances > max(float(variances[0]) if variances.size else 0.0, 0.0) * 1e-12
    keep &= variances > 0
    components = np.where(keep[:, None], components, 0.0)
    variances = np.where(keep, variances, 0.0)
    if components.shape[0] < COMPONENTS:
        missing = COMPONENTS - components.shape[0]
        components = np.vstack([components, np.zeros((missing, d))])
        variances = np.concatenate([variances, np.zeros(missing)])
    return components[:COMPONENTS], variances[:COMPONENTS]


def fit(dataset: Any, budget: int = BUDGET, check: Callable[[], None] | None = None) -> Basis:
    """The 2-D PCA basis of ``dataset`` (samples on axis 0), streamed when it is large."""
    check = check or (lambda: None)
    dataset = _source(dataset)
    shape = _shape(dataset)
    n = shape[0] if shape else 1
    d = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if n * d * 8 <= budget:
        x = _read(dataset).reshape(n, d).astype(np.float64)
        mean = x.mean(axis=0) if n else np.zeros(d)
        centred = x - mean
        _u, s, vt = np.linalg.svd(centred, full_matrices=False)
        variances = s * s
        total = float((centred * centred).sum())
        components, variances = _pad(vt[:COMPONENTS], variances[:COMPONENTS], d)
        scores: np.ndarray | None = centred @ components.T
    elif d > n:
        mean, components, variances, total, scores = _fit_gram(dataset, shape, n, d, budget, check)
    else:
        mean, components, variances, total = _fit_covariance(dataset, n, d, budget, check)
        scores = None
    signs = _signs(components)
    components = components * signs[:, None]
    explained = variances / total if total > 0 else np.zeros(COMPONENTS)
    if scores is None:
        basis = Basis(mean, components, explained, np.zeros((0, COMPONENTS)))
        scores = project(dataset, basis, budget, check)
    else:
        scores = scores * signs
    return Basis(mean, components, explained, scores)


def _fit_gram(
    dataset: Any, shape: tuple[int, ...], n: int, d: int, budget: int, check: Callable[[], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
    columns = max(1, budget // (8 * n))
    slabs = list(feature_slabs(shape, columns))
    low_precision = np.dtype(dataset.dtype).itemsize <= 4
    gram = np.zeros((n, n))
    means: list[np.ndarray] = []
    for selection in slabs:
        check()
        block = _read(dataset, selection).reshape(n, -1).astype(np.float64)
        mean = block.mean(axis=0)
        block -= mean
        # The N²·D products are the whole cost: in float32 (7× faster here) for data stored
        # in at most float32, summed per slab in float64; relative error ~1e-7 per entry.
        product = block.astype(np.float32) if low_precision else block
        gram += product @ product.T
        means.append(mean)
    total = float(np.trace(gram))
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][:COMPONENTS]
    variances = np.clip(eigenvalues[order], 0.0, None)
    u = eigenvectors[:, order]
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = np.where(variances > 0, 1.0 / np.sqrt(variances), 0.0)
    parts = []
    for selection, mean in zip(slabs, means, strict=True):
        check()
        block = _read(dataset, selection).reshape(n, -1).astype(np.float64) - mean
        parts.append((block.T @ u) * inverse)  # (columns, k): this slab's rows of V
    components = np.concatenate(parts, axis=0).T
    components, variances = _pad(components, variances, d)
    scores = u[:, : components.shape[0]] * np.sqrt(variances[: u.shape[1]])
    if scores.shape[1] < COMPONENTS:
        scores = np.hstack([scores, np.zeros((n, COMPONENTS - scores.shape[1]))])
    return np.concatenate(means), components, variances, total, scores


def _fit_covariance(
    dataset: Any, n: int, d: int, budget: int, check: Callable[[], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    shift: np.ndarray | None = None  # the first block's mean: keeps the sums well scaled
    total_sum = np.zeros(d)
    square = np.zeros((d, d))
    for _rows, block in _blocks(dataset, max(1, budget // 4)):
        check()
        x = block.reshape(block.shape[0], -1).astype(np.float64)
        if shift is None:
            shift = x.mean(axis=0)
        x -= shift
        total_sum += x.sum(axis=0)
        square += x.T @ x
    assert shift is not None
    centre = total_sum / n
    covariance = square - n * np.outer(centre, centre)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:COMPONENTS]
    variances = np.clip(eigenvalues[order], 0.0, None)
    components, variances = _pad(eigenvectors[:, order].T, variances, d)
    return shift + centre, components, variances, float(np.trace(covariance))


def project(
    dataset: Any, basis: Basis, budget: int = BUDGET, check: Callable[[], None] | None = None
) -> np.ndarray:
    """(N, 2) coordinates of every sample of ``dataset`` in ``basis``, block by block."""
    check = check or (lambda: None)
    dataset = _source(dataset)
    shape = _shape(dataset)
    d = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    if d != basis.mean.size:
        raise ValueError(f"the basis has {basis.mean.size} values per sample, the data {d}")
    out = []
    for _rows, block in _blocks(dataset, max(1, budget // 8)):
        check()
        x = block.reshape(block.shape[0], -1).astype(np.float64) - basis.mean
        out.append(x @ basis.components.T)
    return np.concatenate(out, axis=0) if out else np.zeros((0, COMPONENTS))
