"""The tinspect viewer: levels of abstraction on the left, widgets on the right.

L3 shows experiments as trees of models, L2 one model's layer graph, L1 one layer's neurons
and weights. Enter descends, Backspace/Escape goes up, the breadcrumbs jump. ``t`` opens the
toolbox for the selected unit; tools create widget cards in the panel, grouped by level.
The store is read on the UI thread only for cheap header refreshes; everything that reads
checkpoints runs in thread workers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Collapsible, ContentSwitcher, Footer, OptionList, Static, Tree
from textual.worker import get_current_worker

from tinspect.query import Table, write_table
from tinspect.store import Severity, Store, UoA
from tinspect.tui.commands import TinspectCommands
from tinspect.tui.palette import ModelColours
from tinspect.tui.selection import Selection
from tinspect.tui.tools import Tool, applicable
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.levels import ExperimentTree, LayerDetail, LayerGraph, compact, strip

LEVEL_IDS = {3: "experiments", 2: "model-view", 1: "layer"}


class TinspectApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "tinspect"
    COMMANDS = App.COMMANDS | {TinspectCommands}
    BINDINGS = [
        Binding("backspace,escape", "up", "up", id="nav.up"),
        Binding("t", "toolbox", "tools", id="tools"),
        Binding("c", "classes", "classes", id="classes"),
        Binding("x", "export", "export", id="export"),
        Binding("slash", "search", "search", id="search"),
        Binding("question_mark", "help", "help", id="help"),
        Binding("w", "toggle_widgets", "widgets", id="widgets"),
        Binding("G", "group", "group", show=False, id="group"),
        Binding("M", "merge", "merge", show=False, id="merge"),
        Binding("P", "problems", "problems", show=False, id="problems"),
        Binding("F", "findings", "findings", id="findings"),
        Binding("i", "interest", "interest", id="interest"),
        Binding("I", "ranking", "ranking", show=False, id="ranking"),
        Binding("plus", "k(1)", "k+", show=False, id="k.more"),
        Binding("minus", "k(-1)", "k-", show=False, id="k.less"),
        Binding("j", "cursor('down')", "down", show=False, id="nav.down"),
        Binding("k", "cursor('up')", "up", show=False, id="nav.cursor-up"),
        Binding("l", "descend", "descend", show=False, id="nav.descend"),
        Binding("h", "up", "up", show=False, id="nav.up-h"),
        Binding("q", "quit", "quit", id="quit"),
    ]

    def __init__(self, store: Store, refresh_seconds: float = 2.0) -> None:
        super().__init__()
        self.store = store
        self.colours = ModelColours()
        for model in store.ordered_models():
            self.colours(model.id)
        self.class_selection: tuple[int, ...] | None = None
        self.level = 3
        self.selection = Selection()
        self.model_id: str | None = None
        self.layer: str | None = None
        self.refresh_seconds = refresh_seconds
        self.badges: dict[tuple[str, str | None], str] = {}
        self.findings: list[Any] = []
        self.interest_measure: str | None = None
        self.interest: dict[str, dict[Any, float]] = {}

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="crumbs")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="experiments", id="inspection"):
                yield ExperimentTree()
                with Vertical(id="model-view"):
                    yield Static(id="model-head")
                    yield LayerGraph()
                yield LayerDetail()
            with VerticalScroll(id="widgets"):
                yield Static("[dim]t: apply a tool to the selected unit[/dim]", id="widgets-hint")
                for level in (3, 2, 1):
                    with Collapsible(title=f"L{level}", id=f"section-{level}", collapsed=False):
                        yield Vertical(id=f"cards-{level}", classes="cards")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        first = self.store.ordered_models()[:1]
        self.selection = Selection(uoa=UoA(first[0].id)) if first else Selection()
        self.query_one(ExperimentTree).rebuild(select=self.selection)
        self.query_one(ExperimentTree).focus()
        for level in (3, 2, 1):
            self.query_one(f"#section-{level}").display = False
        self.update_crumbs()
        self.update_status()
        if self.refresh_seconds > 0:
            self.set_interval(self.refresh_seconds, self.live_refresh)
        self.call_after_refresh(self.compute_guides)  # after the first screen is drawn

    # --- guides: findings, structure badges, interestingness --------------------------------------
    @work(thread=True, exclusive=True, group="guides")
    def compute_guides(self) -> None:
        """Structure badges (headers only), then the checks model by model, off the UI
        thread; stops between models when cancelled (quitting does not wait for it)."""
        from tinspect.analysis.diagnose import diagnose_model
        from tinspect.analysis.localize import badges

        worker = get_current_worker()
        try:
            structure = badges(self.store)
            self.call_from_thread(self.apply_guides, [], structure)
            findings: list[Any] = []
            for model in self.store.ordered_models():
                if worker.is_cancelled:
                    return
                findings += diagnose_model(self.store, model.id)
        except Exception as error:  # noqa: BLE001 - a guide must never take the viewer down
            self.call_from_thread(self.update_status, f"checks failed: {error}")
            return
        if not worker.is_cancelled:
            self.call_from_thread(self.apply_guides, findings, structure)

    def apply_guides(
        self, findings: list[Any], structure: dict[tuple[str, str | None], str]
    ) -> None:
        self.findings = findings
        badges: dict[tuple[str, str | None], str] = dict(structure)
        worst: dict[tuple[str, str | None], int] = {}
        for finding in findings:
            try:
                uoa = self.store.resolve(finding.uoa)
            except ValueError:
                continue
            for key in ((uoa.model, uoa.layer), (uoa.model, None)):
                worst[key] = max(worst.get(key, -1), finding.level)
        marks = {0: "[yellow]⚠[/]", 1: "[red]⚠[/]", 2: "[bold red]⚠[/]"}
        for key, level in worst.items():
            badges[key] = (badges.get(key, "") + " " + marks[level]).strip()
        self.badges = badges
        self.refresh_level()
        if findings:
            self.update_status(f"{len(findings)} findings (F: list)")

    def refresh_level(self) -> None:
        """Redraw the visible level (badges or interestingness colours changed)."""
        if self.level == 3:
            self.query_one(ExperimentTree).rebuild(select=self.selection)
        elif self.level == 2 and self.model_id is not None:
            self.query_one(LayerGraph).show_model(self.model_id, select=self.layer)

    async def action_quit(self) -> None:
        self.workers.cancel_all()  # guide and card workers stop at their next check
        self.exit()

    def action_findings(self) -> None:
        from tinspect.tui.screens.guide import FindingsScreen

        epochs = {m.id: m.epochs for m in self.store.models.values()}
        self.push_screen(FindingsScreen(self.findings, epochs), self._jump_path)

    def _jump_path(self, path: str | None) -> None:
        if path:
            self.jump_to(Selection(uoa=self.store.resolve(path)))

    def action_interest(self) -> None:
        """Cycle the interestingness measure that colours every level (off → skew → ...)."""
        from tinspect.analysis.interest import MEASURES

        order = [None, *MEASURES]
        self.interest_measure = order[(order.index(self.interest_measure) + 1) % len(order)]
        if self.interest_measure is None:
            self.interest = {}
            self.refresh_level()
            self.update_status("interestingness off")
            return
        self.update_status(f"interestingness: {self.interest_measure} (computing…)")
        self.compute_interest(self.interest_measure)

    @work(thread=True, exclusive=True, group="interest")
    def compute_interest(self, measure: str) -> None:
        from tinspect.analysis.interest import aggregate, score_units

        try:
            scores = score_units(self.store, measure)
            levels = aggregate(scores, self.store)
        except Exception as error:  # noqa: BLE001
            self.call_from_thread(self.update_status, f"interestingness failed: {error}")
            return
        self.call_from_thread(self._apply_interest, measure, scores, levels)

    def _apply_interest(
        self, measure: str, scores: list[Any], levels: dict[str, dict[Any, float]]
    ) -> None:
        if measure != self.interest_measure:
            return
        self.interest = levels
        self.interest_scores = scores
        self.refresh_level()
        self.update_status(
            f"interestingness: {measure}  blue low → red high  (i: next, I: ranking)"
        )

    def interest_of(self, kind: str, key: Any) -> float | None:
        value = self.interest.get(kind, {}).get(key) if self.interest else None
        return None if value is None or value != value else float(value)

    def action_ranking(self) -> None:
        from tinspect.tui.screens.guide import RankScreen

        if self.interest_measure is None:
            self.update_status("i chooses an interestingness measure first")
            return
        scores = sorted(
            (s for s in getattr(self, "interest_scores", []) if s.score == s.score),
            key=lambda s: -s.score,
        )[:100]
        self.push_screen(RankScreen(self.interest_measure, scores), self._jump_path)

    # --- colours, badges, linking ------------------------------------------------------------
    def unit_colours(self, table: Table) -> dict[str, str]:
        """Colour of each model by display name (unit paths start with it)."""
        return {self.store.display_name(m): self.colours(m.id) for m in self.store.models.values()}

    def badges_for(self, selection: Selection) -> str:
        uoa = selection.uoa
        if uoa is None:
            return ""
        return self.badges.get((uoa.model, uoa.layer), "")

    # --- navigation ----------------------------------------------------------------------------
    def show_level(self, level: int) -> None:
        self.level = level
        switcher = self.query_one(ContentSwitcher)
        switcher.current = LEVEL_IDS[level]
        if level == 3:
            self.query_one(ExperimentTree).focus()
        elif level == 2:
            self.query_one(LayerGraph).focus()
        else:
            self.query_one("#units", OptionList).focus()
        self.update_crumbs()

    def open_model(self, model_id: str, layer: str | None = None) -> None:
        self.model_id = model_id
        model = self.store.models[model_id]
        head = Text()
        head.append(f"{self.store.display_name(model)}", style=f"bold {self.colours(model_id)}")
        head.append(f"  {model.label}  {compact(model.total_params)} params  ")
        head.append(strip(model), style="cyan")
        head.append(
            f"  epochs {model.epochs[-1] if model.epochs else '-'}"
            f"  checkpoints {len(model.checkpoints)}",
            style="dim",
        )
        self.query_one("#model-head", Static).update(head)
        self.query_one(LayerGraph).show_model(model_id, select=layer)
        self.show_level(2)
        self.select(Selection(uoa=UoA(model_id, layer or self._first_layer(model_id))))

    def _first_layer(self, model_id: str) -> str | None:
        layers = self.store.models[model_id].layers
        return layers[0].name if layers else None

    def open_layer(self, model_id: str, layer: str, select: UoA | None = None) -> None:
        if self.model_id != model_id or self.level == 3:
            self.open_model(model_id, layer)
        self.layer = layer
        self.query_one(LayerDetail).show_layer(model_id, layer, select)
        self.show_level(1)
        self.select(Selection(uoa=select or UoA(model_id, layer)))

    def select(self, selection: Selection) -> None:
        self.selection = selection
        self.update_crumbs()
        for card in self.query(WidgetCard):
            card.set_class(_linked(card.selection, selection), "linked")

    def action_up(self) -> None:
        if isinstance(self.screen, ModalScreen):
            return
        if self.level == 1 and self.model_id is not None:
            self.open_model(self.model_id, self.layer)
        elif self.level == 2 and self.model_id is not None:
            self.show_level(3)
            self.query_one(ExperimentTree).rebuild(select=Selection(uoa=UoA(self.model_id)))
            self.select(Selection(uoa=UoA(self.model_id)))

    def action_descend(self) -> None:
        sel = self.selection
        if self.level == 3 and sel.uoa is not None:
            self.open_model(sel.uoa.model)
        elif self.level == 2 and sel.uoa is not None and sel.uoa.layer:
            self.open_layer(sel.uoa.model, sel.uoa.layer)

    def action_cursor(self, direction: str) -> None:
        focused = self.focused
        action = getattr(focused, f"action_cursor_{direction}", None)
        if action is not None:
            action()

    def action_crumb(self, level: int) -> None:
        if level == 3:
            if self.level != 3:
                self.show_level(3)
                self.query_one(ExperimentTree).rebuild(
                    select=self.selection
                    if self.selection.uoa is None
                    else Selection(uoa=UoA(self.selection.uoa.model))
                )
        elif level == 2 and self.model_id is not None:
            self.open_model(self.model_id, self.layer)
        elif level == 1 and self.model_id is not None and self.layer is not None:
            self.open_layer(self.model_id, self.layer)

    def jump_to(self, selection: Selection) -> None:
        """Show ``selection`` at its level (from a widget, search or the command palette)."""
        uoa = selection.uoa
        if uoa is None or uoa.layer is None:
            self.show_level(3)
            self.query_one(ExperimentTree).rebuild(select=selection)
            self.select(selection)
        elif uoa.variable is None and uoa.neuron is None:
            self.open_model(uoa.model, uoa.layer)
        else:
            self.open_layer(uoa.model, uoa.layer, uoa)

    # --- events from the level widgets -----------------------------------------------------------
    # Highlight events arrive after the fact; only the visible level's widget may select.
    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Selection]) -> None:
        if event.node.data is not None and self.level == 3:
            self.select(event.node.data)

    def on_tree_node_selected(self, event: Tree.NodeSelected[Selection]) -> None:
        data = event.node.data
        if data is not None and data.uoa is not None:
            self.open_model(data.uoa.model)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if (
            event.option_list.id == "layers"
            and self.level == 2
            and self.model_id
            and event.option.id
        ):
            self.layer = event.option.id
            self.select(Selection(uoa=UoA(self.model_id, event.option.id)))
        elif (
            event.option_list.id == "units"
            and self.level == 1
            and self.model_id
            and self.layer
            and event.option.id
        ):
            self.select(Selection(uoa=_unit(self.model_id, self.layer, event.option.id)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "layers" and self.model_id and event.option.id:
            self.open_layer(self.model_id, event.option.id)

    def on_descendant_focus(self, event: Any) -> None:
        widget = event.widget
        card = widget if isinstance(widget, WidgetCard) else None
        if card is not None:
            self.notify_status(f"widget of {card.unit_title}; J jumps there, x exports it")

    # --- crumbs and status ---------------------------------------------------------------------
    def update_crumbs(self) -> None:
        roots = " + ".join(str(r) for r in self.store.roots)
        parts = [f"[@click=app.crumb(3)]{_escape(roots)}[/]"]
        sel = self.selection
        model_id = sel.uoa.model if sel.uoa else (self.model_id if self.level < 3 else None)
        if model_id is not None and model_id in self.store.models:
            experiment = self.store.tree.experiment_of(model_id).name
            parts.append(f"[@click=app.crumb(3)]{_escape(experiment)}[/]")
            name = self.store.display_name(self.store.models[model_id])
            parts.append(f"[@click=app.crumb(2)][{self.colours(model_id)}]{_escape(name)}[/][/]")
            if sel.uoa and sel.uoa.layer and self.level <= 2:
                parts.append(f"[@click=app.crumb(1)]{_escape(sel.uoa.layer)}[/]")
                if sel.uoa.variable:
                    parts.append(_escape(sel.uoa.variable))
                elif sel.uoa.neuron is not None:
                    parts.append(f"#{sel.uoa.neuron}")
        elif sel.experiment:
            parts.append(_escape(sel.experiment))
        classes = (
            "all classes"
            if self.class_selection is None
            else "classes " + ",".join(map(str, self.class_selection))
        )
        self.query_one("#crumbs", Static).update(
            f" [b]tinspect[/b]  {' › '.join(parts)}   [reverse] L{self.level} [/reverse]"
            f"  [dim]{classes}[/dim]"
        )

    def update_status(self, message: str = "") -> None:
        problems = list(self.store.problems)
        serious = [p for p in problems if p.severity is not Severity.INFO]
        text = f"{len(self.store.models)} models"
        if serious:
            last = _escape(str(serious[-1]))
            text += f"  [red]{len(serious)} problems[/red] (P: list)  [dim]{last}[/dim]"
        elif problems:
            text += f"  [dim]{len(problems)} notes (P: list)[/dim]"
        if message:
            text += f"  │ {_escape(message)}"
        self.query_one("#status", Static).update(text)

    def notify_status(self, message: str) -> None:
        self.update_status(message)

    # --- live refresh ----------------------------------------------------------------------------
    def live_refresh(self) -> None:
        changes = self.store.refresh()
        if not changes:
            return
        for model_id in changes.new_models:
            self.colours(model_id)
        if self.level == 3:
            self.query_one(ExperimentTree).rebuild(select=self.selection)
        elif self.level == 2 and self.model_id in changes.changed_models:
            self.open_model(self.model_id, self.layer)
        touched = set(changes.new_checkpoints) | set(changes.new_metric_rows)
        if changes.new_models or changes.changed_models or changes.new_checkpoints:
            self.compute_guides()  # badges and findings of the new data (exclusive worker)
        for card in self.query(WidgetCard):
            if touched & set(card.selection.models(self.store)):
                card.load()
        self.update_status(
            f"{len(changes.new_models)} new models, "
            f"{sum(len(v) for v in changes.new_checkpoints.values())} new checkpoints"
        )

    # --- tools and widgets -----------------------------------------------------------------------
    def action_toolbox(self) -> None:
        tools = applicable(self.selection, self.store)
        if not tools:
            self.update_status("select a unit first")
            return
        from tinspect.tui.screens.modals import Toolbox  # modals load on first use

        self.push_screen(Toolbox(tools, self.selection.label(self.store)), self.apply_tool)

    def apply_tool(
        self, tool: Tool | None, selection: Selection | None = None
    ) -> WidgetCard | None:
        if tool is None:
            return None
        selection = selection or self.selection
        model_ids = selection.models(self.store)
        colour = self.colours(model_ids[0]) if model_ids else "white"
        card_class: type[WidgetCard] = WidgetCard
        if tool.view in ("note", "branch"):
            from tinspect.tui.widgets.notes import BranchCard, NoteCard

            card_class = NoteCard if tool.view == "note" else BranchCard
        card = card_class(tool, selection, colour, selection.label(self.store))
        container = self.query_one(f"#cards-{selection.level}")
        self.query_one(f"#section-{selection.level}").display = True
        self.query_one("#widgets-hint").display = False
        container.mount(card)
        card.set_class(True, "linked")
        self.call_after_refresh(card.scroll_visible, animate=False)
        return card

    def action_classes(self) -> None:
        names = self._class_names()
        if not names:
            self.update_status("these models have no classes")
            return
        from tinspect.tui.screens.modals import ClassSelector

        self.push_screen(ClassSelector(names, self.class_selection), self.set_classes)

    def _class_names(self) -> list[str]:
        for model_id in self.selection.models(self.store) or list(self.store.models):
            names = self.store.models[model_id].class_names
            if names:
                return names
        return []

    def set_classes(self, classes: tuple[int, ...] | None) -> None:
        if classes == self.class_selection:
            return
        self.class_selection = classes
        self.update_crumbs()
        for card in self.query(WidgetCard):
            if card.tool.class_dependent:
                card.load()
        if self.level == 1 and self.model_id and self.layer:
            self.query_one(LayerDetail).load()

    def action_k(self, step: int) -> None:
        if self.level == 1:
            detail = self.query_one(LayerDetail)
            detail.k = max(1, min(64, detail.k + step * 4))
            detail.load()

    def action_export(self) -> None:
        focused = self.focused
        card = focused if isinstance(focused, WidgetCard) else None
        if card is None:
            cards = list(self.query(WidgetCard))
            card = cards[-1] if cards else None
        if card is None:
            self.update_status("no widget to export: t applies a tool")
            return
        self.export_card(card)

    def export_card(self, card: WidgetCard) -> None:
        if card.table is None:
            self.update_status("the widget has no data yet")
            return
        default = Path.cwd() / f"tinspect-{card.tool.id}-{_file_slug(card.unit_title)}.csv"

        def write(path: Path | None) -> None:
            if path is None or card.table is None:
                return
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="") as f:
                    write_table(card.table, f, "json" if path.suffix == ".json" else "csv")
            except OSError as error:
                self.update_status(f"could not write {path}: {error.strerror}")
                return
            self.update_status(f"wrote {len(card.table)} rows to {path}")
            self.notify(f"wrote {len(card.table)} rows to {path}", title="export")

        from tinspect.tui.screens.modals import AskPath

        self.push_screen(AskPath("export widget data (.csv or .json)", default), write)

    def action_toggle_widgets(self) -> None:
        self.query_one("#main").toggle_class("widgets-wide")

    def action_group(self) -> None:
        from tinspect.tui.screens.group import GroupScreen

        grouped = [card for card in self.query(WidgetCard) if card.grouped]
        if not grouped:
            self.update_status("g on widgets marks them for a group; G shows the group")
            return
        self.push_screen(GroupScreen(grouped))

    def action_merge(self) -> None:
        """Merge grouped widgets of the same tool into one overlaid widget (shared range)."""
        grouped = [card for card in self.query(WidgetCard) if card.grouped]
        tools = {card.tool.id for card in grouped}
        if len(grouped) < 2 or len(tools) != 1:
            self.update_status("merge needs two or more grouped widgets of the same tool")
            return
        tool = grouped[0].tool
        merged = MergedSelection([c.selection for c in grouped])
        card = self.apply_tool(tool, merged)
        if card is not None:
            for old in grouped:
                old.grouped = False
                old.set_class(False, "grouped")
                old.update_header()

    def action_search(self) -> None:
        entries: list[tuple[str, str]] = []
        for model in self.store.ordered_models():
            name = self.store.display_name(model)
            entries.append(
                (
                    name,
                    f"model {model.label} {model.id} {strip(model)} "
                    f"{self.badges_for(Selection(uoa=UoA(model.id)))}",
                )
            )
            for layer in model.layers:
                ops = " ".join(str(o.get("op")) for o in layer.operations)
                badge = self.badges_for(Selection(uoa=UoA(model.id, layer.name)))
                entries.append(
                    (
                        f"{name}/{layer.name}",
                        f"{layer.class_name} {layer.activation or ''} {ops} {badge}",
                    )
                )

        def go(path: str | None) -> None:
            if path:
                self.jump_to(Selection(uoa=self.store.resolve(path)))

        from tinspect.tui.screens.modals import Search

        self.push_screen(Search(entries), go)

    def action_help(self) -> None:
        from tinspect.tui.screens.modals import TextModal

        self.push_screen(TextModal("keys", help_text(self)))

    def action_problems(self) -> None:
        problems = [str(p) for p in self.store.problems]
        from tinspect.tui.screens.modals import TextModal

        self.push_screen(TextModal("problems in the logs", "\n".join(problems) or "none"))


class MergedSelection(Selection):
    """Several units shown in one widget (same tool; histograms share one range)."""

    def __init__(self, parts: list[Selection]) -> None:
        super().__init__(parts[0].experiment, parts[0].uoa)
        object.__setattr__(self, "parts", parts)

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


def _linked(card: Selection, selected: Selection) -> bool:
    if card == selected:
        return True
    return bool(
        selected.uoa
        and card.uoa
        and card.uoa.model == selected.uoa.model
        and card.uoa.layer == selected.uoa.layer
        and selected.uoa.layer
    )


def _unit(model_id: str, layer: str, option_id: str) -> UoA:
    kind, _, value = option_id.partition(":")
    if kind == "var":
        return UoA(model_id, layer, value)
    return UoA(model_id, layer, None, int(value))


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def _file_slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "widget"


def help_text(app: TinspectApp) -> Text:
    text = Text()
    sections = [
        ("everywhere", app.BINDINGS),
        ("on a focused widget", WidgetCard.BINDINGS),
    ]
    text.append("Enter descends a level (model → layers → layer); Backspace/Escape goes up;\n")
    text.append("click a breadcrumb to jump. Tab moves between the inspection panel and widgets.\n")
    text.append("ctrl+p opens the command palette with every action.\n\n")
    for title, bindings in sections:
        text.append(f"{title}\n", style="bold underline")
        for binding in bindings:
            keys = binding.key if isinstance(binding, Binding) else binding[0]
            description = binding.description if isinstance(binding, Binding) else binding[2]
            action = binding.action if isinstance(binding, Binding) else binding[1]
            text.append(f"  {keys:<22}", style="bold")
            text.append(f"{description or action}\n")
        text.append("\n")
    text.append("◆ marks widgets whose data follow the class selection (c).\n", style="dim")
    return text
