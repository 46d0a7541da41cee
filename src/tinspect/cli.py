"""The ``tinspect`` command: ``tinspect LOGDIR`` and its sub-commands.

Data goes to stdout, messages and problems to stderr (one line each); exit codes are
``ExitCode``. Nothing at import time touches Keras or TensorFlow: ``demo`` imports them
inside the command, so every read-side command starts in a fraction of a second.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tinspect import format as fmt
from tinspect.launch import COMMANDS as _COMMANDS

app = typer.Typer(
    name="tinspect",
    help="Record Keras experiments and debug them in a terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class ExitCode(IntEnum):
    """Documented exit codes of every command."""

    OK = 0
    #: The data asked for does not exist, or problems in the logs prevented the command.
    DATA = 1
    #: The command line itself is wrong (unknown option, bad value, conflicting flags).
    USAGE = 2


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _fail(message: str, code: ExitCode) -> typer.Exit:
    _err(f"tinspect: {message}")
    return typer.Exit(code)


LogdirArg = Annotated[Path, typer.Argument(help="A logdir written by InspectCheckpoint.")]


def _open(logdir: Path, budget: float | None = None) -> Any:
    """A store on ``logdir``; exit 1 with one line when there is nothing to read. With
    ``budget``, models may still be pending (``Store``): then none read yet is no failure."""
    from tinspect.store import Store

    if not logdir.is_dir():
        raise _fail(f"{logdir} is not a directory", ExitCode.DATA)
    store = Store(logdir, budget=budget)
    if not store.models and not store.pending:
        _print_problems(store)
        raise _fail(f"no models ({fmt.MODEL_JSON}) under {logdir}", ExitCode.DATA)
    return store


def _print_problems(store: Any) -> None:
    for item in store.problems:
        _err(str(item))


# --- ls -------------------------------------------------------------------------------------
def ls_columns(models: Any) -> list[str]:
    """The columns of ``ls``: identity, tree position, size, progress, then every metric."""
    metric_names: list[str] = []
    for model in models:
        for key in model.metric_names():
            if key not in metric_names:
                metric_names.append(key)
    return [
        "id", "name", "label", "parents", "experiment", "depth", "params", "epochs", "checkpoints",
        *metric_names,
    ]  # fmt: skip


def ls_rows(
    store: Any, models: Any = None, columns: list[str] | None = None
) -> tuple[list[str], list[list[Any]]]:
    """One row per model (of ``models``, default all in display order): identity, tree
    position, size, progress and last metric values."""
    from tinspect.store.model import finite

    models = store.ordered_models() if models is None else models
    columns = ls_columns(models) if columns is None else columns
    metric_names = columns[9:]
    rows = []
    tree = store.tree
    for model in models:
        last = model.last_metrics()
        parents = [
            store.display_name(store.models[p]) if p in store.models else f"{p[:8]} (missing)"
            for p in model.parents
        ]
        rows.append(
            [
                model.short_id,
                store.display_name(model),
                model.label,
                " ".join(parents),
                tree.experiment_of(model.id).name,
                tree.depth(model.id),
                model.total_params,
                last.get(fmt.METRIC_EPOCH, 0),
                model.n_checkpoints,
                *[finite(last.get(k)) for k in metric_names],
            ]
        )
    return columns, rows


@app.command("ls")
def ls(
    logdir: LogdirArg,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    jsonl_out: Annotated[
        bool, typer.Option("--jsonl", help="JSON lines on stdout: one object per model.")
    ] = False,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV without the header row.")
    ] = False,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Write rows as models are read (default: when stdout is a pipe). JSON lines "
            "stream in the order models are read; CSV streams once its columns are known.",
        ),
    ] = None,
) -> None:
    """List the models of LOGDIR: one row per model with its last metrics."""
    if sum((csv_out, json_out, jsonl_out)) > 1:
        raise _fail("--csv, --json and --jsonl exclude each other", ExitCode.USAGE)
    from tinspect.query.table import Table, write_table

    if stream is None:
        stream = _is_pipe(sys.stdout)
    if stream and (csv_out or jsonl_out):
        _stream_ls(logdir, "jsonl" if jsonl_out else "csv", header=not no_header)
        return
    store = _open(logdir)
    columns, rows = ls_rows(store)
    if jsonl_out:
        _write_jsonl(columns, rows, sys.stdout)
        _print_problems(store)
        return
    table = Table.from_rows(columns, rows, {"logdir": str(logdir)})
    if csv_out or json_out:
        write_table(table, sys.stdout, "json" if json_out else "csv", header=not no_header)
    else:
        _print_ls(store, columns, rows)
    _print_problems(store)


def _is_pipe(stream: Any) -> bool:
    """Whether ``stream`` is a pipe (``tinspect ls ... | head``), not a terminal or a file."""
    import stat

    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False


def _write_jsonl(columns: list[str], rows: list[list[Any]], out: Any) -> None:
    """One JSON object per row; a model's object holds the metrics it logged (a metric
    another model logged is absent, not null), so streamed and whole outputs agree."""
    from tinspect.query.table import json_value

    for row in rows:
        item = {c: json_value(v) for c, v in zip(columns[:9], row, strict=False)}
        item.update(
            (c, json_value(v)) for c, v in zip(columns[9:], row[9:], strict=True) if v is not None
        )
        out.write(json.dumps(item))
        out.write("\n")


#: Seconds of parsing between two batches of streamed ``ls`` rows.
STREAM_SLICE_SECONDS = 0.1


def _stream_ls(logdir: Path, fmt_name: str, header: bool) -> None:
    """``ls`` on a pipe: rows leave as models are read (the first after ~0.1 s, whatever the
    size of the logdir). A model's row waits until its ancestors are read, so its depth and
    experiment are known; rows come in the order models are read, not the tree's (an
    experiment that a later model merges with another keeps its first name in earlier rows).
    CSV needs every metric column in its header: it streams once all models are known (at
    once when the header index is warm), JSON lines always."""
    import csv as csv_module

    store = _open(logdir, budget=STREAM_SLICE_SECONDS)
    written: set[str] = set()
    writer = csv_module.writer(sys.stdout, lineterminator="\n")
    columns: list[str] | None = None
    while True:
        final = not store.pending
        if fmt_name == "csv" and not final:
            store.refresh(budget=STREAM_SLICE_SECONDS)
            continue
        ready = [
            m
            for m in store.ordered_models()
            if m.id not in written and (final or _placed(store, m))
        ]
        if columns is None and (ready or final):
            columns = ls_columns(store.ordered_models())
            if fmt_name == "csv" and header:
                writer.writerow(columns)
        if ready and columns is not None:
            names, rows = ls_rows(store, ready, columns if fmt_name == "csv" else None)
            if fmt_name == "csv":
                from tinspect.query.table import csv_cell

                writer.writerows([csv_cell(v) for v in row] for row in rows)
            else:
                _write_jsonl(names, rows, sys.stdout)
            sys.stdout.flush()
            written.update(m.id for m in ready)
        if final:
            break
        store.refresh(budget=STREAM_SLICE_SECONDS)
    if not store.models:
        _print_problems(store)
        raise _fail(f"no models ({fmt.MODEL_JSON}) under {logdir}", ExitCode.DATA)
    _print_problems(store)


def _placed(store: Any, model: Any) -> bool:
    """Whether every ancestor that ``model`` names has been read (its place is known)."""
    todo, seen = list(model.parents), set()
    while todo:
        parent = todo.pop()
        if parent in seen:
            continue
        seen.add(parent)
        found = store.models.get(parent)
        if found is None:
            return False
        todo.extend(found.parents)
    return True


#: Metrics shown first by the human-readable ``ls`` (all of them go to CSV/JSON).
MAIN_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy")


def _print_ls(store: Any, columns: list[str], rows: list[list[Any]]) -> None:
    """The model tree as a table: experiments as sections, children indented under parents."""
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    metrics = [m for m in MAIN_METRICS if m in columns]
    metrics += [c for c in columns[9:] if c not in metrics][: max(0, 4 - len(metrics))]
    ids = ["id"] if console.width >= 100 else []  # ids are in --csv; names are unique here
    shown = ["name", *ids, "params", "epochs", "checkpoints", *metrics]
    headers = {"epochs": "ep", "checkpoints": "ckpt"}
    index = {c: columns.index(c) for c in [*shown, "experiment", "depth"]}
    table = RichTable(
        title=f"{len(rows)} models in {len(store.tree.experiments)} experiments",
        title_justify="left",
        box=None,
        padding=(0, 0, 0, 2),  # two spaces before each column, none after: fits 80 columns
        pad_edge=False,
        header_style="bold underline",
    )
    for column in shown:
        justify = "left" if column in ("name", "id") else "right"
        table.add_column(headers.get(column, column), justify=justify, no_wrap=True)
    experiment = None
    for row in rows:
        if row[index["experiment"]] != experiment:
            experiment = row[index["experiment"]]
            table.add_section()
        cells = []
        for column in shown:
            value = row[index[column]]
            if column == "name":
                depth = int(row[index["depth"]])
                value = ("  " * (depth - 1) + "└ " if depth else "") + str(value)
            elif column == "params":
                value = f"{value:,}"
            cells.append(
                "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
            )
        table.add_row(*cells)
    console.print(table)


# --- show -------------------------------------------------------------------------------------
@app.command("show")
def show(
    logdir: LogdirArg,
    uoa: Annotated[
        str, typer.Argument(help="model, model/layer, model/layer/variable or model/layer/#unit")
    ],
) -> None:
    """Describe a model (its layer graph) or a layer, like a better model.summary()."""
    from rich.console import Console

    from tinspect.describe import describe
    from tinspect.store import DataError, UoAError

    store = _open(logdir)
    try:
        unit = store.resolve(uoa)
        renderables = describe(store, unit)
    except UoAError as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.DATA) from None
    except DataError as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.DATA) from None
    console = Console()
    for renderable in renderables:
        console.print(renderable)
    _print_problems(store)


# --- export -----------------------------------------------------------------------------------
DATA_HELP = "metrics, weights, activations, mean_class_activations, samples, predictions, runtime"
#: ``analysis.imacs.FILTER_GRAMMAR`` and ``FILTERS``, spelled out so that ``--help`` needs no
#: numpy (a test keeps them equal).
FILTER_HELP = (
    "Only these samples (a question about the pair): fp[@a|@b] false positives of --class; "
    "predicted:C[@a|@b] predicted as C; disagree[:P] both top scores >= P (0.9), "
    "predictions differ."
)
#: ``query.samples.GRAMMAR``, spelled out so that ``--help`` needs no numpy (a test keeps
#: the two equal).
SAMPLES_HELP = (
    "Sample selection: all, class:3,8, predicted:3[@MODEL], correct[@MODEL], "
    "misclassified[@MODEL], confusion:TRUE,PRED[@MODEL], disagree:A,B, ids:0,5,9."
)
STAT_HELP = (
    "raw, summary, histogram, quantiles, unit_stats, class_means, density, topk, confusion, "
    "projection"
)


@app.command("export")
def export(
    logdir: LogdirArg,
    uoas: Annotated[list[str], typer.Argument(help="Unit paths; several share histogram ranges.")],
    data: Annotated[str, typer.Option("--data", "-d", help=DATA_HELP)] = "activations",
    epoch: Annotated[
        str | None,
        typer.Option(
            "--epoch", "-e", help="N, A:B, first, last or all (default: last; all for metrics)."
        ),
    ] = None,
    classes: Annotated[
        str | None, typer.Option("--classes", "-c", help="Class ids, e.g. 0,3.")
    ] = None,
    samples: Annotated[str | None, typer.Option("--samples", help=SAMPLES_HELP)] = None,
    stat: Annotated[str | None, typer.Option("--stat", "-s", help=STAT_HELP)] = None,
    bins: Annotated[int, typer.Option(help="Bins of histogram and density.")] = 30,
    lo: Annotated[
        float | None, typer.Option("--min", help="Histogram range start (default: shared min).")
    ] = None,
    hi: Annotated[
        float | None, typer.Option("--max", help="Histogram range end (default: shared max).")
    ] = None,
    quantiles: Annotated[str | None, typer.Option(help="Quantiles, e.g. 0.05,0.5,0.95.")] = None,
    k: Annotated[int, typer.Option("-k", help="How many entries topk keeps.")] = 10,
    basis_epoch: Annotated[
        str,
        typer.Option(
            "--basis-epoch", help="projection: the checkpoint that fits the basis (N, first, last)."
        ),
    ] = "last",
    limit: Annotated[int | None, typer.Option(help="At most this many raw rows.")] = None,
    out_format: Annotated[str, typer.Option("--format", "-f", help="csv or json.")] = "csv",
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV without the header row.")
    ] = False,
) -> None:
    """Export a unit's data as tidy CSV (or JSON) on stdout, for sort, awk or pandas."""
    from tinspect.query import Query, QueryError, run, write_table
    from tinspect.store import DataError, UoAError

    if out_format not in ("csv", "json"):
        raise _fail(f"--format must be csv or json. Received: {out_format!r}", ExitCode.USAGE)
    if (lo is None) != (hi is None):
        raise _fail("--min and --max go together", ExitCode.USAGE)
    try:
        query = Query(
            uoas=tuple(uoas),
            data=data,
            epochs=epoch if epoch is not None else ("all" if data == "metrics" else "last"),
            classes=_int_list(classes, "--classes") if classes else None,
            samples=samples,
            step=stat
            if stat is not None
            else ("raw" if data in ("metrics", "mean_class_activations", "runtime") else "summary"),
            bins=bins,
            range=(lo, hi) if lo is not None and hi is not None else None,
            quantiles=tuple(_float_list(quantiles, "--quantiles"))
            if quantiles
            else Query.__dataclass_fields__["quantiles"].default,
            k=k,
            limit=limit,
            basis_epoch=basis_epoch,
        )
    except QueryError as error:
        raise _fail(str(error), ExitCode.USAGE) from None
    store = _open(logdir)
    try:
        table = run(store, query)
    except QueryError as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.USAGE) from None
    except (UoAError, DataError) as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.DATA) from None
    write_table(table, sys.stdout, out_format, header=not no_header)  # type: ignore[arg-type]
    _print_problems(store)


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(
            f"{flag} takes integers separated by commas. Received: {text!r}", ExitCode.USAGE
        ) from None


