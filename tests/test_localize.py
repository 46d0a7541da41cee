"""Localization: kinds and structures on the digits fixtures and on hand-made layer graphs."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinspect.analysis.localize import (
    Match,
    badges,
    branches,
    find_kinds,
    repeated_blocks,
    search,
    skip_connections,
    structures,
)
from tinspect.store import Layer, ModelLogs, Store

DIGITS = Path(__file__).resolve().parents[1] / "fixtures" / "digits"

KERNEL_BIAS = [{"name": "kernel"}, {"name": "bias"}]


# --- hand-made models ---------------------------------------------------------------------
def L(
    name: str,
    cls: str,
    *inbound: str,
    act: str | None = None,
    variables: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    submodel: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One model.json layer entry (only what localization reads)."""
    entry: dict[str, Any] = {
        "name": name,
        "class_name": cls,
        "activation": act,
        "inbound": list(inbound),
        "variables": variables or [],
        "operations": [],
        "config": config or {},
    }
    if submodel is not None:
        entry["submodel"] = submodel
    return entry


def write_model(root: Path, name: str, layers: list[dict[str, Any]]) -> str:
    model_id = uuid.uuid4().hex
    directory = root / f"{name}-{model_id[:8]}"
    directory.mkdir(parents=True)
    data = {
        "format_version": "1.0",
        "header": {"id": model_id, "name": name},
        "architecture": {"class_name": "Functional", "name": name, "layers": layers},
    }
    (directory / "model.json").write_text(json.dumps(data), encoding="utf-8")
    return model_id


def open_model(root: Path, name: str, layers: list[dict[str, Any]]) -> ModelLogs:
    model_id = write_model(root, name, layers)
    store = Store(root)
    assert not [p for p in store.problems if p.severity.name == "ERROR"]
    return store.models[model_id]


CHAIN = [
    L("in", "InputLayer"),
    L("d1", "Dense", "in", act="relu", variables=KERNEL_BIAS),
    L("d2", "Dense", "d1", act="relu", variables=KERNEL_BIAS),
    L("out", "Dense", "d2", act="softmax", variables=KERNEL_BIAS),
]

INCEPTION = [
    L("in", "InputLayer"),
    L("a1", "Conv2D", "in", act="relu"),
    L("a2", "Conv2D", "a1", act="relu"),
    L("b1", "Conv2D", "in", act="relu"),
    L("p", "MaxPooling2D", "in"),
    L("c1", "Conv2D", "p", act="relu"),
    L("cat", "Concatenate", "a2", "b1", "c1"),
    L("out", "Dense", "cat", act="softmax"),
]

RESNET = [
    L("in", "InputLayer"),
    L("c1", "Conv2D", "in", act="relu"),
    L("c2", "Conv2D", "c1"),
    L("add1", "Add", "c2", "in"),
    L("c3", "Conv2D", "add1", act="relu"),
    L("c4", "Conv2D", "c3"),
    L("add2", "Add", "c4", "add1"),
    L("out", "Dense", "add2", act="softmax"),
]

PROJECTION = [
    L("in", "InputLayer"),
    L("c1", "Conv2D", "in", act="relu"),
    L("c2", "Conv2D", "c1"),
    L("proj", "Conv2D", "in"),
    L("add", "Add", "c2", "proj"),
]


def conv_pool_chain(blocks: int) -> list[dict[str, Any]]:
    layers = [L("in", "InputLayer")]
    prev = "in"
    for b in range(1, blocks + 1):
        for name, cls, act in ((f"c{b}a", "Conv2D", "relu"), (f"c{b}b", "Conv2D", "relu")):
            layers.append(L(name, cls, prev, act=act))
            prev = name
        layers.append(L(f"pool{b}", "MaxPooling2D", prev))
        prev = f"pool{b}"
    layers += [L("flat", "Flatten", prev), L("out", "Dense", "flat", act="softmax")]
    return layers


@pytest.fixture(scope="module")
def digits() -> Store:
    return Store(DIGITS)


