"""InspectCheckpoint refuses bad arguments in __init__, saying what it received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tinspect
from tinspect.keras import InspectCheckpoint
from tinspect.record.callback import class_ids_from_labels

X = np.zeros((10, 4), dtype=np.float32)
Y = np.arange(10) % 3


def make(tmp_path: Path, samples: Any = (X, Y), **kwargs: Any) -> InspectCheckpoint:
    return InspectCheckpoint(tmp_path, tinspect.make_header("m"), samples, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, "Received: every=0"),
        ({"every": 1.5}, ValueError, "Received: every=1.5"),
        ({"every": "batch"}, ValueError, "1, .epoch. or .auto.. Received: every=.batch."),
        ({"every": True}, ValueError, "Received: every=True"),
        ({"max_samples": 0}, ValueError, "Received: max_samples=0"),
        ({"max_activation_bytes": 0}, ValueError, "Received: max_activation_bytes=0"),
        ({"max_activation_bytes": 1e6}, ValueError, "Received: max_activation_bytes=1000000.0"),
        ({"layers": "dense"}, TypeError, "Received: layers='dense'"),
        ({"layers": [1]}, TypeError, "Received: layers=\\[1\\]"),
        ({"activations_dtype": "int8"}, ValueError, "Received: activations_dtype='int8'"),
        ({"compression": "zstd"}, ValueError, "Received: compression='zstd'"),
        ({"compression": 12}, ValueError, "Received: compression=12"),
        ({"input_kind": "video"}, ValueError, "Received: input_kind='video'"),
        ({"output_kind": "ranking"}, ValueError, "Received: output_kind='ranking'"),
        ({"class_names": "abc"}, TypeError, "Received: class_names='abc'"),
        ({"class_names": ["a"]}, ValueError, "labels go up to class 2"),
    ],
)
def test_bad_keyword_arguments(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make(tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("samples", "error", "match"),
    [
        ((X, Y[:5]), ValueError, r"same number of samples. Received: lengths \[5, 10\]"),
        ((X, Y, Y), ValueError, "Received: a tuple of 3 items"),
        ((X[:0],), ValueError, "Received: 0 samples"),
        (3.0, ValueError, "Received: a scalar"),
        ((np.array([{"a": 1}], dtype=object),), TypeError, "Python objects"),
        (([],), ValueError, "at least one input array"),
    ],
)
def test_bad_samples(tmp_path: Path, samples: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(tmp_path, samples)


def test_logdir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="logdir must be a directory, but it is a file"):
        InspectCheckpoint(target, tinspect.make_header("m"), X)


def test_header_must_come_from_make_header(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Received: header of type str"):
        InspectCheckpoint(tmp_path, "m", X)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string 'id'"):
        InspectCheckpoint(tmp_path, {"name": "m"}, X)


def test_valid_arguments_are_kept(tmp_path: Path) -> None:
    cb = make(tmp_path, (X, Y), every="epoch", max_samples=4, class_names=["a", "b", "c"])
    assert cb.every == 1 and cb.n_samples == 4 and cb.n_classes == 3
    assert cb.class_ids is not None and cb.class_ids.tolist() == [0, 1, 2, 0]
    assert not cb.model_dir.exists()  # nothing is written before training starts
    multi = make(tmp_path, ([X, X[:, :2]], Y))
    assert [a.shape for a in multi.inputs] == [(10, 4), (10, 2)]
    assert make(tmp_path, X).labels is None
    assert make(tmp_path, (X, Y), output_kind="regression").class_ids is None


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (np.array([0, 2, 1]), [0, 2, 1]),
        (np.array([[0], [2]]), [0, 2]),
        (np.array([0.0, 3.0]), [0, 3]),
        (np.eye(3)[[2, 0, 1]], [2, 0, 1]),
        (np.array([0.5, 1.0]), None),
        (np.array([-1, 2]), None),
        (np.array([[0.2, 0.9], [1.0, 0.0]]), None),
        (None, None),
    ],
)
def test_class_ids_from_labels(labels: np.ndarray | None, expected: list[int] | None) -> None:
    ids = class_ids_from_labels(labels)
    assert (ids.tolist() if ids is not None else None) == expected
