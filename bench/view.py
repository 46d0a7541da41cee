"""How long ``tinspect LOGDIR`` takes to put the first interactive L3 screen on a terminal.

Run it with ``python -m bench.view`` from the repository root (about half a minute, a minute
with the profile; about 250 MB of temporary disk, removed at the end).

What is timed is the real command, ``tinspect LOGDIR --refresh 0``, in a pseudo-terminal of
100 x 30 cells (``pexpect``), from the moment it is spawned until the experiment tree and the
footer are on screen. "On screen" is decided by a terminal emulator (``pyte``) fed with
everything the command writes, not by the first byte: Textual writes its terminal set-up
sequences long before the first frame, and a partial frame is not a usable screen. The
timestamp is taken when the chunk completing the screen is read, before the emulator parses
it, so the emulator's own speed does not count. Then ``q`` is sent and the command must exit
(status 0); the quit time is reported too (Textual waits for thread workers on exit, so a
slow quit means work still running behind the first screen).

Why a ratio: on this kind of machine (2 cores, shared) start-up times vary by tens of
percent from run to run, and seconds measured here would mean nothing elsewhere. The
reference is ``python -c "import textual.app"`` with the same interpreter: a viewer built on
Textual cannot start faster than Textual imports, so launch ÷ import says how much tinspect
adds on top of its floor (target ≤ 3). Each round runs every variant once, in an order that
rotates from round to round; the ratio is taken within a round and the median over rounds
is reported, with the absolute medians for scale. Round 0 only warms caches (``.pyc`` files,
shared libraries, the page cache) and is discarded.

Two logdirs are launched: 200 models x 11 checkpoints, generated with ``bench.read``'s
generators (L3 is drawn from headers, so the checkpoints are the small variant), and the
committed ``fixtures/digits`` (6 models): if both launch alike, the start-up is fixed cost,
not data. Three more references show the floors: an empty interpreter (``python -c pass``),
the import run in the same kind of PTY (what spawning costs), and a minimal Textual app (a
one-node tree and a footer) launched and detected exactly like the viewer: what any
Textual viewer pays before its own work.

When the target is missed (or with ``--profile always``) the start-up is taken apart in
fresh interpreters, so that nothing this bench imported is already loaded: the command's
stages timed one after the other (imports, ``Store``, the app, a headless run until the app
is ready and until its queues are idle), each import timed alone, ``python -X importtime``
of the command's imports summed by top-level package, and ``cProfile`` of ``Store`` + app +
headless run (exit included, so workers that outlive the first screen show up) once the
imports are done.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pexpect
import pyte

import tinspect
from bench.read import (
    EPOCHS,
    FIXTURES,
    N_MODELS,
    REPORT_ONLY,
    ROOT,
    SEED,
    SMALL_SAMPLES,
    Figure,
    Target,
    child_env,
    dense_template,
    generate_ls_logdir,
    headers,
    rotated,
    spread,
    tinspect_command,
    write_templates,
)
from bench.read import report as read_report

RESULTS = Path(__file__).resolve().parent / "results" / "view.json"
ROUNDS = 7  # measured rounds; round 0 (warm-up) comes on top
COLUMNS, LINES = 100, 30
#: Seconds a launch may take before the bench gives up on it (and prints the screen).
LAUNCH_TIMEOUT = 60.0
QUIT_TIMEOUT = 20.0
LAUNCH_TARGET = Target("≤ 3", None, 3.0)
#: Top entries listed by the profile (packages by import time, functions by own time).
TOP = 10


def pty_env() -> dict[str, str]:
    """The environment of the launched viewer: no disk cache, a terminal Textual knows."""
    return {**child_env(), "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(LINES)}


# --- the launch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Launch:
    """One launch of the viewer in a PTY, in seconds from the spawn."""

    first_output: float  # first byte: imports, Store and App() are done, the driver starts
    ready: float  # the tree and the footer are on the emulated screen
    quit: float  # from sending ``q`` to end of file
    exit_status: int | None
    output_bytes: int  # written until ready
    screen: list[str] = field(repr=False)


def screen_ready(screen: pyte.Screen, marker: str) -> bool:
    """The L3 screen is up: a model node (``● name``) in the tree and the footer's ``tools``.

    The model's name alone is not enough: the breadcrumbs above the tree show it too.
    """
    lines = screen.display
    footer = next((line for line in reversed(lines) if line.strip()), "")
    return "tools" in footer and any(marker in line for line in lines)


class Terminal:
    """A command in a pseudo-terminal with an emulated screen (pyte): what a user sees, and
    when. ``bench.scale`` drives it too."""

    def __init__(
        self, argv: Sequence[str], env: dict[str, str], columns: int, lines: int, timeout: float
    ) -> None:
        self.argv = list(argv)
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self.received = 0
        self.first: float | None = None  # when the first byte arrived
        self.start = self.arrived = time.perf_counter()  # arrived: the latest bytes
        self.deadline = self.start + timeout
        self.child = pexpect.spawn(
            argv[0], self.argv[1:], dimensions=(lines, columns), env=env, cwd=str(ROOT)
        )
        self.child.delaybeforesend = None  # pexpect sleeps 50 ms before every send by default

    def wait_for(self, done: Callable[[pyte.Screen], bool], what: str) -> float:
        """Read output until ``done(screen)``; the arrival time (perf_counter) of the bytes
        that made it true. A timeout or an exit first raises, with the screen."""
        while not done(self.screen):
            left = max(0.0, self.deadline - time.perf_counter())  # 0: TIMEOUT unless data waits
            try:
                data = self.child.read_nonblocking(1 << 16, timeout=left)
            except (pexpect.EOF, pexpect.TIMEOUT) as error:
                raise RuntimeError(
                    f"{type(error).__name__} before {what} of {self.argv}; screen:\n"
                    + "\n".join(self.screen.display)
                ) from None
            self.arrived = time.perf_counter()
            if self.first is None:
                self.first = self.arrived
            self.received += len(data)
            self._stream.feed(data)
        return self.arrived

    def quit(self) -> float:
        """Send ``q`` and wait for the end of file; the seconds that took."""
        sent = time.perf_counter()
        self.child.send("q")
        self.child.expect(pexpect.EOF, timeout=QUIT_TIMEOUT)
        ended = time.perf_counter()
        self.child.close()
        if self.child.exitstatus != 0:
            raise RuntimeError(
                f"{self.argv} exited with {self.child.exitstatus} / {self.child.signalstatus}"
            )
        return ended - sent

    def close(self) -> None:
        if self.child.isalive():
            self.child.close(force=True)


def launch(argv: Sequence[str], marker: str) -> Launch:
    """Spawn ``argv`` in a PTY, wait until ``screen_ready``, then send ``q`` and wait for EOF."""
    terminal = Terminal(argv, pty_env(), COLUMNS, LINES, LAUNCH_TIMEOUT)
    try:
        ready = terminal.wait_for(lambda screen: screen_ready(screen, marker), "the L3 screen")
        received = terminal.received
        quit_seconds = terminal.quit()
    finally:
        terminal.close()
    assert terminal.first is not None
    return Launch(
        terminal.first - terminal.start,
        ready - terminal.start,
        quit_seconds,
        terminal.child.exitstatus,
        received,
        [line.rstrip() for line in terminal.screen.display],
    )


#: The floor of any Textual viewer: a tree of one node and a footer, same terminal, same test.
MINIMAL_APP = """
from textual.app import App
from textual.binding import Binding
from textual.widgets import Footer, Tree


