"""What recording with ``InspectCheckpoint`` costs, on every Keras backend: ``make bench``.

Run it with ``python -m bench.record`` from the repository root. A Keras backend is fixed
when Keras is imported, so this driver imports no Keras: it runs ``bench.record_backend``
once per backend in a fresh process (``KERAS_BACKEND`` set), one after the other, collects
their JSON figures into ``bench/results/record.json`` and prints one summary table after
each backend's own report. Every figure is a median of ratios paired within a round of
the same process (see ``bench/record_backend.py``); nothing is compared across backends
except side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("tensorflow", "jax", "torch")
RESULTS = Path(__file__).resolve().parent / "results" / "record.json"
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.record",
        description="InspectCheckpoint's cost on each Keras backend, as paired ratios. "
        "Other options (--model, --rounds, --epochs, --variants, --profile) are passed on "
        "to bench.record_backend.",
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=BACKENDS,
        default=list(BACKENDS),
        help="backends to measure (default: all three)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    return parser.parse_known_args(argv)


def first(model: Mapping[str, Any]) -> str:
    """The first fit in a fresh process (imports included), defaults ÷ plain, or '-'."""
    found = model.get("first_fit")
    return f"{found['ratio']['median']:.3f}" if found else "-"


def summary(results: Mapping[str, Any]) -> str:
    """One line per backend and model: the defaults' and every=1's ratios, the floor, the
    samples recorded at the defaults, bytes."""
    lines = [
        "Summary: fit time with InspectCheckpoint ÷ plain fit (median of paired rounds),",
        "the no-op callback's ratio as the noise floor, and bytes per checkpoint (last epoch);",
        "'all': every sample given (max_activation_bytes=None), where the defaults keep fewer;",
        "'first': defaults ÷ plain for the first fit in a fresh process (imports included)",
        f"  {'backend':<11}{'model':<7}{'rounds':>7}{'noop':>7}{'defaults':>9}{'every=1':>9}"
        f"{'auto':>7}{'all':>7}{'first':>7}{'target':>8}  {'ckpts':>5}{'samples':>8}"
        f"{'MB/ckpt':>9}  verdict  "
        "CPU-time defaults",
    ]
    for backend, run in results["backends"].items():
        if "error" in run:
            lines.append(f"  {backend:<11}failed: {run['error']}")
            continue
        for name, model in run["models"].items():
            ratios = model["time_ratios"]

            def median(label: str, ratios: Mapping[str, Any] = ratios) -> str:
                return f"{ratios[label]['median']:.3f}" if label in ratios else "-"

            defaults = ratios["inspect defaults / plain"]["median"]
            size = model["sizes"].get("inspect", {})
            lines.append(
                f"  {backend:<11}{name:<7}{model['rounds']:>7}"
                f"{median('noop / plain (noise floor)'):>7}{defaults:>9.3f}"
                f"{median('inspect every=1 / plain'):>9}"
                f"{median('inspect every=auto / plain'):>7}"
                f"{median('inspect all 512 samples / plain'):>7}{first(model):>7}{'≤ 1.10':>8}  "
                f"{size.get('n_checkpoints', 0):>5}{size.get('n_samples', 0):>8}"
                f"{size.get('file_bytes', 0) / 1e6:>9.2f}  "
                f"{'ok' if defaults <= 1.10 else 'MISSED':<8} "
                f"{model['cpu_ratios']['inspect defaults / plain']['median']:.3f}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = parse_args(argv)
    start = time.perf_counter()
    results: dict[str, Any] = {"backends": {}}
    for backend in args.backend:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            output = Path(tmp.name)
        env = {**os.environ, "KERAS_BACKEND": backend}
        command = [sys.executable, "-m", "bench.record_backend", "--output", str(output), *rest]
        completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
        if completed.returncode == 0:
            results["backends"][backend] = json.loads(output.read_text())
        else:
            results["backends"][backend] = {"error": f"exit status {completed.returncode}"}
        output.unlink(missing_ok=True)
    results["total_seconds"] = time.perf_counter() - start
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(summary(results))
    print(f"\nTotal bench duration: {results['total_seconds']:.0f} s; written to {args.output}")
    return 0 if all("error" not in r for r in results["backends"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