def _float_list(text: str, flag: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _fail(
            f"{flag} takes numbers separated by commas. Received: {text!r}", ExitCode.USAGE
        ) from None


# --- diff -------------------------------------------------------------------------------------
@app.command("diff")
def diff_command(
    logdir: LogdirArg,
    a: Annotated[
        str, typer.Argument(help="Model A (or, alone, the model to compare with its parent).")
    ],
    b: Annotated[str | None, typer.Argument(help="Model B, compared against A.")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV without the header row.")
    ] = False,
) -> None:
    """What changed from model A to model B (or from a model's first parent to it).

    Rows kind, unit, field, a, b: layer-added, layer-removed, layer (matched by name, then
    by position and class), hyperparameter, training, metric (last common epoch) and
    distribution (activation divergence per layer at the last common checkpoint).
    """
    if csv_out and json_out:
        raise _fail("--csv and --json exclude each other", ExitCode.USAGE)
    from tinspect.analysis.diff import COLUMNS, diff, pair
    from tinspect.query.table import Table, write_table
    from tinspect.store import DataError, UoAError

    store = _open(logdir)
    try:
        model_a, model_b = pair(store, a, b)
        result = diff(store, model_a, model_b)
    except (UoAError, DataError) as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.DATA) from None
    meta = {
        "a": store.display_name(model_a),
        "b": store.display_name(model_b),
        "metric_epoch": result.metric_epoch,
        "distribution_epoch": result.distribution_epoch,
    }
    table = Table.from_rows(list(COLUMNS), [r.as_tuple() for r in result.rows], meta)
    if csv_out or json_out:
        write_table(table, sys.stdout, "json" if json_out else "csv", header=not no_header)
    else:
        _print_diff(store, result)
    _print_problems(store)