class Minimal(App):
    BINDINGS = [Binding("t", "bell", "tools"), Binding("q", "quit", "quit")]

    def compose(self):
        tree = Tree("experiments")
        tree.show_root = False
        tree.root.add_leaf("● minimal")
        tree.root.expand()
        yield tree
        yield Footer()


Minimal().run()
"""


def pty_command(command: Sequence[str]) -> float:
    """Wall seconds of ``command`` spawned in the same kind of PTY, until end of file."""
    start = time.perf_counter()
    child = pexpect.spawn(
        command[0], list(command[1:]), dimensions=(LINES, COLUMNS), env=pty_env(), cwd=str(ROOT)
    )
    try:
        child.expect(pexpect.EOF, timeout=LAUNCH_TIMEOUT)
        seconds = time.perf_counter() - start
        child.close()
    finally:
        if child.isalive():
            child.close(force=True)
    if child.exitstatus != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {child.exitstatus}")
    return seconds


def timed(command: Sequence[str]) -> float:
    """Wall seconds of ``command`` as a plain subprocess (no terminal), output discarded."""
    start = time.perf_counter()
    subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(),
        cwd=ROOT,
        check=True,
    )
    return time.perf_counter() - start


# --- the logdirs ------------------------------------------------------------------------------
def generate(workdir: Path) -> tuple[Path, str]:
    """The 200-model logdir of ``bench.read`` (small checkpoints); returns it and a root name."""
    templates = write_templates(
        workdir / "templates", functools.partial(dense_template, n_samples=SMALL_SAMPLES)
    )
    logdir = workdir / "logs"
    generate_ls_logdir(logdir, templates, SMALL_SAMPLES)
    first = headers(random.Random(SEED))[0]["name"]
    return logdir, first


def fixture_root_name() -> str:
    """A model of ``fixtures/digits`` shown at the top of the tree (a root, no parents)."""
    for path in sorted(FIXTURES.glob("*/model.json")):
        header = json.loads(path.read_text())["header"]
        if not header.get("parents"):
            return str(header["name"])
    raise RuntimeError(f"no root model in {FIXTURES}")


# --- the profile ------------------------------------------------------------------------------
#: Run with ``python -c`` so that the interpreter holds nothing but what the command imports.
STAGES_CHILD = """
import json, sys, time
from pathlib import Path

