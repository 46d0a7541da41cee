"""What recording Integrated Gradients costs a training run (``python -m bench.attributions``).

The issue's bar: IG with 32 steps on 512 digits at the last checkpoint only must not change
the fit-time ratio by more than a few percent. Measured as ``bench/record.py`` measures the
recorder: each round trains one fresh, identically seeded conv model (the demo's, 8×8
digits, 5 epochs, batch 32) with ``InspectCheckpoint`` as is and one with
``attributions="integrated_gradients"`` (32 steps, ``attribution_epochs="last"``), in an
order that alternates from round to round; the ratio is taken within each round, the median
over rounds reported (the first round only warms up and is discarded). Reported too, for
the IG fits: how long after ``fit`` returned the attribution file was written (the maps of
the last checkpoint are computed then, in the recorder's own thread), as seconds and as a
share of the fit, and the completeness error of the maps. The next fit starts only when
the file is written, so no round is disturbed by another's leftovers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_HOME"] = _KERAS_HOME = tempfile.mkdtemp(prefix="tinspect-bench-keras-")

import gc
import json
import statistics
import sys
from pathlib import Path

import h5py
import keras
import numpy as np

import tinspect
from tinspect import format as fmt
from tinspect.demo import data as demo_data
from tinspect.demo import models
from tinspect.keras import InspectCheckpoint

SEED = 0
EPOCHS = 5
BATCH_SIZE = 32
N_SAMPLES = 512
STEPS = 32
ROUNDS = int(os.environ.get("TINSPECT_BENCH_ROUNDS", "9"))
RESULTS = Path(__file__).resolve().parent / "results" / "attributions.json"
#: "a few percent"
TARGET = 1.05


def timed_fit(with_ig: bool, data: demo_data.Digits, workdir: Path) -> dict[str, float]:
    """One fit; with IG also the wait for its file after fit returned and its deltas."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    try:
        x = demo_data.Digits.images(data.x_train)
        xv = demo_data.Digits.images(data.x_val)
        extra = (
            {"attributions": "integrated_gradients", "attribution_steps": STEPS} if with_ig else {}
        )
        callback = InspectCheckpoint(
            run_dir,
            tinspect.make_header("conv", batch_size=BATCH_SIZE),
            (x[:N_SAMPLES], data.y_train[:N_SAMPLES]),
            max_samples=N_SAMPLES,
            input_kind="image",
            output_kind="classification",
            **extra,  # type: ignore[arg-type]
        )
        keras.backend.clear_session()
        gc.collect()
        keras.utils.set_random_seed(SEED)
        model = models.compile_classifier(models.conv())
        start = time.perf_counter()
        model.fit(
            x,
            data.y_train,
            validation_data=(xv, data.y_val),
            epochs=EPOCHS,
            batch_size=BATCH_SIZE,
            verbose=0,
            callbacks=[callback],
        )
        seconds = time.perf_counter() - start
        result = {"fit": seconds}
        if with_ig:
            callback.wait_for_attributions()
            result["ready_after_fit"] = time.perf_counter() - start - seconds
            (path,) = run_dir.glob(f"*/{fmt.ATTRIBUTIONS_DIR}/{fmt.checkpoint_name(EPOCHS)}")
            with h5py.File(path, "r") as f:
                delta = np.abs(f[fmt.ATTRIBUTION_DELTA_PREDICTED][()])
            result["delta_median"] = float(np.median(delta))
            result["delta_max"] = float(delta.max())
        return result
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main() -> None:
    data = demo_data.load_digits(seed=SEED)
    workdir = Path(tempfile.mkdtemp(prefix="tinspect-bench-ig-"))
    rounds = []
    try:
        for index in range(ROUNDS + 1):
            order = (False, True) if index % 2 == 0 else (True, False)
            measured = {flag: timed_fit(flag, data, workdir) for flag in order}
            if index:
                rounds.append(measured)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(_KERAS_HOME, ignore_errors=True)
    ratios = [r[True]["fit"] / r[False]["fit"] for r in rounds]
    ready = [r[True]["ready_after_fit"] for r in rounds]
    share = [r[True]["ready_after_fit"] / r[False]["fit"] for r in rounds]
    report = {
        "rounds": len(rounds),
        "fit_ratio_ig_over_inspect": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
        "target": TARGET,
        "inspect_fit_seconds_median": statistics.median(r[False]["fit"] for r in rounds),
        "attributions_ready_after_fit_seconds_median": statistics.median(ready),
        "attributions_ready_after_fit_over_fit_median": statistics.median(share),
        "completeness_error_median": statistics.median(r[True]["delta_median"] for r in rounds),
        "completeness_error_max": max(r[True]["delta_max"] for r in rounds),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    fit = report["fit_ratio_ig_over_inspect"]
    verdict = "ok" if fit["median"] <= TARGET else "OVER"
    print(
        f"attributions (IG, {STEPS} steps, {N_SAMPLES} digits, last checkpoint), "
        f"{len(rounds)} paired rounds:\n"
        f"  fit time with IG / without: median {fit['median']:.3f} "
        f"(min {fit['min']:.3f}, max {fit['max']:.3f}), target <= {TARGET} [{verdict}]\n"
        f"  file written {report['attributions_ready_after_fit_seconds_median']:.2f} s after fit "
        f"returned (median; {report['attributions_ready_after_fit_over_fit_median']:.2f}x a fit)\n"
        f"  completeness error |sum - (f(x) - f(baseline))|: median "
        f"{report['completeness_error_median']:.2e}, max {report['completeness_error_max']:.2e}",
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
