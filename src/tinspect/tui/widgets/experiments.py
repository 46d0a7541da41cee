"""L3: the experiments, each a tree of models.

Drawn from headers only (``model.json``, metrics): no checkpoint is opened. The tree's
cursor is the selected unit; moving it posts ``SelectionChanged``, Enter ``OpenRequested``.
Badges, interestingness colours and each child's one-line change against its parent
(``Δ z_mean, z_log_var: relu → linear``, from ``analysis.diff``) arrive as ``guides`` from
the main screen. A model with several parents is shown under each of them; below every
parent but the first it is marked ``⇆`` and its own children are not repeated.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.reactive import reactive
from textual.widgets import Tree

from tinspect.store import Store, UoA
from tinspect.tui.messages import OpenRequested, SelectionChanged
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.state import Guides
from tinspect.tui.widgets.marks import compact, interest_block, main_metrics, strip


class ExperimentTree(Tree[Selection]):
    """Experiments and their tree of models. Enter on a model descends into it."""

    guides: reactive[Guides] = reactive(Guides, init=False, always_update=True)

    def __init__(self, store: Store, colours: ModelColours) -> None:
        super().__init__("experiments", id="experiments")
        self.store = store
        self.colours = colours
        self.show_root = False
        self.guide_depth = 3
        self.selected: Selection | None = None

    def watch_guides(self) -> None:
        self.rebuild()

    def rebuild(self, select: Selection | None = None) -> None:
        """Redraw from the store's current snapshot, keeping (or moving) the cursor."""
        if select is not None:
            self.selected = select
        select = self.selected
        store, guides = self.store, self.guides
        self.clear()
        cursor_line = None
        for experiment in store.tree.experiments:
            label = Text()
            label.append("▣ ", style="bold")
            label.append(experiment.name, style="bold")
            label.append(f"  {len(experiment.models)} models", style="dim")
            interest_block(label, guides.interest_of("experiments", experiment.name))
            node = self.root.add(label, data=Selection(experiment=experiment.name), expand=True)
            if select == node.data:
                cursor_line = node
            placed: set[str] = set()
            for root in experiment.roots:
                cursor_line = self._add_model(node, root, placed, select) or cursor_line
        # ``last_line`` lays out the new lines now, so the cursor is on the selected model
        # before the next key arrives (keys typed ahead at start-up included).
        if cursor_line is not None and self.last_line >= 0:
            self.move_cursor(cursor_line)

    def _add_model(
        self,
        parent: Any,
        model_id: str,
        placed: set[str],
        select: Selection | None,
        again: bool = False,
    ) -> Any:
        store, guides = self.store, self.guides
        model = store.models[model_id]
        colour = self.colours(model_id)
        label = Text()
        if again:  # a merge: shown under its first parent already
            label.append("⇆ ", style=colour)
            label.append(store.display_name(model), style=colour)
            parents = [
                store.display_name(store.models[p]) for p in model.parents if p in store.models
            ]
            label.append(f"  merge of {' + '.join(parents)}", style="dim")
            parent.add_leaf(label, data=Selection(uoa=UoA(model_id)))
            return None
        label.append("● ", style=colour)
        label.append(store.display_name(model), style=f"bold {colour}")
        label.append(f" {model.short_id}", style="dim")
        interest_block(label, guides.interest_of("models", model_id))
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
        change = guides.deltas.get(model_id)
        if change:
            label.append(f"  Δ {change[:48]}{'…' if len(change) > 48 else ''}", style="yellow")
        elif model_id in guides.deltas:
            label.append("  Δ none", style="dim")
        label.append(f"  {strip(model)}", style="cyan")
        badges = guides.badges_for(UoA(model_id))
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
                found = self._add_model(node, child, placed, select) or found
            elif child in store.models:
                node.allow_expand = True
                self._add_model(node, child, placed, select, again=True)
        return found

    @on(Tree.NodeHighlighted)
    def _highlighted(self, event: Tree.NodeHighlighted[Selection]) -> None:
        event.stop()
        if event.node.data is not None:
            self.selected = event.node.data
            self.post_message(SelectionChanged(event.node.data))

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected[Selection]) -> None:
        event.stop()
        data = event.node.data
        if data is not None and data.uoa is not None:
            self.post_message(OpenRequested(data))
