"""Which process records (``tinspect.record.distributed``) in a TensorFlow multi-worker
run, read from ``TF_CONFIG``.

Keras 3's own ``fit`` does not run under ``MultiWorkerMirroredStrategy`` (it fails with
"Attempt to convert a value (PerReplica...)" on numpy and ``tf.data`` inputs alike,
keras-team/keras#20585), so no two-process test can train that way; the rule is tested
here from the variable every TensorFlow cluster task is started with. JAX and torch
processes are tested for real, two on loopback, in ``test_distributed.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinspect.record.distributed import process_count, process_index

WORKERS = ["host0:2222", "host1:2222"]


def tf_config(task_type: str, index: Any, **cluster: list[str]) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


@pytest.mark.parametrize(
    ("config", "index", "count"),
    [
        (tf_config("worker", 0, worker=WORKERS), 0, 2),
        (tf_config("worker", 1, worker=WORKERS), 1, 2),
        # With a chief, the chief is process 0 and worker 0 is not.
        (tf_config("chief", 0, chief=["c:1"], worker=WORKERS), 0, 3),
        (tf_config("worker", 0, chief=["c:1"], worker=WORKERS), 1, 3),
        (tf_config("worker", 1, chief=["c:1"], worker=WORKERS), 2, 3),
        # Parameter servers and evaluators never record.
        (tf_config("ps", 0, worker=WORKERS, ps=["p:1"]), 3, 3),
        (tf_config("evaluator", 0, worker=WORKERS, evaluator=["e:1"]), 3, 3),
        (tf_config("worker", "1", worker=WORKERS), 1, 2),  # an index given as text
    ],
)
def test_tf_config_names_the_recording_process(
    monkeypatch: pytest.MonkeyPatch, config: str, index: int, count: int
) -> None:
    monkeypatch.setenv("TF_CONFIG", config)
    assert process_index("tensorflow") == index
    assert process_count("tensorflow") == count


@pytest.mark.parametrize(
    "config",
    [
        "",
        "not json",
        "[1, 2]",
        '{"cluster": {"worker": ["a", "b"]}}',  # no task: not a cluster member
        '{"task": {"index": 1}, "cluster": {"worker": ["a", "b"]}}',  # no type
        '{"task": "worker", "cluster": {}}',
        pytest.param("[" * 100_000, id="nested-deeper-than-json-parses"),
    ],
)
def test_a_malformed_tf_config_is_a_one_process_run(
    monkeypatch: pytest.MonkeyPatch, config: str
) -> None:
    monkeypatch.setenv("TF_CONFIG", config)
    assert process_index("tensorflow") == 0
    assert process_count("tensorflow") == 1


def test_malformed_parts_of_a_tf_config_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad index is index 0 of its role; a role that is not a list of tasks is left out."""
    for bad in ("x", "²", "9" * 5000, -1, 1.5, True, None, [1]):
        monkeypatch.setenv("TF_CONFIG", tf_config("worker", bad, worker=WORKERS))
        assert process_index("tensorflow") == 0, bad
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": WORKERS, "chief": 5}, "task": {"type": "worker"}}),
    )
    assert (process_index("tensorflow"), process_count("tensorflow")) == (0, 2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["task", "type", "index", "cluster", "worker", "chief", "ps"])
            | st.text(max_size=4),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


# An environment variable holds any text but NUL (and no lone surrogates).
env_text = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=60
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(env_text, json_values.map(json.dumps)))
def test_any_tf_config_gives_an_index_and_a_count(text: str) -> None:
    """Whatever the variable holds, asking never raises (it runs in ``on_train_begin``)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("TF_CONFIG", text)
        index, count = process_index("tensorflow"), process_count("tensorflow")
    assert isinstance(index, int) and index >= 0
    assert isinstance(count, int) and count >= 1


def test_without_tf_config_or_on_another_backend_this_process_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert (process_index("tensorflow"), process_count("tensorflow")) == (0, 1)
    monkeypatch.setenv("TF_CONFIG", tf_config("worker", 1, worker=WORKERS))
    assert process_index("numpy") == 0  # TF_CONFIG means nothing outside TensorFlow


@pytest.mark.parametrize(("rank", "writes"), [(0, True), (1, False)])
def test_only_the_first_tensorflow_worker_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank: int, writes: bool
) -> None:
    """The callback of worker 1 records nothing and never creates its logdir; worker 0's
    records as usual (with the cluster's size known, it computes activations on its own
    copy of the model)."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("TF_CONFIG is read on the TensorFlow backend only")
    import tinspect
    from tinspect.keras import InspectCheckpoint

    monkeypatch.setenv("TF_CONFIG", tf_config("worker", rank, worker=WORKERS))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    logdir = tmp_path / "logs"
    header = tinspect.make_header("worker", id="0" * 32)
    callback = InspectCheckpoint(logdir, header, (x[:16], y[:16]))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[callback])
    assert callback.active is writes
    assert callback.errors == []
    assert logdir.exists() is writes
    if writes:
        checkpoints = sorted(p.name for p in logdir.rglob("epoch-*.h5"))
        assert checkpoints == ["epoch-0000.h5", "epoch-0001.h5"]
