"""Costs of the comparison features: the projection of a large layer and the generation diff.

Run it with ``python -m bench.compare`` from the repository root (a few minutes; about
2 GiB of temporary disk and 300 MB for the 200 models, removed at the end).

1. **Projection of a 2 GiB layer.** One synthetic checkpoint-like file holds a float32
   layer of 512 samples × (64, 64, 256) values (2 GiB, what the recorder writes with
   ``activations_dtype="float32"`` for a large convolution), contiguous as the recorder
   writes it by default. A fresh interpreter (address space capped at 6 GiB) fits the
   2-D PCA basis (``tinspect.query.projection.fit``: the Gram matrix over feature slabs,
   then the directions; two passes) and projects the file once more as another epoch
   would be (one pass), reporting its peak resident set. The reference, in another fresh
   interpreter, is the plain read the same data needs anyway: ``h5py`` ``dataset[()]``
   into one numpy array (2 GiB resident), with the same interpreter baseline. Figures:
   projection seconds ÷ raw read seconds, and peak RSS of each ÷ dataset bytes.
   In-memory PCA of the same data (numpy SVD of a 512 × 1 M float64 matrix: 4 GiB before
   the SVD's own workspace) is the alternative streaming avoids; it is not run.
2. **Diff on 200 models.** ``bench.read``'s generator writes 200 models × 11 small
   checkpoints in 8 trees (every other model with one layer's activation and width
   changed, so rows are not only hyperparameters). Timed, as ratios to
   ``python -c "import textual.app"`` (the viewer's floor, measured in the same rounds):
   the command ``tinspect diff LOGDIR MODEL`` end to end, and in one process, with the
   store open, the structural diff of every model against its first parent (what an L3
   line per child needs) and the full diff (metrics and distributions too) of every pair.
   Rounds alternate the order of the variants; medians are reported.

The machine running this is shared (2 cores); ratios within one run are what to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from bench.read import (
    ROOT,
    SEED,
    SMALL_SAMPLES,
    Figure,
    Target,
    child_env,
    dense_template,
    generate_ls_logdir,
    mem_available,
    report,
    rotated,
    rss_bytes,
    tinspect_command,
    write_templates,
)
from tinspect import format as fmt

RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"

# --- 1. projection --------------------------------------------------------------------------
BIG_SHAPE = (512, 64, 64, 256)  # float32: 2 GiB, 1 M values per sample
BIG_DTYPE = np.float32
BIG_DATASET = fmt.layer_path("big", fmt.ACTIVATIONS)
CHILD_MEMORY_CAP = 6 << 30
DISK_NEEDED = 3 << 30
RAW_MEMORY_NEEDED = 4 << 30

# --- 2. diff --------------------------------------------------------------------------------
DIFF_ROUNDS = 5
DIFF_MODEL = "exp3-run10"  # a model deep in a tree: the command diffs it with its parent


def generate_big(path: Path) -> None:
    """A file with one ``BIG_SHAPE`` layer: rank-structured signal plus noise, so the two
    leading components are well separated (a PCA with a defined answer)."""
    rng = np.random.default_rng(SEED)
    n = BIG_SHAPE[0]
    inner = BIG_SHAPE[1:]
    d = math.prod(inner)
    latent = rng.standard_normal((n, 2)) * np.array([3.0, 1.5])
    with h5py.File(path, "w") as f:
        f.attrs[fmt.ATTR_FORMAT_VERSION] = fmt.FORMAT_VERSION
        dataset = f.create_dataset(BIG_DATASET, shape=BIG_SHAPE, dtype=BIG_DTYPE)
        # Entries of 0.5 × N(0, 1): the two directions carry 2.25 and 0.56 times the
        # noise's variance, so the explained ratios are about 0.59 and 0.15.
        directions = 0.5 * rng.standard_normal((2, d)).astype(np.float32)
        for start in range(0, n, 16):
            stop = min(n, start + 16)
            noise = rng.standard_normal((stop - start, d), dtype=np.float32)
            block = noise + (latent[start:stop] @ directions).astype(np.float32)
            dataset[start:stop] = block.reshape((stop - start, *inner))


def cap_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_CAP, CHILD_MEMORY_CAP))


def child_project(path: Path) -> dict[str, Any]:
    """In the child: fit the basis (two passes) and project once more (one pass)."""
    cap_address_space()
    from tinspect.query import projection

    with h5py.File(path, "r", locking=False) as f:
        dataset = f[BIG_DATASET]
        baseline, _ = rss_bytes()
        start = time.perf_counter()
        basis = projection.fit(dataset)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = projection.project(dataset, basis)
        project_seconds = time.perf_counter() - start
    return {
        "baseline_rss": baseline,
        "peak_rss": rss_bytes()[1],
        "fit_seconds": fit_seconds,
        "project_seconds": project_seconds,
        "explained": [float(v) for v in basis.explained],
        "max_score_difference": float(np.abs(scores - basis.scores).max()),
        "budget": projection.BUDGET,
    }


def child_raw(path: Path) -> dict[str, Any]:
    """In the child: the whole layer read into one array with h5py (the floor of any PCA)."""
    cap_address_space()
    with h5py.File(path, "r", locking=False) as f:
        dataset = f[BIG_DATASET]
        baseline, _ = rss_bytes()
        start = time.perf_counter()
        values = dataset[()]
        seconds = time.perf_counter() - start
        total = float(values[:, 0, 0, 0].sum())
    return {"baseline_rss": baseline, "peak_rss": rss_bytes()[1], "seconds": seconds, "x": total}


CHILDREN: dict[str, Callable[[Path], dict[str, Any]]] = {
    "project": child_project,
    "raw": child_raw,
}


def run_child(mode: str, path: Path) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.compare", "--child", mode, str(path)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        check=False,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-600:]}", "wall": wall}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": wall}


def bench_projection(workdir: Path) -> tuple[dict[str, Any], list[Figure]]:
    section = "1. projection of one 2 GiB layer (512 samples × 1 M values, float32)"
    nbytes = math.prod(BIG_SHAPE) * np.dtype(BIG_DTYPE).itemsize
    free = shutil.disk_usage(workdir).free
    if free < DISK_NEEDED:
        reason = f"skipped: {free / 2**30:.1f} GiB free on {workdir}"
        return {"skipped": reason}, [
            Figure(section, "projection", None, Target("(report)"), reason)
        ]
    path = workdir / "big.h5"
    try:
        started = time.perf_counter()
        generate_big(path)
        print(f"[projection] wrote {nbytes / 2**30:.1f} GiB in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        raw = (
            run_child("raw", path)
            if mem_available() >= RAW_MEMORY_NEEDED
            else {"error": "skipped: not enough memory available"}
        )
        print(f"[projection] raw read child done in {raw['wall']:.0f} s", flush=True)
        streamed = run_child("project", path)
        print(f"[projection] projection child done in {streamed['wall']:.0f} s", flush=True)
    finally:
        path.unlink(missing_ok=True)
    details = {"shape": list(BIG_SHAPE), "bytes": nbytes, "project": streamed, "raw": raw}
    if "error" in streamed:
        return details, [Figure(section, "projection", None, Target("(report)"), streamed["error"])]
    seconds = streamed["fit_seconds"] + streamed["project_seconds"]
    work = streamed["peak_rss"] - streamed["baseline_rss"]
    figures = [
        Figure(
            section,
            "projection: peak RSS ÷ layer bytes",
            streamed["peak_rss"] / nbytes,
            Target("≪ 1 (≤ 0.25)", None, 0.25),
            f"peak {streamed['peak_rss'] / 2**20:.0f} MiB (interpreter "
            f"{streamed['baseline_rss'] / 2**20:.0f} MiB, working {work / 2**20:.0f} MiB; "
            f"slab budget {streamed['budget'] >> 20} MiB)",
        ),
        Figure(
            section,
            "projection: fit + project seconds",
            seconds,
            Target("(report)"),
            f"fit {streamed['fit_seconds']:.1f} s (2 passes), project "
            f"{streamed['project_seconds']:.1f} s (1 pass); explained "
            f"{streamed['explained'][0]:.3f}, {streamed['explained'][1]:.3f}",
        ),
    ]
    if "error" in raw:
        figures.append(Figure(section, "raw h5py read", None, Target("(report)"), raw["error"]))
    else:
        figures += [
            Figure(
                section,
                "raw read: peak RSS ÷ layer bytes",
                raw["peak_rss"] / nbytes,
                Target("(report)"),
                f"peak {raw['peak_rss'] / 2**20:.0f} MiB; dataset[()] in {raw['seconds']:.1f} s",
            ),
            Figure(
                section,
                "projection seconds ÷ raw read seconds",
                seconds / raw["seconds"],
                Target("(report)"),
                "3 reads of the layer + the N²·D Gram products, vs 1 read",
            ),
        ]
    return details, figures


# --- 2. diff --------------------------------------------------------------------------------
def vary_architectures(logdir: Path) -> int:
    """Give every other model a changed layer (activation and width), as children do."""
    changed = 0
    for i, path in enumerate(sorted(logdir.glob(f"*/{fmt.MODEL_JSON}"))):
        if i % 2:
            continue
        data = json.loads(path.read_text())
        layer = data["architecture"]["layers"][2]
        layer["activation"] = "tanh"
        layer["config"]["activation"] = "tanh"
        layer["config"]["units"] = 48
        path.write_text(json.dumps(data))
        changed += 1
    return changed


def timed(command: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=child_env(), cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


def in_process(logdir: Path) -> dict[str, float]:
    """Seconds of the store opening, 199 structural diffs and 199 full diffs (in a child)."""
    code = f"""
