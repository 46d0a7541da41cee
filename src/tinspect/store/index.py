"""The header index: what L3 and ``ls`` need of every model, cached outside the logdir.

Opening a logdir of thousands of models used to parse every ``model.json`` and
``metrics.jsonl`` (~0.6 ms a model). The index keeps, per model directory, the identities
(size, mtime) of those two files and the checkpoints directory's mtime, with the model's
header and ``Headline``. Reopening checks each identity with one ``stat`` and trusts an
entry only when all of them are unchanged; anything else is parsed as before. The full
files are read when something needs them (a model's layers, its metric rows).

Trust is earned, never assumed:

* The file lives in the cache directory (``$TINSPECT_CACHE_DIR`` or the user cache dir),
  never inside a logdir; the viewer stays read-only on the logs.
* It is JSON (nothing in it is evaluated), names its version and the logdir it describes,
  and carries a SHA-256 of its entries; a file that does not parse, has another version,
  describes another directory or fails its digest is ignored as a whole, a malformed
  entry one by one, and the index is rewritten.
* An entry is used only when the identities it holds equal the files' (``stat``); else
  that model is parsed as without an index.
* An identity taken within ``RACY_NS`` of the file's mtime is not stored: a change in the
  same timestamp tick would otherwise be invisible (git's "racy" index entries).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from tinspect import format as fmt
from tinspect.store.h5 import FileIdentity
from tinspect.store.model import RACY_NS, Headline, ModelLogs

#: Bump when an entry's meaning changes; an index of another version is ignored.
INDEX_VERSION = 2
INDEX_DIR = "index"


@dataclass(frozen=True)
class Entry:
    """One model directory as indexed: enough to rebuild its ``ModelLogs`` without parsing."""

    json_identity: FileIdentity
    metrics_identity: FileIdentity | None
    metrics_offset: int
    metrics_lines: int
    checkpoints_mtime: int | None
    checkpoints: dict[int, str]  # epoch -> file name
    header: dict[str, Any]
    headline: Headline

    def model(self, directory: Path, root: Path) -> ModelLogs:
        """The model this entry describes, its files unread (``headline`` answers L3)."""
        h = self.header
        model = ModelLogs(
            directory,
            root,
            id=h["id"],
            name=h["name"],
            label=h["label"],
            parents=tuple(h["parents"]),
            created=h["created"],
            hyperparameters=h["hyperparameters"],
            checkpoint_names=dict(sorted(self.checkpoints.items())),
            headline=self.headline,
            _info=None,
            _layers=None,
            _metrics=None,
        )
        model._json_identity = self.json_identity
        model._metrics_identity = self.metrics_identity
        model._metrics_offset = self.metrics_offset
        model._metrics_lines = self.metrics_lines
        model._checkpoints_mtime = self.checkpoints_mtime
        return model


def entry_of(model: ModelLogs) -> Entry | None:
    """The entry for ``model`` (None when its identities are too fresh to be trusted)."""
    identity = model._json_identity
    if identity is None or time.time_ns() - identity.mtime_ns <= RACY_NS:
        return None
    return Entry(
        json_identity=identity,
        metrics_identity=model._metrics_identity,
        metrics_offset=model._metrics_offset,
        metrics_lines=model._metrics_lines,
        checkpoints_mtime=model._checkpoints_mtime,
        checkpoints=dict(model.checkpoint_names),
        header={
            "id": model.id,
            "name": model.name,
            "label": model.label,
            "parents": list(model.parents),
            "created": model.created,
            "hyperparameters": model.hyperparameters,
        },
        headline=model.to_headline(),
    )


def index_path(cache_dir: Path, root: Path) -> Path:
    """Where the index of logdir ``root`` lives under ``cache_dir`` (one file per logdir)."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32]
    return cache_dir / INDEX_DIR / f"{digest}.json"


def head_path(index_file: Path) -> Path:
    """The index's head: its first ``HEAD_ENTRIES`` entries (a first screen), a small file
    a viewer reads instead of the whole index before it draws anything."""
    return index_file.with_suffix(".head.json")


#: Entries in the head file (the store's ``FIRST_SCREEN_MODELS``).
HEAD_ENTRIES = 200


# --- reading -----------------------------------------------------------------------------
def load(path: Path, root: Path) -> Mapping[str, Entry]:
    """The entries of the index at ``path`` by model directory relative to ``root``; {} for
    a missing, corrupt, foreign or other-version file (it is then rebuilt).

    The file is a JSON line (version, logdir, SHA-256 of the rest) then one line per
    entry: a flipped byte or a hand edit that still parses is caught by the digest.
    """
    read = _read(path, root)
    return Index(root, read[1]) if read is not None else {}