logdir, fixtures, top = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
marks = [("start", time.perf_counter())]
import tinspect.cli  # what the console script imports before parsing the command line
marks.append(("import tinspect.cli (typer, rich)", time.perf_counter()))
from tinspect.store import Store
marks.append(("import tinspect.store (h5py, numpy, networkx)", time.perf_counter()))
store = Store(logdir)
marks.append(("Store(logdir)", time.perf_counter()))
from tinspect.tui.app import TinspectApp
marks.append(("import tinspect.tui.app (textual)", time.perf_counter()))
app = TinspectApp(store, refresh_seconds=0)
marks.append(("TinspectApp(store)", time.perf_counter()))
import asyncio, cProfile, pstats  # only now: asyncio would count as free for textual


async def first_frame(app):
    # run_test yields once the app is ready (composed, mounted, first refresh); pause() then
    # waits until its message queues are empty. Leaving the block (not timed) waits for
    # the app's workers.
    async with app.run_test(size=(100, 30)) as pilot:
        ready = time.perf_counter()
        await pilot.pause()
        return ready, time.perf_counter()


ready, idle = asyncio.run(first_frame(app))
marks.append(("headless: compose, mount, until ready", ready))
marks.append(("headless: ready until idle (pilot.pause)", idle))
stages = {b[0]: b[1] - a[1] for a, b in zip(marks, marks[1:])}


def warm(path):
    start = time.perf_counter()
    store = Store(path)
    opened = time.perf_counter()
    app = TinspectApp(store, refresh_seconds=0)
    begun = time.perf_counter()
    ready, idle = asyncio.run(first_frame(app))
    return {
        "models": len(store.models),
        "store": opened - start,
        "app": begun - opened,
        "ready": ready - begun,
        "idle": idle - ready,
    }


warm_runs = {"logdir": warm(logdir), "fixtures": warm(fixtures)}
profile = cProfile.Profile()
profile.enable()
warm(logdir)
profile.disable()
rows = [
    {
        "function": f"{'/'.join(Path(file).parts[-2:])}:{line}({name})",
        "path": file,
        "calls": nc,
        "own": tt,
        "cumulative": ct,
    }
    for (file, line, name), (_cc, nc, tt, ct, _callers) in pstats.Stats(profile).stats.items()
]
mine = [r for r in rows if "/tinspect/" in r["path"]]
print(json.dumps({
    "stages": stages,
    "warm": warm_runs,
    "cprofile_total": sum(r["own"] for r in rows),
    "cprofile_tinspect_own": sum(r["own"] for r in mine),
    "cprofile_top_own": sorted(rows, key=lambda r: -r["own"])[:top],
    "cprofile_tinspect_cumulative": sorted(mine, key=lambda r: -r["cumulative"])[:top],
}))
"""

IMPORTS = "import tinspect.cli; import tinspect.store; import tinspect.tui.app"
IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def importtime(command_imports: str = IMPORTS) -> dict[str, Any]:
    """``python -X importtime``: own microseconds summed by top-level package, and total.

    The importtime hook itself slows imports down, so its figures are shares, not times.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", command_imports],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        check=True,
    )
    by_package: dict[str, int] = defaultdict(int)
    modules = 0
    biggest: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        match = IMPORTTIME.match(line)
        if not match:
            continue
        own, _cumulative, _indent, name = match.groups()
        by_package[name.split(".")[0]] += int(own)
        biggest.append((int(own), name))
        modules += 1
    total = sum(by_package.values())
    packages = sorted(by_package.items(), key=lambda item: -item[1])
    return {
        "imports": command_imports,
        "modules": modules,
        "total_us": total,
        "by_package_us": dict(packages),
        "top_packages": [
            {"package": name, "us": us, "share": us / total} for name, us in packages[:TOP]
        ],
        "top_modules": [
            {"module": name, "us": us} for us, name in sorted(biggest, reverse=True)[:TOP]
        ],
    }


