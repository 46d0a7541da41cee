"""The viewer side never imports a deep-learning framework (TensorFlow or Keras alone take
~6 s to import here). Each check runs in a fresh interpreter, where ``sys.modules`` says what
was really imported; the import-linter contracts in pyproject.toml say the same of the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("tensorflow", "keras", "torch", "jax")
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "digits"


@pytest.mark.parametrize(
    "module",
    ["tinspect", "tinspect.cli", "tinspect.format", "tinspect.summary", "tinspect.record.header"],
)
def test_read_side_modules_do_not_import_keras(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_cli_help_and_view_do_not_import_keras(tmp_path: object) -> None:
    code = (
        "import sys\n"
        "from tinspect import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


VIEWER = """
import asyncio, sys
from tinspect.store import Store
from tinspect.tui.app import TinspectApp

async def main():
    app = TinspectApp(Store(sys.argv[1]), refresh_seconds=0)
    async with app.run_test(size=(100, 30)) as pilot:
        for key in ("enter", "enter", "down", "enter", "t", "escape", "i", "escape"):
            await pilot.press(key)
            await pilot.pause()
        await app.workers.wait_for_complete()
        shown = len(app.query("*"))
    print(shown)
    print(sorted({m.split(".")[0] for m in sys.modules} & HEAVY))

HEAVY = set(sys.argv[2].split(","))
asyncio.run(main())
"""


def test_the_real_viewer_on_the_fixtures_imports_no_framework() -> None:
    """The App itself, on real logs, walked down to a layer with its tools: no framework."""
    out = subprocess.run(
        [sys.executable, "-c", VIEWER, str(FIXTURES), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    shown, heavy = out.stdout.strip().splitlines()[-2:]
    assert int(shown) > 10  # the viewer really drew its widgets
    assert heavy == "[]"
