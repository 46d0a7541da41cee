"""What recording with ``tinspect.torch.Recorder`` costs a plain PyTorch training loop.

Run it with ``python -m bench.torch_record`` (``make bench``) from the repository root.

As in ``bench.record``, only ratios are reported: on this kind of machine (2 cores, shared)
a run varies by ±30 %, so every figure is a ratio against a plain loop measured in the
same process and the same round. Each round trains one fresh, identically seeded model per
variant — the plain loop, the loop with ``Recorder`` (every epoch, 512 samples, every
layer, checks on), and with ``checks=False`` — in an order that rotates from round to
round; the ratio is taken within each round, the median (min, max) over rounds is
reported, and the first round only warms up.

Two bench models, on digits: the issue's MLP and its small CNN with a residual add
(``tests/torch_models.py``). Epochs are short (the whole training set of 1,437 digits,
batch 32), so a recorder that writes every epoch is at its worst here. The time spent
inside ``checkpoint()`` (the hooked forward pass and the state_dict copy, on the training
thread) is reported separately from the whole: the rest of the cost is the writer thread
(summaries, HDF5, checks) competing for the two cores.

Torch runs on one intra-op thread here (``torch.set_num_threads(1)``): on this shared
2-core machine its default of 2 spinning threads made an MLP epoch 40× slower under load
(0.07 s → 2.7 s), which drowns any ratio in noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tinspect
from tinspect.torch import Recorder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import torch_models as tm

SEED = 0
EPOCHS = 5
BATCH_SIZE = 32
N_SAMPLES = 512
ROUNDS = 7
RESULTS = Path(__file__).resolve().parent / "results" / "torch_record.json"

torch.set_num_threads(1)

PLAIN, RECORD, NO_CHECKS = "plain", "recorder", "recorder_no_checks"
VARIANTS = (PLAIN, RECORD, NO_CHECKS)
MODELS: dict[str, tuple[Callable[[], torch.nn.Module], bool]] = {
    "mlp": (tm.mlp, False),
    "cnn_residual": (tm.SmallCNN, True),
}


def rotated(items: Sequence[str], k: int) -> list[str]:
    k %= len(items)
    return [*items[k:], *items[:k]]


def fit(
    variant: str, build: Callable[[], torch.nn.Module], images: bool, workdir: Path, epochs: int
) -> tuple[float, float]:
    """(seconds of the whole run, seconds inside ``checkpoint``/``close``) for one variant."""
    x, y = tm.digits()
    if images:
        x = x.reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    torch.manual_seed(SEED)
    model = build()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rec = None
    if variant != PLAIN:
        rec = Recorder(
            workdir / variant,
            tinspect.make_header(name=variant),
            model,
            samples=(x[:N_SAMPLES], y[:N_SAMPLES]),
            optimizer=optimizer,
            checks=variant == RECORD,
        )
    inside = 0.0
    start = time.perf_counter()
    if rec is not None:
        t = time.perf_counter()
        rec.checkpoint(0)
        inside += time.perf_counter() - t
    for epoch in range(1, epochs + 1):
        loss = tm.train_epoch(model, optimizer, x, y, batch=BATCH_SIZE)
        if rec is not None:
            t = time.perf_counter()
            rec.checkpoint(epoch, metrics={"loss": loss})
            inside += time.perf_counter() - t
    if rec is not None:
        t = time.perf_counter()
        rec.close()
        inside += time.perf_counter() - t
        if rec.errors:
            raise RuntimeError(f"{variant}: {rec.errors}")
    return time.perf_counter() - start, inside


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or args.epochs < 1:
        parser.error("--rounds and --epochs must be >= 1, --warmup >= 0")
    bench_start = time.perf_counter()
    out: dict[str, Any] = {
        "config": {
            "epochs": args.epochs,
            "batch_size": BATCH_SIZE,
            "n_samples": N_SAMPLES,
            "rounds": args.rounds,
            "warmup_rounds": args.warmup,
            "variants": list(VARIANTS),
        },
        "models": {},
        "environment": {
            "python": platform.python_version(),
            "torch": str(torch.__version__),
            "torch_threads": torch.get_num_threads(),
            "tinspect": tinspect.__version__,
        },
    }
    lines = [
        f"tinspect.torch.Recorder vs a plain loop, {args.epochs} epochs, {N_SAMPLES} samples "
        f"recorded every epoch, {args.rounds} paired rounds (+{args.warmup} warm-up)",
    ]
    with tempfile.TemporaryDirectory(prefix="tinspect-torch-bench-") as tmp:
        for name, (build, images) in MODELS.items():
            rounds: list[dict[str, tuple[float, float]]] = []
            for index in range(args.warmup + args.rounds):
                workdir = Path(tmp) / name / str(index)
                result = {
                    v: fit(v, build, images, workdir, args.epochs) for v in rotated(VARIANTS, index)
                }
                kind = "warm-up" if index < args.warmup else f"round {index - args.warmup + 1}"
                print(
                    f"{name} {kind}: " + ", ".join(f"{v} {result[v][0]:.2f}s" for v in VARIANTS),
                    flush=True,
                )
                if index >= args.warmup:
                    rounds.append(result)
            ratios = {
                f"{v} / plain": summary([r[v][0] / r[PLAIN][0] for r in rounds])
                for v in (RECORD, NO_CHECKS)
            }
            inside = summary([r[RECORD][1] / r[PLAIN][0] for r in rounds])
            out["models"][name] = {
                "time_ratios": ratios,
                "checkpoint_calls_share_of_plain": inside,
                "seconds_median": {v: statistics.median(r[v][0] for r in rounds) for v in VARIANTS},
            }
            lines.append(
                f"\n{name}: plain loop median {out['models'][name]['seconds_median'][PLAIN]:.2f} s"
            )
            for label, s in ratios.items():
                lines.append(
                    f"  {label:<28} {s['median']:.3f}x  (min {s['min']:.3f}, max {s['max']:.3f})"
                )
            share = inside["median"]
            lines.append(f"  {'time inside checkpoint()':<28} {share:.3f} of the plain loop's")
    out["total_seconds"] = time.perf_counter() - bench_start
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(lines))
    print(f"\nTotal bench duration: {out['total_seconds']:.0f} s; results in {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
