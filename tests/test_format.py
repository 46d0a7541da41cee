"""The names of the log format: round trips, temporary files, safe directory names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinspect import format as fmt


@given(st.integers(min_value=0, max_value=10**7))
def test_checkpoint_name_round_trip(epoch: int) -> None:
    name = fmt.checkpoint_name(epoch)
    assert fmt.parse_checkpoint_name(name) == epoch
    assert not fmt.is_temporary(name)


def test_checkpoint_names_sort_by_epoch_up_to_9999() -> None:
    names = [fmt.checkpoint_name(e) for e in (0, 2, 10, 100, 9999)]
    assert sorted(names) == names


def test_negative_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="Received: epoch=-1"):
        fmt.checkpoint_name(-1)


@pytest.mark.parametrize(
    "name",
    ["epoch-1.h5", "epoch-0001.h5.tmp", "epoch-0001.h5x", "xepoch-0001.h5", "epoch--001.h5", ""],
)
def test_other_names_are_not_checkpoints(name: str) -> None:
    assert fmt.parse_checkpoint_name(name) is None


@given(st.integers(min_value=0, max_value=10**6), st.text(min_size=1, max_size=12))
def test_temporary_names_are_never_checkpoints(epoch: int, token: str) -> None:
    tmp = fmt.temporary_name(fmt.checkpoint_name(epoch), token)
    assert fmt.is_temporary(tmp)
    assert fmt.parse_checkpoint_name(tmp) is None


@given(st.text(max_size=80), st.text(alphabet="0123456789abcdef-", min_size=8, max_size=36))
def test_model_dir_name_is_one_safe_component(name: str, model_id: str) -> None:
    dirname = fmt.model_dir_name(name, model_id)
    assert "/" not in dirname and "\\" not in dirname
    assert dirname not in ("", ".", "..")
    assert not dirname.startswith(".")  # never mistaken for a temporary file
    assert all(c.isalnum() or c in "-_." for c in dirname)


@given(st.text(min_size=0, max_size=30))
def test_h5_key_is_one_path_component(name: str) -> None:
    key = fmt.h5_key(name)
    assert "/" not in key and key not in ("", ".", "..")


def test_summary_columns_match_quantiles() -> None:
    assert fmt.SUMMARY_QUANTILE_COLUMNS == ("q01", "q05", "q25", "q50", "q75", "q95", "q99")
    assert len(set(fmt.SUMMARY_COLUMNS)) == len(fmt.SUMMARY_COLUMNS)


@pytest.mark.parametrize(("text", "major"), [("1.0", 1), ("2.13", 2), ("x.1", None), ("", None)])
def test_major_version(text: str, major: int | None) -> None:
    assert fmt.major_version(text) == major


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_json_object_from_encoded_members_equals_encoding_the_whole(data: dict) -> None:
    """model.json keeps its architecture encoded across checkpoints: the text must not change."""
    from tinspect.record.files import json_object_text, json_text

    members = {key: json_text(value) for key, value in data.items()}
    assert json_object_text(members) == json_text(data)


def test_layer_path_escapes_the_layer_name_only() -> None:
    assert fmt.layer_path("dense") == "layers/dense"
    assert fmt.layer_path("block/conv", fmt.ACTIVATIONS) == "layers/block|conv/activations"
    kernel = fmt.layer_path("d", fmt.WEIGHTS_GROUP, fmt.h5_key("a/kernel"))
    assert kernel == "layers/d/weights/a|kernel"
