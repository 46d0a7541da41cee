"""The widget panel: cards grouped by the level of their unit (L3, L2, L1).

It holds the cards and passes state down to them: the class selection, which cards are
linked to the selected unit, and what a change in the logs means for each card. It never
reads data itself.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Static

from tinspect.store import Changes
from tinspect.tui.selection import Selection
from tinspect.tui.widgets.card import WidgetCard


def linked(card: Selection, selected: Selection) -> bool:
    """A card is linked to the selection when it shows that unit or another of its layer."""
    if card == selected:
        return True
    return bool(
        selected.uoa
        and card.uoa
        and card.uoa.model == selected.uoa.model
        and card.uoa.layer == selected.uoa.layer
        and selected.uoa.layer
    )


class WidgetPanel(VerticalScroll):
    """Cards in three collapsible sections, one per level; hidden until they hold a card."""

    #: The group ``g`` on a card puts it in (named with N on the main screen).
    current_group = "1"

    def compose(self) -> ComposeResult:
        yield Static("[dim]t: apply a tool to the selected unit[/dim]", id="widgets-hint")
        for level in (3, 2, 1):
            with Collapsible(title=f"L{level}", id=f"section-{level}", collapsed=False):
                yield Vertical(id=f"cards-{level}", classes="cards")

    def on_mount(self) -> None:
        for level in (3, 2, 1):
            self.query_one(f"#section-{level}").display = False

    @property
    def cards(self) -> list[WidgetCard]:
        return list(self.query(WidgetCard))

    def add(self, card: WidgetCard, findings: tuple[Any, ...] = ()) -> WidgetCard:
        card.set_findings(findings)
        level = card.selection.level
        self.query_one(f"#section-{level}").display = True
        self.query_one("#widgets-hint").display = False
        self.query_one(f"#cards-{level}").mount(card)
        card.current_group = self.current_group
        card.set_class(True, "linked")
        self.call_after_refresh(card.scroll_visible, animate=False)
        return card

    def link(self, selection: Selection) -> None:
        for card in self.cards:
            card.set_class(linked(card.selection, selection), "linked")

    def set_findings(self, findings: tuple[Any, ...]) -> None:
        for card in self.cards:
            card.set_findings(findings)

    def set_classes(self, classes: tuple[int, ...] | None) -> None:
        for card in self.cards:
            card.class_selection = classes

    def set_group(self, name: str) -> None:
        """The group ``g`` puts cards into from now on."""
        self.current_group = name
        for card in self.cards:
            card.current_group = name

    def groups(self) -> list[str]:
        """Names of the groups that hold cards, in the order of their first card."""
        return list(dict.fromkeys(c.group for c in self.cards if c.group is not None))

    def set_samples(self, samples: str | None) -> None:
        for card in self.cards:
            card.sample_selection = samples

    def store_changed(self, changes: Changes, alive: set[str]) -> None:
        """Cards on removed models say so; cards whose model got data reload.

        ``alive`` is the set of model ids in the store's new snapshot.
        """
        touched = changes.touched_models
        for card in self.cards:
            models = set(card.model_ids)
            if models and not models & alive:
                card.unit_removed("model removed from the logs (its directory is gone)")
            elif (models - alive) or touched & models:
                card.load()
