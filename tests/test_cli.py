"""The command line as a user runs it: exact stdout for pipes, one-line errors, exit codes."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tinspect import cli
from tinspect import format as fmt
from tinspect.query import Query, run, table_text
from tinspect.store import Store

from .conftest import FIXTURES

DIGITS = str(FIXTURES / "digits")


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, args)
    return result.exit_code, result.stdout, result.stderr


def test_ls_csv_has_one_row_per_model_with_last_metrics() -> None:
    code, out, err = invoke(["ls", DIGITS, "--csv"])
    assert code == cli.ExitCode.OK and err == ""
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == [
        "dense_baseline", "dense_skip", "conv", "vae_90_10", "vae_25_75", "vae_25_75_fixed"
    ]  # fmt: skip
    conv = rows[2]
    assert conv["parents"] == "dense_skip" and conv["experiment"] == "dense_baseline"
    assert conv["depth"] == "2" and conv["checkpoints"] == "4" and conv["epochs"] == "3"
    assert float(conv["val_accuracy"]) > 0 and rows[4]["val_accuracy"] == ""
    assert float(rows[4]["kl_loss"]) > 0


def test_ls_json_and_human() -> None:
    code, out, _ = invoke(["ls", DIGITS, "--json"])
    payload = json.loads(out)
    assert code == 0 and len(payload["rows"]) == 6 and payload["columns"][1] == "name"
    code, out, _ = invoke(["ls", DIGITS])
    assert code == 0 and "6 models in 2 experiments" in out and "└ dense_skip" in out


def test_ls_refuses_two_output_formats() -> None:
    code, _, err = invoke(["ls", DIGITS, "--csv", "--json"])
    assert code == cli.ExitCode.USAGE and "exclude each other" in err


def test_main_treats_a_path_as_view(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([DIGITS])
    assert exit_info.value.code in (0, None)
    assert "6 models" in capsys.readouterr().out


def test_show_model_and_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    code, out, _ = invoke(["show", DIGITS, "dense_skip"])
    assert code == 0
    assert "skip_add" in out and "skip from hidden_1" in out and "x·kernel + bias → relu" in out
    code, out, _ = invoke(["show", DIGITS, "vae_25_75/z_mean"])
    assert code == 0 and "activation relu" in out and "summaries by epoch" in out


def test_export_is_exactly_the_query_table() -> None:
    args = ["export", DIGITS, "vae_25_75/z_mean", "vae_25_75_fixed/z_mean", "--stat", "histogram",
            "--bins", "6", "--epoch", "all", "--classes", "1,7"]  # fmt: skip
    code, out, err = invoke(args)
    assert code == 0 and err == ""
    query = Query(
        ("vae_25_75/z_mean", "vae_25_75_fixed/z_mean"),
        step="histogram",
        bins=6,
        epochs="all",
        classes=(1, 7),
    )
    assert out == table_text(run(Store(FIXTURES / "digits"), query))
    assert out.splitlines()[0] == "uoa,epoch,bin_left,bin_right,count"


def test_export_metrics_defaults_to_every_epoch_and_sorts_with_sort() -> None:
    code, out, _ = invoke(["export", DIGITS, "conv", "--data", "metrics", "--no-header"])
    assert code == 0
    lines = out.splitlines()
    assert {line.split(",")[1] for line in lines} == {"1", "2", "3"}
    sorted_lines = subprocess.run(
        ["sort", "-t,", "-k4", "-g"], input=out, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    values = [float(line.split(",")[3]) for line in sorted_lines]
    assert values == sorted(values)


def test_export_json_weights_topk() -> None:
    code, out, _ = invoke(
        [
            "export",
            DIGITS,
            "conv/hidden/kernel",
            "-d",
            "weights",
            "-s",
            "topk",
            "-k",
            "3",
            "-f",
            "json",
        ]
    )
    payload = json.loads(out)
    assert code == 0 and [r[2] for r in payload["rows"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["export", DIGITS, "nope"], cli.ExitCode.DATA, "no model named 'nope'"),
        (
            ["export", DIGITS, "conv/conv_1", "--epoch", "99"],
            cli.ExitCode.DATA,
            "no checkpoint matches",
        ),
        (
            ["export", DIGITS, "conv/conv_1", "--stat", "fft"],
            cli.ExitCode.USAGE,
            "step must be one of",
        ),
        (
            ["export", DIGITS, "conv", "-d", "metrics", "-s", "histogram"],
            cli.ExitCode.USAGE,
            "does not apply",
        ),
        (
            ["export", DIGITS, "conv/conv_1", "--classes", "a,b"],
            cli.ExitCode.USAGE,
            "--classes takes integers",
        ),
        (
            ["export", DIGITS, "conv/conv_1", "--min", "0"],
            cli.ExitCode.USAGE,
            "--min and --max go together",
        ),
        (["export", DIGITS, "conv/conv_1", "--format", "xml"], cli.ExitCode.USAGE, "csv or json"),
        (["export", DIGITS, "conv/conv_1", "--bogus"], cli.ExitCode.USAGE, ""),
        (["show", DIGITS, "conv/nope"], cli.ExitCode.DATA, "has no layer 'nope'"),
        (["ls", "/nonexistent/logs"], cli.ExitCode.DATA, "is not a directory"),
    ],
)
def test_errors_are_one_line_with_documented_exit_codes(
    args: list[str], code: int, message: str
) -> None:
    exit_code, out, err = invoke(args)
    assert exit_code == code and out == ""
    assert message in err and "Traceback" not in err


def test_problems_go_to_stderr_and_data_still_comes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(DIGITS, logs)
    conv = next(logs.glob("conv-*"))
    (conv / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3)).write_bytes(b"garbage")
    (next(logs.glob("dense_skip-*")) / fmt.MODEL_JSON).write_text("{")
    code, out, err = invoke(["ls", str(logs), "--csv"])
    assert code == 0 and len(out.splitlines()) == 1 + 5
    assert "error: " in err and "model.json is not valid JSON" in err and "Traceback" not in err
    code, out, err = invoke(["export", str(logs), "conv/conv_1"])
    assert code == cli.ExitCode.DATA and "file damaged or truncated" in err
    code, out, err = invoke(["export", str(logs), "conv/conv_1", "--epoch", "2"])
    assert code == 0 and out.startswith("uoa,epoch,count")


def test_an_empty_directory_has_no_models(tmp_path: Path) -> None:
    code, _, err = invoke(["ls", str(tmp_path)])
    assert code == cli.ExitCode.DATA and "no models" in err


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    code, _, err = invoke(["demo", str(tmp_path)])
    assert code == cli.ExitCode.USAGE and "not empty" in err


def test_the_installed_command_pipes(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("tinspect")
    result = subprocess.run(
        [str(exe), "export", DIGITS, "dense_skip/hidden_1", "--stat", "unit_stats", "--no-header"],
        capture_output=True, text=True, timeout=60, env={"TINSPECT_CACHE_DIR": "off", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == ""
    assert len(result.stdout.splitlines()) == 64


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["logs"], ("logs", 2.0)),
        (["view", "logs"], ("logs", 2.0)),
        (["logs", "--refresh", "0"], ("logs", 0.0)),
        (["logs", "--refresh=0.5"], ("logs", 0.5)),
        (["ls", "logs"], None),
        (["logs", "--refresh", "x"], None),
        (["logs", "--other"], None),
        (["--help"], None),
        ([], None),
    ],
)
def test_the_bare_viewer_command_is_recognized_without_typer(
    args: list[str], expected: object
) -> None:
    from tinspect.launch import bare_view

    found = bare_view(args)
    assert (None if found is None else (str(found[0]), found[1])) == expected


def test_launch_does_not_import_typer_for_the_viewer_path() -> None:
    code = "import sys, tinspect.launch, tinspect.tui.app; print('typer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
