"""The viewer's upward intents and worker results, as messages.

State flows down (the main screen hands the store, the colours, the guides and the class
selection to the widgets below it); what a widget wants done flows up as one of these
messages and is handled by the main screen with ``@on(...)``. A widget therefore never
calls into the App or the screen, and can be built and tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.dom import DOMNode
from textual.message import Message

from tinspect.tui.selection import Selection

if TYPE_CHECKING:
    from tinspect.analysis.diagnose import Finding
    from tinspect.query import Table
    from tinspect.store import Changes
    from tinspect.tui.widgets.card import WidgetCard


class FromWidget(Message):
    """A message whose ``control`` is the widget that posted it.

    So a handler can route by where it came from, ``@on(SelectionChanged, "#layers")``,
    instead of comparing ids inside one catch-all handler.
    """

    @property
    def control(self) -> DOMNode | None:
        sender = self._sender
        return sender if isinstance(sender, DOMNode) else None


@dataclass
class SelectionChanged(FromWidget):
    """The cursor of a level moved to ``selection`` (L3 tree, L2 graph, L1 units)."""

    selection: Selection


@dataclass
class OpenRequested(FromWidget):
    """Show ``selection`` one level further down (Enter on a model or a layer)."""

    selection: Selection


@dataclass
class JumpRequested(FromWidget):
    """Show ``selection`` at its own level (from a card, search, findings, the palette)."""

    selection: Selection


@dataclass
class SamplesChosen(Message):
    """Make ``samples`` (the sample-selection grammar, e.g. ``confusion:3,8@conv``) the
    global sample selection (Enter on a confusion-matrix cell)."""

    samples: str


@dataclass
class ExportRequested(Message):
    """Write the table a card shows to a file the user names."""

    card: WidgetCard


@dataclass
class FindingsRequested(Message):
    """List these findings (Enter on a chart that marks their epochs)."""

    findings: list[Finding]


@dataclass
class StatusMessage(Message):
    """One line for the status bar (a saved note, a written file, a failure)."""

    text: str


class KeysDrawn(Message):
    """The footer's keys are on screen: the first screen is complete."""


@dataclass
class StoreChanged(Message):
    """The refresh worker found new, changed or removed models and checkpoints (or the
    start-up loader read another slice of the logdir: ``loading``)."""

    changes: Changes
    loading: bool = False


@dataclass(frozen=True)
class ModelGuides:
    """What the guides worker found for one model: its structure badges (by (model id,
    layer)), its one-line change against its first parent, and its findings (None: the
    checks have not run on it yet)."""

    structure: dict[tuple[str, str | None], str]
    delta: str | None
    findings: tuple[Finding, ...] | None = None


@dataclass
class GuidesComputed(Message):
    """Guides of some models, from the guides worker (merged into what the screen has)."""

    models: dict[str, ModelGuides]


@dataclass
class ModelsShown(Message):
    """The L3 tree added model nodes (an experiment opened): guides are wanted for them."""


@dataclass
class InterestComputed(Message):
    """Interestingness scores of every unit and their aggregation per level."""

    measure: str
    scores: list[Any]
    levels: dict[str, dict[Any, float]]


@dataclass
class CardLoaded(Message):
    """A card's worker finished: its table (or the error that replaced it)."""

    card: WidgetCard
    table: Table | None
    error: str | None
    extra: dict[str, Any]


@dataclass
class LayerData(Message):
    """L1's worker finished: unit statistics, top-k weights and the class heatmap."""

    units: list[dict[str, Any]]
    previous: dict[int, float]
    previous_name: str | None
    weights: list[tuple[int, int, float, str]]
    heatmap: Table | None
    error: str | None
    #: Per-class mean activation maps of a convolution ((classes, *per-sample shape)), or None.
    maps: Any = None


@dataclass
class WorkerFailed(Message):
    """A worker raised what it did not expect; the App routes it to one status line."""

    what: str
    error: BaseException | None