# --- structures on hand-made graphs -----------------------------------------------------------
def test_plain_chain_has_no_structure(tmp_path: Path) -> None:
    model = open_model(tmp_path, "chain", CHAIN)
    assert skip_connections(model) == []
    assert branches(model) == []
    assert repeated_blocks(model) == []  # d1, d2 are one layer repeated: shorter than a unit


def test_inception_fork_is_a_branch_not_a_skip(tmp_path: Path) -> None:
    model = open_model(tmp_path, "inception", INCEPTION)
    assert skip_connections(model) == []
    [block] = branches(model)
    assert block.badge == "branch"
    assert block.layers == ("in", "a1", "a2", "b1", "p", "c1", "cat")
    assert "3 branches (a1 | b1 | p) merge at cat" in block.what


def test_resnet_identity_blocks_are_skips_and_repeat(tmp_path: Path) -> None:
    model = open_model(tmp_path, "resnet", RESNET)
    skips = skip_connections(model)
    assert [(m.layers[0], m.layers[-1]) for m in skips] == [("in", "add1"), ("add1", "add2")]
    assert skips[0].layers == ("in", "c1", "c2", "add1")
    assert skips[0].what == "skip connection in → add1 bypasses c1, c2"
    assert branches(model) == []
    [rep] = repeated_blocks(model)
    assert rep.badge == "repeat×2"
    assert rep.layers == ("c1", "c2", "add1", "c3", "c4", "add2")


def test_projection_shortcut_is_a_branch(tmp_path: Path) -> None:
    model = open_model(tmp_path, "projection", PROJECTION)
    assert skip_connections(model) == []
    [block] = branches(model)
    assert (block.layers[0], block.layers[-1]) == ("in", "add")


def test_direct_edge_plus_two_branches_is_both(tmp_path: Path) -> None:
    layers = [*INCEPTION[:6], L("cat", "Concatenate", "a2", "b1", "c1", "in")]
    model = open_model(tmp_path, "inception_skip", layers)
    [skip] = skip_connections(model)
    assert (skip.layers[0], skip.layers[-1]) == ("in", "cat")
    [block] = branches(model)
    assert block.what.endswith("plus a direct skip")


def test_forks_that_never_merge_are_no_branch(tmp_path: Path) -> None:
    layers = [
        L("in", "InputLayer"),
        L("trunk", "Dense", "in"),
        L("head_a", "Dense", "trunk"),
        L("head_b", "Dense", "trunk"),
    ]
    model = open_model(tmp_path, "two_heads", layers)
    assert structures(model) == []


def test_repeated_conv_conv_pool_three_times(tmp_path: Path) -> None:
    model = open_model(tmp_path, "vgg", conv_pool_chain(3))
    [rep] = repeated_blocks(model)
    assert rep.badge == "repeat×3"
    assert rep.layers[0] == "c1a" and rep.layers[-1] == "pool3" and len(rep.layers) == 9
    assert rep.what.startswith("[Conv2D(relu) → Conv2D(relu) → MaxPooling2D] × 3")
    assert repeated_blocks(model, min_repeats=4) == []
    assert repeated_blocks(model, min_length=4) == []


def test_runs_of_one_layer_need_min_length_one(tmp_path: Path) -> None:
    layers = [L("in", "InputLayer")] + [
        L(f"d{i}", "Dense", "in" if i == 0 else f"d{i - 1}", act="relu") for i in range(4)
    ]
    model = open_model(tmp_path, "deep", layers)
    assert repeated_blocks(model) == []
    [rep] = repeated_blocks(model, min_length=1)
    assert rep.badge == "repeat×4"
    with pytest.raises(ValueError):
        repeated_blocks(model, min_repeats=1)


def test_a_cycle_is_survived(tmp_path: Path) -> None:
    layers = [L("a", "Dense", "b"), L("b", "Dense", "a"), L("c", "Dense", "a", "b")]
    model = open_model(tmp_path, "cycle", layers)
    assert skip_connections(model) == [] and branches(model) == []
    assert [m.layers for m in find_kinds(model, "dense")] == [("a",), ("b",), ("c",)]


