"""Running a query against the store: units → arrays → one processing step → a table.

Every number the CLI prints and the viewer draws comes from here. Reductions stream
through ``tinspect.store.reduce`` (bounded memory); summaries come from the checkpoint's
stored table when they describe exactly what was asked (no class or unit selection) and
are computed otherwise; computed results are cached by file identity and query.
Histograms of several units or epochs share one bin range, so they can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinspect import format as fmt
from tinspect.query import projection
from tinspect.query import samples as sample_selection
from tinspect.query.samples import SampleSelection
from tinspect.query.spec import Query, QueryError, select_epochs
from tinspect.query.table import Table
from tinspect.store import h5, reduce
from tinspect.store.checkpoint import DataError
from tinspect.store.logdir import Store
from tinspect.store.model import ModelLogs
from tinspect.store.uoa import UoA
from tinspect.summary import COLUMNS as SUMMARY_COLUMNS
from tinspect.summary import Summary, quantiles_from_histogram

Cancelled = Callable[[], bool]


class QueryCancelled(Exception):
    """The caller lost interest (the viewer moved on); raised between blocks of work."""


@dataclass(frozen=True)
class Target:
    """One array of one unit, to be read at each selected epoch."""

    uoa: UoA
    path: str  # the unit path shown in tables
    dataset: str  # HDF5 path inside a checkpoint
    summary_row: str | None  # row name in the stored summary table
    unit: int | None = None  # a neuron: index on the last axis
    weights: bool = False


def targets_for(store: Store, query: Query) -> list[Target]:
    """The arrays a query reads, in unit order."""
    out: list[Target] = []
    for text in query.uoas:
        uoa = store.resolve(text)
        model = store.models[uoa.model]
        if query.data == "activations":
            out += _activation_targets(store, model, uoa)
        elif query.data == "weights":
            out += _weight_targets(store, model, uoa)
        elif query.data == "mean_class_activations":
            if uoa.layer is None:
                raise QueryError("mean_class_activations needs a layer (model/layer)")
            name = fmt.layer_path(uoa.layer, fmt.MEAN_CLASS_ACTIVATIONS)
            out.append(Target(uoa, store.path(uoa), name, None, uoa.neuron))
        elif query.data == "samples":
            name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_X}"
            out.append(Target(UoA(model.id), store.path(UoA(model.id)), name, None))
        elif query.data == "predictions":
            name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_PREDICTION}"
            out.append(Target(UoA(model.id), store.path(UoA(model.id)), name, None))
    return out


def _activation_targets(store: Store, model: ModelLogs, uoa: UoA) -> list[Target]:
    if uoa.variable is not None:
        raise QueryError(f"{store.path(uoa)} is a variable: use --data weights")
    recorded = model.recording.get("layers")
    layers = (
        [uoa.layer]
        if uoa.layer
        else [
            layer.name
            for layer in model.layers
            if layer.class_name != "InputLayer"
            and (not isinstance(recorded, list) or layer.name in recorded)
        ]
    )
    out = []
    for layer in layers:
        assert layer is not None
        unit_uoa = UoA(model.id, layer, None, uoa.neuron)
        out.append(
            Target(
                unit_uoa,
                store.path(unit_uoa),
                fmt.layer_path(layer, fmt.ACTIVATIONS),
                fmt.summary_row_name(layer, fmt.ACTIVATIONS),
                uoa.neuron,
            )
        )
    return out


def _weight_targets(store: Store, model: ModelLogs, uoa: UoA) -> list[Target]:
    layers = [model.layer(uoa.layer)] if uoa.layer else list(model.layers)
    out = []
    for layer in layers:
        variables = [uoa.variable] if uoa.variable else layer.variable_names
        for var in variables:
            unit_uoa = UoA(model.id, layer.name, var)
            array = f"{fmt.WEIGHTS_GROUP}/{var}"
            out.append(
                Target(
                    unit_uoa if uoa.neuron is None else UoA(model.id, layer.name, var, uoa.neuron),
                    store.path(unit_uoa),
                    fmt.layer_path(layer.name, fmt.WEIGHTS_GROUP, fmt.h5_key(var)),
                    fmt.summary_row_name(layer.name, array),
                    uoa.neuron,
                    weights=True,
                )
            )
    if uoa.neuron is not None and not out:
        raise QueryError(f"{store.path(uoa)}: the layer has no weights")
    return out


class Runner:
    """Runs queries against one store; ``cancelled`` is polled between blocks of work."""

    def __init__(self, store: Store, cancelled: Cancelled | None = None) -> None:
        self.store = store
        self.cancelled = cancelled or (lambda: False)
        #: The query's sample selection (None: every sample), set by ``run``, and its
        #: resolved rows per (model id, epoch).
        self.selection: SampleSelection | None = None
        self._sample_rows: dict[tuple[str, int], np.ndarray] = {}
        #: Projection bases fitted during this runner's life, by (model, dataset, epoch).
        self._bases: dict[tuple[str, str, int], projection.Basis] = {}

    def check(self) -> None:
        if self.cancelled():
            raise QueryCancelled()

    # --- helpers -----------------------------------------------------------------------------
    def epochs(self, query: Query, model: ModelLogs) -> list[int]:
        chosen = select_epochs(query.epochs, model.epochs)
        if not chosen:
            raise DataError(
                f"{model.name}: no checkpoint matches epochs={query.epochs!r} "
                f"(has {model.epochs or 'none'})"
            )
        return chosen

    def rows(self, model_id: str, epoch: int, classes: tuple[int, ...] | None) -> np.ndarray | None:
        """Sorted sample rows of the class selection and the sample selection (None: all)."""
        picked = self.sample_rows(model_id, epoch)
        if classes is None:
            return picked
        by_class = self._class_rows(model_id, epoch, classes)
        return by_class if picked is None else np.intersect1d(by_class, picked)

    def sample_rows(self, model_id: str, epoch: int) -> np.ndarray | None:
        """Sorted rows of the query's sample selection at a checkpoint (None: no selection)."""
        if self.selection is None:
            return None
        key = (model_id, epoch)
        if key not in self._sample_rows:
            model = self.store.models[model_id]
            self._sample_rows[key] = sample_selection.resolve(
                self.store, self.selection, model, epoch
            )
        return self._sample_rows[key]

    def samples_tag(self, model_id: str, epoch: int) -> str:
        """The sample selection's part of a cache key: its exact rows (or "all")."""
        return sample_selection.rows_key(self.sample_rows(model_id, epoch))

    def _class_rows(self, model_id: str, epoch: int, classes: tuple[int, ...]) -> np.ndarray:
        name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_CLASS}"
        if not self.store.has(model_id, epoch, name):
            raise DataError(
                f"{self.store.models[model_id].name} has no class labels; drop the class selection"
            )
        ids = h5.read(self.store.dataset(model_id, epoch, name))
        return np.flatnonzero(np.isin(ids, np.asarray(classes))).astype(np.int64)

    def class_ids(self, model_id: str, epoch: int) -> np.ndarray | None:
        name = f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_CLASS}"
        if not self.store.has(model_id, epoch, name):
            return None
        return h5.read(self.store.dataset(model_id, epoch, name)).astype(np.int64)

    def _cached(
        self, model_id: str, epoch: int, key: str, compute: Callable[[], dict[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        identity = self.store.identity(model_id, epoch)
        return self.store.cache.get_or_compute([identity], key, compute)

    def _reduced(
        self,
        target: Target,
        epoch: int,
        classes: tuple[int, ...] | None,
        key: str,
        reduction: Callable[[reduce.Blocks], dict[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """``reduction`` of the blocks of every unit of ``target`` at ``epoch`` (rows of the
        class selection), cached under ``key`` and what it reads."""

        def compute() -> dict[str, np.ndarray]:
            return reduction(reduce.blocks(*self.read(target, epoch, classes)))

        tag = self.samples_tag(target.uoa.model, epoch)
        return self._cached(
            target.uoa.model, epoch, f"{key}|{target.dataset}|{classes}|{tag}", compute
        )

    @staticmethod
    def classes_for(target: Target, classes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The class selection that applies to ``target``: weights have no samples."""
        return None if target.weights else classes

    def read(
        self, target: Target, epoch: int, classes: tuple[int, ...] | None
    ) -> tuple[Any, np.ndarray | None]:
        """The target's dataset at ``epoch`` and the sample rows of the class selection."""
        dataset = self.store.dataset(target.uoa.model, epoch, target.dataset)
        rows = self.rows(target.uoa.model, epoch, self.classes_for(target, classes))
        return dataset, rows

    def summary(self, target: Target, epoch: int, classes: tuple[int, ...] | None) -> Summary:
        """The summary of a target at an epoch: stored when it answers exactly, else computed."""
        model_id = target.uoa.model
        exact = classes is None and self.selection is None and target.unit is None
        if exact and target.summary_row is not None:
            stored = self.store.summary_table(model_id, epoch).row(target.summary_row)
            if stored is not None:
                return stored
        classes = self.classes_for(target, classes)

        def compute() -> dict[str, np.ndarray]:
            dataset, rows = self.read(target, epoch, classes)
            unit = target.unit
            result = reduce.summary(
                reduce.blocks(dataset, rows, unit), reduce.n_values(dataset, rows, unit)
            )
            return {
                "stats": result.stats,
                "counts": result.hist_counts,
                "edges": result.hist_edges,
                "exact": np.array(result.exact_quantiles),
            }

        tag = self.samples_tag(model_id, epoch)
        key = f"summary|{target.dataset}|{classes}|{target.unit}|{tag}"
        value = self._cached(model_id, epoch, key, compute)
        return Summary(value["stats"], value["counts"], value["edges"], bool(value["exact"]))

    def shared_range(self, pairs: list[tuple[Target, int]], query: Query) -> tuple[float, float]:
        if query.range is not None:
            return float(query.range[0]), float(query.range[1])
        lo, hi = np.inf, -np.inf
        for target, epoch in pairs:
            self.check()
            s = self.summary(target, epoch, query.classes)
            if s["finite"] > 0:
                lo, hi = min(lo, s["min"]), max(hi, s["max"])
        if not np.isfinite(lo):
            return 0.0, 1.0
        return float(lo), float(hi)

    # --- the steps -----------------------------------------------------------------------------
    def run(self, query: Query) -> Table:
        self._sample_rows = {}
        parsed = sample_selection.parse(query.samples) if query.samples is not None else None
        self.selection = None if parsed is None or parsed.is_all else parsed
        meta: dict[str, Any] = {
            "query": query.to_dict(),
            "class_dependent": query.data
            in ("activations", "samples", "predictions", "mean_class_activations"),
        }
        if query.data == "metrics":
            table = self.metrics(query)
        elif query.data == "runtime":
            table = self.runtime(query)
        elif query.step == "confusion":
            table = self.confusion(query)
        else:
            targets = targets_for(self.store, query)
            if not targets:
                raise DataError("the query selects no arrays")
            pairs = []
            for target in targets:
                model = self.store.models[target.uoa.model]
                pairs += [(target, e) for e in self.epochs(query, model)]
            self.check_selection([(t.uoa.model, e) for t, e in pairs])
            table = getattr(self, f"step_{query.step}")(query, pairs)
            meta["uoas"] = sorted({t.path for t in targets}, key=[t.path for t in targets].index)
            meta["epochs"] = sorted({e for _t, e in pairs})
        if query.classes is not None:
            meta["classes"] = list(query.classes)
        if self.selection is not None:
            meta["samples"] = str(self.selection)
        table.meta.update(meta)
        return table

    def check_selection(self, checkpoints: list[tuple[str, int]]) -> None:
        """Resolve the sample selection at every checkpoint read; DataError when it selects
        no sample of a model at any of them (an empty selection at some epochs is fine:
        what a model misclassifies changes while it trains)."""
        if self.selection is None:
            return
        by_model: dict[str, list[int]] = {}
        for model_id, epoch in checkpoints:
            self.check()
            rows = self.sample_rows(model_id, epoch)
            assert rows is not None
            by_model.setdefault(model_id, []).append(len(rows))
        for model_id, counts in by_model.items():
            if not any(counts):
                name = self.store.display_name(self.store.models[model_id])
                epochs = sorted({e for m, e in checkpoints if m == model_id})
                where = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs}"
                raise DataError(f"samples={self.selection} selects no sample of {name} at {where}")

    def metrics(self, query: Query) -> Table:
        rows = []
        for text in query.uoas:
            model = self.store.models[self.store.resolve(text).model]
            name = self.store.display_name(model)
            logged = [int(r[fmt.METRIC_EPOCH]) for r in model.metrics]
            keep = set(select_epochs(query.epochs, logged))
            for row in model.metrics:
                epoch = int(row[fmt.METRIC_EPOCH])
                if epoch not in keep:
                    continue
                for key in model.metric_names(bookkeeping=True):
                    if key in row:
                        value = row[key]
                        rows.append(
                            (
                                name,
                                epoch,
                                key,
                                float(value) if isinstance(value, (int, float)) else None,
                            )
                        )
        return Table.from_rows(["model", "epoch", "metric", "value"], rows)

    def _checkpoints(self, query: Query) -> Iterator[tuple[ModelLogs, str, int]]:
        """(model, display name, epoch) of each selected checkpoint of the query's models."""
        for text in query.uoas:
            model = self.store.models[self.store.resolve(text).model]
            name = self.store.display_name(model)
            for epoch in self.epochs(query, model):
                self.check()
                yield model, name, epoch

    def runtime(self, query: Query) -> Table:
        """Per checkpoint: inference seconds per sample, bytes of the weights, optimizer step."""
        rows = []
        for model, name, epoch in self._checkpoints(query):
            attrs = self.store.attrs(model.id, epoch)
            rows.append(
                (
                    name,
                    epoch,
                    attrs.get(fmt.ATTR_RUNTIME_PER_SAMPLE),
                    attrs.get(fmt.ATTR_WEIGHTS_BYTES),
                    attrs.get(fmt.ATTR_STEP),
                )
            )
        return Table.from_rows(
            ["model", "epoch", "runtime_per_sample_s", "weights_bytes", "step"], rows
        )

    def step_summary(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        rows = []
        for target, epoch in pairs:
            self.check()
            s = self.summary(target, epoch, query.classes)
            counts = [int(s.stats[0]), int(s.stats[1])]  # count, finite
            rows.append((target.path, epoch, *counts, *[float(v) for v in s.stats[2:]]))
        return Table.from_rows(["uoa", "epoch", *SUMMARY_COLUMNS], rows)

    def step_histogram(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        lo, hi = self.shared_range(pairs, query)
        rows = []
        for target, epoch in pairs:
            self.check()
            counts, edges = self._histogram(target, epoch, query, lo, hi)
            for i, count in enumerate(counts):
                rows.append((target.path, epoch, float(edges[i]), float(edges[i + 1]), int(count)))
        table = Table.from_rows(["uoa", "epoch", "bin_left", "bin_right", "count"], rows)
        table.meta["range"] = [lo, hi]
        return table

    def _histogram(
        self, target: Target, epoch: int, query: Query, lo: float, hi: float
    ) -> tuple[np.ndarray, np.ndarray]:
        classes = self.classes_for(target, query.classes)
        model_id = target.uoa.model

        def compute() -> dict[str, np.ndarray]:
            dataset, rows = self.read(target, epoch, classes)
            counts, edges = reduce.hist(
                reduce.blocks(dataset, rows, target.unit), lo, hi, query.bins
            )
            return {"counts": counts, "edges": edges}

        tag = self.samples_tag(model_id, epoch)
        key = f"hist|{target.dataset}|{classes}|{target.unit}|{lo!r}|{hi!r}|{query.bins}|{tag}"
        value = self._cached(model_id, epoch, key, compute)
        return value["counts"], value["edges"]

    def step_quantiles(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        rows = []
        for target, epoch in pairs:
            self.check()
            classes = self.classes_for(target, query.classes)
            s = self.summary(target, epoch, classes)
            if s["finite"] == 0:
                values = [float("nan")] * len(query.quantiles)
            elif tuple(query.quantiles) == fmt.SUMMARY_QUANTILES:
                values = [s[c] for c in fmt.SUMMARY_QUANTILE_COLUMNS]
            else:
                values = list(self._quantiles(target, epoch, classes, query.quantiles, s))
            for q, v in zip(query.quantiles, values, strict=True):
                rows.append((target.path, epoch, float(q), float(v)))
        return Table.from_rows(["uoa", "epoch", "quantile", "value"], rows)

    def _quantiles(
        self,
        target: Target,
        epoch: int,
        classes: tuple[int, ...] | None,
        qs: tuple[float, ...],
        s: Summary,
    ) -> np.ndarray:
        model_id = target.uoa.model

        def compute() -> dict[str, np.ndarray]:
            dataset, rows = self.read(target, epoch, classes)
            source = reduce.blocks(dataset, rows, target.unit)
            if reduce.n_values(dataset, rows, target.unit) <= reduce.IN_MEMORY_VALUES:
                from tinspect.summary import finite_values

                flat = np.concatenate([finite_values(b)[0] for b in source()] or [np.zeros(0)])
                return {"values": np.quantile(flat, qs)}
            counts, edges = reduce.hist(source, s["min"], s["max"], 8192)
            return {"values": quantiles_from_histogram(counts, edges, qs)}

        tag = self.samples_tag(model_id, epoch)
        key = f"quantiles|{target.dataset}|{classes}|{target.unit}|{list(qs)}|{tag}"
        return self._cached(model_id, epoch, key, compute)["values"]

    def step_unit_stats(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        rows = []
        for target, epoch in pairs:
            self.check()
            classes = self.classes_for(target, query.classes)
            value = self._reduced(target, epoch, classes, "unit_stats", reduce.unit_stats)
            units = range(len(value["mean"])) if target.unit is None else [target.unit]
            for j in units:
                rows.append(
                    (
                        target.path,
                        epoch,
                        j,
                        *(
                            float(value[k][j])
                            for k in ("mean", "std", "min", "max", "zero_fraction")
                        ),
                    )
                )
        return Table.from_rows(
            ["uoa", "epoch", "unit", "mean", "std", "min", "max", "zero_fraction"], rows
        )

    def step_class_means(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        rows = []
        for target, epoch in pairs:
            self.check()
            model = self.store.models[target.uoa.model]
            means = self._class_means(target, epoch, model)
            names = model.class_names
            classes = (
                range(means.shape[0])
                if query.classes is None
                else [c for c in query.classes if c < means.shape[0]]
            )
            units = range(means.shape[1]) if target.unit is None else [target.unit]
            for c in classes:
                for j in units:
                    rows.append(
                        (
                            target.path,
                            epoch,
                            c,
                            names[c] if c < len(names) else str(c),
                            j,
                            float(means[c, j]),
                        )
                    )
        return Table.from_rows(["uoa", "epoch", "class", "class_name", "unit", "mean"], rows)

    def _class_means(self, target: Target, epoch: int, model: ModelLogs) -> np.ndarray:
        """(classes, units): the stored per-class means averaged over spatial axes, or computed
        (always computed, from the selected rows, under a sample selection)."""
        stored = target.dataset.rsplit("/", 1)[0] + f"/{fmt.MEAN_CLASS_ACTIVATIONS}"
        picked = self.sample_rows(model.id, epoch)

        def compute() -> dict[str, np.ndarray]:
            if picked is None and self.store.has(model.id, epoch, stored):
                values = h5.read(self.store.dataset(model.id, epoch, stored)).astype(np.float64)
                units = values.shape[-1] if values.ndim > 1 else 1
                return {"means": values.reshape(values.shape[0], -1, units).mean(axis=1)}
            ids = self.class_ids(model.id, epoch)
            if ids is None or model.n_classes == 0:
                raise DataError(f"{model.name} has no class labels for per-class means")
            dataset = self.store.dataset(model.id, epoch, target.dataset)
            return {"means": reduce.class_unit_means(dataset, ids, model.n_classes, picked)}

        key = f"class_means|{target.dataset}|{sample_selection.rows_key(picked)}"
        return self._cached(model.id, epoch, key, compute)["means"]

    def step_density(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        lo, hi = self.shared_range(pairs, query)

        def histograms(source: reduce.Blocks) -> dict[str, np.ndarray]:
            return {"counts": reduce.unit_histograms(source, lo, hi, query.bins)}

        rows = []
        for target, epoch in pairs:
            self.check()
            classes = self.classes_for(target, query.classes)
            key = f"density|{lo!r}|{hi!r}|{query.bins}"
            counts = self._reduced(target, epoch, classes, key, histograms)["counts"]
            edges = np.linspace(lo, hi, query.bins + 1)
            units = range(counts.shape[0]) if target.unit is None else [target.unit]
            for j in units:
                total = counts[j].sum()
                for i in range(query.bins):
                    density = counts[j, i] / total if total else 0.0
                    rows.append(
                        (
                            target.path,
                            epoch,
                            j,
                            float(edges[i]),
                            float(edges[i + 1]),
                            int(counts[j, i]),
                            float(density),
                        )
                    )
        table = Table.from_rows(
            ["uoa", "epoch", "unit", "bin_left", "bin_right", "count", "fraction"], rows
        )
        table.meta["range"] = [lo, hi]
        return table

    def step_topk(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        rows = []
        for target, epoch in pairs:
            self.check()
            dataset = self.store.dataset(target.uoa.model, epoch, target.dataset)
            with h5.H5_LOCK:
                shape = dataset.shape
            if target.unit is not None:
                values = h5.read(dataset)[..., target.unit]
                flat = values.reshape(-1)
                order = np.lexsort((np.arange(flat.size), -np.abs(flat)))[: query.k]
                picked = [(np.unravel_index(i, values.shape), flat[i]) for i in order]
                picked = [((*idx, target.unit), v) for idx, v in picked]
            else:
                idx, vals = reduce.top_k(dataset, query.k)
                picked = [(np.unravel_index(i, shape), v) for i, v in zip(idx, vals, strict=True)]
            for rank, (index, value) in enumerate(picked, start=1):
                rows.append(
                    (target.path, epoch, rank, ":".join(str(int(i)) for i in index), float(value))
                )
        return Table.from_rows(["uoa", "epoch", "rank", "index", "value"], rows)

    def step_raw(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        limit = query.limit
        if pairs and pairs[0][0].weights:
            rows: list[tuple] = []
            for target, epoch in pairs:
                self.check()
                values = h5.read(self.store.dataset(target.uoa.model, epoch, target.dataset))
                if target.unit is not None:
                    values = values[..., target.unit : target.unit + 1]
                for index in np.ndindex(values.shape):
                    coords = index if target.unit is None else (*index[:-1], target.unit)
                    rows.append(
                        (target.path, epoch, ":".join(map(str, coords)), float(values[index]))
                    )
                    if limit and len(rows) >= limit:
                        return Table.from_rows(["uoa", "epoch", "index", "value"], rows)
            return Table.from_rows(["uoa", "epoch", "index", "value"], rows)
        columns = ["uoa", "epoch", "sample", "class", "index", "value"]
        rows = []
        for target, epoch in pairs:
            model_id = target.uoa.model
            dataset = self.store.dataset(model_id, epoch, target.dataset)
            if query.data == "mean_class_activations":
                values = h5.read(dataset)
                if target.unit is not None:
                    values = values[..., target.unit : target.unit + 1]
                for index in np.ndindex(values.shape):
                    c = index[0]
                    inner = index[1:] if target.unit is None else (*index[1:-1], target.unit)
                    rows.append(
                        (target.path, epoch, "", c, ":".join(map(str, inner)), float(values[index]))
                    )
                continue
            ids = self.class_ids(model_id, epoch)
            selected = self.rows(model_id, epoch, query.classes)
            for index_rows, block in h5.iter_blocks(dataset, selected):
                self.check()
                if target.unit is not None:
                    block = block[..., target.unit : target.unit + 1]
                for k, sample in enumerate(index_rows):
                    c = int(ids[sample]) if ids is not None else ""
                    values = block[k]
                    for inner in np.ndindex(values.shape):
                        coords = inner if target.unit is None else (*inner[:-1], target.unit)
                        rows.append(
                            (
                                target.path,
                                epoch,
                                int(sample),
                                c,
                                ":".join(map(str, coords)),
                                float(values[inner]),
                            )
                        )
                        if limit and len(rows) >= limit:
                            return Table.from_rows(columns, rows)
        return Table.from_rows(columns, rows)

    def step_projection(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        """2-D PCA coordinates per sample; the basis is fitted at ``query.basis_epoch`` of each
        model and applied to every epoch asked for, so the samples move in one frame.

        The basis is fitted on every recorded sample, whatever the selection: a sample's
        coordinates do not depend on which others are shown, so a selection is the same
        points highlighted (or filtered) in the same picture.
        """
        columns = ["uoa", "epoch", "sample", "class", "pc1", "pc2", "predicted", "correct"]
        rows: list[tuple[Any, ...]] = []
        explained: dict[str, list[float]] = {}
        basis_epochs: dict[str, int] = {}
        for target, epoch in pairs:
            self.check()
            if target.unit is not None:
                raise QueryError(
                    f"projection takes a layer ({target.path.rsplit('/', 1)[0]}), not a unit"
                )
            model = self.store.models[target.uoa.model]
            chosen = select_epochs(query.basis_epoch, model.epochs)
            if not chosen:
                raise DataError(
                    f"{model.name}: no checkpoint matches basis_epoch={query.basis_epoch!r} "
                    f"(has {model.epochs or 'none'})"
                )
            basis_epoch = chosen[0]
            value = self._projection(target, basis_epoch, epoch)
            explained[target.path] = [float(v) for v in value["explained"]]
            basis_epochs[target.path] = basis_epoch
            ids = self.class_ids(model.id, epoch)
            try:
                predicted = sample_selection.predicted_classes(self.store, model, epoch)
            except DataError:
                predicted = None  # not a classifier: no predicted class, no correctness
            selected = self.rows(model.id, epoch, query.classes)
            samples = range(len(value["scores"])) if selected is None else selected
            for sample in samples:
                i = int(sample)
                true = int(ids[i]) if ids is not None else None
                guess = int(predicted[i]) if predicted is not None else None
                correct = None if true is None or guess is None else guess == true
                pc1, pc2 = value["scores"][i]
                rows.append((target.path, epoch, i, true, float(pc1), float(pc2), guess, correct))
        table = Table.from_rows(columns, rows)
        table.meta["basis_epoch"] = basis_epochs
        table.meta["explained_variance_ratio"] = explained
        return table

    def _projection(self, target: Target, basis_epoch: int, epoch: int) -> dict[str, np.ndarray]:
        """Scores (N, 2) of ``epoch`` in the basis fitted at ``basis_epoch``, cached under
        both files' identities; the basis itself is kept for the run (it is D × 3 floats)."""
        model_id = target.uoa.model
        key = (model_id, target.dataset, basis_epoch)

        def basis() -> projection.Basis:
            if key not in self._bases:
                dataset = self.store.dataset(model_id, basis_epoch, target.dataset)
                self._bases[key] = projection.fit(dataset, check=self.check)
            return self._bases[key]

        def compute() -> dict[str, np.ndarray]:
            fitted = basis()
            if epoch == basis_epoch:
                scores = fitted.scores
            else:
                dataset = self.store.dataset(model_id, epoch, target.dataset)
                scores = projection.project(dataset, fitted, check=self.check)
            return {"scores": scores, "explained": fitted.explained}

        identities = [
            self.store.identity(model_id, basis_epoch),
            self.store.identity(model_id, epoch),
        ]
        cache_key = f"projection|{target.dataset}|{basis_epoch}|{epoch}"
        return self.store.cache.get_or_compute(identities, cache_key, compute)

    def confusion(self, query: Query) -> Table:
        rows = []
        checkpoints = list(self._checkpoints(query))
        self.check_selection([(model.id, epoch) for model, _name, epoch in checkpoints])
        for model, name, epoch in checkpoints:
            ids = self.class_ids(model.id, epoch)
            if ids is None:
                raise DataError(f"{model.name} has no class labels for a confusion matrix")
            pred = h5.read(
                self.store.dataset(
                    model.id, epoch, f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_PREDICTION}"
                )
            )
            kind = model.dataset.get("output_kind")
            scores = pred.ndim == 2 and pred.shape[1] >= 2
            if kind is None:
                scores = scores and pred.shape[1] == model.n_classes
            if not scores or kind not in (None, "classification"):
                raise DataError(
                    f"{model.name}: predictions are not class scores "
                    f"(shape {pred.shape}, output kind {kind or 'unknown'})"
                )
            predicted = np.argmax(pred, axis=1)
            n = max(model.n_classes, pred.shape[1])
            keep = np.ones(len(ids), bool) if query.classes is None else np.isin(ids, query.classes)
            picked = self.sample_rows(model.id, epoch)
            if picked is not None:
                keep &= np.isin(np.arange(len(ids)), picked)
            matrix = np.zeros((n, n), dtype=np.int64)
            np.add.at(matrix, (ids[keep], predicted[keep]), 1)
            for t in range(n):
                for p in range(n):
                    rows.append((name, epoch, t, p, int(matrix[t, p])))
        return Table.from_rows(["model", "epoch", "true", "predicted", "count"], rows)


def run(store: Store, query: Query, cancelled: Cancelled | None = None) -> Table:
    """Run ``query``; raises QueryError (bad query), UoAError (bad path), DataError (no data)."""
    return Runner(store, cancelled).run(query)
