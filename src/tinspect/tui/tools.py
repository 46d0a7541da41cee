"""The toolbox as data: each tool names the units it applies to, a query and a view.

A tool never reads data itself: ``Tool.query`` builds a ``tinspect.query.Query`` for the
selected unit (and the global class selection), the card runs it in a worker, and the view
named by ``Tool.view`` draws the resulting table. Adding a tool is adding an entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tinspect.query import Query, Table
from tinspect.query.spec import SAMPLE_DATA
from tinspect.store import Store
from tinspect.tui.selection import MergedSelection, PairSelection, Selection

#: Units a tool can apply to. ``experiment`` is a connected group of models (level L3).
KINDS = ("experiment", "model", "layer", "variable", "neuron")


@dataclass(frozen=True)
class Tool:
    id: str
    name: str
    key: str
    description: str
    kinds: frozenset[str]
    view: str
    #: Query fields; ``uoas`` and ``classes`` are filled in from the selection.
    template: dict[str, Any] = field(default_factory=dict)
    class_dependent: bool = False
    #: Only for models whose outputs are class scores (confusion, class probabilities).
    classifier_only: bool = False
    #: Only for units of layers with variables (top-k weights: Flatten has none).
    needs_weights: bool = False
    #: Only for a 2-D convolution's kernel (kernel images).
    needs_conv_kernel: bool = False
    #: The sample selection is drawn highlighted among all samples instead of filtering
    #: the query (projection: the selected points in the full picture).
    highlights: bool = False
    #: Builds the query; the default fills ``template`` with the selection's unit paths.
    build: Callable[[Tool, Store, Selection, tuple[int, ...] | None], Query] | None = None
    #: Computes the table directly, for data that is not a query (the generation diff).
    compute: Callable[[Store, Selection], Table] | None = None
    #: Like ``compute``, with the class selection and the card's options (the compare
    #: tools' filter), and data for the view besides the table (the IMACS compare tools:
    #: the comparison and the images). Runs in the card's worker.
    analyse: (
        Callable[
            [Store, Selection, tuple[int, ...] | None, Mapping[str, Any]],
            tuple[Table, dict[str, Any]],
        ]
        | None
    ) = None
    #: Only for selections with recorded attributions (the compare tools).
    needs_attributions: bool = False
    #: Compares two models: on one model's node the second is picked first (``PickModel``),
    #: and the card has a filter (``f``).
    pair: bool = False
    #: Only for a pair of models (``PairSelection``, made by the group view's ``d``); tools
    #: without it never apply to a pair.
    needs_pair: bool = False

    def query(
        self,
        store: Store,
        selection: Selection,
        classes: tuple[int, ...] | None,
        samples: str | None = None,
    ) -> Query | None:
        """The tool's query for ``selection`` under the class and sample selections (both
        apply to class-dependent tools reading per-sample data; weights have no samples)."""
        if self.build is not None:
            query = self.build(self, store, selection, classes)
        elif not self.template:
            return None
        else:
            data = {"uoas": tuple(selection.paths(store)), **self.template}
            if self.class_dependent and classes is not None:
                data["classes"] = tuple(classes)
            query = Query(**data)
        if (
            query is not None
            and self.follows_samples(query)
            and samples is not None
            and not self.highlights
        ):
            query = query.replace(samples=samples)
        return query

    def follows_samples(self, query: Query | None) -> bool:
        """Whether the sample selection changes what this tool shows for ``query`` (the
        compare tools: always, as ``tinspect compare --samples``)."""
        if self.pair:
            return True
        return self.class_dependent and query is not None and query.data in SAMPLE_DATA

    def applies_to(self, selection: Selection, store: Store | None = None) -> bool:
        if selection.kind not in self.kinds:
            return False
        if self.needs_pair and not isinstance(selection, PairSelection):
            return False
        if self.classifier_only and store is not None:
            return all(is_classifier(store, m) for m in selection.models(store))
        if self.needs_weights and store is not None:
            return has_weights(store, selection)
        if self.needs_conv_kernel and store is not None:
            return is_conv_kernel(store, selection)
        if self.needs_attributions and store is not None:
            return has_attributions(store, selection)
        if self.compute is _diff_table and store is not None:
            return has_parent(store, selection)
        return True


def has_attributions(store: Store, selection: Selection) -> bool:
    from tinspect.store import attribution_epochs

    return any(
        m in store.models and attribution_epochs(store.models[m]) for m in selection.models(store)
    )


def _imacs(
    store: Store,
    selection: Selection,
    classes: tuple[int, ...] | None,
    options: Mapping[str, Any],
) -> tuple[Table, dict[str, Any]]:
    from tinspect.tui.imacs import compute

    return compute(store, selection, classes, options)


def _imacs_confusion(
    store: Store,
    selection: Selection,
    classes: tuple[int, ...] | None,
    options: Mapping[str, Any],
) -> tuple[Table, dict[str, Any]]:
    """The comparison with the confusion matrices as its table (``compare --confusion``)."""
    return _imacs(store, selection, classes, {**options, "confusion": True})


def has_weights(store: Store, selection: Selection) -> bool:
    uoa = selection.uoa
    if uoa is None or uoa.layer is None or uoa.model not in store.models:
        return False
    try:
        return bool(store.models[uoa.model].layer(uoa.layer).variable_names)
    except KeyError:
        return False


def is_conv_kernel(store: Store, selection: Selection) -> bool:
    """A variable of rank 4 (rows, cols, in, out): a 2-D convolution's kernel."""
    uoa = selection.uoa
    if uoa is None or uoa.variable is None or uoa.model not in store.models:
        return False
    try:
        layer = store.models[uoa.model].layer(uoa.layer or "")
    except (KeyError, ValueError):
        return False
    shapes = [v.get("shape") for v in layer.variables if v.get("name") == uoa.variable]
    return bool(shapes) and isinstance(shapes[0], list) and len(shapes[0]) == 4


