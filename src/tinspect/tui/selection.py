"""The selected unit of analysis: an experiment, or a store ``UoA`` (model ... neuron).

Experiments exist only in the viewer's L3 (a connected group of models has no path in the
logs), so the selection wraps both. Its ``paths`` are the unit paths used by queries, widget
headers and CSV; ``level`` is where in the hierarchy it lives (L3 experiments and models,
L2 layers, L1 variables and neurons).
"""

from __future__ import annotations

from dataclasses import dataclass

from tinspect.store import Store, UoA


@dataclass(frozen=True)
class Selection:
    experiment: str | None = None
    uoa: UoA | None = None

    @property
    def kind(self) -> str:
        if self.uoa is not None:
            return self.uoa.kind
        return "experiment" if self.experiment is not None else "none"

    @property
    def level(self) -> int:
        return {"experiment": 3, "model": 3, "layer": 2, "variable": 1, "neuron": 1}.get(
            self.kind, 3
        )

    @property
    def model_id(self) -> str | None:
        return self.uoa.model if self.uoa is not None else None

    def models(self, store: Store) -> list[str]:
        """Model ids: the experiment's models, or the selected unit's model."""
        if self.uoa is not None:
            return [self.uoa.model]
        for experiment in store.tree.experiments:
            if experiment.name == self.experiment:
                return list(experiment.models)
        return []

    def paths(self, store: Store) -> list[str]:
        if self.uoa is not None:
            return [store.path(self.uoa)]
        return self.model_paths(store)

    def model_paths(self, store: Store) -> list[str]:
        return [store.path(UoA(m)) for m in self.models(store) if m in store.models]

    def label(self, store: Store) -> str:
        if self.uoa is not None:
            return store.path(self.uoa)
        return f"experiment {self.experiment}" if self.experiment else "nothing selected"


class MergedSelection(Selection):
    """Several units shown in one widget (same tool; histograms share one range)."""

    def __init__(self, parts: list[Selection]) -> None:
        super().__init__(parts[0].experiment, parts[0].uoa)
        object.__setattr__(self, "parts", tuple(parts))

    def paths(self, store: Store) -> list[str]:
        out: list[str] = []
        for part in self.parts:  # type: ignore[attr-defined]
            out += [p for p in part.paths(store) if p not in out]
        return out

    def models(self, store: Store) -> list[str]:
        out: list[str] = []
        for part in self.parts:  # type: ignore[attr-defined]
            out += [m for m in part.models(store) if m not in out]
        return out

    def label(self, store: Store) -> str:
        return " + ".join(self.paths(store))


@dataclass(frozen=True)
class PairSelection(Selection):
    """One model compared with a second one picked for it (the compare tools on a model).

    ``other`` is a ``MODEL[@EPOCH]`` reference (``imacs.load_side``): another model, or the
    model itself at its first epoch with attributions (the sanity check).
    """

    other: str = ""

    def models(self, store: Store) -> list[str]:
        """The model, then the other one (when it still exists)."""
        head, at, tail = self.other.rpartition("@")
        name = head if at and head and tail.isdigit() else self.other
        mine = super().models(store)
        found = store.find_models(name) if name else []
        return mine + [m.id for m in found[:1] if m.id not in mine]

    def label(self, store: Store) -> str:
        return f"{super().label(store)} vs {self.other}"
