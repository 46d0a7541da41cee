"""The in-training checks: the one place where the write side uses the read side.

The layering is ``record -> format`` and ``tui -> query, analysis -> store -> format``: the
recorder writes files and knows nothing of how they are read. The silent-bug checks are the
exception by design: while training runs, the recorder asks the *reader* what it can see in the
checkpoints just written, so the checks a user gets in the terminal are exactly the ones
``tinspect check`` runs later. That use goes through this module and nowhere else (an
import-linter contract in pyproject.toml keeps it so): the callback holds a ``TrainingChecks``
and calls ``run`` on its writer thread.

The store and analysis packages are imported lazily, on the first ``run``: a callback built
with ``checks=False`` never loads scipy, networkx or h5py's read paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tinspect.analysis.diagnose import Finding
    from tinspect.store import Store

#: Per-unit (min, max) of one layer's activations, as the recorder computed them.
Extremes = tuple[np.ndarray, np.ndarray]


class TrainingChecks:
    """The silent-bug checks of one model directory while it is being recorded.

    One store for the whole run, refreshed before each run of the checks: its cache of reduced
    statistics spans checkpoints, so a layer unchanged since the last check is not read again.
    """

    def __init__(self, model_dir: Path, model_id: str) -> None:
        self.model_dir = model_dir
        self.model_id = model_id
        self._store: Store | None = None

    def run(
        self, epoch: int, extremes: Mapping[int, Mapping[str, Extremes]] | None = None
    ) -> list[Finding]:
        """The findings of the checks on the checkpoint of ``epoch`` (all of them; the caller
        drops the ones it reported before).

        ``extremes`` are per-unit extremes of layers by epoch, computed while their activations
        were in memory: the checks use them instead of reading the activations back. Static
        checks (the architecture) run once, with the initialization (epoch 0). Errors propagate:
        the caller decides that a failing check must not harm training.
        """
        from tinspect.analysis.diagnose import diagnose_model, seed_unit_extremes
        from tinspect.store import Store
        from tinspect.store.cache import Cache

        if self._store is None:
            self._store = Store(self.model_dir, cache=Cache(None))
        else:
            self._store.refresh()
        store = self._store
        if self.model_id not in store.models:
            return []
        epochs = store.models[self.model_id].epochs
        for seen, layers in (extremes or {}).items():
            if seen in epochs:
                for layer, (lo, hi) in layers.items():
                    seed_unit_extremes(store, self.model_id, seen, layer, lo, hi)
        kinds = ("static", "dynamic") if epoch == 0 else ("dynamic",)
        return diagnose_model(store, self.model_id, kinds=kinds, epochs=[epoch])

    def close(self) -> None:
        """Close the store's open files (at the end of a fit)."""
        if self._store is not None:
            self._store.close()
            self._store = None
