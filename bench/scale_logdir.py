"""Large logdirs for the scale bench: copies of ``bench.read``'s 200-model logdir under fresh ids.

A copy keeps the experiment trees (parents are re-mapped to the copy's ids) and renames its
experiments (``exp8-run00`` ... in the second copy), so 2,000 models are 80 experiments of
25. Checkpoints are hard links to the 11 template files where the file system allows it
(a copy otherwise): the viewer's first screen reads headers only, and 22,000 copies of the
small checkpoint would cost gigabytes of disk without changing what is measured.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.read import (
    DENSE_TEMPLATE,
    N_EXPERIMENTS,
    SEED,
    SMALL_SAMPLES,
    dense_template,
    headers,
    metrics_lines,
    model_json,
    write_templates,
)
from tinspect import format as fmt
from tinspect.record.files import write_json_atomic


def templates(workdir: Path) -> list[Path]:
    """The 11 small template checkpoints (written once by the recorder's writer)."""
    return write_templates(
        workdir / "templates", functools.partial(dense_template, n_samples=SMALL_SAMPLES)
    )


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def copied_headers(copies: int) -> list[dict]:
    """``copies`` x 200 headers: the same trees, fresh ids, experiment numbers shifted."""
    import json

    template = headers(random.Random(SEED))
    rng = random.Random(SEED + 17)
    out = []
    for copy in range(copies):
        ids = {h["id"]: f"{rng.getrandbits(128):032x}" for h in template}
        for header in template:
            tree, run = header["name"].removeprefix("exp").split("-run")
            clone = json.loads(json.dumps(header))
            clone["id"] = ids[header["id"]]
            clone["parents"] = [ids[p] for p in header["parents"]]
            number = copy * N_EXPERIMENTS + int(tree)
            clone["name"] = f"exp{number}-run{run}"
            clone["label"] = header["label"].replace(f"experiment {tree},", f"experiment {number},")
            out.append(clone)
    return out


def generate(logdir: Path, checkpoints: Sequence[Path], copies: int) -> list[str]:
    """``copies`` x 200 model directories under ``logdir``; returns the models' names."""
    import json

    template = json.loads(DENSE_TEMPLATE.read_text())
    names = []
    for index, header in enumerate(copied_headers(copies)):
        directory = logdir / fmt.model_dir_name(header["name"], header["id"])
        (directory / fmt.CHECKPOINTS_DIR).mkdir(parents=True)
        write_json_atomic(directory / fmt.MODEL_JSON, model_json(template, header, SMALL_SAMPLES))
        (directory / fmt.METRICS_JSONL).write_text(metrics_lines(index % 200))
        for source in checkpoints:
            link_or_copy(source, directory / fmt.CHECKPOINTS_DIR / source.name)
        names.append(header["name"])
    return names


if __name__ == "__main__":  # python -m bench.scale_logdir WORKDIR COPIES
    import sys
    import time

    work, copies = Path(sys.argv[1]), int(sys.argv[2])
    start = time.perf_counter()
    generate(work / "logs", templates(work), copies)
    print(f"{copies * 200} models in {time.perf_counter() - start:.1f} s under {work / 'logs'}")
