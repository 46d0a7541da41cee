"""Localization: where in a model are the convolutions, the ReLUs, the skip connections?

A developer comparing models asks "which of these has a residual connection?" or "where are
the ReLU convolutions?" long before asking about numbers. Everything here answers from the
architecture recorded in ``model.json`` (layer classes, activations, variables, inbound
edges); no checkpoint is opened, so localizing is instant even for a large logdir.

Two kinds of answers, both as ``Match`` objects the viewer and the CLI show the same way:

* **kinds** (``find_kinds``): layers by class (``conv``), activation (``relu``) or variable
  (``kernel``, ``moving_mean``);
* **structures** (``structures``): skip connections, multi-branch blocks and repeated blocks
  of the layer graph.

Definitions, chosen so that each structure is reported once and under one name:

* A **skip** is an edge ``u → v`` of the layer graph such that another path ``u → … → v``
  exists: the edge bypasses at least one layer (dense_skip's ``hidden_1 → skip_add``).
* A **branch** (multi-branch block) is a fork ``f`` (two or more successors) and a layer
  ``m`` where at least two *non-trivial* branches of ``f`` first meet; a branch is
  non-trivial when it holds a layer before ``m``. A fork whose only other branch is the
  direct edge ``f → m`` is a skip, not a branch. So an Inception module is a branch, a
  ResNet identity block is a skip, a ResNet block with a projection shortcut (a convolution
  on the shortcut) is a branch, and a VAE's ``enc → z_mean | z_log_var → z`` is a branch:
  two parallel layers computed from one layer and merged again.
* A **repeat** is a run of consecutive repetitions of one sequence of layer signatures
  (class and activation) along a *chain*: layers that follow each other in the topological
  order and each feed the next. The repeated unit must not itself be a repetition of a
  shorter unit (four identical Dense layers are not ``[Dense, Dense] × 2``).

Nested models (one layer with a ``submodel``) are searched too: what is found inside is
reported on the nested model's layer, the only unit a path can name, with ``inside <layer>:``
in the description.

A ``Match`` lists the layers involved in topological order: for a skip its source, the
bypassed layers and its target; for a branch the fork, every layer between and the merge;
for a repeat every layer of the run. ``badges`` marks every listed layer.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from tinspect.store import Layer, ModelLogs, Store, UoA

SKIP = "skip"
BRANCH = "branch"
REPEAT = "repeat"
#: Structure types in badge order.
STRUCTURES = (SKIP, BRANCH, REPEAT)

#: Notable layer kinds in badge order, each found by substrings of the layer's class name.
NOTABLE_KINDS: dict[str, tuple[str, ...]] = {
    "conv": ("conv",),
    "rnn": ("rnn", "lstm", "gru", "bidirectional"),
    "attention": ("attention",),
    "norm": ("normalization",),
    "dropout": ("dropout",),
}

#: Query words naming a family of classes that no single substring finds (LSTM is an RNN).
_FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "rnn": NOTABLE_KINDS["rnn"],
    "recurrent": NOTABLE_KINDS["rnn"],
}

#: Operation names that are activation functions. Only these are matched against a layer's
#: operations: ``add`` is also a Dense layer's bias step and must find Add layers only.
ACTIVATIONS = frozenset(
    {
        "relu",
        "relu6",
        "leaky_relu",
        "prelu",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "mish",
        "sigmoid",
        "hard_sigmoid",
        "hard_silu",
        "hard_swish",
        "tanh",
        "softmax",
        "log_softmax",
        "softplus",
        "softsign",
        "exponential",
        "linear",
    }
)

#: Query words naming a structure type (plural and verb forms included).
_STRUCTURE_WORDS: dict[str, str] = {
    "skip": SKIP,
    "skips": SKIP,
    "branch": BRANCH,
    "branches": BRANCH,
    "repeat": REPEAT,
    "repeats": REPEAT,
    "repeated": REPEAT,
}
_REPEAT_COUNT = re.compile(r"^repeat(?:s|ed)?\s*[×x*]\s*(\d+)$")


@dataclass(frozen=True)
class Match:
    """One finding: a layer of a kind, or a structure spanning several layers."""

    model_id: str
    layers: tuple[str, ...]  # the layers involved, in topological order
    badge: str  # short text for the UI: "skip", "branch", "repeat×2", "conv", "relu"
    what: str  # one line for a human


# --- the layer graph, prepared once per call ------------------------------------------------
@dataclass
class _Arch:
    """Layers of one level (a model or a nested model) with their order and reachability.

    Reachability is a bitmask of descendants per layer (bit ``i`` = ``order[i]``): with
    Python integers the union and intersection of descendant sets are single operations,
    which keeps every detector linear-ish even for models with hundreds of layers.
    """

    layers: dict[str, Layer]
    graph: nx.DiGraph
    order: list[str]
    index: dict[str, int]
    reach: list[int] | None  # None when the graph has a cycle (a corrupt or odd model.json)

    def between(self, start: str, end: str) -> list[str]:
        """Layers on some path ``start → … → end``, excluding both, in topological order."""
        assert self.reach is not None
        s, e = self.index[start], self.index[end]
        return [
            self.order[i]
            for i in range(s + 1, e)
            if self.reach[s] >> i & 1 and self.reach[i] >> e & 1
        ]

    def successors(self, name: str) -> list[str]:
        return sorted(self.graph.successors(name), key=self.index.__getitem__)


def _build_graph(layers: Sequence[Layer]) -> nx.DiGraph:
    """The same graph ``ModelLogs.graph`` builds, for the layers of a nested model."""
    graph = nx.DiGraph()
    for layer in layers:
        graph.add_node(layer.name, layer=layer)
    for layer in layers:
        for source in layer.inbound:
            if source in graph and source != layer.name:
                graph.add_edge(source, layer.name)
    return graph


def _arch(layers: Sequence[Layer], graph: nx.DiGraph | None = None) -> _Arch:
    by_name: dict[str, Layer] = {}
    for layer in layers:
        by_name.setdefault(layer.name, layer)
    graph = _build_graph(layers) if graph is None else graph
    position = {name: i for i, name in enumerate(by_name)}
    try:
        order = list(
            nx.lexicographical_topological_sort(graph, key=lambda n: position.get(n, len(position)))
        )
    except nx.NetworkXUnfeasible:  # a cycle: keep the recorded order, find no graph structure
        order = list(by_name)
        return _Arch(by_name, graph, order, {n: i for i, n in enumerate(order)}, None)
    index = {name: i for i, name in enumerate(order)}
    reach = [0] * len(order)
    for i in range(len(order) - 1, -1, -1):
        mask = 0
        for succ in graph.successors(order[i]):
            j = index[succ]
            mask |= (1 << j) | reach[j]
        reach[i] = mask
    return _Arch(by_name, graph, order, index, reach)


def _model_arch(model: ModelLogs) -> _Arch:
    return _arch(model.layers, model.graph)


def _sublayers(layer: Layer) -> list[Layer]:
    """The layers of a nested model, parsed as leniently as the store parses model.json."""
    raw_layers = (layer.submodel or {}).get("layers")
    if not isinstance(raw_layers, list):
        return []
    out = []
    for raw in raw_layers:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        act = raw.get("activation")
        sub = raw.get("submodel")
        config = raw.get("config")
        out.append(
            Layer(
                name=raw["name"],
                class_name=str(raw.get("class_name", "?")),
                activation=act if isinstance(act, str) else None,
                inbound=tuple(n for n in raw.get("inbound") or [] if isinstance(n, str)),
                output_shape=None,
                trainable_params=0,
                non_trainable_params=0,
                variables=tuple(v for v in raw.get("variables") or [] if isinstance(v, dict)),
                operations=tuple(o for o in raw.get("operations") or [] if isinstance(o, dict)),
                config=config if isinstance(config, dict) else {},
                submodel=sub if isinstance(sub, dict) else None,
            )
        )
    return out


def _names(names: Sequence[str], limit: int = 3) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit])} and {len(names) - limit} more"


# --- kinds ------------------------------------------------------------------------------------
def _words(query: str) -> list[str]:
    return list(dict.fromkeys(query.lower().split()))


def _has_activation_slot(layer: Layer) -> bool:
    """Whether the layer could have had an activation (so that none means ``linear``)."""
    return "activation" in layer.config or layer.class_name == "Activation"


def _term_reason(layer: Layer, term: str) -> str | None:
    """Why ``layer`` itself is of kind ``term`` (class, activation, variable), or None."""
    cls = layer.class_name.lower()
    if any(p in cls for p in _FAMILY_WORDS.get(term, (term,))):
        return layer.class_name
    act = (layer.activation or "").lower()
    if term == act:
        return f"{act} activation"
    if term in ACTIVATIONS:
        ops = {str(o.get("op", "")).lower() for o in layer.operations}
        if term in ops:
            return f"{term} activation"
        if term == "linear" and layer.activation is None and _has_activation_slot(layer):
            return "linear activation"
    found = []
    for name in layer.variable_names:
        last = name.rsplit(".", 1)[-1].lower()
        if term in (name.lower(), last) or (len(term) >= 3 and term in last):
            found.append(name)
    if found:
        return f"variable{'s' if len(found) > 1 else ''} {', '.join(found)}"
    return None


def _layer_reasons(layer: Layer, terms: Sequence[str]) -> str | None:
    """Why ``layer`` matches every term (itself, or a layer of its nested model), or None."""
    reasons = [_term_reason(layer, t) for t in terms]
    if all(r is not None for r in reasons):
        return ", ".join(dict.fromkeys(r for r in reasons if r is not None))
    if layer.submodel is None:
        return None
    sub = _arch(_sublayers(layer))
    inner = [(n, r) for n in sub.order if (r := _layer_reasons(sub.layers[n], terms)) is not None]
    if not inner:
        return None
    names = _names([n for n, _ in inner])
    return f"nested model contains {names} ({inner[0][1]})"


def find_kinds(model: ModelLogs, query: str) -> list[Match]:
    """Layers whose class, activation or variables match every word of ``query``.

    A word matches a class by case-insensitive substring (``conv`` finds Conv2D and
    DepthwiseConv2D; ``rnn`` also finds LSTM and GRU), an activation by name (``relu``;
    ``linear`` finds layers whose activation is the identity), and a variable by its name
    (``kernel`` finds kernels, ``mean`` finds ``moving_mean``). Several words must all match
    the same layer: ``conv relu`` finds ReLU convolutions. A nested model's layer matches
    when a layer inside it does. The badge is the query's words.
    """
    terms = _words(query)
    if not terms:
        return []
    arch = _model_arch(model)
    badge = " ".join(terms)
    out = []
    for name in arch.order:
        reasons = _layer_reasons(arch.layers[name], terms)
        if reasons is not None:
            out.append(Match(model.id, (name,), badge, f"{name}: {reasons}"))
    return out


def _notable_kinds(layer: Layer) -> list[str]:
    """The notable kinds (``NOTABLE_KINDS``) of a layer, or of the layers it nests."""
    cls = layer.class_name.lower()
    found = {k for k, pats in NOTABLE_KINDS.items() if any(p in cls for p in pats)}
    if layer.submodel is not None:
        for inner in _sublayers(layer):
            found.update(_notable_kinds(inner))
    return [k for k in NOTABLE_KINDS if k in found]


# --- structures -------------------------------------------------------------------------------
Detector = Callable[[str, _Arch], list[Match]]


def _with_nested(model_id: str, arch: _Arch, detect: Detector) -> list[Match]:
    """``detect`` on this level, then inside each nested model, reported on its layer."""
    out = detect(model_id, arch)
    for name in arch.order:
        layer = arch.layers[name]
        if layer.submodel is None:
            continue
        for inner in _with_nested(model_id, _arch(_sublayers(layer)), detect):
            out.append(Match(model_id, (name,), inner.badge, f"inside {name}: {inner.what}"))
    return out


def _skips(model_id: str, arch: _Arch) -> list[Match]:
    if arch.reach is None:
        return []
    out = []
    for source in arch.order:
        succ = arch.successors(source)
        if len(succ) < 2:
            continue
        for target in succ:
            bit = 1 << arch.index[target]
            if not any(w != target and arch.reach[arch.index[w]] & bit for w in succ):
                continue
            bypassed = arch.between(source, target)
            out.append(
                Match(
                    model_id,
                    (source, *bypassed, target),
                    SKIP,
                    f"skip connection {source} → {target} bypasses {_names(bypassed)}",
                )
            )
    return out


def _first_meetings(arch: _Arch, common: int) -> Iterator[int]:
    """The first layers of a set closed under descendants: those with no ancestor in it.

    Every other member descends from one of them, so removing each found layer with its
    descendants leaves the next one as the lowest remaining bit.
    """
    assert arch.reach is not None
    while common:
        i = (common & -common).bit_length() - 1
        yield i
        common &= ~((1 << i) | arch.reach[i])


def _branches(model_id: str, arch: _Arch) -> list[Match]:
    if arch.reach is None:
        return []
    out = []
    for fork in arch.order:
        succ = arch.successors(fork)
        if len(succ) < 2:
            continue
        spans = [(1 << arch.index[s]) | arch.reach[arch.index[s]] for s in succ]
        meets: dict[int, set[int]] = {}
        for i in range(len(succ)):
            for j in range(i + 1, len(succ)):
                for m in _first_meetings(arch, spans[i] & spans[j]):
                    meets.setdefault(m, set()).update((i, j))
        for m in sorted(meets):
            merge = arch.order[m]
            arms = [succ[i] for i in sorted(meets[m]) if succ[i] != merge]
            if len(arms) < 2:
                continue  # one branch and the direct edge: a skip, reported by _skips
            direct = "; plus a direct skip" if merge in succ else ""
            cls = arch.layers[merge].class_name
            out.append(
                Match(
                    model_id,
                    (fork, *arch.between(fork, merge), merge),
                    BRANCH,
                    f"multi-branch block {fork} → {merge}: {len(arms)} branches "
                    f"({' | '.join(arms)}) merge at {merge} ({cls}){direct}",
                )
            )
    return out


def _signature(layer: Layer) -> tuple[Any, ...]:
    """What must be equal for two layers to count as the same step of a repeated unit."""
    nested = tuple(_signature(inner) for inner in _sublayers(layer)) if layer.submodel else ()
    return (layer.class_name, layer.activation or "", nested)


def _label(layer: Layer) -> str:
    return f"{layer.class_name}({layer.activation})" if layer.activation else layer.class_name


def _chains(arch: _Arch) -> list[list[str]]:
    """Maximal runs of the topological order in which each layer feeds the next."""
    chains: list[list[str]] = []
    for name in arch.order:
        if chains and arch.graph.has_edge(chains[-1][-1], name):
            chains[-1].append(name)
        else:
            chains.append([name])
    return [c for c in chains if len(c) > 1]


#: The longest repeated unit looked for, in layers. A Keras transformer or ResNet bottleneck
#: block is 10–20 layers; the bound keeps the search linear in the length of a chain.
MAX_UNIT_LENGTH = 64


def _repeat_runs(
    sigs: Sequence[Any], min_length: int, min_repeats: int
) -> list[tuple[int, int, int]]:
    """(start, unit length, repeats) of repeated units, left to right, not overlapping.

    At each position the unit covering the most layers wins (ties: the shorter unit). A unit
    that is itself a repetition of a shorter one is skipped. ``agree[d][k]`` counts how many
    positions from ``k`` on equal the position ``d`` later, so both "how often does the unit
    of length L at i repeat" (``agree[L][i] // L``) and "has it a shorter period d"
    (``agree[d][i] >= L - d``) are single look-ups.
    """
    n = len(sigs)
    top = min(MAX_UNIT_LENGTH, n // min_repeats)
    if top < min_length:
        return []
    ids: dict[Any, int] = {}
    seq = [ids.setdefault(s, len(ids)) for s in sigs]
    agree: list[list[int]] = [[]]
    for d in range(1, top + 1):
        row = [0] * (n + 1)
        for k in range(n - d - 1, -1, -1):
            row[k] = row[k + 1] + 1 if seq[k] == seq[k + d] else 0
        agree.append(row)

    def primitive(i: int, length: int) -> bool:
        return not any(
            length % d == 0 and agree[d][i] >= length - d for d in range(1, length // 2 + 1)
        )

    runs = []
    i = 0
    while i < n:
        best: tuple[int, int, int] | None = None  # (covered, length, repeats)
        for length in range(min_length, min(top, (n - i) // min_repeats) + 1):
            reps = 1 + agree[length][i] // length
            covered = length * reps
            if reps < min_repeats or (best is not None and covered <= best[0]):
                continue
            if primitive(i, length):
                best = (covered, length, reps)
        if best is None:
            i += 1
        else:
            runs.append((i, best[1], best[2]))
            i += best[0]
    return runs


def _repeats_detector(min_length: int, min_repeats: int) -> Detector:
    def detect(model_id: str, arch: _Arch) -> list[Match]:
        out = []
        for chain in _chains(arch):
            sigs = [_signature(arch.layers[n]) for n in chain]
            for start, length, reps in _repeat_runs(sigs, min_length, min_repeats):
                run = tuple(chain[start : start + length * reps])
                unit = " → ".join(_label(arch.layers[n]) for n in run[:length])
                out.append(
                    Match(
                        model_id,
                        run,
                        f"{REPEAT}×{reps}",
                        f"[{unit}] × {reps}: {run[0]} … {run[-1]}",
                    )
                )
        return out

    return detect


def skip_connections(model: ModelLogs) -> list[Match]:
    """Edges ``u → v`` that bypass at least one layer (another path ``u → … → v`` exists)."""
    return _with_nested(model.id, _model_arch(model), _skips)


def branches(model: ModelLogs) -> list[Match]:
    """Multi-branch blocks: a fork whose non-trivial branches (two or more) merge again.

    A fork whose only other branch is the direct edge is a skip and not reported here.
    """
    return _with_nested(model.id, _model_arch(model), _branches)


def repeated_blocks(model: ModelLogs, min_length: int = 2, min_repeats: int = 2) -> list[Match]:
    """Runs of ``min_repeats`` or more consecutive copies of a unit of ``min_length`` or
    more layers (same classes and activations) along a chain of the layer graph."""
    if min_length < 1 or min_repeats < 2:
        raise ValueError("repeated blocks need min_length >= 1 and min_repeats >= 2")
    return _with_nested(model.id, _model_arch(model), _repeats_detector(min_length, min_repeats))


#: structures() per model, by (model id, the identity of its layer list): ``ModelLogs``
#: replaces the list when model.json changes, and the entry holds the list, so its identity
#: cannot be reused. ``badges`` and ``search`` run on every refresh of the viewer.
_CACHE: OrderedDict[tuple[str, int], tuple[list[Layer], tuple[Match, ...]]] = OrderedDict()
_CACHE_SIZE = 256


def structures(model: ModelLogs) -> list[Match]:
    """Skips, then branches, then repeated blocks (default lengths) of ``model``."""
    key = (model.id, id(model.layers))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is model.layers:
        return list(hit[1])
    found = skip_connections(model) + branches(model) + repeated_blocks(model)
    _CACHE[key] = (model.layers, tuple(found))
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return found


def _structure_type(badge: str) -> str:
    return REPEAT if badge.startswith(REPEAT) else badge


# --- the store --------------------------------------------------------------------------------
def _models(store: Store) -> list[ModelLogs]:
    """Every model, in the store's display order (models outside the tree last)."""
    ordered = store.ordered_models()
    seen = {m.id for m in ordered}
    return ordered + [m for m in store.models.values() if m.id not in seen]


