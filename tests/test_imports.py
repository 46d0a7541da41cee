"""The viewer side never imports Keras or a backend (TensorFlow, JAX, torch; ~6 s here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("tensorflow", "keras", "torch", "jax")


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
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'torch', 'jax'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
