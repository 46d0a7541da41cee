"""The committed fixtures are complete, consistent demo logs (what read-side tests rely on)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinspect import format as fmt
from tinspect.summary import summarize

from .checkpoint_io import checkpoint, epochs, metrics, model_json, summary_table
from .conftest import FIXTURES

DIGITS = FIXTURES / "digits"
MODELS = sorted(p.parent for p in DIGITS.glob(f"*/{fmt.MODEL_JSON}"))


def by_name() -> dict[str, dict]:
    return {model_json(d)["header"]["name"]: model_json(d) for d in MODELS}


def test_six_models_in_two_trees() -> None:
    infos = by_name()
    assert set(infos) == {
        "dense_baseline",
        "dense_skip",
        "conv",
        "vae_90_10",
        "vae_25_75",
        "vae_25_75_fixed",
    }
    ids = {name: info["header"]["id"] for name, info in infos.items()}
    parents = {name: info["header"]["parents"] for name, info in infos.items()}
    assert parents["dense_baseline"] == [] and parents["vae_90_10"] == []
    assert parents["dense_skip"] == [ids["dense_baseline"]]
    assert parents["conv"] == [ids["dense_skip"]]
    assert parents["vae_25_75"] == [ids["vae_90_10"]]
    assert parents["vae_25_75_fixed"] == [ids["vae_25_75"]]


@pytest.mark.parametrize("directory", MODELS, ids=lambda d: d.name)
def test_every_checkpoint_is_complete_and_self_consistent(directory) -> None:
    info = model_json(directory)
    found = epochs(directory)
    assert found == list(range(info["status"]["epochs_completed"] + 1))
    assert [m["epoch"] for m in metrics(directory)] == found[1:]
    recorded = info["recording"]["layers"]
    for epoch in found:
        ckpt = checkpoint(directory, epoch)
        assert ckpt["attrs"][fmt.ATTR_EPOCH] == epoch
        assert ckpt["attrs"][fmt.ATTR_MODEL_ID] == info["header"]["id"]
        n = ckpt["attrs"][fmt.ATTR_N_SAMPLES]
        assert ckpt["data_samples/x"].shape[0] == n == 48
        table = summary_table(ckpt)
        for layer in recorded:
            act = ckpt[f"layers/{layer}/activations"]
            assert act.shape[0] == n and act.dtype == np.float16
            assert table[f"{layer}/activations"] == pytest.approx(
                summarize(act).as_dict(), nan_ok=True
            )
        if epoch:
            logged = metrics(directory)[epoch - 1]
            stored = json.loads(ckpt["attrs"][fmt.ATTR_METRICS])
            assert stored == {k: v for k, v in logged.items() if k in stored}


def test_the_relu_vae_is_one_sided_and_the_fix_is_not() -> None:
    """The demo's planted bug is visible in the recorded data (use case 3)."""
    dirs = {model_json(d)["header"]["name"]: d for d in MODELS}
    buggy = checkpoint(dirs["vae_25_75"], 4)["layers/z_mean/activations"]
    fixed = checkpoint(dirs["vae_25_75_fixed"], 4)["layers/z_mean/activations"]
    assert buggy.min() >= 0
    assert fixed.min() < 0
