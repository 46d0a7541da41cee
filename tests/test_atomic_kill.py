"""kill -9 during training never leaves a half checkpoint that a reader can see.

``InspectCheckpoint`` promises that every file in a model directory appears whole or not at
all: checkpoints are written under a temporary name (``.epoch-NNNN.h5.tmp-…``) and renamed
with ``os.replace``, ``model.json`` likewise, and ``metrics.jsonl`` grows by whole lines.

This test trains a small model in child processes, each with its own logdir, and sends
SIGKILL at different moments: as soon as the first file shows up in ``checkpoints/``, right
when ``epoch-0003.h5`` appears, while a temporary checkpoint is partly on disk, and after a
seeded random delay. The checkpoints are large enough (≈3 MB, ≈0.15 s to write) that most
kills land while a file is being written. While the children run, the test also acts as a
live reader and opens every complete checkpoint the moment it appears.

After each kill every file named like a complete checkpoint must open read-only with h5py
and hold the full layout, read in full: root attributes, ``data_samples``, the activations
and weights of every recorded layer, and the summary table. Temporary files may remain and
are ignored; ``model.json`` must parse and every line of ``metrics.jsonl`` but a torn last
one must parse.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tinspect import format as fmt

SEED = 1234
N_TRAIN = 1024
N_RECORDED = 512
N_FEATURES = 64
N_CLASSES = 10
#: Recorded layers and their widths; the activations of each are (N_RECORDED, width).
LAYER_UNITS = {"d1": 512, "d2": 512, "d3": 256, "out": N_CLASSES}
LAYER_INPUTS = {"d1": N_FEATURES, "d2": 512, "d3": 512, "out": 256}
#: The whole test (all children) must finish within this many seconds, or it fails.
DEADLINE_S = 150.0
POLL_S = 0.004
#: How many children train at once (2 cores: two TensorFlow imports overlap well).
PARALLEL = 2

VICTIM = f'''
"""Train a small Dense model forever with InspectCheckpoint(every=1) until killed."""
import sys

import keras
import numpy as np

import tinspect
from tinspect.keras import InspectCheckpoint

keras.utils.set_random_seed({SEED})
rng = np.random.default_rng({SEED})
x = rng.normal(size=({N_TRAIN}, {N_FEATURES})).astype("float32")
y = x[:, :{N_CLASSES}].argmax(axis=1)
inputs = keras.Input(shape=({N_FEATURES},), name="inp")
h = keras.layers.Dense({LAYER_UNITS["d1"]}, activation="relu", name="d1")(inputs)
h = keras.layers.Dense({LAYER_UNITS["d2"]}, activation="relu", name="d2")(h)
h = keras.layers.Dense({LAYER_UNITS["d3"]}, activation="tanh", name="d3")(h)
outputs = keras.layers.Dense({N_CLASSES}, activation="softmax", name="out")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
callback = InspectCheckpoint(
    sys.argv[1],
    tinspect.make_header(name="victim"),
    samples=(x[:{N_RECORDED}], y[:{N_RECORDED}]),
    every=1,
)
model.fit(x, y, batch_size=128, epochs=100_000, verbose=0, callbacks=[callback])
'''


def recorded_samples() -> tuple[np.ndarray, np.ndarray]:
    """The samples the victim records (same seed and formula as ``VICTIM``)."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(N_TRAIN, N_FEATURES)).astype("float32")
    y = x[:, :N_CLASSES].argmax(axis=1)
    return x[:N_RECORDED], y[:N_RECORDED]


@dataclass
class Listing:
    """What a reader sees in a ``checkpoints`` directory at one moment."""

    complete: dict[int, Path] = field(default_factory=dict)
    temporary: dict[str, int] = field(default_factory=dict)  # name → size in bytes
    other: list[str] = field(default_factory=list)


