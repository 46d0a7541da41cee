"""Interestingness on the fixtures: the careless ReLU of vae_25_75 must stand out."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import pytest

from tinspect.analysis.interest import (
    MEASURES,
    Score,
    aggregate,
    eigenvalues,
    histogram_divergence,
    js_divergence,
    kernel_matrix,
    normal_divergence,
    percentile_scores,
    powerlaw_alpha,
    rank,
    saturation,
    score_units,
)
from tinspect.store import Store
from tinspect.summary import summarize

from .conftest import FIXTURES

DIGITS = FIXTURES / "digits"
VAES = ("vae_90_10", "vae_25_75", "vae_25_75_fixed")


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def store() -> Iterator[Store]:
    os.environ["TINSPECT_CACHE_DIR"] = "off"  # module fixtures run before the autouse one
    with Store(DIGITS) as s:
        yield s


def _name(store: Store, s: Score) -> str:
    return store.models[s.uoa.model].name


# --- (1) the proof that matters --------------------------------------------------------------


def test_skew_puts_the_careless_relu_on_top(store: Store) -> None:
    """Last checkpoint, skew of activations, scored over all six models.

    The numbers (epoch 4): vae_25_75/z_mean skew 6.12 (92 % exact zeros behind a ReLU),
    vae_25_75_fixed/enc_2 4.89 (that model's encoder is mostly dead too), vae_25_75/z_log_var
    3.57; the fixed model's z_mean -0.57 and z_log_var 0.67 are ordinary.
    """
    ranked = [s for s in rank(store, "skew") if s.kind == "activations"]
    vae = [s for s in ranked if _name(store, s) in VAES]
    paths = [s.path for s in vae]
    # The broken model's z_mean is the most skewed activation of all, of every model too.
    assert ranked[0].path == "vae_25_75/z_mean"
    assert paths[0] == "vae_25_75/z_mean"
    assert vae[0].raw == pytest.approx(6.12, abs=0.01)
    # ... and its z_log_var is in the top 3 of the VAE layers (behind the fixed model's enc_2).
    assert "vae_25_75/z_log_var" in paths[:3]
    assert vae[0].score > 0.95
    # The fixed model's latent layers are unremarkable: bottom half, far from the top.
    for layer in ("z_mean", "z_log_var"):
        fixed = next(s for s in vae if s.path == f"vae_25_75_fixed/{layer}")
        assert paths.index(fixed.path) >= len(vae) // 2
        assert fixed.score < 0.5
        broken = next(s for s in vae if s.path == f"vae_25_75/{layer}")
        assert broken.score > fixed.score + 0.4


def test_rank_is_sorted_with_nan_last(store: Store) -> None:
    ranked = rank(store, "saturation")
    scores = [s.score for s in ranked]
    finite = [x for x in scores if not math.isnan(x)]
    assert finite == sorted(finite, reverse=True)
    first_nan = next(i for i, x in enumerate(scores) if math.isnan(x))
    assert all(math.isnan(x) for x in scores[first_nan:])
    assert len(rank(store, "skew", top=5)) == 5


# --- (2) aggregation -------------------------------------------------------------------------


def test_aggregate_is_max_of_children(store: Store) -> None:
    scores = score_units(store, "skew")
    agg = aggregate(scores, store)
    assert set(agg) == {"layers", "models", "experiments"}
    for model_id, value in agg["models"].items():
        layers = [v for (m, _), v in agg["layers"].items() if m == model_id]
        assert value == pytest.approx(np.nanmax(layers))
        units = [s.score for s in scores if s.uoa.model == model_id]
        assert value == pytest.approx(np.nanmax(units))
    for (model_id, layer), value in agg["layers"].items():
        units = [s.score for s in scores if s.uoa.model == model_id and s.uoa.layer == layer]
        assert value == pytest.approx(np.nanmax(units))
    for name, value in agg["experiments"].items():
        members = [v for m, v in agg["models"].items() if store.tree.experiment_of(m).name == name]
        assert value == pytest.approx(max(members))
    by_name = {store.models[m].name: v for m, v in agg["models"].items()}
    assert by_name["vae_25_75"] > by_name["vae_25_75_fixed"]
    assert agg["experiments"]["vae_90_10"] == by_name["vae_25_75"]


def test_models_subset_and_epochs(store: Store) -> None:
    ids = [m.id for m in store.models.values() if m.name in VAES]
    scores = score_units(store, "zeros", epoch="first", model_ids=ids)
    assert {s.uoa.model for s in scores} == set(ids)
    assert {s.epoch for s in scores} == {0}
    # Epoch 4 exists for the VAEs only (the classifiers stop at 3).
    four = score_units(store, "skew", epoch=4)
    assert {_name(store, s) for s in four} == set(VAES)
    with pytest.raises(ValueError, match="epoch"):
        score_units(store, "skew", epoch="latest")
    with pytest.raises(ValueError, match="epoch"):
        score_units(store, "skew", epoch=-1)
    assert score_units(store, "skew", epoch="4") == four


# --- (3) every measure on every fixture ---------------------------------------------------------


@pytest.mark.parametrize("measure", MEASURES)
def test_every_measure_runs(store: Store, measure: str) -> None:
    scores = score_units(store, measure)
    assert scores
    n_models = len(store.models)
    assert len({s.uoa.model for s in scores}) == n_models
    for s in scores:
        assert s.measure == measure
        assert s.kind in ("activations", "weights")
        assert (s.kind == "activations") == (s.uoa.variable is None)
        assert s.type_key == "activations" or "/" in s.type_key
        assert math.isnan(s.score) or 0.0 <= s.score <= 1.0
        assert math.isnan(s.score) == math.isnan(s.raw)
        assert s.path == store.path(s.uoa)


def test_measure_specifics(store: Store) -> None:
    def raw(measure: str, path: str, kind: str = "activations") -> float:
        for s in score_units(store, measure):
            if s.path == path and s.kind == kind:
                return s.raw
        raise KeyError(path)

    # Saturation only for bounded activations; alpha only for big enough kernels.
    assert math.isnan(raw("saturation", "vae_25_75/z_mean"))
    assert 0.0 <= raw("saturation", "conv/output") <= 1.0
    assert math.isnan(raw("alpha", "vae_25_75/z_mean/kernel", "weights"))  # 4 eigenvalues
    assert math.isnan(raw("alpha", "conv/conv_1/kernel", "weights"))  # 9x8 → 8 eigenvalues
    assert math.isfinite(raw("alpha", "conv/conv_2/kernel", "weights"))  # 72x16
    assert math.isfinite(raw("alpha", "dense_baseline/hidden_1/kernel", "weights"))
    assert math.isnan(raw("alpha", "dense_baseline/hidden_1/bias", "weights"))
    # No parent: NaN; the broken child's ReLU'd z_log_var shares no range with its parent's.
    assert math.isnan(raw("parent_divergence", "vae_90_10/z_mean"))
    assert raw("parent_divergence", "vae_25_75/z_log_var") > 0.9
    # Variance is std² of the stored summary; zeros its zero fraction.
    assert raw("zeros", "vae_25_75/z_mean") == pytest.approx(0.922, abs=1e-3)


def test_unknown_measure_lists_measures(store: Store) -> None:
    with pytest.raises(ValueError) as info:
        rank(store, "entropy")
    message = str(info.value)
    assert "entropy" in message
    for measure in MEASURES:
        assert measure in message
    with pytest.raises(ValueError):
        score_units(store, "Skew")


# --- (4) the building blocks ---------------------------------------------------------------------


def test_js_divergence_properties() -> None:
    rng = np.random.default_rng(1)
    p = rng.integers(0, 50, size=64).astype(float)
    q = rng.integers(0, 50, size=64).astype(float)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(p, 3 * p) == pytest.approx(0.0, abs=1e-12)  # normalized
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))
    assert 0.0 < js_divergence(p, q) < 1.0
    disjoint_a, disjoint_b = np.r_[np.ones(4), np.zeros(4)], np.r_[np.zeros(4), np.ones(4)]
    assert js_divergence(disjoint_a, disjoint_b) == pytest.approx(1.0)
    assert math.isnan(js_divergence(np.zeros(4), np.ones(4)))


def test_histogram_divergence_on_summaries() -> None:
    rng = np.random.default_rng(2)
    a = summarize(rng.normal(size=5000).astype(np.float32))
    b = summarize(rng.normal(loc=3.0, size=5000).astype(np.float32))
    assert histogram_divergence(a, a) == pytest.approx(0.0, abs=1e-9)
    assert histogram_divergence(a, b) == pytest.approx(histogram_divergence(b, a))
    assert histogram_divergence(a, b) > 0.5
    zero = summarize(np.zeros(16, dtype=np.float32))  # a zero-initialized bias
    assert histogram_divergence(zero, zero) == 0.0
    assert 0.0 < histogram_divergence(zero, a) <= 1.0


def test_saturation_and_normal_divergence() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=8.0, size=4000)
    stuck = summarize((1.0 / (1.0 + np.exp(-logits))).astype(np.float32))  # mostly at 0 or 1
    healthy = summarize((1.0 / (1.0 + np.exp(-0.5 * logits / 8.0))).astype(np.float32))
    assert saturation(stuck, (0.0, 1.0)) > 0.5
    assert saturation(healthy, (0.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    assert saturation(summarize(np.ones(8, dtype=np.float32)), (0.0, 1.0)) == 1.0
    normal = summarize(rng.normal(size=20000).astype(np.float32))
    relu = summarize(np.maximum(rng.normal(size=20000), 0.0).astype(np.float32))
    assert normal_divergence(normal) < 0.01
    assert normal_divergence(relu) > 10 * normal_divergence(normal)
    assert math.isnan(normal_divergence(summarize(np.zeros(8, dtype=np.float32))))


def test_alpha_gaussian_larger_than_heavy_tailed() -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        gaussian = rng.normal(size=(256, 128))
        # Pareto entries with tail exponent 1: the spectrum has a power-law tail, alpha ≈ 1.5.
        heavy = rng.pareto(1.0, size=(256, 128)) * rng.choice([-1.0, 1.0], size=(256, 128))
        a_gauss = powerlaw_alpha(eigenvalues(gaussian))
        a_heavy = powerlaw_alpha(eigenvalues(heavy))
        assert a_heavy < 2.5
        assert a_gauss > 3.0
        assert a_gauss > a_heavy + 1.0


def test_alpha_shapes_and_small_inputs() -> None:
    conv = np.random.default_rng(3).normal(size=(3, 3, 8, 16))
    assert kernel_matrix(conv).shape == (72, 16)
    ev = eigenvalues(kernel_matrix(conv))
    assert ev.shape == (16,)
    assert np.all(np.diff(ev) >= 0)
    assert math.isnan(powerlaw_alpha(np.arange(1.0, 9.0)))  # fewer than 10 eigenvalues
    assert math.isnan(powerlaw_alpha(np.ones(20)))  # no tail to fit


def test_percentile_scores() -> None:
    out = percentile_scores(np.array([0.0, 1.0, 2.0, 3.0, np.nan]))
    assert out[0] == 0.0  # no deviation, no interest
    assert out[1] < out[2] < out[3] <= 1.0
    assert math.isnan(out[4])
    assert percentile_scores(np.array([5.0]))[0] == 0.5  # no peers
    pair = percentile_scores(np.array([1.0, 2.0]))
    assert pair.tolist() == [0.25, 0.75]
