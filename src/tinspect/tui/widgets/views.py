"""Views: how a card draws the table its tool's query returned.

Each view is a function ``(table, state) -> renderable or widget`` registered by name in
``VIEWS``; ``tools.Tool.view`` names one. Charts use textual-plotext (one ``plt`` per widget,
never plotext's global state); grids (heatmaps, confusion, images) are Rich renderables.
``ViewState`` carries what a key can change on a card: the epoch or series shown, sorting.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table as RichTable
from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from tinspect.query import Table
from tinspect.store.model import BOOKKEEPING  # the recorder's own keys, not model metrics
from tinspect.tui.palette import normalize, scale
from tinspect.tui.widgets.bands import number

if TYPE_CHECKING:
    import numpy as np
else:
    from tinspect.lazy import numpy as np


@dataclass
class ViewState:
    """What keys change on a card: which page (epoch, metric, unit group) and the sort column."""

    page: int = -1  # -1: the last page (e.g. the last epoch)
    sort_column: int | None = None
    colours: dict[str, str] = field(default_factory=dict)  # unit path or model name → colour
    title: str = ""  # what the view shows now, e.g. "epoch 3/10"
    pages: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _page(state: ViewState, n: int) -> int:
    state.pages = max(1, n)
    if state.page < 0 or state.page >= n:
        state.page = n - 1 if state.page < 0 else state.page % max(1, n)
    return state.page


def _colour(state: ViewState, key: str, default: str = "white") -> str:
    for name, colour in state.colours.items():
        if key == name or key.startswith(name + "/"):
            return colour
    return default


def _rgb(hex_colour: str) -> tuple[int, int, int] | str:
    if hex_colour.startswith("#") and len(hex_colour) == 7:
        return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))
    return hex_colour


def Chart(draw: Callable[[Any], None]) -> Widget:
    """A plotext chart; textual-plotext (and plotext) load with the first chart, not at start."""
    from tinspect.tui.widgets.chart import PlotChart

    return PlotChart(draw)


def ticks(plt: Any, lo: float, hi: float, n: int = 4) -> None:
    """Round x tick labels (plotext prints every digit of a float otherwise)."""
    from tinspect.tui.widgets.bands import number

    values = list(np.linspace(lo, hi, n))
    plt.xticks(values, [number(v) for v in values])


def epoch_ticks(plt: Any, epochs: list[int], room: int = 40) -> None:
    """Integer epoch labels on the x axis (plotext would print 1.0, 5.8, 10.5...)."""
    from tinspect.tui.widgets.bands import integer_ticks

    if epochs:
        marks = integer_ticks(min(epochs), max(epochs), room)
        plt.xticks(marks, [str(m) for m in marks])


def tint(colour: str, amount: float = 0.45) -> tuple[int, int, int] | str:
    """``colour`` mixed with white: the validation series beside the training series."""
    rgb = _rgb(colour)
    if isinstance(rgb, str):
        return rgb
    r, g, b = (round(c + (255 - c) * amount) for c in rgb)
    return (r, g, b)


# --- common scales (the group view) -------------------------------------------------------------
Range = tuple[float, float]


def _finite(values: Any) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


#: Per view: the x and y values a chart of it spans, from its table.
SCALED: dict[str, Callable[[Table], tuple[list[float], list[float]]]] = {
    "histogram": lambda t: (
        _finite(t.column("bin_left")) + _finite(t.column("bin_right")),
        [0.0, *_finite(t.column("count"))],
    ),
    "bands": lambda t: (_finite(t.column("epoch")), _finite(t.column("value"))),
    "scatter": lambda t: (_finite(t.column("pc1")), _finite(t.column("pc2"))),
}  # not "line": its pages show different metrics, which share no y range


def common_scale(charts: list[tuple[str, Table]]) -> dict[str, dict[str, Range]]:
    """Per view kind, the x and y range spanning every chart of that kind (common scale)."""
    spans: dict[str, tuple[list[float], list[float]]] = {}
    for view, table in charts:
        if view in SCALED and len(table):
            xs, ys = SCALED[view](table)
            all_x, all_y = spans.setdefault(view, ([], []))
            all_x += xs
            all_y += ys
    out: dict[str, dict[str, Range]] = {}
    for view, (xs, ys) in spans.items():
        if xs and ys:
            out[view] = {"x": (min(xs), max(xs)), "y": (min(ys), max(ys))}
    return out


def apply_scale(plt: Any, state: ViewState) -> bool:
    """Set the chart's limits to the group's common scale, if it has one."""
    common = state.extra.get("common")
    if not common:
        return False
    (x0, x1), (y0, y1) = common["x"], common["y"]
    if x1 > x0:
        plt.xlim(x0, x1)
        ticks(plt, x0, x1)
    if y1 > y0:
        plt.ylim(y0, y1)
    return True


def _by(table: Table, *keys: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in table.rows():
        record = dict(zip(table.columns, row, strict=True))
        groups[tuple(record[k] for k in keys)].append(record)
    return groups


# --- metrics -----------------------------------------------------------------------------------


def metric_bases(table: Table) -> list[str]:
    """Metric names without the ``val_`` prefix, losses first."""
    bases: list[str] = []
    for metric in table.column("metric") if len(table) else []:
        base = metric[4:] if metric.startswith("val_") else metric
        if base not in bases and base not in BOOKKEEPING:
            bases.append(base)
    return sorted(
        bases, key=lambda b: (0 if b == "loss" else 1 if "loss" in b else 2, bases.index(b))
    )


def view_line(table: Table, state: ViewState) -> Widget | RenderableType:
    bases = metric_bases(table) + [
        b for b in ("learning_rate", "epoch_time_s") if b in set(table.column("metric"))
    ]
    if not bases:
        return Text("no metrics logged yet", style="dim")
    base = bases[_page(state, len(bases))]
    state.title = f"{base} ({state.page + 1}/{len(bases)})  [ ] other metrics"
    series = _by(table, "model", "metric")

    epochs = sorted({r["epoch"] for rows in series.values() for r in rows})
    #: Epochs at which findings were observed on these models, and the findings' ids.
    marked_epochs, marked_ids = state.extra.get("marked", (set(), set()))

    def draw(plt: Any) -> None:
        for (model, metric), rows in series.items():
            if metric not in (base, f"val_{base}"):
                continue
            points = [
                (r["epoch"], r["value"])
                for r in rows
                if r["value"] is not None and math.isfinite(r["value"])
            ]
            if not points:
                continue
            validation = metric.startswith("val_")
            colour = _colour(state, model)
            plt.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                label=f"{model} {'val' if validation else 'train'}",
                color=tint(colour) if validation else _rgb(colour),
                marker="•" if validation else "braille",
            )
        for epoch in sorted(marked_epochs):
            plt.vertical_line(epoch, "red")
        epoch_ticks(plt, epochs)
        plt.xlabel("epoch")
        plt.ylabel(base)

    if marked_epochs:
        epochs_text = ",".join(str(e) for e in sorted(marked_epochs))
        ids = ", ".join(sorted(marked_ids))
        state.title += f"  ┃ red: {ids} at epochs {epochs_text} (Enter lists them)"
    return Chart(draw)


def view_bars(table: Table, state: ViewState) -> RenderableType:
    """One metric at a time, a bar per model in its colour."""
    bases = (
        [m for m in dict.fromkeys(table.column("metric")) if m not in BOOKKEEPING]
        if len(table)
        else []
    )
    if not bases:
        return Text("no metrics logged yet", style="dim")
    metric = bases[_page(state, len(bases))]
    state.title = f"{metric} ({state.page + 1}/{len(bases)})"
    rows = [
        (r["model"], r["value"]) for r in _by(table, "metric")[(metric,)] if r["value"] is not None
    ]
    if not rows:
        return Text(f"no values of {metric}", style="dim")
    top = max(abs(v) for _m, v in rows) or 1.0
    grid = RichTable.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    for model, value in rows:
        width = max(1, round(24 * abs(value) / top))
        grid.add_row(
            Text(model, style=_colour(state, model)),
            Text("█" * width, style=_colour(state, model)),
            f"{value:.4g}",
        )
    return grid


def view_runtime(table: Table, state: ViewState) -> RenderableType:
    grid = RichTable(box=None, padding=(0, 0, 0, 2), pad_edge=False, header_style="bold underline")
    for column in ("model", "ms/sample", "weights", "epochs"):
        grid.add_column(column, justify="left" if column == "model" else "right")
    for (model,), rows in _by(table, "model").items():
        times = [r["runtime_per_sample_s"] for r in rows if r["runtime_per_sample_s"] is not None]
        median = float(np.median(times)) * 1000 if times else float("nan")
        size = rows[-1]["weights_bytes"] or 0
        grid.add_row(
            Text(model, style=_colour(state, model)), f"{median:.3f}", _bytes(size), str(len(rows))
        )
    state.title = "median over checkpoints"
    return grid


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# --- distributions -----------------------------------------------------------------------------
#: Markers of overlaid series, so that they differ without colour (monochrome, 16 colours).
SERIES_MARKERS = ("braille", "•", "+", "x", "o")


def view_histogram(table: Table, state: ViewState) -> Widget | RenderableType:
    """One epoch at a time on the shared range; several units are overlaid in their colours."""
    if not len(table):
        return Text("no data", style="dim")
    epochs = sorted(set(table.column("epoch")))
    epoch = epochs[_page(state, len(epochs))]
    state.title = f"epoch {epoch} ({state.page + 1}/{len(epochs)})  [ ] step epochs"
    groups = _by(table, "uoa", "epoch")
    units = list(dict.fromkeys(table.column("uoa")))

    def draw(plt: Any) -> None:
        for i, uoa in enumerate(units):
            rows = groups.get((uoa, epoch), [])
            centres = [(r["bin_left"] + r["bin_right"]) / 2 for r in rows]
            counts = [r["count"] for r in rows]
            if not rows:
                continue
            if len(units) == 1:
                plt.bar(centres, counts, color=_rgb(_colour(state, uoa, "#56B4E9")), width=0.9)
            else:  # merged: a line per unit, told apart by its marker as well as its colour
                plt.plot(
                    centres,
                    counts,
                    label=uoa,
                    color=_rgb(_colour(state, uoa)),
                    marker=SERIES_MARKERS[i % len(SERIES_MARKERS)],
                )
        plt.ylabel("count")
        lo, hi = table.meta.get("range", [None, None])
        if apply_scale(plt, state):
            return
        if lo is not None and hi is not None and hi > lo:
            plt.xlim(lo, hi)
            ticks(plt, lo, hi)

    return Chart(draw)


def view_bands(table: Table, state: ViewState) -> RenderableType:
    """Nested quantile bands per epoch with the median, like TensorBoard's distributions.

    Several units (a merged widget) are drawn one under the other on one value axis and
    one epoch axis, so their bands compare by position; overlaid, nested bands of two
    units could not be told apart."""
    from tinspect.tui.widgets.bands import BandChart

    if not len(table):
        return Text("no data", style="dim")
    units = list(dict.fromkeys(table.column("uoa")))
    by_unit = _by(table, "uoa")
    common = state.extra.get("common")  # the group view's common scale, if on
    value_range = tuple(common["y"]) if common and common["y"][1] > common["y"][0] else None
    if len(units) > 1 and value_range is None:
        finite = _finite(table.column("value"))
        value_range = (min(finite), max(finite)) if finite else None
    epochs = sorted(set(table.column("epoch")))
    height = 10 if len(units) == 1 else max(4, 10 - 2 * len(units))
    parts: list[RenderableType] = []
    for i, uoa in enumerate(units):
        by_quantile: dict[float, dict[int, float]] = defaultdict(dict)
        for row in by_unit[(uoa,)]:
            by_quantile[row["quantile"]][row["epoch"]] = row["value"]
        values = {q: [v.get(e, float("nan")) for e in epochs] for q, v in by_quantile.items()}
        colour = _colour(state, uoa, "#56B4E9")
        if len(units) > 1:
            parts.append(Text(uoa, style=f"bold {colour}"))
        last = i == len(units) - 1
        parts.append(
            BandChart(epochs, values, colour, height=height, value_range=value_range, footer=last)
        )
    state.title = f"{len(units)} units on one value axis" if len(units) > 1 else ""
    return parts[0] if len(parts) == 1 else Group(*parts)


def view_density(table: Table, state: ViewState) -> Widget | RenderableType:
    """One density line per unit, eight units per page."""
    if not len(table):
        return Text("no data", style="dim")
    units = sorted(set(table.column("unit")))
    per_page = 8
    pages = math.ceil(len(units) / per_page)
    page = _page(state, pages)
    shown = units[page * per_page : (page + 1) * per_page]
    state.title = f"units {shown[0]}–{shown[-1]} of {len(units)}  [ ] more"
    groups = _by(table, "unit")

    def draw(plt: Any) -> None:
        for i, unit in enumerate(shown):
            rows = groups[(unit,)]
            centres = [(r["bin_left"] + r["bin_right"]) / 2 for r in rows]
            colour = _rgb(scale(i / max(1, len(shown) - 1)))
            plt.plot(
                centres,
                [r["fraction"] for r in rows],
                label=f"#{unit}",
                color=colour,
                marker="braille",
            )
        lo, hi = table.meta.get("range", [None, None])
        if lo is not None and hi is not None and hi > lo:
            ticks(plt, lo, hi)

    return Chart(draw)


# --- tables and grids --------------------------------------------------------------------------
SHOWN_COLUMNS = (
    "epoch",
    "count",
    "mean",
    "std",
    "min",
    "max",
    "skew",
    "kurtosis",
    "zero_fraction",
    "rank",
    "index",
    "value",
)


def view_table(table: Table, state: ViewState) -> RenderableType:
    columns = [c for c in table.columns if c in SHOWN_COLUMNS]
    grid = RichTable(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold underline")
    units = (
        list(dict.fromkeys(table.column("uoa"))) if "uoa" in table.columns and len(table) else []
    )
    if len(units) > 1:
        grid.add_column("unit")
    for column in columns:
        grid.add_column(
            "zeros" if column == "zero_fraction" else column, justify="right", no_wrap=True
        )
    for row in table.rows():
        record = dict(zip(table.columns, row, strict=True))
        cells = [Text(record["uoa"], style=_colour(state, record["uoa"]))] if len(units) > 1 else []
        for column in columns:
            value = record[column]
            if column == "zero_fraction" and isinstance(value, float):
                cells.append(f"{value:.0%}" if math.isfinite(value) else "")
            elif isinstance(value, float):
                cells.append(f"{value:.4g}")
            else:
                cells.append(str(value))
        grid.add_row(*cells)
    return grid


def heat_cell(value: float, norm: float) -> Text:
    """A two-character colour block: heatmaps are read by colour; numbers go to CSV (x)."""
    if not math.isfinite(value):
        return Text(" ·", style="dim")
    return Text("██", style=scale(norm))


def view_heatmap(table: Table, state: ViewState) -> RenderableType:
    """Neurons × classes: rows are units, columns classes, colour the mean activation."""
    if not len(table):
        return Text("no data", style="dim")
    classes = sorted(set(table.column("class")))
    names = {r["class"]: r["class_name"] for r in _by(table, "class").get((classes[0],), [])}
    for (c,), rows in _by(table, "class").items():
        names[c] = rows[0]["class_name"]
    units = sorted(set(table.column("unit")))
    matrix = np.full((len(units), len(classes)), np.nan)
    ui = {u: i for i, u in enumerate(units)}
    ci = {c: j for j, c in enumerate(classes)}
    for unit, c, value in zip(
        table.column("unit"), table.column("class"), table.column("mean"), strict=True
    ):
        matrix[ui[unit], ci[c]] = value
    order = list(range(len(units)))
    if state.sort_column is not None and len(classes):
        col = state.sort_column % len(classes)
        order = sorted(order, key=lambda i: -np.nan_to_num(matrix[i, col], nan=-np.inf))
        state.title = f"sorted by class {names.get(classes[col], classes[col])}  s: next class"
    else:
        state.title = "s: sort by a class column"
    flat = normalize(list(matrix.ravel()))
    norm = np.array(flat).reshape(matrix.shape)
    grid = RichTable(box=None, padding=0, pad_edge=False, header_style="bold")
    grid.add_column("unit", justify="left", no_wrap=True, width=max(5, len(str(units[-1])) + 2))
    for c in classes:
        grid.add_column(str(names.get(c, c))[:2], justify="left", no_wrap=True, width=2)
    for i in order:
        grid.add_row(
            f"#{units[i]}", *(heat_cell(matrix[i, j], norm[i, j]) for j in range(len(classes)))
        )
    return Group(grid, legend(float(np.nanmin(matrix)), float(np.nanmax(matrix))))


def legend(lo: float, hi: float) -> Text:
    """The blue → red scale with the values at its ends."""
    text = Text(f"{lo:.3g} ", style="dim")
    for k in range(12):
        text.append("█", style=scale(k / 11))
    text.append(f" {hi:.3g}", style="dim")
    return text


def view_confusion(table: Table, state: ViewState) -> RenderableType:
    if not len(table):
        return Text("no data", style="dim")
    n = max(max(table.column("true")), max(table.column("predicted"))) + 1
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p, c in zip(
        table.column("true"), table.column("predicted"), table.column("count"), strict=True
    ):
        matrix[t, p] = c
    total = matrix.sum()
    state.extra["classes"] = n
    cell = state.extra.get("cell", (0, 0))
    state.title = (
        f"accuracy {np.trace(matrix) / total:.1%} on {total} samples" if total else "no samples"
    ) + f"  cell {cell[0]}→{cell[1]}: {matrix[cell]} (arrows, Enter selects)"
    grid = RichTable(box=None, padding=(0, 0, 0, 1), pad_edge=False, header_style="bold")
    grid.add_column("t\\p", justify="right")
    for p in range(n):
        grid.add_column(str(p), justify="right")
    top = matrix.max() or 1
    for t in range(n):
        cells = []
        for p in range(n):
            value = matrix[t, p]
            colour = (
                scale(0.5 + 0.5 * value / top)
                if t == p
                else (scale(0.5 - 0.5 * value / top) if value else "#333333")
            )
            style = f"black on {colour}" if value else "dim"
            if (t, p) == cell:
                style = "bold reverse"
            cells.append(Text(f"{value:3d}", style=style))
        grid.add_row(str(t), *cells)
    return grid


# --- images ------------------------------------------------------------------------------------
GREY_LEVELS = 24


def _grey(v: float) -> str:
    level = int(min(1.0, max(0.0, v)) * 255)
    return f"#{level:02x}{level:02x}{level:02x}"


def image_text(pixels: np.ndarray) -> Text:
    """A 2-D array in [0, 1] drawn with upper half blocks: two pixel rows per text row."""
    h, w = pixels.shape
    if h % 2:
        pixels = np.vstack([pixels, np.zeros((1, w))])
    text = Text()
    for r in range(0, pixels.shape[0], 2):
        for c in range(w):
            text.append("▀", style=f"{_grey(pixels[r, c])} on {_grey(pixels[r + 1, c])}")
        if r + 2 < pixels.shape[0]:
            text.append("\n")
    return text


def as_image(flat: np.ndarray) -> np.ndarray | None:
    """A sample's values as a 2-D image if its size is a square or (h, w, 1); else None."""
    side = round(math.sqrt(flat.size))
    if side * side != flat.size or side < 4:
        return None
    img = flat.reshape(side, side).astype(np.float64)
    lo, hi = np.nanmin(img), np.nanmax(img)
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def view_images(table: Table, state: ViewState) -> RenderableType:
    """Samples with label and prediction (or input | reconstruction) in a grid."""
    samples: dict[int, dict[str, Any]] = {}
    for sample, c, _index, value in zip(
        table.column("sample"),
        table.column("class"),
        table.column("index"),
        table.column("value"),
        strict=True,
    ):
        entry = samples.setdefault(sample, {"class": c, "values": []})
        entry["values"].append(value)
    predictions: dict[int, np.ndarray] = state.extra.get("predictions", {})
    class_names: list[str] = state.extra.get("class_names", [])
    per_page = 6
    keys = sorted(samples)
    pages = max(1, math.ceil(len(keys) / per_page))
    page = _page(state, pages)
    shown = keys[page * per_page : (page + 1) * per_page]
    state.title = (
        f"samples {page * per_page + 1}–{page * per_page + len(shown)} of {len(keys)}  [ ] more"
    )
    grid = RichTable.grid(padding=(0, 2))
    cells = []
    reconstructions = False
    for sample in shown:
        values = np.asarray(samples[sample]["values"], dtype=np.float64)
        img = as_image(values)
        parts: list[RenderableType] = []
        pred = predictions.get(sample)
        if img is not None:
            pictures = Text()
            pictures.append_text(image_text(img))
            if pred is not None and pred.size == values.size:  # a reconstruction
                recon = as_image(pred)
                if recon is not None:
                    reconstructions = True
                    parts.append(Group(image_text(img), Text("input", style="dim")))
                    parts.append(Group(image_text(recon), Text("output", style="dim")))
                    parts.append(
                        Group(image_text(difference(values, pred)), Text("|Δ|", style="dim"))
                    )
            if not parts:
                parts.append(pictures)
        label = samples[sample]["class"]
        label_text = (
            class_names[label]
            if isinstance(label, int) and label < len(class_names)
            else str(label)
        )
        caption = Text(f"#{sample} y={label_text}")
        if pred is not None and pred.size != values.size and pred.size > 1:
            guess = int(np.argmax(pred))
            ok = isinstance(label, int) and guess == label
            name = class_names[guess] if guess < len(class_names) else str(guess)
            caption.append(f" p={name} {pred[guess]:.0%}", style="green" if ok else "red")
        inner = RichTable.grid(padding=(0, 1))
        for _ in parts:
            inner.add_column()
        inner.add_row(*parts)
        cells.append(Group(inner, caption))
    per_row = 2 if reconstructions else 3  # three pictures per sample need the room
    for i in range(0, len(cells), per_row):
        grid.add_row(*cells[i : i + per_row])
    return grid