def is_classifier(store: Store, model_id: str) -> bool:
    model = store.models[model_id]
    kind = model.dataset.get("output_kind")
    return model.n_classes > 0 and kind in (None, "classification")


def _data_for(selection: Selection) -> str:
    return "weights" if selection.kind == "variable" else "activations"


def _array_tool(
    tool: Tool, store: Store, selection: Selection, classes: tuple[int, ...] | None
) -> Query:
    """Histogram/distribution/statistics of activations (layer, neuron) or weights (variable)."""
    data = _data_for(selection)
    fields = dict(tool.template)
    if data == "activations" and classes is not None:
        fields["classes"] = tuple(classes)
    return Query(uoas=tuple(selection.paths(store)), data=data, **fields)


def _experiment_models(
    tool: Tool, store: Store, selection: Selection, classes: tuple[int, ...] | None
) -> Query:
    """The models of the selected experiment (or the selected model): metrics across models."""
    return Query(uoas=tuple(selection.model_paths(store)), **tool.template)


def _predictions(
    tool: Tool, store: Store, selection: Selection, classes: tuple[int, ...] | None
) -> Query:
    """One model's predictions; a merged card (class probabilities of several models in
    one chart) reads every model it merges."""
    fields = dict(tool.template)
    if classes is not None:
        fields["classes"] = tuple(classes)
    paths = selection.model_paths(store)
    return Query(
        uoas=tuple(paths if isinstance(selection, MergedSelection) else paths[:1]), **fields
    )


def _diff_table(store: Store, selection: Selection) -> Table:
    """The diff rows of the selected model against its first parent (``tinspect diff``)."""
    from tinspect.analysis.diff import pair

    uoa = selection.uoa
    if uoa is None:
        raise ValueError("the diff needs a model")
    return _diff_rows(store, *pair(store, uoa.model), named_pair=False)


