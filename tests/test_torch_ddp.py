"""DistributedDataParallel: two local processes (gloo, loopback); only rank 0 writes.

Each process trains a DDP-wrapped MLP on its own shard and calls the recorder like a
single-process loop. Rank 0 writes one model directory; rank 1 writes nothing; the run
ends without a hang (the recorder's forward pass on rank 0 must not enter DDP's
collectives), and the stored weights equal rank 1's final weights (DDP keeps them equal).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tinspect import format as fmt

from .checkpoint_io import epochs, model_dir, read

WORKER = """
import sys
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import tinspect
from tinspect.torch import Recorder

rank, port, logdir, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
torch.manual_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(512, 16)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
model = DistributedDataParallel(nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
header = tinspect.make_header(name="ddp", id="0123456789abcdef0123456789abcdef")
rec = Recorder(logdir, header, model, samples=(x[:64], y[:64]), optimizer=optimizer)
rec.checkpoint(0)
shard = slice(rank * 256, (rank + 1) * 256)
for epoch in (1, 2):
    for start in range(0, 256, 32):
        xb = torch.from_numpy(x[shard][start:start + 32])
        yb = torch.from_numpy(y[shard][start:start + 32])
        loss = nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rec.checkpoint(epoch, metrics={"loss": loss})
rec.close()
np.savez(out, **{k: v.numpy() for k, v in model.module.state_dict().items()})
print(f"rank {rank} active {rec.active}", flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ddp_two_processes_only_rank_0_writes(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    logdir = tmp_path / "logs"
    port = str(free_port())
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), port, str(logdir), str(tmp_path / f"w{rank}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        for rank in (0, 1)
    ]
    outputs = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=240)
            outputs.append(out.decode())
            assert process.returncode == 0, err.decode()[-3000:]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert "rank 0 active True" in outputs[0] and "rank 1 active False" in outputs[1]
    assert len([p for p in logdir.iterdir() if p.is_dir()]) == 1
    directory = model_dir(logdir)
    assert epochs(directory) == [0, 1, 2]
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(2))
    final = np.load(tmp_path / "w1.npz")
    for key in final.files:  # the wrapped module's names: no "module." prefix
        layer, variable = key.rsplit(".", 1)
        np.testing.assert_array_equal(last[f"layers/{layer}/weights/{variable}"], final[key])
    info = json.loads((directory / fmt.MODEL_JSON).read_text())
    assert info["status"]["state"] == "finished"
    assert [layer["name"] for layer in info["architecture"]["layers"]] == ["input", "0", "1", "2"]
