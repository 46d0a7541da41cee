"""kill -9 during a torch training loop never leaves a half checkpoint a reader can see.

The torch ``Recorder`` writes with the same code as the Keras callback (temporary name,
fsync, ``os.replace``; whole lines for metrics.jsonl). A child process trains an MLP
forever with ``Recorder(every=1)`` and float32 activations (≈4 MB per checkpoint, so
writes take long enough to be interrupted); the test kills it at several moments — while
a temporary checkpoint is partly on disk, on the third checkpoint, and after a seeded
random delay — and then reads every complete checkpoint in full.
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
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tinspect import format as fmt

from .checkpoint_io import read

SEED = 7
N_RECORDED = 512
WIDTHS = {"0": 512, "1": 512, "2": 512, "3": 512, "4": 256, "5": 256, "6": 10}
#: Give up on a scenario's moment after this many seconds and kill it anyway.
PATIENCE_S = 60.0
POLL_S = 0.003

VICTIM = f"""
import sys
import numpy as np
import torch
from torch import nn
import tinspect
from tinspect.torch import Recorder

torch.set_num_threads(1)
torch.manual_seed({SEED})
rng = np.random.default_rng({SEED})
x = rng.normal(size=(1024, 64)).astype("float32")
y = x[:, :10].argmax(axis=1)
model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.Tanh(),
                      nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
rec = Recorder(sys.argv[1], tinspect.make_header(name="victim"), model,
               samples=(x[:{N_RECORDED}], y[:{N_RECORDED}]), activations_dtype="float32",
               checks=False, optimizer=optimizer)
rec.checkpoint(0)
epoch = 0
while True:
    epoch += 1
    for start in range(0, 1024, 128):
        loss = nn.functional.cross_entropy(model(torch.from_numpy(x[start:start + 128])),
                                           torch.from_numpy(y[start:start + 128]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rec.checkpoint(epoch, metrics={{"loss": loss}})
"""


def listing(logdir: Path) -> tuple[dict[int, Path], dict[str, int]]:
    complete: dict[int, Path] = {}
    temporary: dict[str, int] = {}
    for directory in logdir.glob(f"*/{fmt.CHECKPOINTS_DIR}"):
        for entry in os.scandir(directory):
            epoch = fmt.parse_checkpoint_name(entry.name)
            if epoch is not None:
                complete[epoch] = Path(entry.path)
            elif fmt.is_temporary(entry.name):
                with contextlib.suppress(FileNotFoundError):  # renamed since scandir
                    temporary[entry.name] = entry.stat().st_size
            else:
                raise AssertionError(f"a file readers cannot classify: {entry.path}")
    return complete, temporary


def check_logs(logdir: Path, label: str) -> int:
    (model_dir,) = [p for p in logdir.iterdir() if p.is_dir()]
    for entry in model_dir.iterdir():
        assert entry.name in (fmt.MODEL_JSON, fmt.METRICS_JSONL, fmt.CHECKPOINTS_DIR) or (
            fmt.is_temporary(entry.name)
        ), f"{label}: {entry}"
    info = json.loads((model_dir / fmt.MODEL_JSON).read_text())
    assert info["recording"]["layers"] == list(WIDTHS), label
    metrics = model_dir / fmt.METRICS_JSONL
    if metrics.exists():
        lines = metrics.read_text().split("\n")
        for number, line in enumerate(lines[:-1], start=1):  # only the last may be torn
            assert json.loads(line)[fmt.METRIC_EPOCH] == number, (label, line)
    complete, _ = listing(logdir)
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(1024, 64)).astype("float32")[:N_RECORDED]
    for epoch, path in sorted(complete.items()):
        data = read(path)  # every dataset read in full
        assert int(data["attrs"][fmt.ATTR_EPOCH]) == epoch, (label, path)
        np.testing.assert_array_equal(data["data_samples/x"], x)
        for name, width in WIDTHS.items():
            activations = data[f"layers/{name}/activations"]
            assert activations.shape == (N_RECORDED, width), (label, path, name)
            assert np.isfinite(activations).all(), (label, path, name)
        assert data["layers/6/weights/weight"].shape == (10, 256)
        assert data["summary/stats"].shape == (len(data["summary/names"]), len(fmt.SUMMARY_COLUMNS))
    return len(complete)


@pytest.mark.slow
def test_kill_9_in_a_torch_loop_leaves_only_complete_checkpoints(tmp_path: Path) -> None:
    script = tmp_path / "victim.py"
    script.write_text(VICTIM, encoding="utf-8")
    delay = random.Random(SEED).uniform(0.3, 2.0)
    scenarios = {
        "mid-write": lambda complete, temps, since: len(complete) >= 2 and any(temps.values()),
        "third": lambda complete, temps, since: 3 in complete,
        "random": lambda complete, temps, since: since is not None and since >= delay,
    }
    landed_mid_write = False
    for label, should_kill in scenarios.items():
        logdir = tmp_path / label
        env = dict(os.environ)
        process = subprocess.Popen(
            [sys.executable, str(script), str(logdir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started, first = time.monotonic(), None
        try:
            while True:
                if process.poll() is not None:
                    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    pytest.fail(f"{label}: the victim exited by itself:\n{err[-3000:]}")
                complete, temps = listing(logdir) if logdir.exists() else ({}, {})
                now = time.monotonic()
                if complete and first is None:
                    first = now
                since = None if first is None else now - first
                if should_kill(complete, temps, since) or now - started > PATIENCE_S:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    landed_mid_write |= label == "mid-write" and any(temps.values())
                    break
                time.sleep(POLL_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            if process.stderr:
                process.stderr.close()
        assert process.returncode == -signal.SIGKILL, (label, process.returncode)
        assert check_logs(logdir, label) >= 1, label
    assert landed_mid_write, "no kill landed while a checkpoint was being written"