def _print_diff(store: Any, result: Any) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    from tinspect.analysis.diff import STRUCTURAL, summary_line

    console = Console()
    a, b = store.display_name(result.a), store.display_name(result.b)
    line = summary_line(result.rows)
    console.print(f"b = {b} against a = {a}", style="bold", highlight=False, markup=False)
    console.print(f"Δ {line or 'no structural change'}", highlight=False, markup=False)
    view = RichTable(box=None, padding=(0, 0, 0, 2), pad_edge=False, header_style="bold underline")
    view.add_column("kind", no_wrap=True)
    for column in ("unit", "field", "a", "b"):
        view.add_column(column, no_wrap=True, overflow="ellipsis", max_width=30)

    def cell(value: Any) -> str:
        if value is None:
            return ""
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    for row in result.rows:
        style = "" if row.kind in STRUCTURAL else "dim"
        cells = (row.kind, row.unit, row.field, cell(row.a), cell(row.b))
        view.add_row(*(Text(c) for c in cells), style=style)  # values are not markup
    console.print(view)


# --- compare (IMACS) ---------------------------------------------------------------------------
@app.command("compare")
def compare_command(
    logdir: LogdirArg,
    a: Annotated[str, typer.Argument(help="Model A, as MODEL or MODEL@EPOCH.")],
    b: Annotated[str, typer.Argument(help="Model B, as MODEL or MODEL@EPOCH (A@0: its init).")],
    cls: Annotated[
        int | None, typer.Option("--class", help="The class of interest (default: none).")
    ] = None,
    grid: Annotated[int, typer.Option("--grid", help="Segments: a G×G grid per image.")] = 4,
    k: Annotated[int, typer.Option("--k", help="Concepts: clusters of k-means.")] = 8,
    samples: Annotated[
        str | None,
        typer.Option("--samples", help="Sample selection (as for export), read on model A."),
    ] = None,
    sampling: Annotated[
        str, typer.Option("--sampling", help="balanced (IMACS) or all.")
    ] = "balanced",
    sample_filter: Annotated[
        str | None, typer.Option("--filter", help=FILTER_HELP, metavar="FILTER")
    ] = None,
    epoch: Annotated[
        str, typer.Option("--epoch", help="Epoch of both models' attributions: N or last.")
    ] = "last",
    seed: Annotated[int, typer.Option("--seed", help="Seed of sampling and k-means.")] = 0,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout, a row per segment.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV without the header row.")
    ] = False,
    confusion: Annotated[
        bool,
        typer.Option(
            "--confusion",
            help="With --csv: the clusters' confusion matrices (cluster, model, true, "
            "predicted, count) instead of the segments (the viewer's C tool).",
        ),
    ] = False,
) -> None:
    """Which concepts two image models rely on differently (IMACS), from their attributions.

    Segments (a G×G grid) of the recorded images are clustered by appearance into K
    concepts; per concept the mean attribution of each model and their normalized
    difference (imbalance), largest |imbalance| first.
    """
    if csv_out and json_out:
        raise _fail("--csv and --json exclude each other", ExitCode.USAGE)
    if confusion and not csv_out:
        raise _fail(
            "--confusion chooses the CSV table; use it with --csv (--json has both)",
            ExitCode.USAGE,
        )
    from tinspect.analysis.imacs import SAMPLINGS, compare, load_side, parse_filter
    from tinspect.query import QueryError
    from tinspect.query import samples as selections
    from tinspect.query.table import write_table
    from tinspect.store import DataError, UoAError

    if sampling not in SAMPLINGS:
        raise _fail(
            f"--sampling must be one of {', '.join(SAMPLINGS)}. Received: {sampling!r}",
            ExitCode.USAGE,
        )
    if grid < 1 or k < 1:
        raise _fail(f"--grid and --k must be >= 1. Received: {grid}, {k}", ExitCode.USAGE)
    wanted: int | str
    if epoch in ("last", "first"):
        wanted = epoch
    elif epoch.isdigit():
        wanted = int(epoch)
    else:
        raise _fail(f"--epoch must be N, first or last. Received: {epoch!r}", ExitCode.USAGE)
    try:
        selection = selections.parse(samples) if samples is not None else None
        chosen_filter = parse_filter(sample_filter) if sample_filter is not None else None
    except (QueryError, ValueError) as error:
        raise _fail(str(error), ExitCode.USAGE) from None
    store = _open(logdir)
    try:
        side_a = load_side(store, a, wanted)
        side_b = load_side(store, b, wanted)
        rows = None
        if selection is not None:
            rows = selections.resolve(store, selection, side_a.model, side_a.epoch)
        result = compare(
            store, side_a, side_b, cls=cls, grid=grid, k=k, selection=rows,
            sampling=sampling, seed=seed, sample_filter=chosen_filter,
        )  # fmt: skip
    except (UoAError, DataError) as error:
        _print_problems(store)
        raise _fail(str(error), ExitCode.DATA) from None
    if json_out:
        import json

        sys.stdout.write(json.dumps(result.to_json(), indent=1) + "\n")
    elif csv_out:
        from tinspect.analysis.imacs import comparison_table

        table = comparison_table(result, side_a.maps.true_class, confusion=confusion)
        write_table(table, sys.stdout, "csv", header=not no_header)
    else:
        _print_compare(result)
    _print_problems(store)


