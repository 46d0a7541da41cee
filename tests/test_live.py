"""Reading logs while another process trains and writes them (the viewer's normal case)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tinspect.query import Query, run
from tinspect.store import Severity, Store

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np, keras
    import tinspect
    from tinspect.keras import InspectCheckpoint

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(0.15)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    inputs = keras.Input((16,))
    h = keras.layers.Dense(64, activation="relu", name="h")(inputs)
    out = keras.layers.Dense(2, activation="softmax", name="out")(h)
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cb = InspectCheckpoint(sys.argv[1], tinspect.make_header("live"), (x, y), every=1)
    model.fit(x, y, epochs=int(sys.argv[2]), verbose=0, callbacks=[Slow(), cb])
    """
)


@pytest.mark.slow
def test_store_follows_a_training_process(tmp_path: Path) -> None:
    logdir, epochs = tmp_path / "logs", 12
    logdir.mkdir()
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(tmp_path / "kh"),
        "TINSPECT_CACHE_DIR": "off",
    }
    child = subprocess.Popen(
        [sys.executable, str(script), str(logdir), str(epochs)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = Store(logdir)
    seen_epochs: set[int] = set()
    read_while_running = 0
    deadline = time.monotonic() + 120
    try:
        while child.poll() is None and time.monotonic() < deadline:
            changes = store.refresh()
            for model_id, new in changes.new_checkpoints.items():
                for epoch in new:
                    table = store.summary_table(model_id, epoch)
                    assert table.row("h/activations") is not None
                    seen_epochs.add(epoch)
                    read_while_running += 1
            if store.models and store.model("live").epochs:
                table = run(store, Query(("live/h",), step="histogram", bins=10, epochs="all"))
                assert len(table) == 10 * len(store.model("live").epochs)
            time.sleep(0.05)
    finally:
        if child.poll() is None:
            child.kill()
        _, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr[-2000:]
    store.refresh()
    model = store.model("live")
    assert model.epochs == list(range(epochs + 1))
    assert [m["epoch"] for m in model.metrics] == list(range(1, epochs + 1))
    assert read_while_running >= 3, "the training finished before the store could follow it"
    assert not [p for p in store.problems if p.severity is not Severity.INFO]