def load_head(path: Path, root: Path) -> tuple[Mapping[str, Entry], int, str] | None:
    """(the head's entries, how many the whole index holds, the whole index's digest), or
    None when there is no usable head (then the whole index is read)."""
    read = _read(head_path(path), root)
    if read is None:
        return None
    meta, models = read
    total, digest = meta.get("total"), meta.get("index_sha256")
    if not _is_int(total) or not isinstance(digest, str) or total < len(models):
        return None
    return Index(root, models), total, digest


def digest_of(path: Path) -> str | None:
    """The SHA-256 the index file at ``path`` names for its entries (its first line)."""
    try:
        with open(path, "rb") as f:
            meta = json.loads(f.readline())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta.get("sha256") if isinstance(meta, dict) else None


def _read(path: Path, root: Path) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """(meta, each entry's JSON text by directory) of a signed index file of ``root``;
    None otherwise. The entries stay text until asked for (``Index``): one ``json.loads``
    of a 10,000-model index held the GIL for 0.2 s, and the viewer's first frames with it."""
    try:
        raw_bytes = path.read_bytes()
    except OSError:
        return None
    head, _newline, body = raw_bytes.partition(b"\n")
    models: dict[str, bytes] = {}
    try:
        meta = json.loads(head)
        if (
            not isinstance(meta, dict)
            or meta.get("tinspect_index") != INDEX_VERSION
            or meta.get("root") != str(root.resolve())
            or meta.get("sha256") != hashlib.sha256(body).hexdigest()
        ):
            return None
        for line in body.splitlines():
            key, tab, value = line.partition(b"\t")
            relative = json.loads(key)
            if not tab or not isinstance(relative, str):
                return None
            models[relative] = value
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return meta, models


class Index(Mapping[str, Entry]):
    """The entries of one index file, parsed (and checked) one by one when asked for: a
    viewer opening 10,000 models builds its first screen from a few hundred of them."""

    def __init__(self, root: Path, raw: dict[str, bytes]) -> None:
        self.root = root
        self._raw = raw
        self._parsed: dict[str, Entry | None] = {}

    def get(self, relative: str, default: Any = None) -> Any:
        if relative not in self._parsed:
            text = self._raw.get(relative)
            self._parsed[relative] = (
                None if text is None else _parse_text(self.root, relative, text)
            )
        entry = self._parsed[relative]
        return default if entry is None else entry

    def __getitem__(self, relative: str) -> Entry:
        entry = self.get(relative)
        if entry is None:
            raise KeyError(relative)
        return entry

    def __iter__(self) -> Iterator[str]:
        """Directories in the stored (display) order; malformed entries included (``get``
        answers None for them)."""
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _identity(directory: str, name: str, raw: Any) -> FileIdentity | None:
    if (
        type(raw) is list
        and len(raw) == 2
        and type(raw[0]) is int
        and type(raw[1]) is int
        and raw[0] >= 0
        and raw[1] >= 0
    ):
        return FileIdentity(f"{directory}/{name}", raw[0], raw[1])
    return None


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _strings(values: Any) -> TypeGuard[list[str]]:
    return type(values) is list and all(type(v) is str for v in values)


@functools.lru_cache(maxsize=256)
def _canonical_names(epochs: tuple[int, ...]) -> dict[int, str]:
    """Canonical file names by epoch (models of one logdir mostly share their epochs)."""
    return {e: fmt.checkpoint_name(e) for e in epochs}


def _parse_text(root: Path, relative: str, text: bytes) -> Entry | None:
    try:
        raw = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return _parse_entry(root, relative, raw)


