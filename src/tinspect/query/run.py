"""Running a query against the store: units → arrays → one processing step → a table.

Every number the CLI prints and the viewer draws comes from here. Array facts (summaries,
reductions, reads, their cache) come from the store's array service (``store.arrays``,
``tinspect.store.arrays``): the runner says *which* array (an ``ArrayRef``) and *which*
processing step, never how a file is read or a cache key built. It keeps one checkpoint
handle per (model, epoch) for the duration of a query.

A checkpoint that cannot be read (damaged, truncated) is skipped: the store records one
Problem for it, the runner carries on with the other checkpoints and lists what it skipped
in the result's ``meta["problems"]`` (one line each); only a query of which nothing could be
read fails, with a ``DataError`` carrying that line.
Histograms of several units or epochs share one bin range, so they can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tinspect import format as fmt
from tinspect.query import projection
from tinspect.query import samples as sample_selection
from tinspect.query.samples import SampleSelection
from tinspect.query.spec import Query, QueryError, select_epochs
from tinspect.query.table import Table
from tinspect.store import (
    ArrayRef,
    CheckpointData,
    CheckpointUnreadable,
    DataError,
    ModelLogs,
    Store,
    UoA,
)
from tinspect.summary import COLUMNS as SUMMARY_COLUMNS
from tinspect.summary import Summary

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np

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
        model = store.model_by_id(uoa.model)
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


Row = tuple[Any, ...]


class Runner:
    """Runs queries against one store; ``cancelled`` is polled between blocks of work."""

    def __init__(self, store: Store, cancelled: Cancelled | None = None) -> None:
        self.store = store
        self.cancelled = cancelled or (lambda: False)
        self._handles: dict[tuple[str, int], CheckpointData] = {}
        #: One line per checkpoint skipped because it cannot be read (in order, unique).
        self.problems: list[str] = []
        self._read = 0  # checkpoints read successfully by the current query
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
    def handle(self, model_id: str, epoch: int) -> CheckpointData:
        """The one handle of this runner on a checkpoint (resolved once per query)."""
        key = (model_id, epoch)
        if key not in self._handles:
            self._handles[key] = self.store.arrays.checkpoint(model_id, epoch)
        return self._handles[key]

    def _skipped(self, error: CheckpointUnreadable) -> None:
        line = str(error)
        if line not in self.problems:
            self.problems.append(line)

    def _each(
        self, items: list[tuple[Target, int]], produce: Callable[[Target, int], list[Row]]
    ) -> list[Row]:
        """``produce`` for each (target, epoch), skipping unreadable checkpoints."""
        rows: list[Row] = []
        for target, epoch in items:
            self.check()
            try:
                rows += produce(target, epoch)
            except CheckpointUnreadable as error:
                self._skipped(error)
            else:
                self._read += 1
        return rows

    def epochs(self, query: Query, model: ModelLogs) -> list[int]:
        chosen = select_epochs(query.epochs, model.epochs)
        if not chosen:
            raise DataError(
                f"{model.name}: no checkpoint matches epochs={query.epochs!r} "
                f"(has {model.epochs or 'none'})"
            )
        return chosen

    def sample_rows(self, model_id: str, epoch: int) -> np.ndarray | None:
        """Sorted rows of the query's sample selection at a checkpoint (None: no selection)."""
        if self.selection is None:
            return None
        key = (model_id, epoch)
        if key not in self._sample_rows:
            model = self.store.model_by_id(model_id)
            self._sample_rows[key] = sample_selection.resolve(
                self.store, self.selection, model, epoch
            )
        return self._sample_rows[key]

    def check_selection(self, checkpoints: list[tuple[str, int]]) -> None:
        """Resolve the sample selection at every checkpoint read; DataError when it selects
        no sample of a model at any of them (an empty selection at some epochs is fine:
        what a model misclassifies changes while it trains). Unreadable checkpoints are
        skipped here as by the steps."""
        if self.selection is None:
            return
        by_model: dict[str, list[int]] = {}
        for model_id, epoch in checkpoints:
            self.check()
            try:
                rows = self.sample_rows(model_id, epoch)
            except CheckpointUnreadable as error:
                self._skipped(error)
                continue
            assert rows is not None
            by_model.setdefault(model_id, []).append(len(rows))
        for model_id, counts in by_model.items():
            if not any(counts):
                name = self.store.display_name(self.store.model_by_id(model_id))
                epochs = sorted({e for m, e in checkpoints if m == model_id})
                where = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs}"
                raise DataError(f"samples={self.selection} selects no sample of {name} at {where}")

    @staticmethod
    def classes_for(target: Target, classes: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """The class selection that applies to ``target``: weights have no samples."""
        return None if target.weights else classes

    def ref(self, target: Target, epoch: int, classes: tuple[int, ...] | None) -> ArrayRef:
        """The array ``target`` names at ``epoch``, restricted to the rows of the sample and
        class selections (weights have no samples: neither applies)."""
        data = self.handle(target.uoa.model, epoch)
        if target.weights:
            return data.ref(target.dataset, None, target.unit, target.summary_row)
        picked = self.sample_rows(target.uoa.model, epoch)
        rows = None if picked is None else tuple(int(i) for i in picked)
        return data.ref(target.dataset, rows, target.unit, target.summary_row, classes)

    def summary(self, target: Target, epoch: int, classes: tuple[int, ...] | None) -> Summary:
        """The summary of a target at an epoch: stored when it answers exactly, else computed."""
        ref = self.ref(target, epoch, classes)
        return self.handle(target.uoa.model, epoch).summary(ref)

    def shared_range(self, pairs: list[tuple[Target, int]], query: Query) -> tuple[float, float]:
        if query.range is not None:
            return float(query.range[0]), float(query.range[1])
        lo, hi = np.inf, -np.inf
        for target, epoch in pairs:
            self.check()
            try:
                s = self.summary(target, epoch, query.classes)
            except CheckpointUnreadable as error:
                self._skipped(error)  # the step skips it too
                continue
            if s["finite"] > 0:
                lo, hi = min(lo, s["min"]), max(hi, s["max"])
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return 0.0, 1.0
        return float(lo), float(hi)

    # --- the steps -----------------------------------------------------------------------------
    def run(self, query: Query) -> Table:
        self.problems, self._read = [], 0
        self._sample_rows = {}
        parsed = sample_selection.parse(query.samples) if query.samples is not None else None
        self.selection = None if parsed is None or parsed.is_all else parsed
        meta: dict[str, Any] = {
            "query": query.to_dict(),
            "class_dependent": query.data
            in ("activations", "samples", "predictions", "mean_class_activations"),
        }
        checkpoints = 0
        if query.data == "metrics":
            table = self.metrics(query)
        elif query.data == "runtime":
            checkpoints = -1
            table = self.runtime(query)
        elif query.step == "confusion":
            checkpoints = -1
            table = self.confusion(query)
        else:
            targets = targets_for(self.store, query)
            if not targets:
                raise DataError("the query selects no arrays")
            pairs = []
            for target in targets:
                model = self.store.model_by_id(target.uoa.model)
                pairs += [(target, e) for e in self.epochs(query, model)]
            checkpoints = len(pairs)
            self.check_selection([(t.uoa.model, e) for t, e in pairs])
            table = getattr(self, f"step_{query.step}")(query, pairs)
            meta["uoas"] = sorted({t.path for t in targets}, key=[t.path for t in targets].index)
            meta["epochs"] = sorted({e for _t, e in pairs})
        if checkpoints and self._read == 0 and self.problems:
            more = len(self.problems) - 1
            raise DataError(self.problems[0] + (f" (and {more} more)" if more else ""))
        if query.classes is not None:
            meta["classes"] = list(query.classes)
        if self.selection is not None:
            meta["samples"] = str(self.selection)
        if self.problems:
            meta["problems"] = list(self.problems)
        table.meta.update(meta)
        return table

    def metrics(self, query: Query) -> Table:
        rows = []
        for text in query.uoas:
            model = self.store.model_by_id(self.store.resolve(text).model)
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
            model = self.store.model_by_id(self.store.resolve(text).model)
            name = self.store.display_name(model)
            for epoch in self.epochs(query, model):
                self.check()
                yield model, name, epoch

    def _per_checkpoint(
        self, query: Query, produce: Callable[[ModelLogs, str, int], list[Row]]
    ) -> list[Row]:
        """``produce`` for each selected checkpoint, skipping unreadable ones."""
        rows: list[Row] = []
        for model, name, epoch in self._checkpoints(query):
            try:
                rows += produce(model, name, epoch)
            except CheckpointUnreadable as error:
                self._skipped(error)
            else:
                self._read += 1
        return rows

    def runtime(self, query: Query) -> Table:
        """Per checkpoint: inference seconds per sample, bytes of the weights, optimizer step."""

        def produce(model: ModelLogs, name: str, epoch: int) -> list[Row]:
            attrs = self.handle(model.id, epoch).attrs()
            return [
                (
                    name,
                    epoch,
                    attrs.get(fmt.ATTR_RUNTIME_PER_SAMPLE),
                    attrs.get(fmt.ATTR_WEIGHTS_BYTES),
                    attrs.get(fmt.ATTR_STEP),
                )
            ]

        return Table.from_rows(
            ["model", "epoch", "runtime_per_sample_s", "weights_bytes", "step"],
            self._per_checkpoint(query, produce),
        )

    def step_summary(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        def produce(target: Target, epoch: int) -> list[Row]:
            s = self.summary(target, epoch, query.classes)
            counts = [int(s.stats[0]), int(s.stats[1])]  # count, finite
            return [(target.path, epoch, *counts, *[float(v) for v in s.stats[2:]])]

        return Table.from_rows(["uoa", "epoch", *SUMMARY_COLUMNS], self._each(pairs, produce))

    def step_histogram(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        lo, hi = self.shared_range(pairs, query)

        def produce(target: Target, epoch: int) -> list[Row]:
            ref = self.ref(target, epoch, query.classes)
            value = self.handle(target.uoa.model, epoch).histogram(ref, lo, hi, query.bins)
            counts, edges = value["counts"], value["edges"]
            return [
                (target.path, epoch, float(edges[i]), float(edges[i + 1]), int(count))
                for i, count in enumerate(counts)
            ]

        table = Table.from_rows(
            ["uoa", "epoch", "bin_left", "bin_right", "count"], self._each(pairs, produce)
        )
        table.meta["range"] = [lo, hi]
        return table

    def step_quantiles(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        def produce(target: Target, epoch: int) -> list[Row]:
            s = self.summary(target, epoch, query.classes)
            if s["finite"] == 0:
                values = [float("nan")] * len(query.quantiles)
            elif tuple(query.quantiles) == fmt.SUMMARY_QUANTILES:
                values = [s[c] for c in fmt.SUMMARY_QUANTILE_COLUMNS]
            else:
                ref = self.ref(target, epoch, query.classes)
                data = self.handle(target.uoa.model, epoch)
                values = list(data.quantiles(ref, tuple(query.quantiles), s["min"], s["max"]))
            return [
                (target.path, epoch, float(q), float(v))
                for q, v in zip(query.quantiles, values, strict=True)
            ]

        return Table.from_rows(["uoa", "epoch", "quantile", "value"], self._each(pairs, produce))

    def step_unit_stats(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        stats = ("mean", "std", "min", "max", "zero_fraction")

        def produce(target: Target, epoch: int) -> list[Row]:
            ref = self.ref(target, epoch, query.classes)
            value = self.handle(target.uoa.model, epoch).unit_stats(ref.every_unit())
            units = range(len(value["mean"])) if target.unit is None else [target.unit]
            return [
                (target.path, epoch, j, *(float(value[k][j]) for k in stats))
                for j in units
                if j < len(value["mean"])
            ]

        return Table.from_rows(
            ["uoa", "epoch", "unit", *stats],
            self._each(pairs, produce),
        )

    def step_class_means(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        def produce(target: Target, epoch: int) -> list[Row]:
            model = self.store.model_by_id(target.uoa.model)
            means = self._class_means(target, epoch, model)
            names = model.class_names
            classes = (
                range(means.shape[0])
                if query.classes is None
                else [c for c in query.classes if 0 <= c < means.shape[0]]
            )
            units = range(means.shape[1]) if target.unit is None else [target.unit]
            return [
                (
                    target.path,
                    epoch,
                    c,
                    names[c] if c < len(names) else str(c),
                    j,
                    float(means[c, j]),
                )
                for c in classes
                for j in units
                if j < means.shape[1]
            ]

        return Table.from_rows(
            ["uoa", "epoch", "class", "class_name", "unit", "mean"], self._each(pairs, produce)
        )

    def _class_means(self, target: Target, epoch: int, model: ModelLogs) -> np.ndarray:
        """(classes, units): the stored per-class means averaged over spatial axes, or computed
        (always computed, from the selected rows, under a sample selection)."""
        stored = target.dataset.rsplit("/", 1)[0] + f"/{fmt.MEAN_CLASS_ACTIVATIONS}"
        data = self.handle(model.id, epoch)
        ref = self.ref(target, epoch, None).every_unit()

        def compute() -> dict[str, np.ndarray]:
            if ref.rows is None and data.has(stored):
                values = data.read(stored).astype(np.float64)
                if values.ndim == 0:
                    raise DataError(f"{model.name}: {stored} is not per class")
                units = values.shape[-1] if values.ndim > 1 else 1
                return {"means": values.reshape(values.shape[0], -1, units).mean(axis=1)}
            ids = data.class_ids()
            if ids is None or model.n_classes == 0:
                raise DataError(f"{model.name} has no class labels for per-class means")
            return {"means": data.class_unit_means(ref, ids, model.n_classes)}

        return data.cached(ref, "class_means", compute)["means"]

    def step_density(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        lo, hi = self.shared_range(pairs, query)
        edges = np.linspace(lo, hi, query.bins + 1)

        def produce(target: Target, epoch: int) -> list[Row]:
            ref = self.ref(target, epoch, query.classes)
            data = self.handle(target.uoa.model, epoch)
            counts = data.unit_histograms(ref.every_unit(), lo, hi, query.bins)
            units = range(counts.shape[0]) if target.unit is None else [target.unit]
            rows: list[Row] = []
            for j in units:
                if j >= counts.shape[0]:
                    continue
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
            return rows

        table = Table.from_rows(
            ["uoa", "epoch", "unit", "bin_left", "bin_right", "count", "fraction"],
            self._each(pairs, produce),
        )
        table.meta["range"] = [lo, hi]
        return table

    def step_topk(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        def produce(target: Target, epoch: int) -> list[Row]:
            data = self.handle(target.uoa.model, epoch)
            shape = data.shape(target.dataset)
            if target.unit is not None:
                values = data.read(target.dataset)[..., target.unit]
                flat = values.reshape(-1)
                order = np.lexsort((np.arange(flat.size), -np.abs(flat)))[: query.k]
                picked = [(np.unravel_index(i, values.shape), flat[i]) for i in order]
                picked = [((*idx, target.unit), v) for idx, v in picked]
            else:
                idx, vals = data.top_k(data.ref(target.dataset), query.k)
                picked = [(np.unravel_index(i, shape), v) for i, v in zip(idx, vals, strict=True)]
            return [
                (target.path, epoch, rank, ":".join(str(int(i)) for i in index), float(value))
                for rank, (index, value) in enumerate(picked, start=1)
            ]

        return Table.from_rows(
            ["uoa", "epoch", "rank", "index", "value"], self._each(pairs, produce)
        )

    def step_raw(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        limit = query.limit
        rows: list[Row] = []

        def full() -> bool:
            return bool(limit) and len(rows) >= (limit or 0)

        def weights(target: Target, epoch: int) -> list[Row]:
            values = self.handle(target.uoa.model, epoch).read(target.dataset)
            if target.unit is not None:
                values = values[..., target.unit : target.unit + 1]
            out: list[Row] = []
            for index in np.ndindex(values.shape):
                coords = index if target.unit is None else (*index[:-1], target.unit)
                out.append((target.path, epoch, ":".join(map(str, coords)), float(values[index])))
                if limit and len(rows) + len(out) >= limit:
                    break
            return out

        def class_means(target: Target, epoch: int) -> list[Row]:
            values = self.handle(target.uoa.model, epoch).read(target.dataset)
            if target.unit is not None:
                values = values[..., target.unit : target.unit + 1]
            out: list[Row] = []
            for index in np.ndindex(values.shape):
                c = index[0] if index else ""
                inner = index[1:] if target.unit is None else (*index[1:-1], target.unit)
                out.append(
                    (target.path, epoch, "", c, ":".join(map(str, inner)), float(values[index]))
                )
            return out

        def samples(target: Target, epoch: int) -> list[Row]:
            data = self.handle(target.uoa.model, epoch)
            ids = data.class_ids()
            picked = data.rows_of(self.ref(target, epoch, query.classes))
            out: list[Row] = []
            for index_rows, block in data.blocks(target.dataset, picked):
                self.check()
                if target.unit is not None:
                    block = block[..., target.unit : target.unit + 1]
                for k, sample in enumerate(index_rows):
                    c = int(ids[sample]) if ids is not None and sample < len(ids) else ""
                    values = block[k]
                    for inner in np.ndindex(values.shape):
                        coords = inner if target.unit is None else (*inner[:-1], target.unit)
                        out.append(
                            (
                                target.path,
                                epoch,
                                int(sample),
                                c,
                                ":".join(map(str, coords)),
                                float(values[inner]),
                            )
                        )
                        if limit and len(rows) + len(out) >= limit:
                            return out
            return out

        if pairs and pairs[0][0].weights:
            produce, columns = weights, ["uoa", "epoch", "index", "value"]
        else:
            columns = ["uoa", "epoch", "sample", "class", "index", "value"]
            produce = class_means if query.data == "mean_class_activations" else samples
        for pair in pairs:
            if full():
                break
            rows += self._each([pair], produce)
        return Table.from_rows(columns, rows[:limit] if limit else rows)

    def step_projection(self, query: Query, pairs: list[tuple[Target, int]]) -> Table:
        """2-D PCA coordinates per sample; the basis is fitted at ``query.basis_epoch`` of each
        model and applied to every epoch asked for, so the samples move in one frame.

        The basis is fitted on every recorded sample, whatever the selection: a sample's
        coordinates do not depend on which others are shown, so a selection is the same
        points highlighted (or filtered) in the same picture.
        """
        columns = ["uoa", "epoch", "sample", "class", "pc1", "pc2", "predicted", "correct"]
        explained: dict[str, list[float]] = {}
        basis_epochs: dict[str, int] = {}

        def produce(target: Target, epoch: int) -> list[Row]:
            if target.unit is not None:
                raise QueryError(
                    f"projection takes a layer ({target.path.rsplit('/', 1)[0]}), not a unit"
                )
            model = self.store.model_by_id(target.uoa.model)
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
            data = self.handle(model.id, epoch)
            ids = data.class_ids()
            try:
                predicted = sample_selection.predicted_classes(self.store, model, epoch)
            except CheckpointUnreadable:
                raise
            except DataError:
                predicted = None  # not a classifier: no predicted class, no correctness
            selected = data.rows_of(self.ref(target, epoch, query.classes))
            samples = range(len(value["scores"])) if selected is None else selected
            rows: list[Row] = []
            for sample in samples:
                i = int(sample)
                true = int(ids[i]) if ids is not None and i < len(ids) else None
                guess = int(predicted[i]) if predicted is not None and i < len(predicted) else None
                correct = None if true is None or guess is None else guess == true
                pc1, pc2 = value["scores"][i]
                rows.append((target.path, epoch, i, true, float(pc1), float(pc2), guess, correct))
            return rows

        table = Table.from_rows(columns, self._each(pairs, produce))
        table.meta["basis_epoch"] = basis_epochs
        table.meta["explained_variance_ratio"] = explained
        return table

    def _projection(self, target: Target, basis_epoch: int, epoch: int) -> dict[str, np.ndarray]:
        """Scores (N, 2) of ``epoch`` in the basis fitted at ``basis_epoch``, cached under
        both files' identities; the basis itself is kept for the run (it is D × 3 floats)."""
        model_id = target.uoa.model
        key = (model_id, target.dataset, basis_epoch)
        fitted_at, data = self.handle(model_id, basis_epoch), self.handle(model_id, epoch)

        def basis() -> projection.Basis:
            if key not in self._bases:
                self._bases[key] = projection.fit(fitted_at.array(target.dataset), check=self.check)
            return self._bases[key]

        def compute() -> dict[str, np.ndarray]:
            fitted = basis()
            if epoch == basis_epoch:
                scores = fitted.scores
            else:
                scores = projection.project(data.array(target.dataset), fitted, check=self.check)
            return {"scores": scores, "explained": fitted.explained}

        ref = data.ref(target.dataset)
        return data.cached_across([fitted_at], ref, "projection", compute, basis_epoch)

    def confusion(self, query: Query) -> Table:
        checkpoints = list(self._checkpoints(query))
        self.check_selection([(model.id, epoch) for model, _name, epoch in checkpoints])

        def produce(model: ModelLogs, name: str, epoch: int) -> list[Row]:
            data = self.handle(model.id, epoch)
            ids = data.class_ids()
            if ids is None:
                raise DataError(f"{model.name} has no class labels for a confusion matrix")
            pred = data.read(f"{fmt.SAMPLES_GROUP}/{fmt.SAMPLES_Y_PREDICTION}")
            kind = model.dataset.get("output_kind")
            scores = pred.ndim == 2 and pred.shape[1] >= 2
            if kind is None:
                scores = scores and pred.shape[1] == model.n_classes
            if not scores or kind not in (None, "classification") or len(pred) != len(ids):
                raise DataError(
                    f"{model.name}: predictions are not class scores "
                    f"(shape {pred.shape}, output kind {kind or 'unknown'})"
                )
            predicted = np.argmax(pred, axis=1)
            n = max(model.n_classes, pred.shape[1])
            keep = np.ones(len(ids), bool) if query.classes is None else np.isin(ids, query.classes)
            keep &= (ids >= 0) & (ids < n)
            picked = self.sample_rows(model.id, epoch)
            if picked is not None:
                keep &= np.isin(np.arange(len(ids)), picked)
            matrix = np.zeros((n, n), dtype=np.int64)
            np.add.at(matrix, (ids[keep], predicted[keep]), 1)
            return [(name, epoch, t, p, int(matrix[t, p])) for t in range(n) for p in range(n)]

        return Table.from_rows(
            ["model", "epoch", "true", "predicted", "count"], self._per_checkpoint(query, produce)
        )


def run(store: Store, query: Query, cancelled: Cancelled | None = None) -> Table:
    """Run ``query``; raises QueryError (bad query), UoAError (bad path), DataError (no data)."""
    return Runner(store, cancelled).run(query)
