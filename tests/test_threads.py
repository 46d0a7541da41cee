"""The recorder's background threads and torch's OpenMP threads (``tinspect.record.threads``).

Run in a fresh interpreter: torch's thread settings are per process and a test must see the
OpenMP threads a thread's first parallel op creates, which an earlier test would have made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

PROBE = textwrap.dedent(
    """
    import ctypes, json, os, sys, threading
    from pathlib import Path
    import torch
    from tinspect.record.threads import openmp_threads
    from tinspect.record.writer import BackgroundWriter

    torch.set_num_threads(2)
    lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    x = torch.randn(64, 8, 28, 28)
    w = torch.randn(16, 8, 3, 3)
    torch.nn.functional.conv2d(x, w)  # the main thread's team exists before the others run

    def threads() -> set:
        return set(os.listdir("/proc/self/task"))  # ids: a thread still exiting is no new one

    def work(seen: dict, fix: bool) -> None:
        if fix:
            seen["before"] = openmp_threads(1)
        before = threads()
        torch.nn.functional.conv2d(x, w).sum()
        (torch.randn(256, 256) @ torch.randn(256, 256)).sum()
        seen["new_threads"] = len(threads() - before)
        seen["torch_threads"] = torch.get_num_threads()
        seen["mkl_threads"] = lib.MKL_Get_Max_Threads()

    result = {}
    for fix in (True, False):
        seen = {}
        t = threading.Thread(target=work, args=(seen, fix))
        t.start()
        t.join()
        result["with" if fix else "without"] = seen
    in_writer = {}
    writer = BackgroundWriter()
    ran = threading.Event()
    writer.submit("probe", lambda: (in_writer.update(n=torch.get_num_threads()), ran.set()))
    ran.wait(60)
    writer.submit("last", lambda: in_writer.update(last=torch.get_num_threads()), waited=True)
    writer.close()
    result["writer"] = [in_writer["n"], in_writer["last"]]
    result["main"] = [torch.get_num_threads(), lib.MKL_Get_Max_Threads()]
    print(json.dumps(result))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and libtorch_cpu.so")
def test_background_threads_run_torch_on_one_openmp_thread_and_leave_training_alone() -> None:
    """A thread that called ``openmp_threads(1)`` runs torch's parallel ops (conv, matmul)
    without an OpenMP team of its own; a thread that did not starts one (so the probe can
    fail); the writer thread applies it, except to a job training waits for; the main
    thread keeps its two threads, in OpenMP and in MKL."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["with"] == {
        "before": 2,
        "new_threads": 0,
        "torch_threads": 1,
        "mkl_threads": 1,
    }, result
    assert result["without"]["new_threads"] >= 1, result  # its own team: what the rule avoids
    assert result["without"]["torch_threads"] == 2, result
    assert result["writer"] == [1, 2], result  # training waits for the last: all threads
    assert result["main"] == [2, 2], result


def test_without_torch_nothing_is_imported_or_changed() -> None:
    code = (
        "import sys; from tinspect.record.threads import openmp_threads; "
        "print(openmp_threads(1), 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["None", "False"], done.stderr[-2000:]
