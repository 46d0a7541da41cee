"""numpy is imported on first use: ``ls`` and the viewer's modules never pay for it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tinspect.lazy import LazyModule


def run_python(code: str, cwd: Path | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_viewer_the_store_and_the_cli_does_not_import_numpy() -> None:
    got = run_python(
        """
        import json, sys
        import tinspect.cli, tinspect.store, tinspect.query, tinspect.analysis.diagnose
        import tinspect.tui.app, tinspect.tui.widgets.card, tinspect.tui.widgets.views
        print(json.dumps({"numpy": "numpy" in sys.modules, "h5py": "h5py" in sys.modules}))
        """
    )
    assert got == {"numpy": False, "h5py": False}


def test_ls_reads_headers_without_numpy(tmp_path: Path) -> None:
    """Every ``ls`` format: the rows come from JSON headers, numpy is never loaded."""
    got = run_python(
        f"""
        import contextlib, io, json, os, sys
        os.environ["TINSPECT_CACHE_DIR"] = {str(tmp_path / "cache")!r}
        from tinspect.cli import main
        out = {{}}
        for fmt in ("--csv", "--jsonl", "--json", "table"):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                try:
                    main(["ls", "fixtures/digits", *([fmt] if fmt != "table" else [])])
                except SystemExit:
                    pass
            out[fmt] = len(buffer.getvalue().splitlines())
        out["numpy"] = "numpy" in sys.modules
        print(json.dumps(out))
        """,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert got.pop("numpy") is False
    assert got == {"--csv": 7, "--jsonl": 6, "--json": 1, "table": 8}  # header + 6 models


def test_the_stand_in_behaves_as_the_module() -> None:
    import numpy

    lazy = LazyModule("numpy")
    assert lazy.float32 is numpy.float32
    assert isinstance(numpy.zeros(2), lazy.ndarray)
    assert lazy.asarray([1, 2]).sum() == 3
    assert lazy.linalg is numpy.linalg
    assert "ndarray" in vars(lazy)  # copied: later lookups are plain attribute reads
    try:
        lazy.no_such_function  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("a missing attribute must raise AttributeError")