def _badge_rank(badge: str) -> tuple[int, str]:
    kinds = list(NOTABLE_KINDS)
    if badge in kinds:
        return (kinds.index(badge), badge)
    return (len(kinds) + STRUCTURES.index(_structure_type(badge)), badge)


def _join(badges: Iterable[str]) -> str:
    return " ".join(sorted(set(badges), key=_badge_rank))


def badges(
    store: Store, models: Iterable[ModelLogs] | None = None
) -> dict[tuple[str, str | None], str]:
    """Badge text of layers, ``(model_id, layer)``, and of models, ``(model_id, None)``.

    A layer's badges are its notable kinds (conv, rnn, attention, norm, dropout) and the
    structures it takes part in (skip, branch, repeat×N); a model's are the union over its
    layers, with ``repeat`` for any repeat. Order is fixed (kinds, then skip, branch,
    repeat); units without a badge have no entry. ``models``: only those (the viewer asks
    for the models on screen first; a logdir of thousands has more than anyone looks at).
    """
    out: dict[tuple[str, str | None], str] = {}
    for model in _models(store) if models is None else models:
        per_layer: dict[str, set[str]] = {}
        for layer in model.layers:
            per_layer.setdefault(layer.name, set()).update(_notable_kinds(layer))
        for match in structures(model):
            for name in match.layers:
                per_layer.setdefault(name, set()).add(match.badge)
        for name, found in per_layer.items():
            if found:
                out[(model.id, name)] = _join(found)
        overall = {_structure_type(b) for found in per_layer.values() for b in found}
        if overall:
            out[(model.id, None)] = _join(overall)
    return out


