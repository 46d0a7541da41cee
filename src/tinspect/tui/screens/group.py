"""A named group of widgets side by side, full screen: compare the same tool across units.

``[``/``]`` step every widget together; ``s`` puts every chart of one kind on a common
scale (the same x and y range, from all the group's tables), so that heights and positions
compare across models; ``M`` merges the charts whose axes agree into one chart
(``tui.merge``); ``d`` opens the diff of two of the group's models; ``n`` shows the next
group. New cards are made by the main screen, which owns the panel, so the screen closes
with a ``GroupRequest`` saying what to do (and the main screen shows the group again after
a merge). Cards still loading are redrawn when their data arrive (their ``revision``).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tinspect.store import Store
from tinspect.tui.widgets.card import WidgetCard
from tinspect.tui.widgets.views import ViewState, common_scale, render


@dataclass(frozen=True)
class GroupRequest:
    """What the group view asks of the main screen as it closes (nothing: just close)."""

    #: Show this group next.
    show: str | None = None
    #: Merge this group's charts whose axes agree, then show the group again.
    merge: bool = False
    #: (a, b) model ids: a diff card of b against a.
    diff: tuple[str, str] | None = None
    #: The common scale was on (kept when the group is shown again).
    common: bool = False


def group_models(store: Store, cards: list[WidgetCard]) -> list[str]:
    """The models the group's cards show, in the logs' order (parents before children)."""
    shown = {m for card in cards for m in card.model_ids if m in store.models}
    return [m.id for m in store.ordered_models() if m.id in shown]


class GroupScreen(Screen[GroupRequest]):
    BINDINGS = [
        Binding("escape,G", "close", "close", id="group.close", tooltip="back to the panel"),
        Binding(
            "left_square_bracket",
            "page(-1)",
            "◂ all",
            id="group.previous",
            tooltip="every widget: previous epoch",
        ),
        Binding(
            "right_square_bracket",
            "page(1)",
            "all ▸",
            id="group.next",
            tooltip="every widget: next epoch",
        ),
        Binding("s", "scale", "scale", id="group.scale", tooltip="one x, y range per chart kind"),
        Binding("M", "merge", "merge", id="group.merge", tooltip="merge charts whose axes agree"),
        Binding("d", "diff", "diff", id="group.diff", tooltip="diff two of the group's models"),
        Binding(
            "n", "next_group", "next group", id="group.next-group", tooltip="show the next group"
        ),
    ]

    def __init__(
        self,
        cards: list[WidgetCard],
        name: str = "1",
        groups: list[str] | None = None,
        common: bool = False,
    ) -> None:
        super().__init__()
        self.cards = cards
        self.group_name = name
        self.groups = groups or [name]
        self.common = common
        self.states = [
            ViewState(page=c.state.page, colours=c.state.colours, extra=dict(c.state.extra))
            for c in cards
        ]

    def compose(self) -> ComposeResult:
        yield Static(id="group-title")
        with Horizontal(id="group"):
            for _ in self.cards:
                yield Vertical(classes="group-cell")
        yield Footer()

    def on_mount(self) -> None:
        for card in self.cards:
            self.watch(card, "revision", self._card_loaded, init=False)
        self.redraw()

    def _card_loaded(self) -> None:
        for card, state in zip(self.cards, self.states, strict=True):
            state.colours = card.state.colours
            for key, value in card.state.extra.items():
                state.extra.setdefault(key, value)
        self.redraw()

    def redraw(self) -> None:
        scale = "on" if self.common else "off"
        widgets = f"{len(self.cards)} widget" + ("s" if len(self.cards) != 1 else "")
        groups = f"{len(self.groups)} group" + ("s" if len(self.groups) != 1 else "")
        self.query_one("#group-title", Static).update(
            f"[b]group {self.group_name}[/b]: {widgets}  ·  common scale [b]{scale}[/b]  ·  "
            f"{groups}  ·  Esc: back"
        )
        scales = (
            common_scale([(c.tool.view, c.table) for c in self.cards if c.table is not None])
            if self.common
            else {}
        )
        for cell, card, state in zip(
            self.query(".group-cell"), self.cards, self.states, strict=True
        ):
            cell.remove_children()
            state.extra.pop("common", None)
            if card.tool.view in scales:
                state.extra["common"] = scales[card.tool.view]
            view = None
            if card.table is not None and card.tool.view not in ("note", "branch"):
                view = render(card.tool.view, card.table, state)  # sets state.title
            title = f"[{card.colour}]●[/] [b]{card.tool.name}[/b] {card.unit_title}"
            detail = state.title if card.table is not None else "loading…"
            cell.mount(Static(f"{title}  [dim]{detail}[/dim]"))
            if view is not None:
                cell.mount(view)

    def action_page(self, step: int) -> None:
        for state in self.states:
            if state.pages > 1:
                state.page = (state.page + step) % state.pages
        self.redraw()

    def action_scale(self) -> None:
        self.common = not self.common
        self.redraw()

    def action_merge(self) -> None:
        from tinspect.tui.merge import plan

        merges, left = plan(self.cards)
        if not merges:
            why = "; ".join(left) if left else "it needs two charts"
            self.notify(f"nothing to merge: {why}", severity="warning")
            return
        self.dismiss(GroupRequest(show=self.group_name, merge=True, common=self.common))

    def action_diff(self) -> None:
        store = self.cards[0].store if self.cards else None
        models = group_models(store, self.cards) if store is not None else []
        if len(models) < 2:
            self.notify(
                "the group's widgets show one model: add a widget on another", severity="warning"
            )
            return
        if len(models) == 2:
            self.dismiss(GroupRequest(diff=(models[0], models[1])))
            return
        from tinspect.tui.screens.modals import PairPicker

        assert store is not None
        names = {m: store.display_name(store.models[m]) for m in models}

        def picked(pair: tuple[str, str] | None) -> None:
            if pair is not None:
                self.dismiss(GroupRequest(diff=pair))

        self.app.push_screen(PairPicker(models, names), picked)

    def action_next_group(self) -> None:
        if len(self.groups) > 1:
            following = self.groups[(self.groups.index(self.group_name) + 1) % len(self.groups)]
            self.dismiss(GroupRequest(show=following, common=self.common))

    def action_close(self) -> None:
        self.dismiss(GroupRequest())