def test_nested_model_structures_and_kinds_land_on_its_layer(tmp_path: Path) -> None:
    inner = {"class_name": "Functional", "name": "block", "layers": RESNET[:4]}
    layers = [
        L("in", "InputLayer"),
        L("block", "Functional", "in", submodel=inner),
        L("out", "Dense", "block", act="softmax"),
    ]
    model = open_model(tmp_path, "outer", layers)
    [skip] = skip_connections(model)
    assert skip.layers == ("block",)
    assert skip.what == "inside block: skip connection in → add1 bypasses c1, c2"
    [conv] = find_kinds(model, "conv")
    assert conv.layers == ("block",) and "nested model contains c1, c2" in conv.what


# --- kinds ----------------------------------------------------------------------------------------
def test_find_kinds_on_the_fixtures(digits: Store) -> None:
    conv = digits.model("conv")
    assert [m.layers for m in find_kinds(conv, "conv")] == [("conv_1",), ("conv_2",)]
    assert [m.layers[0] for m in find_kinds(conv, "relu")] == ["conv_1", "conv_2", "hidden"]
    assert [m.layers[0] for m in find_kinds(conv, "Dense")] == ["hidden", "output"]
    assert [m.layers[0] for m in find_kinds(conv, "softmax")] == ["output"]
    assert [m.layers[0] for m in find_kinds(conv, "kernel")] == [
        "conv_1",
        "conv_2",
        "hidden",
        "output",
    ]
    assert find_kinds(conv, "conv")[0].badge == "conv"
    assert find_kinds(conv, "   ") == []
    skip = digits.model("dense_skip")
    assert [m.layers[0] for m in find_kinds(skip, "relu")] == ["hidden_1", "hidden_2", "hidden_3"]
    assert [m.layers[0] for m in find_kinds(skip, "dropout")] == ["dropout"]
    vae = digits.model("vae_90_10")
    assert [m.layers[0] for m in find_kinds(vae, "linear")] == ["z_mean", "z_log_var"]
    assert [m.layers[0] for m in find_kinds(vae, "sigmoid")] == ["reconstruction"]
    bad_vae = digits.model("vae_25_75")
    assert {"z_mean", "z_log_var"} <= {m.layers[0] for m in find_kinds(bad_vae, "relu")}


def test_find_kinds_variables_families_and_several_words(tmp_path: Path) -> None:
    bn_vars = [{"name": n} for n in ("gamma", "beta", "moving_mean", "moving_variance")]
    layers = [
        L("in", "InputLayer"),
        L("conv", "Conv2D", "in", act="relu", variables=KERNEL_BIAS),
        L("bn", "BatchNormalization", "conv", variables=bn_vars),
        L("lstm", "LSTM", "bn", act="tanh", variables=[{"name": "recurrent_kernel"}]),
        L("att", "MultiHeadAttention", "lstm", variables=[{"name": "query.kernel"}]),
    ]
    model = open_model(tmp_path, "zoo", layers)
    assert [m.layers[0] for m in find_kinds(model, "moving_mean")] == ["bn"]
    assert [m.layers[0] for m in find_kinds(model, "gamma")] == ["bn"]
    assert [m.layers[0] for m in find_kinds(model, "kernel")] == ["conv", "lstm", "att"]
    assert [m.layers[0] for m in find_kinds(model, "rnn")] == ["lstm"]
    assert [m.layers[0] for m in find_kinds(model, "norm")] == ["bn"]
    assert [m.layers[0] for m in find_kinds(model, "conv relu")] == ["conv"]
    assert find_kinds(model, "conv tanh") == []
    assert find_kinds(model, "add") == []  # no Add layer; bias adds are not Add layers


