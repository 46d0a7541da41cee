"""Reading checkpoints back in tests: plain h5py, no tinspect read-side code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from tinspect import format as fmt


def model_dir(logdir: Path) -> Path:
    (only,) = [p.parent for p in logdir.rglob(fmt.MODEL_JSON)]
    return only


def epochs(directory: Path) -> list[int]:
    found = (fmt.parse_checkpoint_name(p.name) for p in (directory / fmt.CHECKPOINTS_DIR).iterdir())
    return sorted(e for e in found if e is not None)


def read(path: Path) -> dict[str, Any]:
    """Every dataset as numpy, keyed by its HDF5 path, plus root attrs under ``"attrs"``."""
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        out["attrs"] = {k: f.attrs[k] for k in f.attrs}

        def visit(name: str, link: Any) -> None:  # every link: hard links share a dataset
            obj = f[name]
            if isinstance(obj, h5py.Dataset):
                out[name] = obj.asstr()[()] if obj.dtype.kind == "O" else obj[()]

        f.visititems_links(visit)
        out["layer_attrs"] = {k: dict(g.attrs) for k, g in f[fmt.LAYERS_GROUP].items()}
    # Activations stored once for two layers of other shapes: reshaped, as docs/format.md says.
    for layer, attrs in out["layer_attrs"].items():
        if fmt.ATTR_ACTIVATIONS_SHAPE in attrs:
            shape = tuple(json.loads(attrs[fmt.ATTR_ACTIVATIONS_SHAPE]))
            source = fmt.layer_path(attrs[fmt.ATTR_ACTIVATIONS_OF])
            out[f"{fmt.LAYERS_GROUP}/{layer}/{fmt.ACTIVATIONS}"] = out[
                f"{source}/{fmt.ACTIVATIONS}"
            ].reshape(shape)
            means = f"{source}/{fmt.MEAN_CLASS_ACTIVATIONS}"
            if means in out:
                out[f"{fmt.LAYERS_GROUP}/{layer}/{fmt.MEAN_CLASS_ACTIVATIONS}"] = out[
                    means
                ].reshape((-1, *shape[1:]))
    return out


def checkpoint(directory: Path, epoch: int) -> dict[str, Any]:
    return read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(epoch))


def metrics(directory: Path) -> list[dict[str, Any]]:
    lines = (directory / fmt.METRICS_JSONL).read_text().splitlines()
    return [json.loads(line) for line in lines]


def model_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / fmt.MODEL_JSON).read_text())


def summary_table(ckpt: dict[str, Any]) -> dict[str, dict[str, float]]:
    names = list(ckpt[f"{fmt.SUMMARY_GROUP}/{fmt.SUMMARY_NAMES}"])
    stats = ckpt[f"{fmt.SUMMARY_GROUP}/{fmt.SUMMARY_STATS}"]
    return {
        n: dict(zip(fmt.SUMMARY_COLUMNS, map(float, row), strict=True))
        for n, row in zip(names, stats, strict=True)
    }


def raw_float32_bytes(ckpt: dict[str, Any]) -> int:
    return sum(4 * v.size for k, v in ckpt.items() if isinstance(v, np.ndarray) and "/" in k)