def profile(logdir: Path) -> dict[str, Any]:
    """Stages, import shares and cProfile of the start-up, each in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", STAGES_CHILD, str(logdir), str(FIXTURES), str(TOP)],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"profile child failed: {done.stderr[-800:]}")
    stages = json.loads(done.stdout.strip().splitlines()[-1])
    return {**stages, "importtime": importtime(), "import_seconds": import_seconds()}


#: Imports timed alone, without the importtime hook; they overlap (h5py imports numpy).
IMPORT_ALONE = {
    "everything the command imports": IMPORTS,
    "textual.app": "import textual.app",
    "numpy": "import numpy",
    "h5py (with numpy)": "import h5py",
    "networkx": "import networkx",
    "plotext": "import plotext",
    "typer (with rich)": "import typer",
}
IMPORT_ROUNDS = 5


def import_seconds() -> dict[str, float]:
    """Median wall seconds of each import in ``IMPORT_ALONE`` minus an empty interpreter.

    ``-X importtime`` gives shares but slows every import down; these are the real costs.
    """
    codes = {"(empty interpreter)": "pass", **IMPORT_ALONE}
    seconds: dict[str, list[float]] = {k: [] for k in codes}
    for index in range(IMPORT_ROUNDS + 1):
        for key in rotated(list(codes), index):
            value = timed([sys.executable, "-c", codes[key]])
            if index:
                seconds[key].append(value)
    empty = statistics.median(seconds.pop("(empty interpreter)"))
    return {k: statistics.median(v) - empty for k, v in seconds.items()}


# --- the run ----------------------------------------------------------------------------------
def bench(workdir: Path, rounds: int) -> dict[str, Any]:
    """Alternating rounds of the launches and their references; all seconds, per variant."""
    started = time.perf_counter()
    logdir, marker_200 = generate(workdir)
    generated = time.perf_counter() - started
    size = sum(p.stat().st_size for p in logdir.rglob("*") if p.is_file())
    print(
        f"[view] generated {N_MODELS} models x {EPOCHS + 1} checkpoints "
        f"({size / 2**20:.0f} MiB) in {generated:.1f} s",
        flush=True,
    )
    command = tinspect_command()
    import_textual = [sys.executable, "-c", "import textual.app"]
    screens: dict[str, list[str]] = {}
    launches: dict[str, list[Launch]] = {"launch_200": [], "launch_fixtures": [], "minimal": []}

    def launcher(key: str, argv: Sequence[str], marker: str) -> Callable[[], float]:
        def run() -> float:
            one = launch(argv, marker)
            launches[key].append(one)
            screens.setdefault(key, one.screen)
            return one.ready

        return run

    variants: dict[str, Callable[[], float]] = {
        "import_textual": lambda: timed(import_textual),
        "launch_200": launcher(
            "launch_200", [*command, str(logdir), "--refresh", "0"], f"● {marker_200}"
        ),
        "launch_fixtures": launcher(
            "launch_fixtures",
            [*command, str(FIXTURES), "--refresh", "0"],
            f"● {fixture_root_name()}",
        ),
        "minimal": launcher("minimal", [sys.executable, "-c", MINIMAL_APP], "● minimal"),
        "import_textual_pty": lambda: pty_command(import_textual),
        "python": lambda: timed([sys.executable, "-c", "pass"]),
    }
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    for index in range(rounds + 1):
        for key in rotated(list(variants), index):
            value = variants[key]()
            if index:
                seconds[key].append(value)
        if not index:
            for runs in launches.values():
                runs.clear()
        print(
            f"[view] round {index}: "
            + (
                ", ".join(f"{k} {v[-1]:.3f} s" for k, v in seconds.items())
                if index
                else "warm-up done"
            ),
            flush=True,
        )
    return {
        "command": [*command, "LOGDIR", "--refresh", "0"],
        "terminal": {"columns": COLUMNS, "lines": LINES, "TERM": "xterm-256color"},
        "logdir_bytes": size,
        "generate_seconds": generated,
        "rounds": rounds,
        "seconds": seconds,
        "launches": {
            key: [{k: v for k, v in asdict(one).items() if k != "screen"} for one in runs]
            for key, runs in launches.items()
        },
        "first_screen": screens,
        "_logdir": logdir,
    }


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """Per-round ratios: both variants of a pair ran in the same round, minutes apart at most."""
    return [x / y for x, y in zip(a, b, strict=True)]


#: The ratios kept in the JSON with their spread: (numerator, denominator) variants.
RATIOS = {
    "launch_200 / import_textual": ("launch_200", "import_textual"),
    "launch_fixtures / import_textual": ("launch_fixtures", "import_textual"),
    "launch_200 / launch_fixtures": ("launch_200", "launch_fixtures"),
    "minimal / import_textual": ("minimal", "import_textual"),
    "launch_200 / minimal": ("launch_200", "minimal"),
    "import_textual_pty / import_textual": ("import_textual_pty", "import_textual"),
    "import_textual / python": ("import_textual", "python"),
}


def ratio_spreads(seconds: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Median, min and max over rounds of every ratio in ``RATIOS``."""
    return {name: asdict(spread(ratios(seconds[a], seconds[b]))) for name, (a, b) in RATIOS.items()}


