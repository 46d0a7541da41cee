"""L1: one layer — its variables and neurons to select, top-k weights, neurons × classes.

The head is drawn from the header at once; statistics load in a thread worker (cancelled
when another layer opens) and arrive as ``LayerData``. The class selection and the guides
come down from the main screen as reactive attributes: a new class selection reloads the
statistics, new guides redraw the unit badges.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from tinspect import format as fmt
from tinspect.query import Query, QueryCancelled, run
from tinspect.store import DataError, Store, UoA, UoAError
from tinspect.tui.errors import ReportsWorkerErrors
from tinspect.tui.messages import LayerData, SelectionChanged
from tinspect.tui.palette import ModelColours, normalize, scale
from tinspect.tui.selection import Selection
from tinspect.tui.state import Guides
from tinspect.tui.widgets.images import channel_maps, from_rows, image_grid
from tinspect.tui.widgets.marks import compact
from tinspect.tui.widgets.views import ViewState, view_heatmap

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


def _classes_text(classes: tuple[int, ...] | None) -> str:
    return "all classes" if classes is None else "classes " + ",".join(map(str, classes))


def unit_of(model_id: str, layer: str, option_id: str) -> UoA:
    """The unit an option of the L1 list stands for (``var:kernel`` or ``unit:3``)."""
    kind, _, value = option_id.partition(":")
    if kind == "var":
        return UoA(model_id, layer, value)
    return UoA(model_id, layer, None, int(value))


class LayerDetail(ReportsWorkerErrors, Vertical):
    """One layer: variables and neurons to select, top-k weights, neurons × classes."""

    BINDINGS = [
        Binding("plus", "k(1)", "k+", show=False, id="layer.k-more", tooltip="more top-k weights"),
        Binding(
            "minus", "k(-1)", "k-", show=False, id="layer.k-less", tooltip="fewer top-k weights"
        ),
    ]

    K_DEFAULT = 8
    guides: reactive[Guides] = reactive(Guides, init=False, always_update=True)
    class_selection: reactive[tuple[int, ...] | None] = reactive(None, init=False)

    def __init__(self, store: Store, colours: ModelColours) -> None:
        super().__init__(id="layer")
        self.store = store
        self.colours = colours
        self.model_id: str | None = None
        self.layer_name: str | None = None
        self.k = self.K_DEFAULT
        self.heat_state = ViewState()
        self.pending_select: UoA | None = None
        self.last: LayerData | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="layer-head")
        yield OptionList(id="units")
        with VerticalScroll(id="layer-extra"):
            yield Static(id="maps")
            yield Static(id="weights")
            yield Static(id="heatmap")

    @property
    def path(self) -> str:
        assert self.model_id is not None and self.layer_name is not None
        return self.store.path(UoA(self.model_id, self.layer_name))

    def show_layer(self, model_id: str, layer: str, select: UoA | None = None) -> None:
        model = self.store.models[model_id]
        info = model.layer(layer)
        self.model_id, self.layer_name = model_id, layer
        head = Text()
        head.append(f"{layer}", style=f"bold {self.colours(model_id)}")
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
        self.query_one("#units", OptionList).set_options(self._variable_options())
        self.query_one("#weights", Static).update(Text("loading…", style="dim"))
        self.query_one("#heatmap", Static).update("")
        self.query_one("#maps", Static).update("")
        self.pending_select = select
        self.last = None
        self.load()

    def _variable_options(self) -> list[Option]:
        assert self.model_id is not None and self.layer_name is not None
        info = self.store.models[self.model_id].layer(self.layer_name)
        return [
            Option(Text(f"  variable {v}", style="bold"), id=f"var:{v}")
            for v in info.variable_names
        ]

    def watch_class_selection(self) -> None:
        if self.model_id in self.store.models:
            self.load()

    def watch_guides(self) -> None:
        if self.last is not None and self.model_id in self.store.models:
            self._draw(self.last)

    def clear(self) -> None:
        """Forget the layer (its model was removed): nothing stale is drawn or reloaded."""
        self.workers.cancel_group(self, "layer")
        self.model_id = self.layer_name = None
        self.last = None

    def action_k(self, step: int) -> None:
        self.k = max(1, min(64, self.k + step * 4))
        if self.model_id is not None:
            self.load()

    @work(thread=True, exclusive=True, group="layer", exit_on_error=False)
    def load(self) -> None:
        worker = get_current_worker()
        store, classes = self.store, self.class_selection
        model = store.models.get(self.model_id or "")
        if model is None or self.layer_name is None:
            return  # removed while the worker was queued; the screen says so
        info = model.layer(self.layer_name)
        recorded = model.recording.get("layers") or []
        path = self.path
        cancelled = lambda: worker.is_cancelled  # noqa: E731
        units: list[dict[str, Any]] = []
        previous: dict[int, float] = {}
        previous_name = None
        weights: list[tuple[int, int, float, str]] = []
        heatmap = None
        maps = None
        error = None
        try:
            if self.layer_name in recorded:
                stats = run(store, Query((path,), step="unit_stats", classes=classes), cancelled)
                units = [dict(zip(stats.columns, row, strict=True)) for row in stats.rows()]
                if model.n_classes:
                    heatmap = run(
                        store, Query((path,), step="class_means", classes=classes), cancelled
                    )
                    if len(info.output_shape or ()) == 4:  # (n, h, w, c): a convolution
                        maps = self._class_maps(path, classes, cancelled)
            sources = [n for n in info.inbound if n in recorded]
            if "kernel" in info.variable_names:
                top = run(
                    store,
                    Query((f"{path}/kernel",), data="weights", step="topk", k=self.k),
                    cancelled,
                )
                for index, value in zip(top.column("index"), top.column("value"), strict=True):
                    coords = [int(c) for c in index.split(":")]
                    if len(coords) >= 2:  # a convolution's kernel: the spatial tap too
                        tap = ",".join(map(str, coords[:-2]))
                        weights.append((coords[-2], coords[-1], float(value), tap))
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
                LayerData(units, previous, previous_name, weights, heatmap, error, maps)
            )

    def _class_maps(
        self, path: str, classes: tuple[int, ...] | None, cancelled: Any
    ) -> np.ndarray | None:
        """The mean activation map of every channel for every class: (classes, h, w, c)."""
        table = run(
            self.store,
            Query((path,), data="mean_class_activations", step="raw", epochs="last"),
            cancelled,
        )
        if not len(table):
            return None
        means = from_rows(
            [f"{c}:{i}" for c, i in zip(table.column("class"), table.column("index"), strict=True)],
            table.column("value"),
        )
        return means

    @on(LayerData)
    def _loaded(self, message: LayerData) -> None:
        message.stop()
        if self.model_id not in self.store.models:
            return  # the model went away while the worker ran
        self.last = message
        self._draw(message)

    def _draw(self, message: LayerData) -> None:
        options = self._variable_options()
        units = message.units
        flagged = self.guides.flagged_units(self.path)
        if units:
            options += self._unit_options(units, message.weights, flagged)
        unit_list = self.query_one("#units", OptionList)
        keep = unit_list.highlighted
        unit_list.set_options(options)
        select = self.pending_select
        if select is not None:
            key = f"var:{select.variable}" if select.variable else f"unit:{select.neuron}"
            with contextlib.suppress(Exception):  # the unit is not among those listed
                unit_list.highlighted = unit_list.get_option_index(key)
            self.pending_select = None
        elif keep is not None and keep < len(options):
            unit_list.highlighted = keep
        self.query_one("#weights", Static).update(self._weights_text(message))
        self.query_one("#maps", Static).update(self._maps(message))
        if message.heatmap is not None and len(message.heatmap):
            self.query_one("#heatmap", Static).update(
                view_heatmap(message.heatmap, self.heat_state)
            )
        elif not units:
            self.query_one("#heatmap", Static).update(
                Text("activations of this layer are not recorded", style="dim")
            )

    def _unit_options(
        self,
        units: list[dict[str, Any]],
        weights: list[tuple[int, int, float, str]],
        flagged: dict[int, list[str]],
    ) -> list[Option]:
        """The 10 most and least active units, those the top-k weights touch, flagged ones."""
        means = [u["mean"] for u in units]
        norm = normalize(means)
        total = sum(abs(m) for m in means if math.isfinite(m)) or 1.0
        ranked = sorted(
            range(len(units)), key=lambda i: -means[i] if math.isfinite(means[i]) else math.inf
        )
        touched = {j for _i, j, _w, _tap in weights}
        keep = ranked[:10] + ranked[-10:]
        keep += [i for i in ranked if units[i]["unit"] in touched or units[i]["unit"] in flagged]
        seen: set[int] = set()
        top = max((abs(m) for m in means if math.isfinite(m)), default=1.0) or 1.0
        options = []
        for i in keep:
            if i in seen:
                continue
            seen.add(i)
            u = units[i]
            bar = "█" * max(1, round(10 * abs(u["mean"]) / top)) if math.isfinite(u["mean"]) else ""
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
        return options

    def _maps(self, message: LayerData) -> RenderableType:
        """The channels' mean activation maps on one colour scale (convolutions only): the
        average over the selected classes, and each selected class when there are few."""
        if message.maps is None:
            return ""
        assert self.model_id is not None and self.layer_name is not None
        model = self.store.models[self.model_id]
        config = model.layer(self.layer_name).config or {}
        chosen = [c for c in (self.class_selection or range(len(message.maps)))]
        chosen = [c for c in chosen if c < len(message.maps)]
        if not chosen:
            return ""
        groups = [("average of " + _classes_text(self.class_selection), chosen)]
        if self.class_selection is not None and len(chosen) <= 4:
            names = model.class_names
            groups += [(f"class {names[c] if c < len(names) else c}", [c]) for c in chosen]
        rendered = [
            (title, channel_maps(np.nanmean(message.maps[rows], axis=0), config))
            for title, rows in groups
        ]
        values = np.concatenate([np.ravel(m) for _t, maps in rendered for m in maps])
        values = values[np.isfinite(values)]
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        parts: list[RenderableType] = [
            Text("mean activation map per channel (last epoch, one colour scale)", style="bold")
        ]
        for title, maps in rendered:
            parts.append(Text(title, style="italic"))
            parts.append(
                image_grid(maps, [f"#{k}" for k in range(len(maps))], self.size.width - 2, lo, hi)
            )
        return Group(*parts, Text(""))

    def _weights_text(self, message: LayerData) -> Text:
        text = Text()
        if message.error:
            text.append(message.error, style="red")
            return text
        if not message.weights:
            return text
        means = {u["unit"]: u["mean"] for u in message.units}
        norm_prev = dict(
            zip(message.previous, normalize(list(message.previous.values())), strict=True)
        )
        norm_this = dict(zip(means, normalize(list(means.values())), strict=True))
        top_w = max(abs(w) for _i, _j, w, _tap in message.weights) or 1.0
        text.append(f"top-{len(message.weights)} weights  (+/- changes k)\n", style="bold")
        left = message.previous_name or "input"
        text.append(f"{left:>12} → {self.layer_name}", style="dim")
        conv = any(tap for *_rest, tap in message.weights)
        text.append("   (kernel row,col)\n" if conv else "\n", style="dim")
        for i, j, w, tap in message.weights:
            text.append(f"{'■':>8}", style=scale(norm_prev.get(i, float("nan"))))
            text.append(f"{i:<4}")
            line = "─" * max(1, round(8 * abs(w) / top_w))
            text.append(f" {line:<8} {w:+.2f} ▶ ", style="red" if w > 0 else "blue")
            text.append("■", style=scale(norm_this.get(j, float("nan"))))
            text.append(f"{j:<4}")
            text.append(f" tap ({tap})\n" if tap else "\n", style="dim")
        return text

    @on(OptionList.OptionHighlighted, "#units")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if self.model_id and self.layer_name and event.option.id:
            unit = unit_of(self.model_id, self.layer_name, event.option.id)
            self.post_message(SelectionChanged(Selection(uoa=unit)))
