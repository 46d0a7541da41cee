"""The inspection panel's three levels: the model tree (L3), a layer graph (L2), a layer (L1).

Each level is a navigable widget whose cursor is the selected unit; Enter descends. They are
drawn from the store's headers (``model.json``, metrics) without opening a checkpoint; L1
loads its statistics in a worker.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import OptionList, Static, Tree
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from tinspect import format as fmt
from tinspect.query import Query, QueryCancelled, run
from tinspect.store import DataError, ModelLogs, Store, UoA, UoAError
from tinspect.store.model import finite
from tinspect.tui.palette import normalize, scale
from tinspect.tui.selection import Selection
from tinspect.tui.widgets.views import ViewState, view_heatmap

if TYPE_CHECKING:
    from tinspect.tui.app import TinspectApp

#: One glyph per layer kind for the architecture strip of L3.
GLYPHS = (
    (("Conv",), "▦"),
    (("Pooling",), "▾"),
    (("Dropout", "Noise"), "░"),
    (("Normalization",), "≈"),
    (("Add", "Concatenate", "Multiply", "Average", "Subtract", "Maximum", "Minimum", "Dot"), "+"),
    (("Flatten", "Reshape", "Permute", "RepeatVector", "Padding", "Cropping", "UpSampling"), "="),
    (("Activation", "ReLU", "Softmax", "ELU"), "~"),
    (("Embedding",), "E"),
    (("LSTM", "GRU", "RNN"), "R"),
    (("Attention",), "A"),
    (("Dense",), "■"),
)


def _interest(text: Text, score: float | None) -> None:
    """A block coloured blue (normal) → red (abnormal) when a measure is active."""
    if score is not None:
        text.append(" ▮", style=scale(score))


def glyph(class_name: str) -> str:
    for names, mark in GLYPHS:
        if any(name in class_name for name in names):
            return mark
    return "·"


def strip(model: ModelLogs) -> str:
    return "".join(
        glyph(layer.class_name) for layer in model.layers if layer.class_name != "InputLayer"
    )


def compact(n: float) -> str:
    sign = "-" if n < 0 else ""
    n = abs(n)
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{sign}{n / size:.1f}{unit}"
    return f"{sign}{n:.0f}"


def main_metrics(model: ModelLogs) -> str:
    last = model.last_metrics()
    names = [
        n
        for n in ("val_accuracy", "accuracy", "val_loss", "loss")
        if finite(last.get(n)) is not None
    ]
    short = {"val_accuracy": "val_acc", "accuracy": "acc"}
    return "  ".join(f"{short.get(n, n)}={last[n]:.3g}" for n in names[:2])


# --- L3 -------------------------------------------------------------------------------------------
class ExperimentTree(Tree[Selection]):
    """Experiments and their tree of models. Enter on a model descends into it."""

    def __init__(self) -> None:
        super().__init__("experiments", id="experiments")
        self.show_root = False
        self.guide_depth = 3

    @property
    def tinspect(self) -> TinspectApp:
        return self.app  # type: ignore[return-value]

    def rebuild(self, select: Selection | None = None) -> None:
        app = self.tinspect
        store = app.store
        self.clear()
        cursor_line = None
        for experiment in store.tree.experiments:
            label = Text()
            label.append("▣ ", style="bold")
            label.append(experiment.name, style="bold")
            label.append(f"  {len(experiment.models)} models", style="dim")
            _interest(label, app.interest_of("experiments", experiment.name))
            node = self.root.add(label, data=Selection(experiment=experiment.name), expand=True)
            if select == node.data:
                cursor_line = node
            placed: set[str] = set()
            for root in experiment.roots:
                cursor_line = self._add_model(node, root, store, placed, select) or cursor_line
        if cursor_line is not None:
            self.call_after_refresh(self.select_line, cursor_line)

    def select_line(self, node: Any) -> None:
        self.move_cursor(node)

    def _add_model(
        self, parent: Any, model_id: str, store: Store, placed: set[str], select: Selection | None
    ) -> Any:
        app = self.tinspect
        model = store.models[model_id]
        colour = app.colours(model_id)
        label = Text()
        label.append("● ", style=colour)
        label.append(store.display_name(model), style=f"bold {colour}")
        label.append(f" {model.short_id}", style="dim")
        _interest(label, app.interest_of("models", model_id))
        delta = None
        parents = [p for p in model.parents if p in store.models]
        if parents:
            delta = store.tree.graph.edges[parents[0], model_id].get("param_delta")
        label.append(f"  {compact(model.total_params)}")
        if delta:
            label.append(
                f" ({'+' if delta > 0 else ''}{compact(delta)})",
                style="green" if delta > 0 else "red",
            )
        label.append(f"  {strip(model)}", style="cyan")
        badges = app.badges_for(Selection(uoa=UoA(model_id)))
        if badges:
            label.append_text(Text.from_markup(f"  {badges}"))
        metrics = main_metrics(model)
        if metrics:
            label.append(f"  {metrics}", style="dim")
        node = parent.add(label, data=Selection(uoa=UoA(model_id)), expand=True, allow_expand=False)
        found = node if select is not None and select.uoa == UoA(model_id) else None
        placed.add(model_id)
        for child in store.tree.children(model_id):
            if child in store.models and child not in placed:
                node.allow_expand = True
                found = self._add_model(node, child, store, placed, select) or found
        return found


# --- L2 -------------------------------------------------------------------------------------------
@dataclass
class LaneRow:
    name: str
    lanes: str


def layer_lanes(model: ModelLogs) -> list[LaneRow]:
    """``git log --graph``-style lanes for the layer graph in topological order.

    Each layer is one row: ``●`` in its lane, ``│`` for edges passing by, ``┘``/``└`` where
    an edge from an earlier layer merges into it, ``┐`` where an edge leaves it for a lane
    of its own (a branch or a skip connection).
    """
    import networkx as nx

    graph = model.graph
    position = {layer.name: i for i, layer in enumerate(model.layers)}
    try:
        order = list(nx.lexicographical_topological_sort(graph, key=lambda n: f"{position[n]:09d}"))
    except nx.NetworkXUnfeasible:
        order = [layer.name for layer in model.layers]
    rank = {name: i for i, name in enumerate(order)}
    lanes: list[str | None] = []  # each lane: the layer its edge leads to
    rows = []
    for name in order:
        incoming = [i for i, target in enumerate(lanes) if target == name]
        if incoming:
            col = incoming[0]
        elif None in lanes:
            col = lanes.index(None)
        else:
            lanes.append(None)
            col = len(lanes) - 1
        successors = sorted(graph.successors(name), key=lambda s: rank.get(s, 0))
        freed = set(incoming)
        for i in incoming:
            lanes[i] = None
        starts = []
        if successors:
            lanes[col] = successors[0]
            for succ in successors[1:]:
                free = [i for i, t in enumerate(lanes) if t is None and i not in freed and i != col]
                if free:
                    lanes[free[0]] = succ
                    starts.append(free[0])
                else:
                    lanes.append(succ)
                    starts.append(len(lanes) - 1)
        width = max(len(lanes), col + 1, *(i + 1 for i in incoming), 1)
        cells = [" "] * (2 * width)
        for i in range(width):
            target = lanes[i] if i < len(lanes) else None
            if target is not None and i != col and i not in starts:
                cells[2 * i] = "│"
        for i in incoming[1:] + starts:
            lo, hi = sorted((col, i))
            for k in range(2 * lo + 1, 2 * hi):
                if cells[k] == " ":
                    cells[k] = "─"
        for i in incoming[1:]:
            cells[2 * i] = "┘" if i > col else "└"
        for i in starts:
            cells[2 * i] = "┐" if i > col else "┌"
        cells[2 * col] = "●"
        while lanes and lanes[-1] is None:
            lanes.pop()
        rows.append(LaneRow(name, "".join(cells).rstrip()))
    return rows


class LayerGraph(OptionList):
    """The layers of one model in topological order, with lanes for skips and branches."""

    def __init__(self) -> None:
        super().__init__(id="layers")
        self.model_id: str | None = None

    @property
    def tinspect(self) -> TinspectApp:
        return self.app  # type: ignore[return-value]

    def show_model(self, model_id: str, select: str | None = None) -> None:
        app = self.tinspect
        model = app.store.models[model_id]
        self.model_id = model_id
        rows = layer_lanes(model)
        width = max((len(r.lanes) for r in rows), default=1)
        options = []
        for row in rows:
            layer = model.layer(row.name)
            text = Text()
            text.append(row.lanes.ljust(width) + " ", style=app.colours(model_id))
            text.append(row.name, style="bold")
            _interest(text, app.interest_of("layers", (model_id, row.name)))
            badges = app.badges_for(Selection(uoa=UoA(model_id, row.name)))
            if badges:  # before the details, so a narrow terminal still shows them
                text.append_text(Text.from_markup(f" {badges}"))
            text.append(f"  {layer.class_name}", style="cyan")
            shape = (
                "("
                + ", ".join("n" if d is None else str(d) for d in layer.output_shape or ())
                + ")"
            )
            text.append(f"  {shape}")
            if layer.params:
                text.append(f"  {compact(layer.params)}", style="dim")
            ops = fmt.operations_text(list(layer.operations))
            if ops and layer.class_name != "InputLayer":
                text.append(f"  {ops}", style="dim italic")
            text.no_wrap, text.overflow = True, "ellipsis"  # one row per layer keeps the lanes
            options.append(Option(text, id=row.name))
        self.set_options(options)
        if select is not None:
            try:
                self.highlighted = self.get_option_index(select)
            except Exception:  # noqa: BLE001 - a layer that no longer exists
                self.highlighted = 0
        elif options:
            self.highlighted = 0


# --- L1 -------------------------------------------------------------------------------------------
@dataclass
class LayerData(Message):
    view: LayerDetail
    units: list[dict[str, Any]]
    previous: dict[int, float]
    previous_name: str | None
    weights: list[tuple[int, int, float]]
    heatmap: Any
    error: str | None


class LayerDetail(Vertical):
    """One layer: variables and neurons to select, top-k weights, neurons × classes."""

    K_DEFAULT = 8

    def __init__(self) -> None:
        super().__init__(id="layer")
        self.model_id: str | None = None
        self.layer_name: str | None = None
        self.k = self.K_DEFAULT
        self.heat_state = ViewState()

    @property
    def tinspect(self) -> TinspectApp:
        return self.app  # type: ignore[return-value]

    def compose(self):
        yield Static(id="layer-head")
        yield OptionList(id="units")
        with VerticalScroll(id="layer-extra"):
            yield Static(id="weights")
            yield Static(id="heatmap")

    def show_layer(self, model_id: str, layer: str, select: UoA | None = None) -> None:
        app = self.tinspect
        model = app.store.models[model_id]
        info = model.layer(layer)
        self.model_id, self.layer_name = model_id, layer
        head = Text()
        head.append(f"{layer}", style=f"bold {app.colours(model_id)}")
        head.append(f"  {info.class_name}", style="cyan")
        if info.activation:
            head.append(f" {info.activation}")
        inputs = ", ".join(info.inbound) or "-"
        head.append(
            f"   in {inputs} → out {info.units or '?'} units  {compact(info.params)} params"
        )
        ops = fmt.operations_text(list(info.operations))
        if ops:
            head.append(f"\n{ops}", style="italic")
        self.query_one("#layer-head", Static).update(head)
        units = self.query_one("#units", OptionList)
        units.set_options(
            [
                Option(Text(f"  variable {v}", style="bold"), id=f"var:{v}")
                for v in info.variable_names
            ]
        )
        self.query_one("#weights", Static).update(Text("loading…", style="dim"))
        self.query_one("#heatmap", Static).update("")
        self._pending_select = select
        self.load()

    @work(thread=True, exclusive=True, group="layer")
    def load(self) -> None:
        worker = get_current_worker()
        app = self.tinspect
        store, classes = app.store, app.class_selection
        assert self.model_id is not None and self.layer_name is not None
        model = store.models[self.model_id]
        info = model.layer(self.layer_name)
        path = store.path(UoA(model.id, self.layer_name))
        cancelled = lambda: worker.is_cancelled  # noqa: E731
        units: list[dict[str, Any]] = []
        previous: dict[int, float] = {}
        previous_name = None
        weights: list[tuple[int, int, float]] = []
        heatmap = None
        error = None
        try:
            if self.layer_name in (model.recording.get("layers") or []):
                stats = run(store, Query((path,), step="unit_stats", classes=classes), cancelled)
                units = [dict(zip(stats.columns, row, strict=True)) for row in stats.rows()]
                if model.n_classes:
                    heatmap = run(
                        store, Query((path,), step="class_means", classes=classes), cancelled
                    )
            sources = [n for n in info.inbound if n in (model.recording.get("layers") or [])]
            if "kernel" in info.variable_names:
                top = run(
                    store,
                    Query((f"{path}/kernel",), data="weights", step="topk", k=self.k),
                    cancelled,
                )
                for index, value in zip(top.column("index"), top.column("value"), strict=True):
                    coords = [int(c) for c in index.split(":")]
                    if len(coords) >= 2:
                        weights.append((coords[-2], coords[-1], float(value)))
                if sources:
                    previous_name = sources[0]
                    prev = run(
                        store,
                        Query(
                            (store.path(UoA(model.id, sources[0])),),
                            step="unit_stats",
                            classes=classes,
                        ),
                        cancelled,
                    )
                    previous = {
                        int(u): float(m)
                        for u, m in zip(prev.column("unit"), prev.column("mean"), strict=True)
                    }
        except QueryCancelled:
            return
        except (DataError, UoAError, ValueError) as exc:
            error = str(exc)
        if not worker.is_cancelled:
            self.post_message(
                LayerData(self, units, previous, previous_name, weights, heatmap, error)
            )

    def _flagged_units(self) -> dict[int, list[str]]:
        """Units of this layer named by findings (dead, saturated): the L1 badges."""
        app = self.tinspect
        assert self.model_id is not None and self.layer_name is not None
        path = app.store.path(UoA(self.model_id, self.layer_name))
        flagged: dict[int, list[str]] = {}
        for finding in app.findings:
            if finding.uoa == path:
                for unit in finding.context.get("units", []) or []:
                    flagged.setdefault(int(unit), []).append(finding.id)
        return flagged

    def on_layer_data(self, message: LayerData) -> None:
        if message.view is not self:
            return
        message.stop()
        app = self.tinspect
        assert self.model_id is not None and self.layer_name is not None
        info = app.store.models[self.model_id].layer(self.layer_name)
        options = [
            Option(Text(f"  variable {v}", style="bold"), id=f"var:{v}")
            for v in info.variable_names
        ]
        units = message.units
        flagged = self._flagged_units()
        if units:
            means = [u["mean"] for u in units]
            norm = normalize(means)
            total = sum(abs(m) for m in means if math.isfinite(m)) or 1.0
            ranked = sorted(
                range(len(units)), key=lambda i: -means[i] if math.isfinite(means[i]) else math.inf
            )
            touched = {j for _i, j, _w in message.weights}
            keep = ranked[:10] + ranked[-10:]
            keep += [
                i for i in ranked if units[i]["unit"] in touched or units[i]["unit"] in flagged
            ]
            seen: set[int] = set()
            top = max((abs(m) for m in means if math.isfinite(m)), default=1.0) or 1.0
            for i in keep:
                if i in seen:
                    continue
                seen.add(i)
                u = units[i]
                bar = (
                    "█" * max(1, round(10 * abs(u["mean"]) / top))
                    if math.isfinite(u["mean"])
                    else ""
                )
                text = Text()
                text.append(f"  #{u['unit']:<4}", style="bold")
                text.append(f"{bar:<10}", style=scale(norm[i]))
                text.append(
                    f" mean {u['mean']:.3g}  share {abs(u['mean']) / total:.1%}"
                    f"  zeros {u['zero_fraction']:.0%}",
                    style="dim",
                )
                if i in ranked[:10]:
                    text.append("  top", style="red")
                elif i in ranked[-10:]:
                    text.append("  bottom", style="blue")
                for check_id in flagged.get(int(u["unit"]), []):
                    text.append(f"  ⚠ {check_id}", style="yellow")
                options.append(Option(text, id=f"unit:{u['unit']}"))
        unit_list = self.query_one("#units", OptionList)
        unit_list.set_options(options)
        select = getattr(self, "_pending_select", None)
        if select is not None:
            key = f"var:{select.variable}" if select.variable else f"unit:{select.neuron}"
            with contextlib.suppress(Exception):  # the unit is not among those listed
                unit_list.highlighted = unit_list.get_option_index(key)
        weights_text = Text()
        if message.error:
            weights_text.append(message.error, style="red")
        elif message.weights:
            means = {u["unit"]: u["mean"] for u in units}
            norm_prev = dict(
                zip(message.previous, normalize(list(message.previous.values())), strict=True)
            )
            norm_this = dict(zip(means, normalize(list(means.values())), strict=True))
            top_w = max(abs(w) for _i, _j, w in message.weights) or 1.0
            weights_text.append(
                f"top-{len(message.weights)} weights  (+/- changes k)\n", style="bold"
            )
            left = message.previous_name or "input"
            weights_text.append(f"{left:>12} → {self.layer_name}\n", style="dim")
            for i, j, w in message.weights:
                weights_text.append(f"{'■':>8}", style=scale(norm_prev.get(i, float("nan"))))
                weights_text.append(f"{i:<4}")
                line = "─" * max(1, round(8 * abs(w) / top_w))
                weights_text.append(f" {line:<8} {w:+.2f} ▶ ", style="red" if w > 0 else "blue")
                weights_text.append("■", style=scale(norm_this.get(j, float("nan"))))
                weights_text.append(f"{j}\n")
        self.query_one("#weights", Static).update(weights_text)
        if message.heatmap is not None and len(message.heatmap):
            self.query_one("#heatmap", Static).update(
                view_heatmap(message.heatmap, self.heat_state)
            )
        elif not units:
            self.query_one("#heatmap", Static).update(
                Text("activations of this layer are not recorded", style="dim")
            )
