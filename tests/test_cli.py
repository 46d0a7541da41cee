"""The command line as a user runs it (until the viewer lands: the summary view)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinspect import cli

from .conftest import FIXTURES


def run(args: list[str]) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(cli.app, args)
    return result.exit_code, result.stdout, result.stderr


def test_view_summarizes_the_fixture_models() -> None:
    code, out, _ = run(["view", str(FIXTURES / "digits")])
    assert code == cli.ExitCode.OK
    for name in ("dense_base", "conv", "vae_25_75"):
        assert name in out
    assert "6 models" in out


def test_main_treats_a_path_as_view(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(FIXTURES / "digits")])
    assert exit_info.value.code in (0, None)
    assert "6 models" in capsys.readouterr().out


def test_view_of_a_missing_or_empty_directory(tmp_path: Path) -> None:
    code, _, err = run(["view", str(tmp_path / "nope")])
    assert code == cli.ExitCode.DATA and "is not a directory" in err
    code, _, err = run(["view", str(tmp_path)])
    assert code == cli.ExitCode.DATA and "no models" in err


def test_view_skips_a_broken_model_json_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text("{not json")
    code, _, err = run(["view", str(tmp_path)])
    assert code == cli.ExitCode.DATA
    assert "unreadable model.json" in err and "Traceback" not in err


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    code, _, err = run(["demo", str(tmp_path)])
    assert code == cli.ExitCode.USAGE and "not empty" in err


def test_unknown_option_is_a_usage_error() -> None:
    code, _, _ = run(["view", "--bogus"])
    assert code == cli.ExitCode.USAGE
