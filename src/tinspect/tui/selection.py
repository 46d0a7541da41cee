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


class PairSelection(Selection):
    """Two models compared (the diff of a pair from a group): model ``b`` against ``a``.

    It is the selection of ``b`` (the card takes ``b``'s colour and jumps to ``b``), with
    ``a`` beside it, so a card on it reloads when either model changes."""

    def __init__(self, b: str, a: str) -> None:
        super().__init__(None, UoA(b))
        object.__setattr__(self, "against", a)

    @property
    def pair(self) -> tuple[str, str]:
        """(a, b): the model compared against, and the model compared."""
        assert self.uoa is not None
        return self.against, self.uoa.model  # type: ignore[attr-defined]

    def models(self, store: Store) -> list[str]:
        a, b = self.pair
        return [b, a]

    def label(self, store: Store) -> str:
        a, b = self.pair
        names = [store.display_name(store.models[m]) if m in store.models else m for m in (b, a)]
        return f"{names[0]} against {names[1]}"