def _print_compare(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table as RichTable

    console = Console()
    what = "all classes" if result.cls is None else f"class {result.cls}"
    if result.filter is not None:
        what += f", filter {result.filter}"
    console.print(
        f"a = {result.labels[0]}, b = {result.labels[1]}, {what}: {len(result.samples)} samples "
        f"({result.sampling}), {result.grid}×{result.grid} grid, {len(result.clusters)} concepts",
        style="bold",
        highlight=False,
        markup=False,
    )
    view = RichTable(box=None, padding=(0, 0, 0, 2), pad_edge=False, header_style="bold underline")
    for column in ("cluster", "imbalance", "mean a", "mean b", "size", "coherence", "top cells"):
        view.add_column(column, no_wrap=True, justify="left" if column == "top cells" else "right")
    for c in result.clusters:
        cells: dict[tuple[int, int], int] = {}
        for _sample, row, col, _va, _vb in c.segments:
            cells[(row, col)] = cells.get((row, col), 0) + 1
        top = sorted(cells.items(), key=lambda item: -item[1])[:3]
        text = " ".join(f"({r},{q})×{m}" for (r, q), m in top)
        view.add_row(
            str(c.cluster), f"{c.imbalance:+.3f}", f"{c.mean_a:.3g}", f"{c.mean_b:.3g}",
            str(c.size), f"{c.coherence:.2f}", text,
        )  # fmt: skip
    console.print(view)


# --- check ------------------------------------------------------------------------------------
SEVERITY_STYLE = {"warning": "yellow", "error": "red", "critical": "bold red reverse"}


@app.command("check")
def check(
    logdir: LogdirArg,
    json_out: Annotated[
        bool, typer.Option("--json", help="A JSON list of findings on stdout.")
    ] = False,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 1 when a finding is at least this severe: warning, error, critical."
        ),
    ] = "critical",
) -> None:
    """Silent-bug checks on every model: what is wrong, why, and how to fix it."""
    from tinspect.analysis.diagnose import SEVERITIES, diagnose

    if fail_on not in SEVERITIES:
        raise _fail(
            f"--fail-on must be one of {', '.join(SEVERITIES)}. Received: {fail_on!r}",
            ExitCode.USAGE,
        )
    store = _open(logdir)
    findings = diagnose(store)
    if json_out:
        import json

        typer.echo(json.dumps([f.to_dict() for f in findings], indent=2))
    else:
        _print_findings(store, findings)
    _print_problems(store)
    threshold = SEVERITIES.index(fail_on)
    if any(f.level >= threshold for f in findings):
        raise typer.Exit(ExitCode.DATA)