def list_checkpoints(logdir: Path) -> Listing:
    """Sort the entries of ``<logdir>/*/checkpoints`` as a reader would."""
    listing = Listing()
    for directory in logdir.glob(f"*/{fmt.CHECKPOINTS_DIR}"):
        for entry in os.scandir(directory):
            epoch = fmt.parse_checkpoint_name(entry.name)
            if epoch is not None:
                listing.complete[epoch] = Path(entry.path)
            elif fmt.is_temporary(entry.name):
                with contextlib.suppress(FileNotFoundError):  # renamed since scandir
                    listing.temporary[entry.name] = entry.stat().st_size
            else:
                listing.other.append(entry.name)
    return listing


@dataclass
class Scenario:
    """One victim process and the moment it is killed."""

    label: str
    should_kill: Callable[[Scenario, Listing, float], bool]
    logdir: Path = Path()
    process: subprocess.Popen[bytes] | None = None
    stderr_path: Path = Path()
    started: float = 0.0
    first_complete_at: float | None = None
    delay: float = 0.0
    killed_at: float | None = None
    live_checked: set[int] = field(default_factory=set)
    temps_before_kill: dict[str, int] = field(default_factory=dict)
    after: Listing = field(default_factory=Listing)

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "<no stderr>"


def kill_on_first_file(s: Scenario, seen: Listing, now: float) -> bool:
    return bool(seen.complete or seen.temporary)


def kill_on_epoch_3(s: Scenario, seen: Listing, now: float) -> bool:
    return 3 in seen.complete


def kill_while_partly_written(s: Scenario, seen: Listing, now: float) -> bool:
    return len(seen.complete) >= 2 and any(size > 0 for size in seen.temporary.values())


def kill_while_mostly_written(s: Scenario, seen: Listing, now: float) -> bool:
    return len(seen.complete) >= 5 and any(size >= 2_000_000 for size in seen.temporary.values())


def kill_after_random_delay(s: Scenario, seen: Listing, now: float) -> bool:
    return s.first_complete_at is not None and now - s.first_complete_at >= s.delay


def check_checkpoint(path: Path, epoch: int, model_id: str, recorded_layers: list[str]) -> None:
    """Open a complete checkpoint read-only and read everything a reader would."""
    x, y = recorded_samples()
    with h5py.File(path, "r") as f:
        assert f.attrs[fmt.ATTR_FORMAT_VERSION] == fmt.FORMAT_VERSION, path
        assert f.attrs[fmt.ATTR_MODEL_ID] == model_id, path
        assert int(f.attrs[fmt.ATTR_EPOCH]) == epoch, (path, f.attrs[fmt.ATTR_EPOCH])
        assert int(f.attrs[fmt.ATTR_N_SAMPLES]) == N_RECORDED, path
        json.loads(f.attrs[fmt.ATTR_METRICS])

        samples = f[fmt.SAMPLES_GROUP]
        np.testing.assert_array_equal(samples[fmt.SAMPLES_X][()], x, err_msg=str(path))
        np.testing.assert_array_equal(samples[fmt.SAMPLES_Y_LABEL][()], y, err_msg=str(path))
        prediction = samples[fmt.SAMPLES_Y_PREDICTION][()]
        assert prediction.shape == (N_RECORDED, N_CLASSES), (path, prediction.shape)
        assert np.isfinite(prediction).all(), path
        np.testing.assert_allclose(prediction.sum(axis=1), 1.0, atol=1e-3, err_msg=str(path))

        layers = f[fmt.LAYERS_GROUP]
        assert sorted(layers) == sorted(LAYER_UNITS), (path, list(layers))
        for name in recorded_layers:
            group = layers[fmt.h5_key(name)]
            activations = group[fmt.ACTIVATIONS][()]
            assert activations.shape == (N_RECORDED, LAYER_UNITS[name]), (path, name)
            assert np.isfinite(activations).all(), (path, name)
            means = group[fmt.MEAN_CLASS_ACTIVATIONS][()]
            assert means.shape == (N_CLASSES, LAYER_UNITS[name]), (path, name)
            weights = group[fmt.WEIGHTS_GROUP]
            kernel, bias = weights["kernel"][()], weights["bias"][()]
            assert kernel.shape == (LAYER_INPUTS[name], LAYER_UNITS[name]), (path, name)
            assert bias.shape == (LAYER_UNITS[name],), (path, name)

        summary = f[fmt.SUMMARY_GROUP]
        names = [n.decode() if isinstance(n, bytes) else n for n in summary[fmt.SUMMARY_NAMES][()]]
        expected_rows = {fmt.summary_row_name(n, fmt.ACTIVATIONS) for n in recorded_layers} | {
            fmt.summary_row_name(n, f"{fmt.WEIGHTS_GROUP}/{var}")
            for n in LAYER_UNITS
            for var in ("kernel", "bias")
        }
        assert set(names) == expected_rows, (path, names)
        stats = summary[fmt.SUMMARY_STATS][()]
        assert stats.shape == (len(names), len(fmt.SUMMARY_COLUMNS)), (path, stats.shape)
        columns = json.loads(summary[fmt.SUMMARY_STATS].attrs[fmt.ATTR_COLUMNS])
        assert columns == list(fmt.SUMMARY_COLUMNS), path
        count = stats[names.index(fmt.summary_row_name("d1", fmt.ACTIVATIONS)), 0]
        assert count == N_RECORDED * LAYER_UNITS["d1"], (path, count)
        counts = summary[fmt.SUMMARY_HIST_COUNTS][()]
        edges = summary[fmt.SUMMARY_HIST_EDGES][()]
        assert counts.shape == (len(names), fmt.SUMMARY_BINS), path
        assert edges.shape == (len(names), fmt.SUMMARY_BINS + 1), path


