"""L2: one model's layer graph, in topological order with lanes for skips and branches.

``layer_lanes`` is a pure function of the model's graph (tested on its own); ``ModelView``
shows the model's one-line head above ``LayerGraph``, whose cursor is the selected layer.
Moving it posts ``SelectionChanged``, Enter ``OpenRequested``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tinspect import format as fmt
from tinspect.store import ModelLogs, Store, UoA
from tinspect.tui.messages import OpenRequested, SelectionChanged
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.state import Guides
from tinspect.tui.widgets.marks import compact, interest_block, strip


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
    """The layers of one model with their lanes, badges, shapes and operations."""

    def __init__(self, store: Store, colours: ModelColours) -> None:
        super().__init__(id="layers")
        self.store = store
        self.colours = colours
        self.model_id: str | None = None

    def show_model(self, model_id: str, guides: Guides, select: str | None = None) -> None:
        model = self.store.models[model_id]
        self.model_id = model_id
        rows = layer_lanes(model)
        width = max((len(r.lanes) for r in rows), default=1)
        options = []
        for row in rows:
            layer = model.layer(row.name)
            text = Text()
            text.append(row.lanes.ljust(width) + " ", style=self.colours(model_id))
            text.append(row.name, style="bold")
            if (model_id, row.name) in guides.hits:
                text.append(" ◀", style="bold yellow")
            interest_block(text, guides.interest_of("layers", (model_id, row.name)))
            badges = guides.badges_for(UoA(model_id, row.name))
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
        names = [row.name for row in rows]
        self.set_options(options)
        if options:
            self.highlighted = names.index(select) if select in names else 0

    def _selection(self, option_id: str | None) -> Selection | None:
        if self.model_id is None or not option_id:
            return None
        return Selection(uoa=UoA(self.model_id, option_id))

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        selection = self._selection(event.option.id)
        if selection is not None:
            self.post_message(SelectionChanged(selection))

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        selection = self._selection(event.option.id)
        if selection is not None:
            self.post_message(OpenRequested(selection))


class ModelView(Vertical):
    """L2: the model's head line and its layer graph; redrawn when the guides change."""

    guides: reactive[Guides] = reactive(Guides, init=False, always_update=True)

    def __init__(self, store: Store, colours: ModelColours) -> None:
        super().__init__(id="model-view")
        self.store = store
        self.colours = colours
        self.model_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="model-head")
        yield LayerGraph(self.store, self.colours)

    @property
    def graph(self) -> LayerGraph:
        return self.query_one(LayerGraph)

    def show_model(self, model_id: str, select: str | None = None) -> None:
        self.model_id = model_id
        model = self.store.models[model_id]
        head = Text()
        head.append(self.store.display_name(model), style=f"bold {self.colours(model_id)}")
        head.append(f"  {model.label}  {compact(model.total_params)} params  ")
        head.append(strip(model), style="cyan")
        head.append(
            f"  epochs {model.epochs[-1] if model.epochs else '-'}"
            f"  checkpoints {model.n_checkpoints}",
            style="dim",
        )
        self.query_one("#model-head", Static).update(head)
        self.graph.show_model(model_id, self.guides, select)

    def watch_guides(self) -> None:
        if self.model_id is not None and self.model_id in self.store.models:
            graph = self.graph
            current = graph.highlighted
            layer = graph.get_option_at_index(current).id if current is not None else None
            self.graph.show_model(self.model_id, self.guides, layer)
