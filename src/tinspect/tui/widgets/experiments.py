"""L3: the experiments, each a tree of models.

Drawn from headers only (``model.json``, metrics): no checkpoint is opened. The tree's
cursor is the selected unit; moving it posts ``SelectionChanged``, Enter ``OpenRequested``.
Badges, interestingness colours and each child's one-line change against its parent
(``Δ z_mean, z_log_var: relu → linear``, from ``analysis.diff``) arrive as ``guides`` from
the main screen. A model with several parents is shown under each of them; below every
parent but the first it is marked ``⇆`` and its own children are not repeated.

Thousands of models stay fluid: experiments are expanded only while they fit in about two
screenfuls (``EXPANDED_LINES``); the others are collapsed and get their model nodes when
first opened. A filter (``/`` at L3) keeps only matching models and the ancestors that place
them in their trees. A rebuild with the same snapshot and guides is skipped.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.reactive import reactive
from textual.widgets import Tree

from tinspect.store import Store, UoA
from tinspect.tui.messages import ModelsShown, OpenRequested, SelectionChanged
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.state import Guides
from tinspect.tui.widgets.marks import compact, interest_block, main_metrics, strip

#: Model lines shown expanded when the tree is first drawn; later experiments start collapsed.
EXPANDED_LINES = 60


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
        #: Model ids a filter keeps (None: no filter), and the filter's text.
        self.shown: frozenset[str] | None = None
        self.filter_text = ""
        #: Experiments opened or closed by the user (name -> expanded), kept across rebuilds.
        self.opened: dict[str, bool] = {}
        self._built: tuple[Any, ...] | None = None
        self._pending: dict[int, tuple[Any, frozenset[str] | None]] = {}

    def watch_guides(self) -> None:
        self.rebuild()

    def set_filter(self, shown: frozenset[str] | None, text: str = "") -> None:
        """Show only the models ``shown`` (with their ancestors), or all with None."""
        self.shown, self.filter_text = shown, text
        self.rebuild()

    def rebuild(self, select: Selection | None = None) -> None:
        """Redraw from the store's current snapshot, keeping (or moving) the cursor."""
        if select is not None:
            self.selected = select
        select = self.selected
        store, guides = self.store, self.guides
        signature = (store.tree, store.models, guides, self.shown, select)
        if (
            self._built is not None
            and all(a is b for a, b in zip(signature[:4], self._built[:4], strict=True))
            and select == self._built[4]
        ):
            return  # nothing this tree shows changed (data_bind re-sends the same guides)
        self._built = signature
        self.clear()
        self._pending.clear()
        keep = self._kept()
        selected_model = select.uoa.model if select is not None and select.uoa else None
        cursor_line = None
        lines = 0
        for experiment in store.tree.experiments:
            members = [m for m in experiment.models if m in store.models]
            if keep is not None:
                members = [m for m in members if m in keep]
                if not members:
                    continue
            label = Text()
            label.append("▣ ", style="bold")
            label.append(experiment.name, style="bold")
            if keep is not None and self.shown is not None:
                matched = sum(1 for m in members if m in self.shown)
                label.append(f"  {matched} of {len(experiment.models)} models", style="dim")
            else:
                label.append(f"  {len(experiment.models)} models", style="dim")
            interest_block(label, guides.interest_of("experiments", experiment.name))
            wanted = self.opened.get(experiment.name)
            if selected_model in members:
                expand = True  # the cursor's model must be visible
            elif wanted is not None:
                expand = wanted
            else:
                expand = lines < EXPANDED_LINES
            node = self.root.add(label, data=Selection(experiment=experiment.name), expand=expand)
            lines += 1
            if select == node.data:
                cursor_line = node
            if expand:
                lines += len(members)
                placed: set[str] = set()
                for root in experiment.roots:
                    if keep is None or root in keep:
                        found = self._add_model(node, root, placed, select, keep=keep)
                        cursor_line = found or cursor_line
            else:
                node.allow_expand = True  # its models are added when it is opened
                self._pending[id(node)] = (experiment, keep)
        # ``last_line`` lays out the new lines now, so the cursor is on the selected model
        # before the next key arrives (keys typed ahead at start-up included).
        if cursor_line is not None and self.last_line >= 0:
            self.move_cursor(cursor_line)

    def shown_models(self) -> list[str]:
        """Ids of the models whose nodes exist (expanded experiments): what guides first."""
        out: list[str] = []
        todo = list(self.root.children)
        while todo:
            node = todo.pop()
            if node.data is not None and node.data.uoa is not None:
                out.append(node.data.uoa.model)
            todo.extend(node.children)
        return out

    def _kept(self) -> frozenset[str] | None:
        """The shown models and their ancestors (which place them in their tree)."""
        if self.shown is None:
            return None
        graph = self.store.tree.graph
        keep: set[str] = set()
        todo = [m for m in self.shown if m in self.store.models]
        while todo:
            node = todo.pop()
            if node in keep:
                continue
            keep.add(node)
            todo.extend(p for p in graph.predecessors(node) if p in self.store.models)
        return frozenset(keep)

    @on(Tree.NodeExpanded)
    def _expanded(self, event: Tree.NodeExpanded[Selection]) -> None:
        event.stop()
        data = event.node.data
        if data is not None and data.experiment is not None:
            self.opened[data.experiment] = True
        pending = self._pending.pop(id(event.node), None)
        if pending is not None:
            experiment, keep = pending
            placed: set[str] = set()
            for root in experiment.roots:
                if keep is None or root in keep:
                    self._add_model(event.node, root, placed, self.selected, keep=keep)
            self.post_message(ModelsShown())  # their badges and findings are wanted now

    @on(Tree.NodeCollapsed)
    def _collapsed(self, event: Tree.NodeCollapsed[Selection]) -> None:
        event.stop()
        data = event.node.data
        if data is not None and data.experiment is not None:
            self.opened[data.experiment] = False

    def _add_model(
        self,
        parent: Any,
        model_id: str,
        placed: set[str],
        select: Selection | None,
        again: bool = False,
        keep: frozenset[str] | None = None,
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
        context = self.shown is not None and model_id not in self.shown
        label.append("○ " if context else "● ", style=colour)
        label.append(store.display_name(model), style=f"{'dim' if context else 'bold'} {colour}")
        label.append(f" {model.short_id}", style="dim")
        hits = guides.hit_count(model_id)
        if hits:
            label.append(f" ◀{hits}", style="bold yellow")
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
            if child not in store.models or (keep is not None and child not in keep):
                continue
            node.allow_expand = True
            if child not in placed:
                found = self._add_model(node, child, placed, select, keep=keep) or found
            else:
                self._add_model(node, child, placed, select, again=True, keep=keep)
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
