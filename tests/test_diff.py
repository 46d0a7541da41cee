"""Generation diff on purpose-built parent/child Keras programs, each trained for two epochs:
the rows must name exactly the change that was made, with values read independently
(model.json and metrics.jsonl with json, activations with h5py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from tinspect.analysis.diff import (
    STRUCTURAL,
    DiffRow,
    diff,
    match_layers,
    pair,
    summary_line,
)
from tinspect.cli import app
from tinspect.store import Layer, Store, UoAError

from .conftest import FIXTURES

VARIANTS = ("activation", "width", "added", "learning_rate", "twin")


def build(variant: str) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8,), name="features")
    hidden = layers.Dense(
        16 if variant == "width" else 8,
        activation="tanh" if variant == "activation" else "relu",
        name="hidden",
    )(inputs)
    if variant == "added":
        hidden = layers.Dense(8, activation="relu", name="extra")(hidden)
    out = layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, out, name="net")
    lr = 5e-3 if variant == "learning_rate" else 1e-3
    model.compile(
        keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tinspect
    from tinspect.keras import InspectCheckpoint

    root = tmp_path_factory.mktemp("diff")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(96, 8)).astype(np.float32)
    y = (x[:, 0] > 0.3).astype(np.int64) + (x[:, 1] > 0.3).astype(np.int64)
    base = tinspect.make_header("base", batch_size=16)
    headers = {"base": base}
    headers.update({v: tinspect.branch(base, name=v) for v in VARIANTS})
    for name, header in headers.items():
        model = build(name)
        callback = InspectCheckpoint(root, header, (x[:32], y[:32]), checks=False)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callback])
    return root


@pytest.fixture(scope="module")
def store(logdir: Path) -> Store:
    import os

    os.environ["TINSPECT_CACHE_DIR"] = "off"
    return Store(logdir)


def model_json(store: Store, name: str) -> dict[str, Any]:
    return json.loads((store.model(name).directory / "model.json").read_text())


def structural(store: Store, name: str) -> list[tuple[Any, ...]]:
    a, b = pair(store, name)
    assert a.name == "base"
    return [r.as_tuple() for r in diff(store, a, b).structural]


def params(layer: dict[str, Any]) -> int:
    return sum(int(np.prod(v["shape"])) for v in layer["variables"])


def layer_entry(store: Store, model: str, layer: str) -> dict[str, Any]:
    entries = model_json(store, model)["architecture"]["layers"]
    return next(e for e in entries if e["name"] == layer)


def test_an_activation_change_is_one_row(store: Store) -> None:
    assert structural(store, "activation") == [("layer", "hidden", "activation", "relu", "tanh")]
    a, b = pair(store, "activation")
    assert summary_line(diff(store, a, b).rows) == "hidden: relu → tanh"


def test_a_width_change_names_units_shape_and_parameters(store: Store) -> None:
    hidden_a, hidden_b = (layer_entry(store, m, "hidden") for m in ("base", "width"))
    out_a, out_b = (layer_entry(store, m, "out") for m in ("base", "width"))
    assert (params(hidden_a), params(hidden_b), params(out_a), params(out_b)) == (72, 144, 27, 51)
    assert structural(store, "width") == [
        ("layer", "hidden", "output_shape", "[null,8]", "[null,16]"),
        ("layer", "hidden", "params", 72, 144),
        ("layer", "hidden", "units", 8, 16),
        ("layer", "out", "params", 27, 51),
    ]
    a, b = pair(store, "width")
    assert summary_line(diff(store, a, b).rows) == "hidden: units 8 → 16; out: params 27 → 51"


def test_an_added_layer_and_its_new_connection(store: Store) -> None:
    assert structural(store, "added") == [
        ("layer-added", "extra", "class", None, "Dense"),
        ("layer", "out", "inbound", "hidden", "extra"),
    ]


def test_a_learning_rate_change_is_a_training_row(store: Store) -> None:
    rows = structural(store, "learning_rate")
    recorded = [
        model_json(store, m)["training"]["optimizer"]["learning_rate"]
        for m in ("base", "learning_rate")
    ]
    assert rows == [("training", "", "learning_rate", *recorded)]
    assert recorded == pytest.approx([1e-3, 5e-3])


def test_an_identical_twin_has_no_structural_rows(store: Store) -> None:
    a, b = pair(store, "twin")
    result = diff(store, a, b)
    assert result.structural == [] and summary_line(result.rows) == ""
    assert {r.kind for r in result.rows} == {"metric", "distribution"}


def jsonl(store: Store, name: str) -> dict[int, dict[str, Any]]:
    lines = (store.model(name).directory / "metrics.jsonl").read_text().splitlines()
    return {row["epoch"]: row for row in map(json.loads, lines)}


def js(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        keep = x > 0
        return float((x[keep] * np.log2(x[keep] / m[keep])).sum())

    return (kl(p) + kl(q)) / 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_metric_and_distribution_rows_match_the_files(store: Store, variant: str) -> None:
    a, b = pair(store, variant)
    result = diff(store, a, b)
    ma, mb = jsonl(store, "base"), jsonl(store, variant)
    assert result.metric_epoch == 2 == max(set(ma) & set(mb))
    metric = {r.field: (r.a, r.b) for r in result.rows if r.kind == "metric"}
    assert set(metric) == {"accuracy@2", "loss@2"}  # fit without validation data
    for key, (va, vb) in metric.items():
        name = key.split("@")[0]
        assert (va, vb) == (ma[2][name], mb[2][name])
    distribution = [r for r in result.rows if r.kind == "distribution"]
    values = [r.b for r in distribution]
    assert values == sorted(values, reverse=True) and all(0 <= v <= 1 for v in values)
    assert {r.unit for r in distribution} == {"hidden", "out"}  # "extra" is only in B
    # Ground truth: the two stored activation arrays, histogrammed on one 64-bin grid.
    for row in distribution:
        arrays = []
        for model in (a, b):
            with h5py.File(model.checkpoints[2], "r", locking=False) as f:
                arrays.append(f[f"layers/{row.unit}/activations"][()].astype(np.float64).ravel())
        lo, hi = min(x.min() for x in arrays), max(x.max() for x in arrays)
        p, q = (np.histogram(x, 64, (lo, hi))[0].astype(float) for x in arrays)
        assert row.b == pytest.approx(js(p, q), abs=0.08), row.unit
    if variant == "twin":
        assert all(v < 0.05 for v in values)  # same program, same seed: close to identical
    if variant == "activation":
        assert distribution[0].unit == "hidden" and distribution[0].b > 0.3


def test_two_named_models_and_the_order_of_a_and_b(store: Store) -> None:
    forward = [r.as_tuple() for r in diff(store, *pair(store, "activation", "width")).structural]
    backward = [r.as_tuple() for r in diff(store, *pair(store, "width", "activation")).structural]
    assert ("layer", "hidden", "activation", "tanh", "relu") in forward
    assert {(k, u, f, b, a) for k, u, f, a, b in forward} == set(backward)


def test_layers_match_by_name_then_by_position_and_class() -> None:
    def layer(name: str, cls: str = "Dense") -> Layer:
        return Layer(name, cls, None, (), None, 0, 0, (), (), {})

    a = [layer("in", "InputLayer"), layer("dense"), layer("dense_1"), layer("pool", "MaxPool")]
    b = [layer("in", "InputLayer"), layer("dense"), layer("renamed"), layer("drop", "Dropout")]
    matched, removed, added = match_layers(a, b)
    assert [(x.name, y.name) for x, y in matched] == [
        ("in", "in"),
        ("dense", "dense"),
        ("dense_1", "renamed"),
    ]
    assert [x.name for x in removed] == ["pool"] and [x.name for x in added] == ["drop"]


def test_the_fixture_vae_difference_reads_from_one_line() -> None:
    store = Store(FIXTURES / "digits")
    a, b = pair(store, "vae_25_75_fixed")
    result = diff(store, a, b)
    assert a.name == "vae_25_75"
    line = summary_line(result.rows)
    assert line.startswith("z_mean, z_log_var: relu → linear")
    top = [r.unit for r in result.rows if r.kind == "distribution"][:2]
    assert set(top) == {"z_mean", "z_log_var"}


def test_cli_diff_outputs_and_errors(logdir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["diff", str(logdir), "activation", "--csv"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "kind,unit,field,a,b"
    assert lines[1] == "layer,hidden,activation,relu,tanh"
    result = runner.invoke(app, ["diff", str(logdir), "base", "width", "--json"])
    payload = json.loads(result.output)
    assert payload["meta"]["a"] == "base" and payload["columns"] == [
        "kind",
        "unit",
        "field",
        "a",
        "b",
    ]
    assert ["layer", "hidden", "units", 8, 16] in payload["rows"]
    human = runner.invoke(app, ["diff", str(logdir), "twin"])
    assert human.exit_code == 0 and "no structural change" in human.output
    for args, code, message in (
        (["nope"], 1, "no model named 'nope'"),
        (["base"], 1, "base has no parent"),
        (["base", "twin", "--csv", "--json"], 2, "exclude each other"),
    ):
        result = runner.invoke(app, ["diff", str(logdir), *args])
        assert result.exit_code == code and message in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_rows_are_plain_data() -> None:
    row = DiffRow("layer", "hidden", "units", 8, 16)
    assert row.as_tuple() == ("layer", "hidden", "units", 8, 16)
    assert "metric" not in STRUCTURAL and "training" in STRUCTURAL
    with pytest.raises(UoAError):
        pair(Store(FIXTURES / "digits"), "dense_baseline")
