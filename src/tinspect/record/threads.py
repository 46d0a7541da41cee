"""How the recorder's own threads use the CPU: idle priority, and one OpenMP thread for torch.

The recorder's background threads (the checkpoint writer, the attribution thread) must only
use CPU that training leaves idle. Two rules do that:

- ``idle_priority``: Linux's ``SCHED_IDLE`` policy for the calling thread, so the kernel
  preempts it whenever a training thread wants its core.
- ``openmp_threads(1)``: where torch is loaded, the calling thread's torch ops run on one
  thread instead of an OpenMP team of their own. PyTorch's CPU builds run intra-op work on
  GNU OpenMP, which gives every calling thread its own team of ``torch.get_num_threads()``
  threads. A second team makes libgomp see more OpenMP threads than CPUs, and then (as its
  manual says for ``GOMP_SPINCOUNT``) every thread, training's too, spins ~100 times instead
  of 300,000 before it sleeps between parallel regions: training's team then sleeps and is
  woken at every op. Measured on the torch backend's demo conv fit (2 cores): 1.97 cores
  busy in a plain fit, 1.2 once the writer had run one forward pass with its own team;
  ``bench.record_backend`` (6-8 paired rounds) 1.67× the plain fit → 1.08-1.16× with this
  rule, the 28×28 model 1.34× → 1.07-1.16×.

Neither rule imports a framework: torch is touched only if it is already imported.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


def idle_priority() -> bool:
    """Give the calling thread Linux's ``SCHED_IDLE`` policy; False where that is not possible.

    The writer's work should use CPU that training leaves idle. Under the normal policy
    it competes with TensorFlow's pool threads for the cores (a training op split across
    both cores may wait for the shard whose core the writer holds: our guess at the
    mechanism, not measured). Under ``SCHED_IDLE`` the kernel preempts the writer whenever
    a training thread wakes up. Measured on the bench (16 paired rounds): median 0.992×
    the fit time with a normal-priority writer (nice 19 measured no effect). When training
    blocks on the writer (its bounded queue is full, or ``on_train_end`` waits for it),
    the cores are idle and it runs at full speed.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
    except (AttributeError, OSError):  # not Linux, or not allowed: the normal policy
        return False
    return True


#: Shared libraries of torch's CPU kernels per platform; they link OpenMP (and MKL).
_TORCH_CPU_LIBRARIES = ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll")


def openmp_threads(n: int = 1) -> int | None:
    """Run the calling thread's torch ops on ``n`` threads; returns how many they ran on
    before (torch's count for the process), or None where this does not apply.

    Only the calling thread changes: OpenMP's thread count is a per-thread setting
    (``omp_set_num_threads``), and so is MKL's ``MKL_Set_Num_Threads_Local``, both called
    through torch's own CPU library, which links the OpenMP runtime torch uses.
    ``torch.set_num_threads`` would not do: it also sets MKL's process-wide count, and so
    training's. ``torch.get_num_threads()`` runs first because torch sets each thread's
    OpenMP count at its first parallel op and would otherwise undo this one.
    """
    torch = sys.modules.get("torch")
    where = getattr(torch, "__file__", None)
    if torch is None or not where:
        return None
    try:
        before = int(torch.get_num_threads())
        library = _torch_cpu_library(Path(where).parent / "lib")
        if library is None:
            return None
        library.omp_set_num_threads(ctypes.c_int(n))
    except (AttributeError, OSError, RuntimeError):  # another build: leave it as it is
        return None
    set_mkl = getattr(library, "MKL_Set_Num_Threads_Local", None)  # absent without MKL
    if set_mkl is not None:
        set_mkl(ctypes.c_int(n))
    return before


def _torch_cpu_library(directory: Path) -> ctypes.CDLL | None:
    for name in _TORCH_CPU_LIBRARIES:
        path = directory / name
        if path.exists():
            return ctypes.CDLL(str(path))  # loaded already: the same handle
    return None


def background_thread() -> int | None:
    """What a recorder's background thread calls first: idle priority, one OpenMP thread.

    Returns torch's thread count for the process (None without torch): the writer uses
    it again for the last checkpoint, which training waits for (``BackgroundWriter``).
    """
    idle_priority()
    return openmp_threads(1)
