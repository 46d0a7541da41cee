"""The recorder on several devices and in multi-process runs, each in fresh interpreters.

Devices and processes are fixed when a backend starts, so every scenario runs
``tests/distributed_worker.py`` in its own process(es). Multi-process runs use two local
processes on the loopback interface: process 0 writes the logs, process 1 never creates
anything in the logdir.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .checkpoint_io import checkpoint, epochs, model_dir

WORKER = Path(__file__).with_name("distributed_worker.py")
ROOT = WORKER.parents[1]
TIMEOUT = 1800  # generous: a loaded 2-core machine runs these 10× slower than idle

pytestmark = pytest.mark.slow


def environment(backend: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env


def start(scenario: str, logdir: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), scenario, str(logdir), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The worker's RESULT line; its whole output in the failure message otherwise."""
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker timed out after {TIMEOUT} s:\n{output[-4000:]}")
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, f"worker failed:\n{output[-4000:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def run(scenario: str, logdir: Path, env: dict[str, str]) -> dict[str, Any]:
    return finish(start(scenario, logdir, env))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_recorded(logdir: Path, last_epoch: int = 2) -> None:
    d = model_dir(logdir)
    assert epochs(d) == list(range(last_epoch + 1))
    last = checkpoint(d, last_epoch)
    assert last["layers/conv/activations"].shape == (48, 8, 8, 4)
    assert last["data_samples/y_prediction"].shape == (48, 3)


def test_tensorflow_mirrored_strategy_on_two_cpus(tmp_path: Path) -> None:
    out = run("mirrored", tmp_path, environment("tensorflow"))
    assert out == {"replicas": 2, "errors": []}
    assert_recorded(tmp_path)


def test_jax_data_parallel_on_two_devices(tmp_path: Path) -> None:
    env = environment("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = run("data-parallel", tmp_path, env)
    assert out == {"devices": 2, "kernel_devices": 2, "errors": []}  # variables replicated
    assert_recorded(tmp_path)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_two_processes_only_process_0_writes(tmp_path: Path, backend: str) -> None:
    """JAX: one DataParallel run over two processes (gloo collectives), the recorder on
    process 0 only, outside the distribution. torch: two ranks of a gloo process group."""
    port = str(free_port())
    logdirs = [tmp_path / "rank0", tmp_path / "rank1"]
    workers = [
        start(f"{backend}-processes", logdirs[rank], environment(backend), str(rank), port)
        for rank in (0, 1)
    ]
    results = [finish(w) for w in workers]
    assert [(r["rank"], r["processes"], r["active"]) for r in results] == [
        (0, 2, True),
        (1, 2, False),
    ]
    assert all(r["errors"] == [] for r in results)
    assert_recorded(logdirs[0])
    assert not logdirs[1].exists()  # process 1 never touched its logdir
    if backend == "jax":  # one model trained by both: the same weights in each process
        assert results[0]["kernel"] == results[1]["kernel"]
