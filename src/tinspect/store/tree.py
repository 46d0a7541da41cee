"""The tree of model variants: parents → children, experiments, depths, parameter deltas.

Models name their parents by id. The graph keeps a node for a parent that is not in the
logs (marked ``missing``) rather than failing; a cycle (which a hand-edited header can
create) is broken by ignoring the link that closes it, reported as a problem. Experiments
are the weakly connected components, named after their root models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import networkx as nx

from tinspect.store.model import ModelLogs
from tinspect.store.problems import ProblemLog, problem


@dataclass(frozen=True)
class Experiment:
    """A connected group of models; ``models`` are ids ordered by depth, then name."""

    name: str
    roots: tuple[str, ...]
    models: tuple[str, ...]


@dataclass
class ModelTree:
    graph: nx.DiGraph
    experiments: list[Experiment]

    def depth(self, model_id: str) -> int:
        return int(self.graph.nodes[model_id].get("depth", 0))

    def children(self, model_id: str) -> list[str]:
        return sorted(self.graph.successors(model_id), key=self._order)

    def parents(self, model_id: str) -> list[str]:
        return sorted(self.graph.predecessors(model_id), key=self._order)

    def experiment_of(self, model_id: str) -> Experiment:
        for experiment in self.experiments:
            if model_id in experiment.models:
                return experiment
        raise KeyError(model_id)

    def _order(self, node: str) -> tuple[int, str]:
        data = self.graph.nodes[node]
        return int(data.get("depth", 0)), str(data.get("name", node))


def build_tree(models: Mapping[str, ModelLogs], problems: ProblemLog) -> ModelTree:
    """The model graph of ``models`` (keyed by id), with problems for cycles."""
    graph = nx.DiGraph()
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
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            break
        source, target = cycle[-1][0], cycle[-1][1]
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
    for node in nx.topological_sort(graph):
        preds = list(graph.predecessors(node))
        graph.nodes[node]["depth"] = max((graph.nodes[p]["depth"] + 1 for p in preds), default=0)
    tree = ModelTree(graph, [])
    experiments = []
    for component in nx.weakly_connected_components(graph):
        ordered = sorted(component, key=tree._order)
        present = [n for n in ordered if not graph.nodes[n]["missing"]]
        if not present:
            continue
        roots = [n for n in present if not any(p in models for p in graph.predecessors(n))]
        name = " + ".join(graph.nodes[r]["name"] for r in roots) or graph.nodes[present[0]]["name"]
        experiments.append(Experiment(name, tuple(roots), tuple(present)))
    tree.experiments = sorted(experiments, key=lambda e: e.name)
    return tree