# --- the store: badges and search -----------------------------------------------------------------
def test_badges_of_the_fixtures(digits: Store) -> None:
    found = badges(digits)
    skip, conv, base = (digits.model(n) for n in ("dense_skip", "conv", "dense_baseline"))
    assert found[(skip.id, None)] == "dropout skip"
    assert found[(skip.id, "skip_add")] == "skip"
    assert found[(skip.id, "hidden_2")] == "skip"
    assert found[(skip.id, "dropout")] == "dropout"
    assert found[(conv.id, None)] == "conv"
    assert found[(conv.id, "conv_1")] == "conv"
    assert (base.id, None) not in found
    for name in ("vae_90_10", "vae_25_75", "vae_25_75_fixed"):
        vae = digits.model(name)
        assert found[(vae.id, None)] == "branch"
        assert found[(vae.id, "z")] == "branch"
    assert list(found) == list(badges(digits))  # stable order


def test_badges_order_layer_and_model_text(tmp_path: Path) -> None:
    write_model(tmp_path, "resnet", RESNET)
    store = Store(tmp_path)
    [model] = store.models.values()
    found = badges(store)
    assert found[(model.id, "c1")] == "conv skip repeat×2"
    assert found[(model.id, None)] == "conv skip repeat"


def test_search_words(digits: Store) -> None:
    assert [p for p, _ in search(digits, "conv relu")] == ["conv/conv_1", "conv/conv_2"]
    skip_hits = search(digits, "skip")
    assert [p for p, _ in skip_hits] == ["dense_skip/hidden_1"]
    assert skip_hits[0][1].badge == "skip"
    assert [p for p, _ in search(digits, "skip dense")] == ["dense_skip/hidden_1"]
    assert search(digits, "skip conv") == []
    branch_paths = [p for p, _ in search(digits, "branch")]
    assert sorted(branch_paths) == [
        "vae_25_75/enc_2",
        "vae_25_75_fixed/enc_2",
        "vae_90_10/enc_2",
    ]
    assert len(search(digits, "skip branch")) == 4
    assert search(digits, "repeat") == []
    assert search(digits, "") == []
    assert search(digits, "nosuchthing") == []


def test_search_repeat_count(tmp_path: Path) -> None:
    write_model(tmp_path, "vgg", conv_pool_chain(3))
    store = Store(tmp_path)
    assert [(p, m.badge) for p, m in search(store, "repeat×3")] == [("vgg/c1a", "repeat×3")]
    assert search(store, "repeatx2") == []
    assert len(search(store, "repeat conv")) == 1


def make_layer(name: str, cls: str, inbound: tuple[str, ...], act: str | None = None) -> Layer:
    return Layer(
        name=name,
        class_name=cls,
        activation=act,
        inbound=inbound,
        output_shape=None,
        trainable_params=0,
        non_trainable_params=0,
        variables=(),
        operations=(),
        config={},
    )


def test_structures_is_cached_until_model_json_changes(tmp_path: Path) -> None:
    model = open_model(tmp_path, "chain", CHAIN)
    assert structures(model) == []
    # What a refresh does when model.json changed: a new layer list and a new graph.
    model._layers = [*model.layers[:-1], make_layer("out", "Add", ("d2", "d1"))]
    model._graph = None
    [skip] = structures(model)
    assert skip.what == "skip connection d1 → out bypasses d2"


def test_fixture_structures(digits: Store) -> None:
    """The six demo models: one skip (dense_skip), one branch per VAE, no repeats."""
    found = {m.name: [(s.badge, s.layers) for s in structures(m)] for m in digits.models.values()}
    assert found == {
        "dense_baseline": [],
        "dense_skip": [("skip", ("hidden_1", "hidden_2", "skip_add"))],
        "conv": [],
        "vae_90_10": [("branch", ("enc_2", "z_mean", "z_log_var", "z"))],
        "vae_25_75": [("branch", ("enc_2", "z_mean", "z_log_var", "z"))],
        "vae_25_75_fixed": [("branch", ("enc_2", "z_mean", "z_log_var", "z"))],
    }
    vae = digits.model("vae_90_10")
    assert skip_connections(vae) == []  # z_mean → z and z_log_var → z bypass nothing