def _structure_filter(word: str) -> Callable[[str], bool] | None:
    """A test of a structure badge for a query word naming a structure, else None."""
    if word in _STRUCTURE_WORDS:
        kind = _STRUCTURE_WORDS[word]
        return lambda badge: _structure_type(badge) == kind
    count = _REPEAT_COUNT.match(word)
    if count:
        wanted = f"{REPEAT}×{int(count.group(1))}"
        return lambda badge: badge == wanted
    return None


def search(store: Store, query: str) -> list[tuple[str, Match]]:
    """(unit path, match) in every model for the words of ``query``.

    Words naming a structure (``skip``, ``branch``, ``repeat``, ``repeat×3``) select
    structures of any of those types; the other words are kinds (see ``find_kinds``) that
    one layer must all match. With both, a structure is kept when one of its layers matches
    the kinds (``skip dense``: skips involving a Dense layer). The path is the match's first
    layer: the layer itself, a skip's source, a block's fork, a repeat's first layer.
    """
    words = _words(query)
    tests = [t for w in words if (t := _structure_filter(w)) is not None]
    kinds = [w for w in words if _structure_filter(w) is None]
    found: list[tuple[str, Match]] = []
    for model in (m.transient() for m in _models(store)):  # read once, not kept
        if tests:
            matches = [m for m in structures(model) if any(t(m.badge) for t in tests)]
            if kinds:
                arch_layers = {layer.name: layer for layer in model.layers}
                matches = [
                    m
                    for m in matches
                    if any(
                        name in arch_layers and _layer_reasons(arch_layers[name], kinds)
                        for name in m.layers
                    )
                ]
        elif kinds:
            matches = find_kinds(model, " ".join(kinds))
        else:
            matches = []
        for match in matches:
            found.append((store.path(UoA(model.id, match.layers[0])), match))
    return found


__all__ = [
    "ACTIVATIONS",
    "NOTABLE_KINDS",
    "Match",
    "badges",
    "branches",
    "find_kinds",
    "repeated_blocks",
    "search",
    "skip_connections",
    "structures",
]