def _parse_entry(root: Path, relative: str, raw: Any) -> Entry | None:
    """One entry, checked field by field (a malformed entry is dropped: that model is
    parsed). ``type(x) is int`` rather than ``isinstance``: it also refuses ``bool``, and
    this runs once per model at every open (~15 µs an entry)."""
    if type(raw) is not dict or type(relative) is not str or not relative:
        return None
    if relative.startswith(("/", "..")) or "/../" in f"/{relative}/":
        return None  # never let an index name a directory outside the logdir
    header, headline = raw.get("header"), raw.get("headline")
    if type(header) is not dict or type(headline) is not dict:
        return None
    directory = str(root) if relative == "." else os.path.join(root, relative)
    json_identity = _identity(directory, fmt.MODEL_JSON, raw.get("json"))
    if json_identity is None:
        return None
    metrics_identity = _identity(directory, fmt.METRICS_JSONL, raw.get("metrics"))
    offset, lines = raw.get("metrics_offset"), raw.get("metrics_lines")
    mtime = raw.get("checkpoints_mtime")
    if not (type(offset) is int and type(lines) is int and (mtime is None or type(mtime) is int)):
        return None
    epochs, checkpoints = raw.get("epochs"), raw.get("checkpoints")
    if type(epochs) is not list or not all(type(e) is int and e >= 0 for e in epochs):
        return None
    if type(checkpoints) is not dict:
        return None
    names = _canonical_names(tuple(epochs))
    if checkpoints:  # names that are not canonical (rare), spelled out
        names = dict(names)
        for k, n in checkpoints.items():
            epoch = int(k) if k.isascii() and k.isdigit() else -1
            if type(n) is not str or fmt.parse_checkpoint_name(n) != epoch:
                return None
            names[epoch] = n
    if not all(type(header.get(k)) is str for k in ("id", "name", "label", "created")):
        return None
    if not header["id"] or not _strings(header.get("parents")):
        return None
    if type(header.get("hyperparameters")) is not dict:
        return None
    classes, last = headline.get("layer_classes"), headline.get("last_metrics")
    keys, rows = headline.get("metric_keys"), headline.get("metric_rows")
    params = headline.get("total_params")
    if not (
        _strings(classes)
        and type(last) is dict
        and _strings(keys)
        and type(rows) is int
        and type(params) is int
    ):
        return None
    return Entry(
        json_identity=json_identity,
        metrics_identity=metrics_identity,
        metrics_offset=offset,
        metrics_lines=lines,
        checkpoints_mtime=mtime,
        checkpoints=dict(sorted(names.items())),
        header=header,
        headline=Headline(params, tuple(classes), last, tuple(keys), rows),
    )


# --- writing -----------------------------------------------------------------------------
def save(path: Path, root: Path, entries: dict[str, Entry]) -> bool:
    """Write the index atomically (a reader never sees half of it); False when the cache
    directory cannot be written (read-only disk: the index is simply not kept)."""
    models = {}
    for relative, e in entries.items():
        h = e.headline
        models[relative] = {
            "json": [e.json_identity.size, e.json_identity.mtime_ns],
            "metrics": (
                [e.metrics_identity.size, e.metrics_identity.mtime_ns]
                if e.metrics_identity is not None
                else None
            ),
            "metrics_offset": e.metrics_offset,
            "metrics_lines": e.metrics_lines,
            "checkpoints_mtime": e.checkpoints_mtime,
            # Canonical names (epoch-0003.h5) as epochs; only odd names spelled out.
            "epochs": [k for k, n in e.checkpoints.items() if n == fmt.checkpoint_name(k)],
            "checkpoints": {
                str(k): n for k, n in e.checkpoints.items() if n != fmt.checkpoint_name(k)
            },
            "header": e.header,
            "headline": {
                "total_params": h.total_params,
                "layer_classes": list(h.layer_classes),
                "last_metrics": h.last_metrics,
                "metric_keys": list(h.metric_keys),
                "metric_rows": h.metric_rows,
            },
        }
    digest = write_raw(path, root, models)
    if digest is None:
        return False
    first = dict(list(models.items())[:HEAD_ENTRIES])
    extra = {"total": len(models), "index_sha256": digest}
    return write_raw(head_path(path), root, first, extra) is not None


def write_raw(
    path: Path, root: Path, models: dict[str, Any], extra: dict[str, Any] | None = None
) -> str | None:
    """Write ``models`` (entries as JSON data) as the index of ``root``, signed, atomically;
    the SHA-256 it is signed with (None when it cannot be written).

    One line per entry, ``"directory"<TAB>{entry}``, in the given (display) order: JSON
    escapes tabs and newlines inside strings, so neither can occur in a key or an entry.
    """
    try:
        body = b"".join(
            json.dumps(relative).encode()
            + b"\t"
            + json.dumps(entry, separators=(",", ":"), allow_nan=True).encode()
            + b"\n"
            for relative, entry in models.items()
        )
        meta = {
            "tinspect_index": INDEX_VERSION,
            "root": str(root.resolve()),
            "sha256": hashlib.sha256(body).hexdigest(),
            **(extra or {}),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
        tmp.write_bytes(json.dumps(meta).encode() + b"\n" + body)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        return None
    return str(meta["sha256"])


def read_raw(path: Path) -> dict[str, Any]:
    """The entries of an index file as JSON data, unchecked (for tests and debugging)."""
    body = path.read_bytes().partition(b"\n")[2]
    entries = {}
    for line in body.splitlines():
        key, _tab, value = line.partition(b"\t")
        entries[json.loads(key)] = json.loads(value)
    return entries