def figures_of(results: dict[str, Any]) -> list[Figure]:
    """The table: the target ratio first, the absolute medians after it for scale."""
    s = results["seconds"]
    med = {k: statistics.median(v) for k, v in s.items()}
    first = {
        k: statistics.median(one["first_output"] for one in runs)
        for k, runs in results["launches"].items()
    }
    quit_ = {
        k: statistics.median(one["quit"] for one in runs) for k, runs in results["launches"].items()
    }
    n = results["rounds"]
    section = f"launch to first L3 screen ({n} rounds)"
    fig = [
        Figure(
            section,
            f"{N_MODELS} models: launch ÷ `import textual.app`",
            statistics.median(ratios(s["launch_200"], s["import_textual"])),
            LAUNCH_TARGET,
            f"median of {n} pairs; {med['launch_200']:.2f} s vs {med['import_textual']:.2f} s",
        ),
        Figure(
            section,
            "fixtures/digits: launch ÷ `import textual.app`",
            statistics.median(ratios(s["launch_fixtures"], s["import_textual"])),
            REPORT_ONLY,
            f"6 models; {med['launch_fixtures']:.2f} s",
        ),
        Figure(
            section,
            f"launch {N_MODELS} models ÷ launch fixtures",
            statistics.median(ratios(s["launch_200"], s["launch_fixtures"])),
            REPORT_ONLY,
            "≈ 1 means start-up is fixed cost, not data",
        ),
        Figure(
            section,
            "minimal Textual app: first screen ÷ import",
            statistics.median(ratios(s["minimal"], s["import_textual"])),
            REPORT_ONLY,
            "Tree of 1 node + Footer: the floor of any Textual viewer",
        ),
        Figure(
            section,
            f"{N_MODELS} models: launch ÷ minimal Textual app",
            statistics.median(ratios(s["launch_200"], s["minimal"])),
            REPORT_ONLY,
            "what tinspect adds to Textual's own start-up",
        ),
        Figure(
            section,
            "import in a PTY ÷ import as a subprocess",
            statistics.median(ratios(s["import_textual_pty"], s["import_textual"])),
            REPORT_ONLY,
            "what spawning in a pseudo-terminal adds",
        ),
    ]
    absolute = "absolute medians (seconds, for scale only)"
    fig += [
        Figure(
            absolute,
            f"launch {N_MODELS} models: first L3 screen",
            med["launch_200"],
            REPORT_ONLY,
            f"first byte at {first['launch_200']:.2f} s; quit {quit_['launch_200']:.2f} s",
        ),
        Figure(
            absolute,
            "launch fixtures/digits: first L3 screen",
            med["launch_fixtures"],
            REPORT_ONLY,
            f"first byte at {first['launch_fixtures']:.2f} s; "
            f"quit {quit_['launch_fixtures']:.2f} s",
        ),
        Figure(
            absolute,
            "python -c 'import textual.app'",
            med["import_textual"],
            REPORT_ONLY,
            f"in a PTY {med['import_textual_pty']:.2f} s",
        ),
        Figure(
            absolute,
            "minimal Textual app: first screen",
            med["minimal"],
            REPORT_ONLY,
            f"first byte at {first['minimal']:.2f} s; quit {quit_['minimal']:.2f} s",
        ),
        Figure(absolute, "python -c pass", med["python"], REPORT_ONLY, "the interpreter alone"),
    ]
    return fig


