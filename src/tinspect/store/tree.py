"""The tree of model variants: parents → children, experiments, depths, parameter deltas.

Models name their parents by id. The graph keeps a node for a parent that is not in the
logs (marked ``missing``) rather than failing; a cycle (which a hand-edited header can
create) is broken by ignoring the link that closes it, reported as a problem. Experiments
are the weakly connected components, named after their root models.

The graph is small plain Python (dicts of node and edge attributes) rather than networkx:
it is built when a logdir opens, and importing networkx alone costs ~0.1 s of the viewer's
start-up; layer graphs (``ModelLogs.graph``) still use networkx, lazily.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tinspect.store.model import ModelLogs
from tinspect.store.problems import ProblemLog, problem
from tinspect.store.uoa import UnitNotFound


@dataclass
class ModelGraph:
    """Nodes (model ids → attributes) and directed edges ((parent, child) → attributes)."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _succ: dict[str, list[str]] = field(default_factory=dict)
    _pred: dict[str, list[str]] = field(default_factory=dict)

    def add_node(self, node: str, **attrs: Any) -> None:
        self.nodes.setdefault(node, {}).update(attrs)
        self._succ.setdefault(node, [])
        self._pred.setdefault(node, [])

    def add_edge(self, u: str, v: str, **attrs: Any) -> None:
        for n in (u, v):
            if n not in self.nodes:
                self.add_node(n)
        if (u, v) not in self.edges:
            self._succ[u].append(v)
            self._pred[v].append(u)
        self.edges.setdefault((u, v), {}).update(attrs)

    def remove_edge(self, u: str, v: str) -> None:
        del self.edges[(u, v)]
        self._succ[u].remove(v)
        self._pred[v].remove(u)

    def successors(self, node: str) -> Iterator[str]:
        return iter(list(self._succ.get(node, ())))

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(list(self._pred.get(node, ())))

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def find_cycle(self) -> list[tuple[str, str]] | None:
        """The edges of one directed cycle, or None (iterative depth-first search)."""
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        for start in self.nodes:
            if state.get(start):
                continue
            path: list[str] = [start]
            iters = [iter(self._succ[start])]
            state[start] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    iters.pop()
                elif state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    return list(itertools.pairwise(cycle))
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(self._succ[nxt]))
        return None

    def topological_order(self) -> list[str]:
        """Kahn's algorithm; the graph must be acyclic."""
        indegree = {n: len(self._pred[n]) for n in self.nodes}
        ready = [n for n, d in indegree.items() if d == 0]
        order: list[str] = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for succ in self._succ[node]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
        return order

    def weak_components(self) -> list[set[str]]:
        parent = {n: n for n in self.nodes}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for u, v in self.edges:
            parent[find(u)] = find(v)
        groups: dict[str, set[str]] = {}
        for n in self.nodes:
            groups.setdefault(find(n), set()).add(n)
        return list(groups.values())

    def is_acyclic(self) -> bool:
        return self.find_cycle() is None


@dataclass(frozen=True)
class Experiment:
    """A connected group of models; ``models`` are ids ordered by depth, then name."""

    name: str
    roots: tuple[str, ...]
    models: tuple[str, ...]


@dataclass
class ModelTree:
    graph: ModelGraph
    experiments: list[Experiment]
    #: Experiment of each model id, built on first use (``ls`` asks for every model).
    _by_model: dict[str, Experiment] | None = field(default=None, repr=False, compare=False)

    def depth(self, model_id: str) -> int:
        return int(self.graph.nodes[model_id].get("depth", 0))

    def children(self, model_id: str) -> list[str]:
        return sorted(self.graph.successors(model_id), key=self._order)

    def parents(self, model_id: str) -> list[str]:
        return sorted(self.graph.predecessors(model_id), key=self._order)

    def experiment_of(self, model_id: str) -> Experiment:
        if self._by_model is None:
            self._by_model = {m: e for e in self.experiments for m in e.models}
        experiment = self._by_model.get(model_id)
        if experiment is not None:
            return experiment
        raise UnitNotFound(f"model id {model_id[:8]} is in no experiment (not in the logdir)")

    def _order(self, node: str) -> tuple[int, str]:
        data = self.graph.nodes[node]
        return int(data.get("depth", 0)), str(data.get("name", node))


def build_tree(models: Mapping[str, ModelLogs], problems: ProblemLog) -> ModelTree:
    """The model graph of ``models`` (keyed by id), with problems for cycles."""
    graph = ModelGraph()
    for model_id, model in models.items():
        graph.add_node(model_id, name=model.name, label=model.label, missing=False)
    for model_id, model in models.items():
        for parent in model.parents:
            if parent not in graph:
                graph.add_node(parent, name=f"missing {parent[:8]}", label="", missing=True)
            delta = None
            if parent in models:
                delta = model.total_params - models[parent].total_params
            graph.add_edge(parent, model_id, param_delta=delta)
    while (cycle := graph.find_cycle()) is not None:
        source, target = cycle[-1]
        names = " → ".join(graph.nodes[u]["name"] for u, _v in cycle)
        source_name, target_name = graph.nodes[source]["name"], graph.nodes[target]["name"]
        where = models[target].directory if target in models else target
        problems.add(
            problem(
                where,
                f"parent cycle {names} → {target_name}; "
                f"the link {source_name} → {target_name} is ignored",
                "fix the parents in the headers",
            )
        )
        graph.remove_edge(source, target)
    for node in graph.topological_order():
        preds = list(graph.predecessors(node))
        graph.nodes[node]["depth"] = max((graph.nodes[p]["depth"] + 1 for p in preds), default=0)
    tree = ModelTree(graph, [])
    experiments = []
    for component in graph.weak_components():
        ordered = sorted(component, key=tree._order)
        present = [n for n in ordered if not graph.nodes[n]["missing"]]
        if not present:
            continue
        roots = [n for n in present if not any(p in models for p in graph.predecessors(n))]
        name = " + ".join(graph.nodes[r]["name"] for r in roots) or graph.nodes[present[0]]["name"]
        experiments.append(Experiment(name, tuple(roots), tuple(present)))
    tree.experiments = sorted(experiments, key=lambda e: e.name)
    tree._by_model = None
    return tree
