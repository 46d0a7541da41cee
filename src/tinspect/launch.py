"""The console entry point. ``tinspect LOGDIR`` opens the viewer without loading typer.

Typer and its command definitions take ~30 ms to import; the bare viewer command is the
one a user runs most and waits for, so it is recognized here and everything else goes to
``tinspect.cli``. The viewer-running code is shared with ``tinspect view``.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Sub-commands of ``tinspect.cli`` (anything else first is a logdir for ``view``).
#: Seconds the viewer's start may spend parsing models the header index does not know.
FIRST_SCREEN_SECONDS = 0.1

COMMANDS = frozenset({"view", "demo", "ls", "show", "export", "check", "rank", "diff", "compare"})


def bare_view(args: list[str]) -> tuple[Path, float] | None:
    """(logdir, refresh seconds) for ``[view] LOGDIR [--refresh S]``; None for the rest."""
    if args and args[0] == "view":
        args = args[1:]
    if not args or args[0].startswith("-") or args[0] in COMMANDS:
        return None
    rest = args[1:]
    refresh = 2.0
    try:
        if len(rest) == 2 and rest[0] == "--refresh":
            refresh = float(rest[1])
        elif len(rest) == 1 and rest[0].startswith("--refresh="):
            refresh = float(rest[0].split("=", 1)[1])
        elif rest:
            return None
    except ValueError:
        return None  # typer explains the bad value
    return (Path(args[0]), refresh) if refresh >= 0 else None


def run_viewer(logdir: Path, refresh: float) -> int:
    """Open the viewer on ``logdir``; the exit code (1 when there is nothing to show)."""
    from tinspect.store import Store

    if not logdir.is_dir():
        print(f"tinspect: {logdir} is not a directory", file=sys.stderr)
        return 1
    # The first screen needs only its first rows: models the header index does not know
    # are parsed for at most this long here; the viewer's loader reads the rest.
    store = Store(logdir, budget=FIRST_SCREEN_SECONDS)
    if not store.models and store.pending:
        store.refresh()  # nothing readable among the first: read all before giving up
    if not store.models:
        for item in store.problems:
            print(item, file=sys.stderr)
        print(f"tinspect: no models (model.json) under {logdir}", file=sys.stderr)
        return 1
    from tinspect.tui.app import TinspectApp

    TinspectApp(store, refresh_seconds=refresh).run()
    for item in store.problems:
        print(item, file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    view = bare_view(args)
    if view is not None and sys.stdout.isatty():
        raise SystemExit(run_viewer(*view))
    from tinspect.cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