def _pair_diff_table(store: Store, selection: Selection) -> Table:
    """The diff rows of a pair of models (``PairSelection``: its model b against the other,
    a), e.g. two models of a group (``tinspect diff LOGDIR A B``)."""
    from tinspect.store import UoAError

    models = selection.models(store)
    if not isinstance(selection, PairSelection) or len(models) < 2:
        raise UoAError("the other model of the pair is no longer in the logs")
    b, a = (store.models[m] for m in models[:2])
    return _diff_rows(store, a, b, named_pair=True)


def _diff_rows(store: Store, a: Any, b: Any, named_pair: bool) -> Table:
    from tinspect.analysis.diff import COLUMNS, diff

    result = diff(store, a, b)
    meta = {"a": a.id, "b": b.id, "a_name": store.display_name(a), "b_name": store.display_name(b)}
    meta["pair"] = named_pair  # the card's header names both models
    return Table.from_rows(list(COLUMNS), [r.as_tuple() for r in result.rows], meta)


def has_parent(store: Store, selection: Selection) -> bool:
    uoa = selection.uoa
    model = store.models.get(uoa.model) if uoa is not None else None
    return model is not None and any(p in store.models for p in model.parents)


TOOLS: tuple[Tool, ...] = (
    Tool(
        "metrics", "Metrics over epochs", "m",
        "Every logged metric by epoch: training vs validation, custom losses; one chart per model.",
        frozenset({"experiment", "model"}), "line",
        {"data": "metrics", "step": "raw", "epochs": "all"}, build=_experiment_models,
    ),
    Tool(
        "compare", "Performance comparison", "p",
        "The last value of each metric, one bar per model of the experiment.",
        frozenset({"experiment", "model"}), "bars",
        {"data": "metrics", "step": "raw", "epochs": "last"}, build=_experiment_models,
    ),
    Tool(
        "runtime", "Runtime and model size", "r",
        "Inference time per sample and bytes of the weights at each checkpoint.",
        frozenset({"experiment", "model"}), "runtime",
        {"data": "runtime", "step": "raw", "epochs": "all"}, build=_experiment_models,
    ),
    Tool(
        "histogram", "Histogram", "h",
        "Histogram at one epoch; [ and ] step through epochs on one shared range.",
        frozenset({"layer", "variable", "neuron"}), "histogram",
        {"step": "histogram", "bins": 30, "epochs": "all"}, class_dependent=True, build=_array_tool,
    ),
    Tool(
        "distribution", "Distribution over epochs", "d",
        "Quantile bands (1-99, 5-95, 25-75 %, median) per epoch, like TensorBoard's distributions.",
        frozenset({"layer", "variable", "neuron"}), "bands",
        {"step": "quantiles", "epochs": "all"}, class_dependent=True, build=_array_tool,
    ),
    Tool(
        "density", "Feature distribution", "f",
        "One density per unit (neuron, channel, latent dimension) at the last epoch.",
        frozenset({"layer"}), "density",
        {"step": "density", "bins": 24, "epochs": "last"}, class_dependent=True, build=_array_tool,
    ),
    Tool(
        "statistics", "Statistics by epoch", "s",
        "Mean, std, extremes, skew, kurtosis, zeros and quantiles at every checkpoint.",
        frozenset({"layer", "variable", "neuron"}), "table",
        {"step": "summary", "epochs": "all"}, class_dependent=True, build=_array_tool,
    ),
    Tool(
        "class_means", "Neurons × classes", "n",
        "Mean activation of every neuron (channel) for every class: which units code which class.",
        frozenset({"layer", "neuron"}), "heatmap",
        {"data": "activations", "step": "class_means", "epochs": "last"}, class_dependent=True,
    ),
    Tool(
        "projection", "Projection", "e",
        "2-D PCA of the per-sample activations (basis at the last epoch); [ ] step epochs.",
        frozenset({"layer"}), "scatter",
        {"data": "activations", "step": "projection", "epochs": "all"}, class_dependent=True,
        highlights=True,
    ),
    Tool(
        "topk", "Top-k weights", "k",
        "The largest weights by magnitude, with their indices.",
        frozenset({"variable", "neuron"}), "table",
        {"data": "weights", "step": "topk", "k": 20, "epochs": "last"}, needs_weights=True,
    ),
    Tool(
        "kernels", "Kernel images", "i",
        "A convolution's kernel as images, one per input × output channel; [ ] step epochs.",
        frozenset({"variable"}), "kernels",
        {"data": "weights", "step": "raw", "epochs": "all"}, needs_conv_kernel=True,
    ),
    Tool(
        "samples", "Sample viewer", "v",
        "Input samples with label and prediction; input vs reconstruction for auto-encoders.",
        frozenset({"model"}), "images",
        {"data": "samples", "step": "raw", "epochs": "last", "limit": 64 * 24}, build=_predictions,
        class_dependent=True,
    ),
    Tool(
        "probabilities", "Class probability distribution", "b",
        "How confident the predictions are: histogram of the predicted class scores.",
        frozenset({"model"}), "histogram",
        {"data": "predictions", "step": "histogram", "bins": 20, "epochs": "all"},
        build=_predictions, class_dependent=True, classifier_only=True,
    ),
    Tool(
        "confusion", "Confusion matrix", "c",
        "True class × predicted class counts on the recorded samples.",
        frozenset({"model"}), "confusion",
        {"data": "predictions", "step": "confusion", "epochs": "last"}, build=_predictions,
        class_dependent=True, classifier_only=True,
    ),
    Tool(
        "imacs_histograms", "Compare attributions: cluster histograms", "a",
        "IMACS on a pair of models: per concept (segments clustered by appearance), both "
        "models' attribution histograms on one x-range, largest imbalance first.",
        frozenset({"experiment", "model"}), "imacs_histograms", class_dependent=True,
        analyse=_imacs, needs_attributions=True, pair=True,
    ),
    Tool(
        "imacs_concepts", "Compare attributions: concepts", "A",
        "IMACS on a pair of models: per concept, its segments as thumbnails sorted by "
        "attribution, framed green/red by correctness, each model's attribution as a bar.",
        frozenset({"experiment", "model"}), "imacs_concepts", class_dependent=True,
        analyse=_imacs, needs_attributions=True, pair=True,
    ),
    Tool(
        "imacs_confusion", "Compare attributions: cluster confusion", "C",
        "IMACS on a pair of models: per concept, both models' confusion matrices over the "
        "samples its segments come from, side by side; s: all classes / where they differ.",
        frozenset({"experiment", "model"}), "imacs_confusion", class_dependent=True,
        analyse=_imacs_confusion, needs_attributions=True, pair=True,
    ),
    Tool(
        "diff", "Diff against the parent", "g",
        "What changed from the first parent: layers, settings, metrics, distributions. "
        "Enter jumps to a layer (in this model; A: in the parent).",
        frozenset({"model"}), "diff", compute=_diff_table,
    ),
    Tool(
        "diff_pair", "Diff of two models", "y",
        "Two models of a group (G, then d): layers, settings, metrics, distributions of b "
        "against a. Enter jumps to a layer in b; A: in a.",
        frozenset({"model"}), "diff", compute=_pair_diff_table, needs_pair=True,
    ),
    Tool(
        "note", "Note", "o",
        "A markdown note on this unit, saved beside the logs (never inside a checkpoint).",
        frozenset(KINDS), "note",
    ),
    Tool(
        "branch", "Branch model", "B",
        "The tinspect.make_header(...) call for a child of this model, ready to paste.",
        frozenset({"model"}), "branch",
    ),
)  # fmt: skip

BY_ID = {tool.id: tool for tool in TOOLS}


def applicable(
    selection: Selection, store: Store | None = None, tools: Sequence[Tool] = TOOLS
) -> list[Tool]:
    """Tools for the selected unit (and its model's kind of output), in registry order."""
    return [tool for tool in tools if tool.applies_to(selection, store)]