import json, time
start = time.perf_counter()
from tinspect.analysis.diff import diff, pair, summary_line
from tinspect.store import Store
store = Store({str(logdir)!r})
opened = time.perf_counter()
children = [m for m in store.ordered_models() if m.parents]
lines = [summary_line(diff(store, *pair(store, m.id), distributions=False).rows) for m in children]
structural = time.perf_counter()
rows = sum(len(diff(store, *pair(store, m.id)).rows) for m in children)
full = time.perf_counter()
print(json.dumps({{"import_and_store": opened - start, "structural": structural - opened,
                  "full": full - structural, "pairs": len(children), "rows": rows,
                  "changed_lines": sum(1 for line in lines if line)}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**child_env(), "TINSPECT_CACHE_DIR": "off"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_diff(workdir: Path) -> tuple[dict[str, Any], list[Figure]]:
    section = "2. diff on 200 models × 11 checkpoints"
    templates = write_templates(workdir / "templates", lambda e: dense_template(e, SMALL_SAMPLES))
    logdir = workdir / "logs"
    generate_ls_logdir(logdir, templates, SMALL_SAMPLES)
    changed = vary_architectures(logdir)
    command = [*tinspect_command(), "diff", str(logdir), DIFF_MODEL, "--csv"]
    floor = [sys.executable, "-c", "import textual.app"]
    variants: dict[str, Callable[[], Any]] = {
        "command": lambda: timed(command),
        "import": lambda: timed(floor),
        "in_process": lambda: in_process(logdir),
    }
    seconds: dict[str, list[Any]] = {k: [] for k in variants}
    for index in range(DIFF_ROUNDS + 1):
        for key in rotated(list(variants), index):
            value = variants[key]()
            if index:  # round 0 warms caches
                seconds[key].append(value)
    imports = seconds["import"]
    ratio_command = [c / i for c, i in zip(seconds["command"], imports, strict=True)]
    structural = [r["structural"] for r in seconds["in_process"]]
    full = [r["full"] for r in seconds["in_process"]]
    last = seconds["in_process"][-1]
    details = {"rounds": DIFF_ROUNDS, "changed_models": changed, "seconds": seconds}
    median = statistics.median
    figures = [
        Figure(
            section,
            "`tinspect diff LOGDIR MODEL` ÷ import textual.app",
            median(ratio_command),
            Target("≤ 3", None, 3.0),
            f"{median(seconds['command']):.2f} s vs {median(imports):.2f} s (medians)",
        ),
        Figure(
            section,
            f"{last['pairs']} structural diffs ÷ import textual.app",
            median([s / i for s, i in zip(structural, imports, strict=True)]),
            Target("≤ 1", None, 1.0),
            f"{median(structural) * 1000:.0f} ms for every child vs its parent (an L3 line "
            f"each; {last['changed_lines']} non-empty)",
        ),
        Figure(
            section,
            f"{last['pairs']} full diffs ÷ import textual.app",
            median([s / i for s, i in zip(full, imports, strict=True)]),
            Target("(report)"),
            f"{median(full) * 1000:.0f} ms with metrics and distributions "
            f"({last['rows']} rows; 2 summary tables read per pair)",
        ),
    ]
    return details, figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare",
        description="Projection of a large layer and diff on 200 models, as ratios.",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--skip-projection", action="store_true", help="skip the 2 GiB part")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.path)))
        return 0
    results: dict[str, Any] = {}
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tinspect-bench-compare-") as tmp:
        workdir = Path(tmp)
        parts: list[tuple[str, Callable[[Path], tuple[dict[str, Any], list[Figure]]]]] = [
            ("diff", bench_diff)
        ]
        if not args.skip_projection:
            parts.append(("projection", bench_projection))
        for key, part in parts:
            part_dir = workdir / key
            part_dir.mkdir()
            details, found = part(part_dir)
            shutil.rmtree(part_dir)
            results[key] = details
            figures += found
    total = time.perf_counter() - started
    out = {
        "figures": [{**asdict(f), "target": f.target.text} for f in figures],
        **results,
        "cpus": os.cpu_count(),
        "total_seconds": total,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(report(figures, total, "tinspect compare bench: ratios measured in this run"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