# --- the detectors agree with their definitions on random graphs ----------------------------------
@st.composite
def dags(draw: st.DrawFn) -> list[tuple[int, int]]:
    n = draw(st.integers(2, 9))
    pairs = [(i, j) for j in range(n) for i in range(j)]
    return [p for p in pairs if draw(st.booleans())]


def dag_model(edges: list[tuple[int, int]]) -> ModelLogs:
    n = max((j for _, j in edges), default=1) + 1
    layers = [
        make_layer(f"n{j}", "Dense", tuple(f"n{i}" for i, k in edges if k == j)) for j in range(n)
    ]
    return ModelLogs.of_layers(uuid.uuid4().hex, layers)


def expected_blocks(graph: nx.DiGraph) -> set[tuple[str, str]]:
    """(fork, merge) by the definition, with networkx: a merge is a first common layer of
    two branches, and at least two branches reaching it hold a layer before it."""
    blocks = set()
    for fork in graph:
        succ = list(graph.successors(fork))
        spans = {s: {s} | nx.descendants(graph, s) for s in succ}
        meets: dict[str, set[str]] = {}
        for i, a in enumerate(succ):
            for b in succ[i + 1 :]:
                common = spans[a] & spans[b]
                for m in common:
                    if not any(p in common for p in graph.predecessors(m)):
                        meets.setdefault(m, set()).update((a, b))
        blocks |= {(fork, m) for m, arms in meets.items() if len(arms - {m}) >= 2}
    return blocks


@settings(max_examples=200, deadline=None)
@given(dags())
def test_skips_and_branches_match_their_definitions(edges: list[tuple[int, int]]) -> None:
    model = dag_model(edges)
    graph = model.graph
    expected = set()
    for u, v in graph.edges:
        rest = graph.copy()
        rest.remove_edge(u, v)
        if nx.has_path(rest, u, v):
            expected.add((u, v))
    skips = skip_connections(model)
    assert {(m.layers[0], m.layers[-1]) for m in skips} == expected
    for m in skips:
        bypassed = m.layers[1:-1]
        assert bypassed
        assert all(nx.has_path(graph, m.layers[0], x) for x in bypassed)
        assert all(nx.has_path(graph, x, m.layers[-1]) for x in bypassed)
    found = branches(model)
    assert {(b.layers[0], b.layers[-1]) for b in found} == expected_blocks(graph)
    assert all(b.badge == "branch" for b in found)


def reference_runs(
    sigs: list[str], min_length: int, min_repeats: int
) -> list[tuple[int, int, int]]:
    """The plain quadratic search the detector must agree with."""

    def primitive(unit: list[str]) -> bool:
        n = len(unit)
        return not any(n % d == 0 and unit == unit[:d] * (n // d) for d in range(1, n // 2 + 1))

    runs, i, n = [], 0, len(sigs)
    while i < n:
        best = None
        for length in range(min_length, (n - i) // min_repeats + 1):
            unit = sigs[i : i + length]
            reps = 1
            while sigs[i + reps * length : i + (reps + 1) * length] == unit:
                reps += 1
            if (
                reps >= min_repeats
                and primitive(unit)
                and (best is None or length * reps > best[0])
            ):
                best = (length * reps, length, reps)
        if best is None:
            i += 1
        else:
            runs.append((i, best[1], best[2]))
            i += best[0]
    return runs


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from("ABC"), min_size=1, max_size=30),
    st.integers(1, 3),
    st.integers(2, 3),
)
def test_repeated_blocks_match_a_plain_search(
    classes: list[str], min_length: int, min_repeats: int
) -> None:
    layers = [
        make_layer(f"n{i}", cls, (f"n{i - 1}",) if i else ()) for i, cls in enumerate(classes)
    ]
    model = ModelLogs.of_layers("m", layers)
    found = repeated_blocks(model, min_length=min_length, min_repeats=min_repeats)
    got = [
        (int(m.layers[0][1:]), len(m.layers) // int(m.badge[7:]), int(m.badge[7:])) for m in found
    ]
    assert got == reference_runs(classes, min_length, min_repeats)
    assert all(isinstance(m, Match) for m in found)
