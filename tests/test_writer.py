"""The checkpoint writer's own HDF5 calls: what it writes equals what h5py would write."""

from __future__ import annotations

import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinspect.record.writer import _contiguous_dataset

DTYPES = st.sampled_from(["<f2", "<f4", "<f8", ">f4", "<i8", "<i4", "|u1", "<u2", "|b1"])


def _arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)
    return DTYPES.flatmap(lambda dtype: hnp.arrays(np.dtype(dtype), shapes))


@settings(max_examples=60, deadline=None)
@given(arrays=st.lists(_arrays(), min_size=1, max_size=4), transpose=st.booleans())
def test_the_fast_dataset_writes_the_file_h5py_writes(
    arrays: list[np.ndarray], transpose: bool
) -> None:
    """Byte for byte, for any numeric dtype and shape, scalars, empty and non-contiguous
    arrays included: the fast path is an optimisation, not a format."""
    if transpose:
        arrays = [a.T for a in arrays]  # Fortran order: must be written in C order
    with tempfile.TemporaryDirectory() as tmp:
        mine, theirs = Path(tmp, "mine.h5"), Path(tmp, "theirs.h5")
        with h5py.File(mine, "w") as f:
            group = f.create_group("g")
            for i, array in enumerate(arrays):
                _contiguous_dataset(group, f"a{i}", array)
        with h5py.File(theirs, "w") as f:
            group = f.create_group("g")
            for i, array in enumerate(arrays):
                group.create_dataset(f"a{i}", data=array)
        assert mine.read_bytes() == theirs.read_bytes()
        with h5py.File(mine, "r") as f:
            for i, array in enumerate(arrays):
                stored = f[f"g/a{i}"]
                assert stored.dtype == array.dtype and stored.shape == array.shape
                np.testing.assert_array_equal(stored[()], array)


def test_strings_keep_h5pys_conversion(tmp_path: Path) -> None:
    names = np.array(["conv/kernel", "dense/bias"], dtype=object)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        _contiguous_dataset(f, "names", names.astype(h5py.string_dtype()))
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert [n.decode() for n in f["names"][()]] == list(names)


def test_run_here_runs_on_the_caller_after_every_job_queued_before() -> None:
    import threading
    import time

    from tinspect.record.writer import BackgroundWriter

    seen: list[tuple[str, str]] = []

    def job(label: str, pause: float = 0.0) -> None:
        time.sleep(pause)
        seen.append((label, threading.current_thread().name))

    def fail() -> None:
        raise OSError("disk full")

    writer = BackgroundWriter()
    writer.submit("a", lambda: job("a", 0.05))
    writer.submit("b", lambda: job("b", 0.05))
    writer.run_here("c", lambda: job("c"))
    writer.run_here("broken", fail)
    writer.submit("d", lambda: job("d"))
    writer.close()
    here = threading.current_thread().name
    assert seen == [
        ("a", "tinspect-writer"),
        ("b", "tinspect-writer"),
        ("c", here),
        ("d", "tinspect-writer"),
    ]
    assert [label for label, _ in writer.take_errors()] == ["broken"]


def test_run_here_lets_the_user_stop_training() -> None:
    """Ctrl-C during an inline checkpoint stops training; it is no checkpoint error."""
    from tinspect.record.writer import BackgroundWriter

    def interrupted() -> None:
        raise KeyboardInterrupt

    writer = BackgroundWriter()
    try:
        with pytest.raises(KeyboardInterrupt):
            writer.run_here("epoch 1", interrupted)
        assert writer.take_errors() == []
    finally:
        writer.close()