def read_model_json(logdir: Path) -> dict[str, Any]:
    (model_dir,) = [p for p in logdir.iterdir() if p.is_dir()]
    data: dict[str, Any] = json.loads((model_dir / fmt.MODEL_JSON).read_text(encoding="utf-8"))
    return data


def check_model_dir(s: Scenario) -> None:
    """Everything a reader may open after the kill is whole."""
    model_dirs = [p for p in s.logdir.iterdir() if p.is_dir()]
    assert len(model_dirs) == 1, (s.label, model_dirs)
    model_dir = model_dirs[0]
    for entry in model_dir.iterdir():
        assert entry.name in (fmt.MODEL_JSON, fmt.METRICS_JSONL, fmt.CHECKPOINTS_DIR) or (
            fmt.is_temporary(entry.name)
        ), f"{s.label}: unexpected file a reader could see: {entry}"

    model = read_model_json(s.logdir)
    assert model["format_version"] == fmt.FORMAT_VERSION
    assert model["header"]["name"] == "victim"
    recorded = list(model["recording"]["layers"])
    assert recorded == list(LAYER_UNITS), (s.label, recorded)

    metrics = model_dir / fmt.METRICS_JSONL
    if metrics.exists():
        lines = metrics.read_text(encoding="utf-8").split("\n")
        # A finished line ends in "\n"; only the fragment after the last one may be torn.
        for number, line in enumerate(lines[:-1], start=1):
            row = json.loads(line)
            assert row[fmt.METRIC_EPOCH] == number, (s.label, number, line)

    assert not s.after.other, f"{s.label}: files readers cannot classify: {s.after.other}"
    for epoch, path in sorted(s.after.complete.items()):
        check_checkpoint(path, epoch, model["header"]["id"], recorded)