#: Blanks at the end of a rendered line, before any closing style codes.
_TRAILING_BLANKS = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")

#: Width of the report when stdout is not a terminal and COLUMNS is not set.
PIPED_WIDTH = 100


def _report_width() -> int:
    """The terminal's width; COLUMNS when set; ``PIPED_WIDTH`` when piped (never below 40)."""
    import shutil

    return max(40, shutil.get_terminal_size((PIPED_WIDTH, 24)).columns)


def _print_findings(store: Any, findings: list[Any]) -> None:
    """Findings grouped by model, each with what was measured, why it matters and the fix.

    Every text sits in a column of a grid, so a wrapped line keeps its hanging indent at any
    width instead of falling back to column 0.
    """
    from rich.console import Console, Group
    from rich.table import Table
    from rich.text import Text

    console = Console(width=_report_width(), highlight=False)
    if not findings:
        console.print(f"no findings in {len(store.models)} models (the checks are heuristics)")
        return
    by_model: dict[str, list[Any]] = {}
    for finding in findings:
        by_model.setdefault(finding.model, []).append(finding)
    badge_width = max(len(s) for s in SEVERITY_STYLE) + 2
    for model, items in by_model.items():
        console.print(Text(f"{model}", style="bold underline"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column(no_wrap=True, width=badge_width)
        grid.add_column(ratio=1, overflow="fold")
        for f in items:
            head = Text()
            head.append(f.id, style="bold")
            head.append(f"  {f.uoa}: {f.title}")
            if f.epochs:
                head.append(f"  (epochs {_epoch_list(f.epochs)})", style="dim")
            details = Table.grid(padding=(0, 1))
            details.add_column(no_wrap=True, style="dim")
            details.add_column(ratio=1, overflow="fold")
            context = f.context_text()
            if context:
                details.add_row("measured", Text(context))
            details.add_row("why", Text(f.explanation, style="dim"))
            details.add_row("fix", Text(f.fix, style="green"))
            badge = Text(f" {f.severity} ", style=SEVERITY_STYLE.get(f.severity, ""))
            grid.add_row("", badge, Group(head, details))
        with console.capture() as captured:
            console.print(grid)
        # A grid pads every cell to its width; piped into a file that is trailing blanks.
        for line in captured.get().splitlines():
            typer.echo(_TRAILING_BLANKS.sub(r"\1", line), color=console.is_terminal)
    counts = {
        s: sum(1 for f in findings if f.severity == s) for s in ("critical", "error", "warning")
    }
    console.print(
        ", ".join(f"{n} {s}" for s, n in counts.items() if n) + " (the checks are heuristics)"
    )


def _epoch_list(epochs: Any) -> str:
    """``3–12`` for a run of epochs, ``1, 4, 9`` otherwise."""
    values = sorted(epochs)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    return ", ".join(map(str, values))


# --- rank -------------------------------------------------------------------------------------
MEASURE_HELP = (
    "skew, variance, min, max, kurtosis, zeros, saturation, normal_divergence, "
    "init_divergence, parent_divergence or alpha."
)


@app.command("rank")
def rank(
    logdir: LogdirArg,
    measure: Annotated[
        str,
        typer.Option(help=MEASURE_HELP),
    ] = "skew",
    epoch: Annotated[str, typer.Option(help="N, first or last.")] = "last",
    top: Annotated[int, typer.Option(min=1, help="How many units.")] = 20,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    no_header: Annotated[
        bool, typer.Option("--no-header", help="CSV without the header row.")
    ] = False,
) -> None:
    """The most abnormal units by an interestingness measure (normalized per variable type)."""
    from tinspect.analysis.interest import MEASURES
    from tinspect.analysis.interest import rank as rank_units
    from tinspect.query.table import Table, write_table

    if measure not in MEASURES:
        raise _fail(
            f"--measure must be one of {', '.join(MEASURES)}. Received: {measure!r}", ExitCode.USAGE
        )
    if epoch.strip().lower() not in ("last", "first") and not epoch.strip().isdigit():
        raise _fail(f"--epoch must be last, first or N. Received: {epoch!r}", ExitCode.USAGE)
    store = _open(logdir)
    scores = rank_units(store, measure, epoch=epoch, top=top)
    if not scores and store.damaged_checkpoints():
        _print_problems(store)  # nothing could be scored because nothing could be read
        raise _fail(f"no unit could be scored: {store.damaged_checkpoints()[0]}", ExitCode.DATA)
    columns = ["rank", "uoa", "kind", "type", "epoch", "measure", "raw", "score"]
    rows = [
        [i, s.path, s.kind, s.type_key, s.epoch, s.measure, s.raw, s.score]
        for i, s in enumerate(scores, start=1)
    ]
    table = Table.from_rows(columns, rows, {"measure": measure})
    if csv_out:
        write_table(table, sys.stdout, "csv", header=not no_header)
    else:
        from rich.console import Console
        from rich.table import Table as RichTable
        from rich.text import Text

        from tinspect.tui.palette import scale

        view = RichTable(
            title=f"most abnormal units by {measure} (heuristic, normalized per type)",
            title_justify="left",
            box=None,
            padding=(0, 0, 0, 2),
            pad_edge=False,
            header_style="bold underline",
        )
        for column in ("", "score", "unit", "kind", "type", measure):
            view.add_column(
                column, justify="right" if column in ("score", measure) else "left", no_wrap=True
            )
        for s in scores:
            raw = f"{s.raw:.4g}" if s.raw == s.raw else ""
            view.add_row(
                Text("██", style=scale(s.score)), f"{s.score:.2f}", s.path, s.kind, s.type_key, raw
            )
        Console().print(view)
    _print_problems(store)


# --- view and demo ----------------------------------------------------------------------------
@app.command("view")
def view(
    logdir: LogdirArg,
    refresh: Annotated[
        float, typer.Option(help="Seconds between checks for new data (0: off).")
    ] = 2.0,
) -> None:
    """Open LOGDIR in the interactive viewer (prints `ls` when stdout is not a terminal)."""
    if not sys.stdout.isatty():
        ls(logdir)
        return
    from tinspect.launch import run_viewer

    raise typer.Exit(run_viewer(logdir, refresh))


@app.command("demo")
def demo(
    logdir: Annotated[Path, typer.Argument(help="Where to write the demo logs.")] = Path(
        "logs/demo"
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per classifier.")] = 20,
    vae_epochs: Annotated[int, typer.Option(min=1, help="Epochs per auto-encoder.")] = 30,
    samples: Annotated[int, typer.Option(min=1, max=500, help="Recorded samples.")] = 500,
) -> None:
    """Train the demo experiments on scikit-learn's digits into LOGDIR."""
    if logdir.exists() and any(logdir.iterdir()):
        raise _fail(f"{logdir} is not empty; choose a new directory for the demo", ExitCode.USAGE)
    try:
        from tinspect.demo.train import DemoConfig, run_demo
    except ImportError as error:
        raise _fail(
            f"the demo needs the recording extras: pip install 'tinspect[demo]' ({error})",
            ExitCode.DATA,
        ) from None
    config = DemoConfig(epochs=epochs, vae_epochs=vae_epochs, max_samples=samples)
    run_demo(logdir, config, progress=_err)
    _err(f"tinspect: demo logs written to {logdir}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``tinspect LOGDIR`` is short for ``tinspect view LOGDIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in _COMMANDS:
        args.insert(0, "view")
    app(args=args, prog_name="tinspect")


if __name__ == "__main__":
    main()
