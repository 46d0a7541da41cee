"""Headers: ids, parents, inheritance and the errors a training script sees."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinspect


def test_make_header_defaults() -> None:
    header = tinspect.make_header("dense", batch_size=32)
    assert uuid.UUID(header["id"]).hex == header["id"]
    assert header["name"] == header["label"] == "dense"
    assert header["parents"] == []
    assert header["hyperparameters"] == {"batch_size": 32}
    assert header["created"].endswith("+00:00")
    json.dumps(header)


def test_parents_as_headers_ids_or_single_values() -> None:
    a, b = tinspect.make_header("a"), tinspect.make_header("b")
    child = tinspect.make_header("c", parents=[a, b["id"], a])
    assert child["parents"] == [a["id"], b["id"]]
    assert tinspect.make_header("d", parents=a)["parents"] == [a["id"]]
    assert tinspect.make_header("e", parents=b["id"])["parents"] == [b["id"]]


def test_branch_inherits_and_overrides_hyperparameters() -> None:
    parent = tinspect.make_header("vae", kl_weight=0.1, latent=4)
    child = tinspect.branch(parent, "vae_kl", kl_weight=0.75, label="more KL")
    assert child["parents"] == [parent["id"]]
    assert child["hyperparameters"] == {"kl_weight": 0.75, "latent": 4}
    assert child["label"] == "more KL" and child["id"] != parent["id"]
    assert tinspect.branch(parent["id"], "x")["hyperparameters"] == {}


def test_fixed_id() -> None:
    assert tinspect.make_header("m", id="abc123")["id"] == "abc123"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"name": 3}, ValueError, "Received: name=3"),
        ({"name": "m", "label": 5}, TypeError, "Received: label=5"),
        ({"name": "m", "parents": [3]}, TypeError, "Received: parent=3"),
        ({"name": "m", "parents": [{"name": "x"}]}, ValueError, "non-empty string 'id'"),
        ({"name": "m", "id": "a/b"}, ValueError, "without '/'"),
        ({"name": "m", "id": "p", "parents": ["p"]}, ValueError, "own parent"),
        ({"name": "m", "fn": print}, TypeError, "hyperparameter 'fn' must be JSON-serializable"),
    ],
)
def test_bad_headers_are_refused_with_what_was_received(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        tinspect.make_header(**kwargs)  # type: ignore[arg-type]


@given(st.text(min_size=1).filter(lambda s: s.strip()), st.dictionaries(st.text(), st.integers()))
def test_any_name_and_json_hyperparameters_round_trip(name: str, hp: dict[str, int]) -> None:
    header = tinspect.make_header(name, parents=(), **{f"k_{k}": v for k, v in hp.items()})
    assert json.loads(json.dumps(header)) == header
