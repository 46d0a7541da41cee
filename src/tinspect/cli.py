"""The ``tinspect`` command: ``tinspect LOGDIR`` and its sub-commands.

Data goes to stdout, messages to stderr; exit codes are ``ExitCode``. Nothing at import time
touches Keras or TensorFlow: ``demo`` imports them inside the command, so every read-side
command starts in a fraction of a second.
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import IntEnum
from pathlib import Path
from typing import Annotated

import typer

from tinspect import format as fmt

app = typer.Typer(
    name="tinspect",
    help="Record Keras experiments and debug them in a terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class ExitCode(IntEnum):
    """Documented exit codes of every command."""

    OK = 0
    #: The data asked for does not exist, or problems in the logs prevented the command.
    DATA = 1
    #: The command line itself is wrong (unknown option, bad value).
    USAGE = 2


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _summary_rows(logdir: Path) -> list[dict[str, object]]:
    """One row per model directory: a stop-gap listing until the store's ``ls`` exists."""
    rows: list[dict[str, object]] = []
    for path in sorted(logdir.rglob(fmt.MODEL_JSON)):
        model_dir = path.parent
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            header = data["header"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            _err(f"{path}: unreadable model.json ({type(error).__name__}); skipped")
            continue
        checkpoints = sorted(
            e
            for p in (model_dir / fmt.CHECKPOINTS_DIR).glob("*.h5")
            if (e := fmt.parse_checkpoint_name(p.name)) is not None
        )
        last: dict[str, object] = {}
        metrics = model_dir / fmt.METRICS_JSONL
        if metrics.exists():
            for line in metrics.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):  # a torn last line while training writes
                    last = json.loads(line)
        params = data.get("architecture", {}).get("params", {}).get("total")
        rows.append(
            {
                "name": header.get("name"),
                "id": str(header.get("id", ""))[:8],
                "parents": ",".join(p[:8] for p in header.get("parents", [])),
                "params": params,
                "checkpoints": len(checkpoints),
                "epochs": last.get(fmt.METRIC_EPOCH, 0),
                "loss": last.get("loss"),
                "val_loss": last.get("val_loss"),
            }
        )
    return rows


@app.command("view")
def view(
    logdir: Annotated[Path, typer.Argument(help="A logdir written by InspectCheckpoint.")],
) -> None:
    """Open LOGDIR (prints a summary of its models until the viewer lands)."""
    if not logdir.is_dir():
        _err(f"tinspect: {logdir} is not a directory")
        raise typer.Exit(ExitCode.DATA)
    rows = _summary_rows(logdir)
    if not rows:
        _err(f"tinspect: no models (no {fmt.MODEL_JSON}) under {logdir}")
        raise typer.Exit(ExitCode.DATA)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{logdir}: {len(rows)} models")
    for column in rows[0]:
        text = column in ("name", "id", "parents")
        table.add_column(column, justify="left" if text else "right", no_wrap=column == "name")
    for row in rows:
        table.add_row(
            *(
                "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)
                for v in row.values()
            )
        )
    Console().print(table)


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
        _err(f"tinspect: {logdir} is not empty; choose a new directory for the demo")
        raise typer.Exit(ExitCode.USAGE)
    try:
        from tinspect.demo.train import DemoConfig, run_demo
    except ImportError as error:
        _err(
            f"tinspect: the demo needs the recording extras: pip install 'tinspect[demo]' ({error})"
        )
        raise typer.Exit(ExitCode.DATA) from None
    config = DemoConfig(epochs=epochs, vae_epochs=vae_epochs, max_samples=samples)
    run_demo(logdir, config, progress=_err)
    _err(f"tinspect: demo logs written to {logdir}")


_COMMANDS = {"view", "demo"}


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``tinspect LOGDIR`` is short for ``tinspect view LOGDIR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-") and args[0] not in _COMMANDS:
        args.insert(0, "view")
    app(args=args, prog_name="tinspect")


if __name__ == "__main__":
    main()