def profile_figures(prof: dict[str, Any]) -> list[Figure]:
    """Where the start-up goes: stages, warm repeats, import shares, hottest functions."""
    section = "profile: stages of the start-up, one fresh interpreter (seconds)"
    total = sum(prof["stages"].values())
    fig = [
        Figure(section, name, seconds, REPORT_ONLY, f"{seconds / total:.0%} of {total:.2f} s")
        for name, seconds in prof["stages"].items()
    ]
    warm = prof["warm"]
    section = "profile: the same once imported, 200 models vs fixtures (seconds)"
    for stage, label in (
        ("store", "Store(logdir)"),
        ("app", "TinspectApp(store)"),
        ("ready", "headless: until ready"),
        ("idle", "headless: ready until idle"),
    ):
        fig.append(
            Figure(
                section,
                f"{label}, {warm['logdir']['models']} models",
                warm["logdir"][stage],
                REPORT_ONLY,
                f"fixtures ({warm['fixtures']['models']} models): {warm['fixtures'][stage]:.3f} s",
            )
        )
    section = (
        f"profile: imports alone, wall time minus `python -c pass` (median of {IMPORT_ROUNDS})"
    )
    fig += [
        Figure(section, name, seconds, REPORT_ONLY, "")
        for name, seconds in prof["import_seconds"].items()
    ]
    it = prof["importtime"]
    section = (
        f"profile: -X importtime of the command's {it['modules']} modules, own time by "
        "top-level package (share)"
    )
    fig += [
        Figure(section, row["package"], row["share"], REPORT_ONLY, f"{row['us'] / 1e3:.0f} ms")
        for row in it["top_packages"]
    ]
    section = "profile: cProfile of Store + App + headless run and exit, once imported (s)"
    fig.append(
        Figure(
            section,
            "all functions, own time (idle epoll waits included)",
            prof["cprofile_total"],
            REPORT_ONLY,
            f"of which tinspect's own code {prof['cprofile_tinspect_own']:.3f} s",
        )
    )
    fig += [
        Figure(
            section,
            f"own: {row['function']}"[:64],
            row["own"],
            REPORT_ONLY,
            f"{row['calls']} calls, cumulative {row['cumulative']:.3f} s",
        )
        for row in prof["cprofile_top_own"]
    ]
    fig += [
        Figure(
            section,
            f"cumulative: {row['function']}"[:64],
            row["cumulative"],
            REPORT_ONLY,
            f"{row['calls']} calls, own {row['own']:.3f} s",
        )
        for row in prof["cprofile_tinspect_cumulative"]
    ]
    return fig


# --- report ---------------------------------------------------------------------------------
def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}"


def report(figures: Sequence[Figure], total: float) -> str:
    """The plain-text table printed at the end of the run."""
    return read_report(
        figures,
        total,
        title="tinspect view bench: launch of the viewer against `import textual.app`, same run",
        target_width=10,
        value=_value,
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.view",
        description="Start-up of the viewer (first L3 screen) against importing Textual.",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="take the start-up apart (auto: when the target is missed)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tinspect-bench-view-") as tmp:
        results = bench(Path(tmp), args.rounds)
        logdir = results.pop("_logdir")
        results["ratios"] = ratio_spreads(results["seconds"])
        figures = figures_of(results)
        missed = figures[0].verdict != "ok"
        if args.profile == "always" or (args.profile == "auto" and missed):
            print("[view] profiling the start-up", flush=True)
            results["profile"] = profile(logdir)
            figures += profile_figures(results["profile"])
    total = time.perf_counter() - started
    out = {
        "figures": [
            {**asdict(f), "target": f.target.text, "lo": f.target.lo, "hi": f.target.hi}
            for f in figures
        ],
        "view": results,
        "environment": {
            "python": platform.python_version(),
            "textual": version("textual"),
            "pyte": version("pyte"),
            "pexpect": pexpect.__version__,
            "tinspect": tinspect.__version__,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
        },
        "total_seconds": total,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print()
    print(report(figures, total))
    print(f"Results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