def difference(values: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """|input − reconstruction| as an image, on the input's own range (0 black, its full
    range white), so a bright pixel is an error as large as the input's contrast."""
    side = round(math.sqrt(values.size))
    span = float(np.nanmax(values) - np.nanmin(values)) or 1.0
    diff = np.abs(values.astype(np.float64) - reconstruction.astype(np.float64)) / span
    return np.clip(diff.reshape(side, side), 0.0, 1.0)


def view_kernels(table: Table, state: ViewState) -> RenderableType:
    """A convolution kernel (rows, cols, in, out) as one small image per (in, out) pair:
    rows are output channels, columns input channels, 8 output channels per page; ``[ ]``
    step through the epochs, then to the next 8 output channels. All images on a page share
    one colour scale."""
    from tinspect.tui.widgets.bands import number
    from tinspect.tui.widgets.images import from_rows, scale_legend, scaled_image

    if not len(table):
        return Text("no data", style="dim")
    epochs = sorted(set(table.column("epoch")))
    by_epoch = _by(table, "epoch")
    first = by_epoch[(epochs[0],)]
    shape = from_rows([r["index"] for r in first], [r["value"] for r in first]).shape
    per_page = 8
    groups = math.ceil(shape[3] / per_page)
    if state.page < 0:  # open on the last epoch, first output channels
        state.page = len(epochs) - 1
    page = _page(state, len(epochs) * groups)
    group, epoch = page // len(epochs), epochs[page % len(epochs)]
    rows = by_epoch[(epoch,)]
    kernel = from_rows([r["index"] for r in rows], [r["value"] for r in rows])
    outs = range(group * per_page, min(shape[3], (group + 1) * per_page))
    shown = kernel[:, :, :, outs.start : outs.stop]
    lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
    state.title = f"epoch {epoch}, out {outs.start}–{outs.stop - 1} of {shape[3]}  [ ] step"
    grid = RichTable(box=None, padding=(0, 1, 0, 0), pad_edge=False, header_style="dim")
    grid.add_column("out\\in", justify="right", style="dim", no_wrap=True)
    for i in range(shape[2]):
        grid.add_column(str(i), no_wrap=True)
    for o in outs:
        grid.add_row(str(o), *(scaled_image(kernel[:, :, i, o], lo, hi) for i in range(shape[2])))
    note = Text(f"\n{shape[0]}×{shape[1]} taps; range {number(lo)} … {number(hi)}  ", style="dim")
    return Group(grid, note, scale_legend(lo, hi))


DIFF_STYLES = {
    "layer-added": "green",
    "layer-removed": "red",
    "layer": "yellow",
    "hyperparameter": "cyan",
    "training": "cyan",
    "metric": "dim",
    "distribution": "dim",
}


#: Sections of the diff view, by row kind; a metric's or distribution's epoch goes in the
#: heading (``loss@4`` → ``loss`` under "metrics at epoch 4").
DIFF_SECTIONS = {
    "layer": "layers",
    "layer-added": "layers",
    "layer-removed": "layers",
    "hyperparameter": "hyperparameters",
    "training": "training",
    "metric": "metrics",
    "distribution": "activation distributions",
}
DIFF_MARKS = {"layer-added": "+", "layer-removed": "−", "layer": "~"}


def _diff_value(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return number(value) if isinstance(value, float) else str(value)


def _diff_line(kind: str, unit: str, field_: str, va: Any, vb: Any) -> Text:
    """One diff row as ``name: a → b``, short enough for a card 36 cells wide."""
    name, _, _epoch = field_.partition("@")
    if kind == "layer-added":
        return Text.assemble((unit, "bold"), ("  added ", "green"), _diff_value(vb))
    if kind == "layer-removed":
        return Text.assemble((unit, "bold"), ("  removed ", "red"), _diff_value(va))
    if kind == "distribution":
        divergence = float(vb) if isinstance(vb, (int, float)) else 0.0
        bar = "█" * max(1, round(8 * min(1.0, divergence)))
        return Text.assemble((unit, "bold"), " ", (bar, "yellow"), f" {number(divergence)}")
    label = Text.assemble((unit, "bold"), " ", name) if unit else Text(name)
    return Text.assemble(label, ": ", _diff_value(va), " → ", (_diff_value(vb), "bold"))


def view_diff(table: Table, state: ViewState) -> RenderableType:
    """The diff rows in sections (layers, hyperparameters, training, metrics, activation
    distributions), each row one ``name: a → b`` line, a row cursor (Enter jumps to the
    layer). Values wrap under their column, so a narrow card keeps them readable."""
    if not len(table):
        return Text("no difference", style="dim")
    row = int(state.extra.get("row", 0)) % len(table)
    state.extra["row"] = row
    structural = sum(1 for k in table.column("kind") if k not in ("metric", "distribution"))
    a, b = table.meta.get("a_name", "a"), table.meta.get("b_name", "b")
    if table.meta.get("pair"):  # the header says "b against a" already
        state.title = f"{structural} structural rows  ↑↓ Enter: layer (A: in {a})"
    else:
        state.title = f"a = {a}, b = {b}: {structural} structural rows  ↑↓ Enter: layer (A: in a)"
    parts: list[RenderableType] = []
    grid: RichTable | None = None
    section = None
    for i, (kind, unit, field_, va, vb) in enumerate(table.rows()):
        heading = DIFF_SECTIONS.get(kind, kind)
        epoch = field_.partition("@")[2] if kind in ("metric", "distribution") else ""
        if kind == "distribution":
            heading += f" at epoch {epoch}: JS divergence" if epoch else ": JS divergence"
        elif epoch:
            heading += f" at epoch {epoch}"
        if heading != section:
            section = heading
            parts.append(Text(heading, style="bold underline"))
            grid = RichTable.grid(padding=(0, 1))
            grid.add_column(width=1, no_wrap=True)
            grid.add_column(ratio=1, overflow="fold")  # wraps under itself: a hanging indent
            parts.append(grid)
        assert grid is not None
        line = _diff_line(kind, unit or "", field_, va, vb)
        style = DIFF_STYLES.get(kind, "") if kind in DIFF_MARKS else ""
        if i == row:
            style = f"{style} reverse".strip()
        grid.add_row(
            Text(DIFF_MARKS.get(kind, " "), style=DIFF_STYLES.get(kind, "")), line, style=style
        )
    return Group(*parts)


#: Class colours of the projection scatter (Okabe–Ito, then greys): colour-blind safe.
CLASS_COLOURS = (
    "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2",
    "#D55E00", "#CC79A7", "#999999", "#FFFFFF", "#777777",
)  # fmt: skip


def scatter_frame(table: Table) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): one frame for every epoch of a projection."""
    xs, ys = _finite(table.column("pc1")), _finite(table.column("pc2"))
    return min(xs), max(xs), min(ys), max(ys)


def box_bounds(table: Table, state: ViewState) -> tuple[float, float, float, float] | None:
    """The selection rectangle in data coordinates, or None when there is none."""
    box = state.extra.get("box")
    if box is None or not len(table):
        return None
    cx, cy, w, h = box
    x0, x1, y0, y1 = scatter_frame(table)
    return (
        x0 + (cx - w / 2) * (x1 - x0),
        x0 + (cx + w / 2) * (x1 - x0),
        y0 + (cy - h / 2) * (y1 - y0),
        y0 + (cy + h / 2) * (y1 - y0),
    )


def samples_in_box(table: Table, state: ViewState) -> list[int]:
    """Samples whose point lies in the rectangle at the epoch shown."""
    bounds = box_bounds(table, state)
    if bounds is None:
        return []
    epochs = sorted(set(table.column("epoch")))
    epoch = epochs[min(max(state.page, 0), len(epochs) - 1)] if state.page >= 0 else epochs[-1]
    bx0, bx1, by0, by1 = bounds
    return sorted(
        int(r[2])
        for r in table.rows()
        if r[1] == epoch and bx0 <= r[4] <= bx1 and by0 <= r[5] <= by1
    )


#: Colours of the projection by prediction: right, wrong (Okabe–Ito bluish green, vermillion).
RIGHT_WRONG = ("#009E73", "#D55E00")
#: Points outside the sample selection.
UNSELECTED = "#444444"


def _point_colour(row: dict[str, Any], by: str) -> str:
    if by == "correct" and row["correct"] is not None:
        return RIGHT_WRONG[0] if row["correct"] else RIGHT_WRONG[1]
    c = row["class"]
    return CLASS_COLOURS[c % len(CLASS_COLOURS)] if isinstance(c, int) else "#56B4E9"


def scatter_legend(
    rows: list[dict[str, Any]], by: str, selected: bool, boxed: bool = False
) -> Text:
    """What the colours and marks of the projection mean, and its keys, under it."""
    text = Text(no_wrap=False)
    if by == "correct":
        text.append("■", style=RIGHT_WRONG[0])
        text.append(" right  ")
        text.append("×", style=f"bold {RIGHT_WRONG[1]}")
        text.append(" wrong  ")
    else:
        for c in sorted({r["class"] for r in rows if isinstance(r["class"], int)}):
            text.append("■", style=CLASS_COLOURS[c % len(CLASS_COLOURS)])
            text.append(f"{c} ")
        if any(r["correct"] is False for r in rows):
            text.append(" × wrong ")
    if selected:
        text.append("■", style=UNSELECTED)
        text.append(" not selected ")
    other = "class" if by == "correct" else "right/wrong"
    text.append(f"\nC: colour by {other} · arrows: box", style="dim")
    text.append(" (Enter selects)" if boxed else " · 0-9: class", style="dim")
    text.append(" · [ ] epochs", style="dim")
    return text


def view_scatter(table: Table, state: ViewState) -> Widget | RenderableType:
    """The projection: one epoch at a time in the frame of the basis epoch, coloured by
    class or by right/wrong prediction (``C``), wrong predictions drawn ``×``; with a
    sample selection, the selected points in colour and the rest dim grey."""
    from textual.containers import Vertical

    if not len(table):
        return Text("no data", style="dim")
    epochs = sorted(set(table.column("epoch")))
    epoch = epochs[_page(state, len(epochs))]
    rows = _by(table, "epoch").get((epoch,), [])
    selected: dict[int, set[int]] | None = state.extra.get("selected")
    chosen = None if selected is None else selected.get(epoch, set())
    by = "correct" if state.extra.get("colour") == "correct" else "class"
    basis = ", ".join(f"{v}" for v in (table.meta.get("basis_epoch") or {}).values())
    wrong = sum(1 for r in rows if r["correct"] is False)
    # The title says what is shown; the keys go in the legend under the chart, so that a
    # card 30 cells wide keeps most of its height for the points.
    state.title = (
        f"epoch {epoch} ({state.page + 1}/{len(epochs)}) basis {basis}"
        + (f"  {wrong} wrong" if wrong else "")
        + (f"  {len(chosen)} selected" if chosen is not None else "")
        + (f"  box: {len(samples_in_box(table, state))}" if state.extra.get("box") else "")
    )
    lo_x, hi_x, lo_y, hi_y = scatter_frame(table)
    bounds = box_bounds(table, state)

    def draw(plt: Any) -> None:
        groups: dict[tuple[str, bool, bool], list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            on = chosen is None or r["sample"] in chosen
            groups[(_point_colour(r, by), on, r["correct"] is False)].append(r)
        # Unselected points first, so the selection is drawn on top of them; under a
        # selection its points are whole-cell dots, the others faint braille dots.
        for (colour, on, wrong_one), members in sorted(groups.items(), key=lambda g: g[0][1]):
            plt.scatter(
                [r["pc1"] for r in members],
                [r["pc2"] for r in members],
                color=_rgb(colour if on else UNSELECTED),
                marker="x" if wrong_one else ("•" if on and chosen is not None else "braille"),
            )
        if bounds is not None:
            bx0, bx1, by0, by1 = bounds
            plt.plot([bx0, bx1, bx1, bx0, bx0], [by0, by0, by1, by1, by0], color="white")
        if apply_scale(plt, state):
            return
        if hi_x > lo_x:
            plt.xlim(lo_x, hi_x)
            ticks(plt, lo_x, hi_x)
        if hi_y > lo_y:
            plt.ylim(lo_y, hi_y)

    legend = Static(
        scatter_legend(rows, by, chosen is not None, bool(state.extra.get("box"))),
        classes="view scatter-legend",
    )
    return Vertical(Chart(draw), legend, classes="view")


def view_text(table: Table, state: ViewState) -> RenderableType:
    return Text(state.extra.get("text", ""))


# --- IMACS (the compare tool) -----------------------------------------------------------------
def _imacs_colours(state: ViewState, comparison: Any) -> tuple[str, str]:
    a = _colour(state, comparison.names[0], "#56B4E9")
    b = _colour(state, comparison.names[1], "#E69F00")
    return (a, "#E69F00") if a == b else (a, b)


def view_imacs_histograms(table: Table, state: ViewState) -> Widget | RenderableType:
    """One concept per page: both models' attribution histograms on one shared x-range."""
    comparison = state.extra.get("comparison")
    if comparison is None or not comparison.clusters:
        return Text("no data", style="dim")
    cluster = comparison.clusters[_page(state, len(comparison.clusters))]
    a_name, b_name = comparison.labels
    state.title = (
        f"cluster {cluster.cluster} ({state.page + 1}/{state.pages}) imbalance "
        f"{cluster.imbalance:+.2f}, {cluster.size} segments  [ ] step clusters"
    )
    edges = np.asarray(comparison.histogram_edges)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    colour_a, colour_b = _imacs_colours(state, comparison)

    def draw(plt: Any) -> None:
        plt.plot(centres, cluster.histogram_a, label=f"a {a_name}", color=_rgb(colour_a))
        plt.plot(centres, cluster.histogram_b, label=f"b {b_name}", color=_rgb(colour_b))
        plt.xlim(float(edges[0]), float(edges[-1]))
        ticks(plt, float(edges[0]), float(edges[-1]))
        plt.xlabel("normalized segment attribution")

    return Chart(draw)


#: Thumbnails per concept at most (as many as fit the width are shown).
MAX_THUMBNAILS = 8


class Fitted:
    """A renderable laid out when Rich renders it, for the width it is given then (a view
    function does not know the card's width)."""

    def __init__(self, layout: Callable[[Console, ConsoleOptions], RenderableType]) -> None:
        self.layout = layout

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.layout(console, options)


def _bar(value: float, norm: float, width: int = 5) -> str:
    n = 0 if norm <= 0 else round(min(1.0, abs(value) / norm) * width)
    return ("█" * n or "·").ljust(width) + ("-" if value < 0 else " ")


def view_imacs_concepts(table: Table, state: ViewState) -> RenderableType:
    """Rows of concepts: segment thumbnails (half blocks) sorted by attribution, framed
    green/red by model a's correctness, each model's attribution as a bar."""
    from rich.panel import Panel

    from tinspect.tui.imacs import thumbnail

    comparison = state.extra.get("comparison")
    images = state.extra.get("images")
    if comparison is None or images is None or not comparison.clusters:
        return Text("no data", style="dim")
    truth = state.extra.get("truth")
    predicted_a, predicted_b = state.extra.get("predicted", (None, None))
    per_page = 2
    clusters = comparison.clusters
    pages = max(1, math.ceil(len(clusters) / per_page))
    page = _page(state, pages)
    shown = clusters[page * per_page : (page + 1) * per_page]
    first = page * per_page + 1
    state.title = (
        f"concepts {first}–{first + len(shown) - 1} of {len(clusters)}  [ ] more  "
        "frame: a right/wrong, #: b"
    )
    colour_a, colour_b = _imacs_colours(state, comparison)
    norm = max(
        (max(abs(va), abs(vb)) for c in clusters for _s, _r, _c, va, vb in c.segments), default=1.0
    )
    scale = max(1, 6 // max(1, images.shape[1] // comparison.grid))  # cells ~6 pixels wide

    def thumbnail_panel(sample: int, row: int, col: int, va: float, vb: float) -> Panel:
        pixels = thumbnail(images, sample, row, col, comparison.grid)
        pixels = np.kron(pixels, np.ones((scale, scale)))
        right = truth is None or predicted_a is None or predicted_a[sample] == truth[sample]
        ok_b = truth is None or predicted_b is None or predicted_b[sample] == truth[sample]
        caption = Text(f"#{sample}", style="green" if ok_b else "red")
        bars = Text(no_wrap=True)
        bars.append("a" + _bar(va, norm), style=colour_a)
        bars.append("\n")
        bars.append("b" + _bar(vb, norm), style=colour_b)
        return Panel(
            Group(image_text(pixels), caption, bars),
            border_style="green" if right else "red",
            padding=(0, 0),
            expand=False,
        )

    def layout(console: Console, options: ConsoleOptions) -> RenderableType:
        """As many thumbnails per concept as fit the width whole (cropped ones cannot be
        read): 2 at 80 columns, 3 at 100, more with the wide panel (w)."""
        width = options.max_width
        rows: list[RenderableType] = []
        for cluster in shown:
            rows.append(
                Text(
                    f"cluster {cluster.cluster}  imbalance {cluster.imbalance:+.2f}  "
                    f"size {cluster.size}  coh. {cluster.coherence:.2f}",
                    style="bold",
                )
            )
            panels = [thumbnail_panel(*segment) for segment in cluster.segments[:MAX_THUMBNAILS]]
            widths = [Measurement.get(console, options, panel).maximum for panel in panels]
            fitted: list[Panel] = []
            used = 0
            for panel, cells in zip(panels, widths, strict=True):
                if fitted and used + 1 + cells > width:
                    break
                fitted.append(panel)
                used += cells + (1 if used else 0)
            grid = RichTable.grid(padding=(0, 1))
            for _ in fitted:
                grid.add_column(no_wrap=True)
            if fitted:
                grid.add_row(*fitted)
            rows.append(grid)
        return Group(*rows)

    return Fitted(layout)


def confusion_classes(a: np.ndarray, b: np.ndarray, cls: int | None) -> list[int]:
    """Classes whose row or column differs between ``a`` and ``b``, plus the class of
    interest: every cell where the models differ lies in these rows and columns."""
    differs = a != b
    chosen = set(np.flatnonzero(differs.any(axis=1) | differs.any(axis=0)).tolist())
    if cls is not None and cls < a.shape[0]:
        chosen.add(cls)
    return sorted(int(c) for c in chosen)


def view_imacs_confusion(table: Table, state: ViewState) -> RenderableType:
    """One concept per page: both models' confusion matrices over the samples its
    segments come from, side by side; ``s`` toggles every class / the classes where the
    two matrices differ (the default: the rest of the matrix is the same in both)."""
    from tinspect.tui.widgets.confusions import ConfusionPair

    comparison = state.extra.get("comparison")
    if comparison is None or not comparison.clusters:
        return Text("no data", style="dim")
    cluster = comparison.clusters[_page(state, len(comparison.clusters))]
    samples = cluster.composition.get("samples", 0)
    state.title = (
        f"cluster {cluster.cluster} ({state.page + 1}/{state.pages}) imbalance "
        f"{cluster.imbalance:+.2f}, {samples} samples  [ ] step clusters"
    )
    if not cluster.confusion:
        return Text("these samples have no class labels, so no confusion matrix", style="dim")
    a = np.asarray(cluster.confusion["a"])
    b = np.asarray(cluster.confusion["b"])
    every = list(range(a.shape[0]))
    show_all = state.sort_column is not None and state.sort_column % 2 == 0
    classes = every if show_all else confusion_classes(a, b, comparison.cls)
    if not classes:
        classes = every
    colour_a, colour_b = _imacs_colours(state, comparison)
    label_a, label_b = comparison.labels
    titles = (
        Text.assemble(("a ", "bold"), (label_a, f"bold {colour_a}")),
        Text.assemble(("b ", "bold"), (label_b, f"bold {colour_b}")),
    )
    total = max(1, int(a.sum()))
    right_a, right_b = int(np.trace(a)), int(np.trace(b))
    shown = (
        f"all {len(every)} classes, s: where a≠b"
        if show_all or len(classes) == len(every)
        else f"{len(classes)}/{len(every)} classes (where a≠b), s: all"
    )
    note = Text.assemble(
        ("right ", "dim"),
        (f"a {right_a / total:.0%}", colour_a),
        (" ", "dim"),
        (f"b {right_b / total:.0%}", colour_b),
        (f" of {total} samples\nrows true, columns predicted\n", "dim"),
        ("underlined", "underline"),
        (f": a≠b · {shown}", "dim"),
    )
    return Group(ConfusionPair(a, b, classes, titles, comparison.cls), note)


VIEWS: dict[str, Callable[[Table, ViewState], Widget | RenderableType]] = {
    "line": view_line,
    "bars": view_bars,
    "runtime": view_runtime,
    "histogram": view_histogram,
    "bands": view_bands,
    "density": view_density,
    "table": view_table,
    "heatmap": view_heatmap,
    "confusion": view_confusion,
    "scatter": view_scatter,
    "diff": view_diff,
    "images": view_images,
    "kernels": view_kernels,
    "text": view_text,
    "imacs_histograms": view_imacs_histograms,
    "imacs_concepts": view_imacs_concepts,
    "imacs_confusion": view_imacs_confusion,
}


def render(view: str, table: Table, state: ViewState) -> Widget:
    """The widget that shows ``table`` with ``view``."""
    result = VIEWS[view](table, state)
    if isinstance(result, Widget):
        return result
    return Static(result, classes="view")
