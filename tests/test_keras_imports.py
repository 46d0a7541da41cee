"""A recorded fit imports what a plain fit imports: no other Keras backend, no networkx.

Keras' config serialization imports TensorFlow wherever it is installed, and the checks'
layer graph used to import networkx; inside a user's first fit either cost seconds
(``tinspect.record.keras_imports``). Run in fresh interpreters: this test process has
imported everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import json, sys, tempfile
    import keras
    import numpy as np
    import tinspect
    from tinspect.keras import InspectCheckpoint

    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 64)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(3, activation="softmax")(h)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = InspectCheckpoint(
        tempfile.mkdtemp(), tinspect.make_header(name="probe"), x[:32], every=1
    )
    before = set(sys.modules)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    new = sorted({m.split(".")[0] for m in set(sys.modules) - before})
    print(json.dumps({"new": new, "errors": [str(e) for _, e in callback.errors]}))
    """
)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_recorded_fit_imports_no_tensorflow_and_no_networkx(backend: str) -> None:
    pytest.importorskip(backend)
    pytest.importorskip("tensorflow")  # installed: Keras would import it
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == []
    assert "tensorflow" not in result["new"] and "networkx" not in result["new"], result["new"]


def test_the_guard_answers_only_while_keras_has_not_decided(monkeypatch) -> None:
    from keras.src.utils import module_utils

    from tinspect.record import keras_imports

    lazy = module_utils.LazyModule("tinspect_no_such_module")
    monkeypatch.setattr(module_utils, "tensorflow", lazy)
    monkeypatch.setattr(keras_imports.keras.backend, "backend", lambda: "jax")
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    with keras_imports.no_tensorflow_import():
        assert lazy.available is False
        with keras_imports.no_tensorflow_import():  # nested: the outer one restores
            assert lazy.available is False
        assert lazy._available is False
    assert lazy._available is None  # undecided again: Keras decides as it would have
    lazy._available = True  # decided: left alone
    with keras_imports.no_tensorflow_import():
        assert lazy.available is True
    assert lazy._available is True
