"""Merging widgets: grouped charts whose axes agree become one chart.

Two charts have the same axes when their queries agree in everything but their units: the
same data (activations, weights, predictions, metrics), the same step and parameters (bins,
quantiles, epochs), the same class and sample selection. Then an x and a y value mean the
same in both, and one query over all their units draws them together: histograms on one
shared bin range, distributions on one value axis, metric lines of several models in one
chart. Tools may differ (the merged card is named after all of them); a histogram of
weights and one of activations never merge, since their x axes measure different things.

Charts that are not drawn on axes (tables, heatmaps, images, the diff) and the projection
(every layer and model has its own basis, so pc1 of one is not pc1 of another) never merge.
Pure logic on the cards' tools, queries and selections, so it is tested without a screen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tinspect.query import Query
from tinspect.tui.selection import MergedSelection, Selection
from tinspect.tui.tools import Tool

#: Views drawn on an x and a y axis that can hold several units' series.
MERGEABLE_VIEWS = frozenset({"histogram", "bands", "line", "bars"})


class Mergeable(Protocol):
    """What merging reads of a card (``WidgetCard`` has these)."""

    tool: Tool
    selection: Selection
    current_query: Query | None


@dataclass(frozen=True)
class Merge:
    """Cards that become one: the tool and the merged selection of the new card."""

    cards: tuple[Any, ...]
    tool: Tool
    selection: MergedSelection


def axes(card: Mergeable) -> str | None:
    """A key equal for two cards exactly when their charts share their axes; None for a
    card that does not merge (no query, not an axes chart, a projection)."""
    query = card.current_query
    if query is None or card.tool.view not in MERGEABLE_VIEWS or card.tool.highlights:
        return None
    fields = query.to_dict()
    del fields["uoas"]
    return json.dumps([card.tool.view, fields], sort_keys=True, default=str)


def describe(card: Mergeable) -> str:
    """The axes in words, for the status line: ``histogram of activations``."""
    query = card.current_query
    data = query.data if query is not None else "no data"
    return f"{card.tool.view} of {data}"


def plan(cards: Sequence[Mergeable]) -> tuple[list[Merge], list[str]]:
    """The merges of ``cards`` (every set of two or more whose axes agree, in card order)
    and, for the cards left as they are, why."""
    by_axes: dict[str, list[Mergeable]] = {}
    left: list[str] = []
    for card in cards:
        key = axes(card)
        if key is None:
            left.append(f"{card.tool.name} is not a chart on axes")
        else:
            by_axes.setdefault(key, []).append(card)
    merges = []
    for members in by_axes.values():
        if len(members) < 2:
            left.append(f"{members[0].tool.name} ({describe(members[0])}) has no partner")
            continue
        names = list(dict.fromkeys(c.tool.name for c in members))
        tool = (
            members[0].tool if len(names) == 1 else replace(members[0].tool, name=" + ".join(names))
        )
        selection = MergedSelection([c.selection for c in members])
        merges.append(Merge(tuple(members), tool, selection))
    return merges, left