def start(s: Scenario, script: Path, tmp_path: Path) -> None:
    s.logdir = tmp_path / s.label
    s.stderr_path = tmp_path / f"{s.label}.stderr"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_HOME=str(tmp_path / "keras_home"))
    env.pop("CUDA_VISIBLE_DEVICES", None)
    with s.stderr_path.open("wb") as stderr:
        s.process = subprocess.Popen(
            [sys.executable, str(script), str(s.logdir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    s.started = time.monotonic()


def kill(s: Scenario) -> None:
    if s.process is not None and s.process.poll() is None:
        s.process.send_signal(signal.SIGKILL)
        s.process.wait(timeout=30)


def live_read(s: Scenario, seen: Listing) -> None:
    """Be a reader while training runs: open each new complete checkpoint once."""
    new = sorted(set(seen.complete) - s.live_checked)
    if not new:
        return
    model = read_model_json(s.logdir)  # exists before the first checkpoint is written
    for epoch in new[:1]:  # one per poll keeps the kill timing sharp
        check_checkpoint(seen.complete[epoch], epoch, model["header"]["id"], list(LAYER_UNITS))
        s.live_checked.add(epoch)


def run_until_killed(scenarios: list[Scenario], script: Path, tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    pending = list(scenarios)
    running: list[Scenario] = []
    try:
        while pending or running:
            while pending and len(running) < PARALLEL:
                s = pending.pop(0)
                start(s, script, tmp_path)
                running.append(s)
            now = time.monotonic()
            if now > deadline:
                pytest.fail(
                    f"timed out after {DEADLINE_S:.0f} s; still running: "
                    + ", ".join(f"{s.label} (stderr: {s.stderr_tail()})" for s in running)
                )
            for s in list(running):
                assert s.process is not None
                if s.process.poll() is not None:
                    pytest.fail(
                        f"{s.label}: the victim exited by itself with code "
                        f"{s.process.returncode} before it was killed:\n{s.stderr_tail()}"
                    )
                seen = list_checkpoints(s.logdir)
                if seen.complete and s.first_complete_at is None:
                    s.first_complete_at = now
                if s.should_kill(s, seen, now):
                    kill(s)
                    s.killed_at = time.monotonic() - s.started
                    s.temps_before_kill = dict(seen.temporary)
                    assert s.process.returncode == -signal.SIGKILL, s.process.returncode
                    running.remove(s)
                    continue
                live_read(s, seen)
            time.sleep(POLL_S)
    finally:
        for s in scenarios:
            kill(s)


@pytest.mark.slow
def test_kill_9_never_leaves_a_half_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "victim.py"
    script.write_text(VICTIM, encoding="utf-8")
    rng = random.Random(SEED)
    scenarios = [
        Scenario("first-file", kill_on_first_file),
        Scenario("epoch-3", kill_on_epoch_3),
        Scenario("partly-written", kill_while_partly_written),
        Scenario("mostly-written", kill_while_mostly_written),
        Scenario("random-delay-1", kill_after_random_delay, delay=rng.uniform(0.05, 1.5)),
        Scenario("random-delay-2", kill_after_random_delay, delay=rng.uniform(0.05, 1.5)),
    ]
    run_until_killed(scenarios, script, tmp_path)

    report = []
    for s in scenarios:
        s.after = list_checkpoints(s.logdir)
        check_model_dir(s)
        temps = ", ".join(f"{n} ({b} B)" for n, b in sorted(s.after.temporary.items()))
        report.append(
            f"{s.label}: killed {s.killed_at:.2f} s after start, "
            f"{len(s.after.complete)} complete checkpoints "
            f"(epochs {min(s.after.complete, default=None)}..{max(s.after.complete, default=None)},"
            f" {len(s.live_checked)} read live), "
            f"{len(s.after.temporary)} temporary files left [{temps}] "
            f"({len(s.temps_before_kill)} seen by the last poll before the kill)"
        )
    mid_write = sum(bool(s.after.temporary) for s in scenarios)
    report.append(f"{mid_write} of {len(scenarios)} kills left a temporary (half) checkpoint")
    summary = "\n".join(report)
    print(summary)

    checked = sum(len(s.after.complete) for s in scenarios)
    assert checked > 0, (
        f"no kill left a complete checkpoint to check, so nothing was proven:\n{summary}"
    )
    assert len(scenarios[1].after.complete) >= 4, summary  # killed when epoch-0003 appeared
