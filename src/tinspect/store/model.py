"""One model's logs: its header and architecture (model.json), metrics and checkpoint catalog.

Reading is incremental: ``ModelLogs.refresh`` re-parses ``model.json`` only when its
identity (size, mtime) changed, reads only the bytes appended to ``metrics.jsonl`` since the
last call, and lists the checkpoints directory without opening any file. A model with
thousands of checkpoints therefore costs one directory listing to refresh.
"""

from __future__ import annotations

import copy
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinspect import format as fmt
from tinspect.store.h5 import FileIdentity
from tinspect.store.problems import Problem, ProblemLog, Severity, problem
from tinspect.store.uoa import UnitNotFound

#: Keys the recorder adds to every metrics line (not metrics of the model).
BOOKKEEPING = frozenset(
    {
        fmt.METRIC_EPOCH,
        fmt.METRIC_TIME,
        fmt.METRIC_WALL_TIME,
        fmt.METRIC_LEARNING_RATE,
        fmt.METRIC_STEP,
    }
)


class ModelUnreadable(Exception):
    """model.json cannot be used; the message is one line for the user."""


#: One lock for lazy loads (a worker and the UI thread may touch a model's layers at once).
_LOAD_LOCK = threading.RLock()

#: A directory listing or file identity taken less than this long after the object's mtime
#: is not trusted later (a change within the same timestamp tick would be invisible; the
#: "racy git" problem): nanoseconds.
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class Headline:
    """The part of a model the L3 screen and ``ls`` show, kept in the header index so a
    logdir of thousands of models opens without parsing their files."""

    total_params: int
    layer_classes: tuple[str, ...]
    last_metrics: dict[str, Any]
    metric_keys: tuple[str, ...]
    metric_rows: int


@dataclass(frozen=True)
class Layer:
    """One layer of the architecture graph, as recorded in model.json."""

    name: str
    class_name: str
    activation: str | None
    inbound: tuple[str, ...]
    output_shape: tuple[int | None, ...] | None
    trainable_params: int
    non_trainable_params: int
    variables: tuple[dict[str, Any], ...]
    operations: tuple[dict[str, Any], ...]
    config: dict[str, Any]
    submodel: dict[str, Any] | None = None
    #: Axis of the units in the stored output when it is not the last one: 1 for a torch
    #: convolution's (N, C, H, W). The store presents such arrays with that axis moved last.
    channel_axis: int | None = None

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def variable_names(self) -> list[str]:
        return [str(v.get("name")) for v in self.variables]

    @property
    def units(self) -> int | None:
        """Neurons of the layer: the last axis of its output (channels for convolutions),
        or its ``channel_axis`` when the layout is channels-first."""
        if not self.output_shape:
            return None
        axis = self.channel_axis if self.channel_axis is not None else -1
        last = self.output_shape[axis]
        return int(last) if last is not None else None


def _as_int(value: Any, default: int = 0) -> int:
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    )


def _parse_layer(raw: Any) -> Layer | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        return None
    raw_params = raw.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    shape = raw.get("output_shape")
    output_shape = (
        tuple(d if isinstance(d, int) else None for d in shape) if isinstance(shape, list) else None
    )
    return Layer(
        name=raw["name"],
        class_name=str(raw.get("class_name", "?")),
        activation=raw.get("activation") if isinstance(raw.get("activation"), str) else None,
        inbound=tuple(n for n in raw.get("inbound") or [] if isinstance(n, str)),
        output_shape=output_shape,
        trainable_params=_as_int(params.get("trainable")),
        non_trainable_params=_as_int(params.get("non_trainable")),
        variables=tuple(v for v in raw.get("variables") or [] if isinstance(v, dict)),
        operations=tuple(o for o in raw.get("operations") or [] if isinstance(o, dict)),
        config=config if isinstance(config := raw.get("config"), dict) else {},
        submodel=raw.get("submodel") if isinstance(raw.get("submodel"), dict) else None,
        channel_axis=_channel_axis(raw.get("channel_axis"), output_shape),
    )


def _channel_axis(value: Any, shape: tuple[int | None, ...] | None) -> int | None:
    """A layer's ``channel_axis`` when it names an axis other than the sample and last axes."""
    if isinstance(value, bool) or not isinstance(value, int) or shape is None:
        return None
    return value if 0 < value < len(shape) - 1 else None


@dataclass
class ModelLogs:
    """Everything the store knows about one model directory."""

    directory: Path
    root: Path  # the logdir it was found in
    id: str = ""
    name: str = ""
    label: str = ""
    parents: tuple[str, ...] = ()
    created: str = ""
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: Checkpoint file names by epoch; their paths (``checkpoints``) are built on first use:
    #: 22,000 ``Path`` objects cost more than opening 2,000 models from the index.
    checkpoint_names: dict[int, str] = field(default_factory=dict)
    #: What the header index holds of this model while its files are not read yet (a
    #: model opened from the index costs three ``stat`` calls, not a parse).
    headline: Headline | None = None
    #: The whole model.json, its parsed layers and the metric rows: None until first used
    #: when the model came from the index (see the ``info``, ``layers``, ``metrics`` properties).
    _info: dict[str, Any] | None = field(default_factory=dict)
    _layers: list[Layer] | None = field(default_factory=list)
    _metrics: list[dict[str, Any]] | None = field(default_factory=list)
    _json_identity: FileIdentity | None = None
    _metrics_offset: int = 0
    _metrics_lines: int = 0
    _metrics_identity: FileIdentity | None = None
    _checkpoints_mtime: int | None = None
    _problems: ProblemLog | None = None
    _graph: Any = None
    _successors: dict[str, list[str]] | None = None
    _checkpoints: dict[int, Path] | None = None

    @property
    def checkpoints(self) -> dict[int, Path]:
        """Checkpoint paths by epoch, ascending (do not mutate: a snapshot's own dict)."""
        paths = self._checkpoints
        if paths is None:
            folder = self.directory / fmt.CHECKPOINTS_DIR
            paths = {e: folder / n for e, n in sorted(self.checkpoint_names.items())}
            self._checkpoints = paths
        return paths

    @property
    def n_checkpoints(self) -> int:
        return len(self.checkpoint_names)

    # --- lazily read parts -------------------------------------------------------------------
    @classmethod
    def of_layers(cls, model_id: str, layers: list[Layer], name: str = "") -> ModelLogs:
        """A model known only by its layers (tests and analyses on hand-made architectures)."""
        return cls(Path("."), Path("."), id=model_id, name=name or model_id, _layers=layers)

    @property
    def info(self) -> dict[str, Any]:
        """The whole model.json (read on first use for a model opened from the index)."""
        if self._info is None:
            self._load_json()
        return self._info if self._info is not None else {}

    @property
    def layers(self) -> list[Layer]:
        if self._layers is None:
            self._load_json()
        return self._layers if self._layers is not None else []

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Every metrics row (read on first use for a model opened from the index)."""
        if self._metrics is None:
            with _LOAD_LOCK:
                if self._metrics is None:
                    rows: list[dict[str, Any]] = []
                    self._metrics_offset = self._metrics_lines = 0
                    self._read_metrics(self._problems or ProblemLog(), rows)
                    self._metrics = rows
        return self._metrics

    def release(self) -> None:
        """Keep only what L3 and ``ls`` show (the header fields and a ``headline``); the
        parsed model.json, layers and metric rows are read again on first use. The store
        releases the models a walk parses: 10,000 of them held 600 MB, while a screen shows
        a few dozen. Only for a model no reader holds yet (the store's walk, before its
        snapshot is published)."""
        if self._json_identity is None or self._info is None:
            return  # made by hand (of_layers), or nothing parsed to release
        self.headline = self.to_headline()
        self._info = self._layers = self._metrics = None
        self._graph = self._successors = None

    def transient(self) -> ModelLogs:
        """This model with its model.json read, for one pass that should not keep it:
        itself when loaded, else a loaded copy to drop after use (a layer search over
        10,000 models otherwise kept every model.json: 350 MB more)."""
        if self._info is not None:
            return self
        clone = self.copy()
        clone._load_json()
        return clone

    @property
    def loaded(self) -> bool:
        """Whether model.json has been parsed (False: only the index's headline is known)."""
        return self._info is not None

    def _load_json(self) -> None:
        with _LOAD_LOCK:
            if self._info is not None:
                return
            path = self.directory / fmt.MODEL_JSON
            problems = self._problems or ProblemLog()
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                header = data.get("header") if isinstance(data, dict) else None
                if not isinstance(header, dict) or header.get("id") != self.id:
                    raise ModelUnreadable("model.json changed since it was indexed")
                self._apply_json(data, path, problems)
            except (OSError, UnicodeDecodeError, ValueError, ModelUnreadable) as error:
                # The next refresh re-reads the header and reports it; until then the model
                # shows what the index knew, with no layers (never a traceback in a reader).
                problems.add(problem(path, f"cannot be read now ({error})"))
                self._info, self._layers = {}, []

    # --- derived views ---------------------------------------------------------------------
    @property
    def dirname(self) -> str:
        return self.directory.name

    @property
    def short_id(self) -> str:
        return self.id.replace("-", "")[:8]

    @property
    def architecture(self) -> dict[str, Any]:
        arch = self.info.get("architecture")
        return arch if isinstance(arch, dict) else {}

    @property
    def training(self) -> dict[str, Any]:
        value = self.info.get("training")
        return value if isinstance(value, dict) else {}

    @property
    def dataset(self) -> dict[str, Any]:
        value = self.info.get("dataset")
        return value if isinstance(value, dict) else {}

    @property
    def recording(self) -> dict[str, Any]:
        value = self.info.get("recording")
        return value if isinstance(value, dict) else {}

    @property
    def status(self) -> dict[str, Any]:
        value = self.info.get("status")
        return value if isinstance(value, dict) else {}

    @property
    def total_params(self) -> int:
        if self._info is None and self.headline is not None:
            return self.headline.total_params
        params = self.architecture.get("params")
        if isinstance(params, dict) and "total" in params:
            return _as_int(params["total"])
        return sum(layer.params for layer in self.layers)

    @property
    def epochs(self) -> list[int]:
        """Epochs with a checkpoint, ascending."""
        return sorted(self.checkpoint_names)

    @property
    def n_classes(self) -> int:
        return _as_int(self.dataset.get("n_classes"))

    @property
    def class_names(self) -> list[str]:
        names = self.dataset.get("class_names")
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
        return [str(i) for i in range(self.n_classes)]

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (``UnitNotFound`` listing the layers otherwise)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.layers) or "none"
        raise UnitNotFound(f"{self.name} has no layer {name!r}; layers: {names}")

    def copy(self) -> ModelLogs:
        """A copy to refresh while readers keep this one (the store swaps snapshots): the
        lists and dicts a refresh changes are copied, everything else is shared."""
        clone = copy.copy(self)
        clone._metrics = list(self._metrics) if self._metrics is not None else None
        clone.checkpoint_names = dict(self.checkpoint_names)
        clone._checkpoints = None
        return clone

    @property
    def graph(self) -> Any:
        """The layer graph: nodes are layer names with a ``layer`` attribute; edges flow forward."""
        if self._graph is None:
            import networkx as nx  # lazily: ~0.1 s, needed only for layer graphs

            graph = nx.DiGraph()
            for layer in self.layers:
                graph.add_node(layer.name, layer=layer)
            for layer in self.layers:
                for source in layer.inbound:
                    if source in graph:
                        graph.add_edge(source, layer.name)
            self._graph = graph
        return self._graph

    @property
    def successors(self) -> dict[str, list[str]]:
        """Each layer's successors (the layers it feeds, in the layers' order): the edges of
        ``graph`` without networkx. The silent-bug checks use this: they also run in the
        recorder's writer thread during training, where importing networkx (~0.2 s of CPU,
        holding the GIL) would be training's time."""
        if self._successors is None:
            found: dict[str, list[str]] = {layer.name: [] for layer in self.layers}
            for layer in self.layers:
                for source in dict.fromkeys(layer.inbound):  # an edge once, as in the graph
                    if source in found:
                        found[source].append(layer.name)
            self._successors = found
        return self._successors

    def metric_names(self, bookkeeping: bool = False) -> list[str]:
        """Keys Keras logged, in first-seen order; with ``bookkeeping``, also the recorder's
        per-epoch facts (learning rate, epoch time, step) after them."""
        seen: dict[str, None] = {}
        if self._metrics is None and self.headline is not None:
            seen = dict.fromkeys(self.headline.metric_keys)
        for row in self.metrics if self._metrics is not None or self.headline is None else ():
            for key in row:
                seen.setdefault(key, None)
        names = [k for k in seen if k not in BOOKKEEPING]
        if bookkeeping:
            extra = (fmt.METRIC_LEARNING_RATE, fmt.METRIC_WALL_TIME, fmt.METRIC_STEP)
            names += [k for k in extra if k in seen]
        return names

    def last_metrics(self) -> dict[str, Any]:
        if self._metrics is None and self.headline is not None:
            return self.headline.last_metrics
        return self.metrics[-1] if self.metrics else {}

    @property
    def n_metric_rows(self) -> int:
        if self._metrics is None and self.headline is not None:
            return self.headline.metric_rows
        return len(self.metrics)

    @property
    def layer_classes(self) -> list[str]:
        """Class names of the layers in order (the L3 strip), without parsing model.json."""
        if self._layers is None and self.headline is not None:
            return list(self.headline.layer_classes)
        return [layer.class_name for layer in self.layers]

    def to_headline(self) -> Headline:
        """What the header index keeps of this model (read from the parsed files)."""
        if self._info is None and self._metrics is None and self.headline is not None:
            return self.headline
        keys: dict[str, None] = {}
        for row in self.metrics:
            keys.update(dict.fromkeys(row))
        return Headline(
            total_params=self.total_params,
            layer_classes=tuple(self.layer_classes),
            last_metrics=self.last_metrics(),
            metric_keys=tuple(keys),
            metric_rows=self.n_metric_rows,
        )

    # --- reading -----------------------------------------------------------------------------
    def refresh(
        self, problems: ProblemLog, json_identity: FileIdentity | None = None
    ) -> tuple[bool, list[int], int]:
        """Re-read what changed: (model.json changed, new checkpoint epochs, new metric rows).

        ``json_identity`` is model.json's, when the caller has just taken it (the store's
        walk does: one ``stat`` less per model and open). Raises ``ModelUnreadable`` when
        model.json cannot be used at all.
        """
        self._problems = problems
        changed = self._refresh_json(problems, json_identity)
        new_epochs = self._refresh_checkpoints(problems)
        new_rows = self._refresh_metrics(problems)
        return changed, new_epochs, new_rows

    def _file(self, name: str) -> str:
        """A path in the model directory as a string (cheaper than a pathlib join)."""
        return os.path.join(self.directory, name)

    def _refresh_json(self, problems: ProblemLog, identity: FileIdentity | None) -> bool:
        if identity is None:
            try:
                identity = FileIdentity.of(self._file(fmt.MODEL_JSON))
            except OSError as error:
                raise ModelUnreadable(f"model.json cannot be read ({error.strerror})") from None
        if identity == self._json_identity:
            return False
        path = self.directory / fmt.MODEL_JSON
        problems.discard_path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise ModelUnreadable(f"model.json cannot be read ({error})") from None
        except ValueError as error:
            raise ModelUnreadable(f"model.json is not valid JSON ({error})") from None
        with _LOAD_LOCK:
            self._apply_json(data, path, problems)
        self._json_identity = identity
        self._graph = self._successors = None
        return True

    def _apply_json(self, data: Any, path: Path, problems: ProblemLog) -> None:
        if not isinstance(data, dict):
            raise ModelUnreadable("model.json does not hold a JSON object")
        version = data.get("format_version")
        major = fmt.major_version(str(version)) if version is not None else None
        if major is None:
            raise ModelUnreadable("model.json has no format_version")
        if major != fmt.FORMAT_MAJOR:
            raise ModelUnreadable(
                f"format version {version} is not readable by this tinspect "
                f"(reads {fmt.FORMAT_MAJOR}.x)"
            )
        header = data.get("header")
        if not isinstance(header, dict):
            raise ModelUnreadable("model.json has no header")
        model_id, name = header.get("id"), header.get("name")
        if not isinstance(model_id, str) or not model_id:
            raise ModelUnreadable("header has no id")
        if not isinstance(name, str) or not name:
            raise ModelUnreadable("header has no name")
        parents = header.get("parents") or []
        if not isinstance(parents, list):
            problems.add(problem(path, "header parents is not a list; ignored"))
            parents = []
        good = [p for p in parents if isinstance(p, str) and p]
        if len(good) != len(parents):
            problems.add(problem(path, "some header parents are not id strings; ignored"))
        self.id, self.name = model_id, name
        label = header.get("label")
        self.label = label if isinstance(label, str) and label else name
        self.parents = tuple(dict.fromkeys(p for p in good if p != model_id))
        self.created = str(header.get("created", ""))
        hp = header.get("hyperparameters")
        self.hyperparameters = hp if isinstance(hp, dict) else {}
        self._info = data
        raw_layers = self.architecture.get("layers") or []
        layers = [_parse_layer(raw) for raw in raw_layers] if isinstance(raw_layers, list) else []
        if any(layer is None for layer in layers) or not isinstance(raw_layers, list):
            problems.add(problem(path, "some architecture layers are malformed; skipped"))
        self._layers = [layer for layer in layers if layer is not None]

    def _refresh_checkpoints(self, problems: ProblemLog) -> list[int]:
        """List the checkpoints directory, unless its mtime says nothing was added, removed
        or renamed since a listing taken safely after that mtime (one ``stat``)."""
        folder = self._file(fmt.CHECKPOINTS_DIR)
        now = time.time_ns()
        try:
            mtime = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            self.checkpoint_names, self._checkpoints, self._checkpoints_mtime = {}, None, None
            return []
        except OSError:
            mtime = None
        if mtime is not None and mtime == self._checkpoints_mtime:
            return []
        directory = Path(folder)
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        except OSError as error:
            problems.add(problem(directory, f"cannot list checkpoints ({error.strerror})"))
            return []
        found: dict[int, str] = {}
        for entry in entries:
            epoch = fmt.parse_checkpoint_name(entry.name)
            if epoch is not None:
                found[epoch] = entry.name
            elif fmt.is_temporary(entry.name):
                problems.add(
                    problem(
                        entry.path,
                        "a checkpoint being written, or left by an interrupted writer; ignored",
                        "it disappears when the writer finishes; a leftover can be deleted",
                        Severity.INFO,
                    )
                )
        new = sorted(set(found) - set(self.checkpoint_names))
        if found != self.checkpoint_names:
            self.checkpoint_names, self._checkpoints = dict(sorted(found.items())), None
        trusted = mtime is not None and now - mtime > RACY_NS
        self._checkpoints_mtime = mtime if trusted else None
        return new

    def _refresh_metrics(self, problems: ProblemLog) -> int:
        if self._metrics is None:  # from the index: read only if the file changed since
            try:
                identity: FileIdentity | None = FileIdentity.of(self._file(fmt.METRICS_JSONL))
            except OSError:
                identity = None
            if identity is not None and identity == self._metrics_identity:
                return 0
            known = self.headline.metric_rows if self.headline is not None else 0
            rows = len(self.metrics)
            return rows - known if rows >= known else rows
        return self._read_metrics(problems, self._metrics)

    def _read_metrics(self, problems: ProblemLog, rows: list[dict[str, Any]]) -> int:
        """Append the complete lines written since the last read to ``rows``."""
        path = self.directory / fmt.METRICS_JSONL
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return 0
        except OSError as error:
            problems.add(problem(path, f"cannot read metrics ({error.strerror})"))
            return 0
        size = st.st_size
        if size < self._metrics_offset:  # rewritten from scratch: start over
            rows.clear()
            self._metrics_offset, self._metrics_lines = 0, 0
            problems.discard_path(path)
        trusted = time.time_ns() - st.st_mtime_ns > RACY_NS
        if size == self._metrics_offset:
            if self._metrics_identity is None and trusted:
                self._metrics_identity = FileIdentity(str(path), size, st.st_mtime_ns)
            return 0
        self._metrics_identity = FileIdentity(str(path), size, st.st_mtime_ns) if trusted else None
        with open(path, "rb") as f:
            f.seek(self._metrics_offset)
            chunk = f.read(size - self._metrics_offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return 0  # only a torn line so far: a writer is in the middle of it
        complete = chunk[: end + 1]
        self._metrics_offset += len(complete)
        added = 0
        for raw in complete.splitlines():
            self._metrics_lines += 1
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                problems.add(problem(path, f"line {self._metrics_lines} is not JSON; skipped"))
                continue
            epoch = row.get(fmt.METRIC_EPOCH) if isinstance(row, dict) else None
            if not isinstance(epoch, int) or isinstance(epoch, bool):
                problems.add(
                    problem(path, f"line {self._metrics_lines} has no integer epoch; skipped")
                )
                continue
            rows.append(row)
            added += 1
        return added


def finite(value: Any) -> float | None:
    """A metric value as a finite float, else None (for 'best' and 'last' displays)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


__all__ = ["Headline", "Layer", "ModelLogs", "ModelUnreadable", "Problem", "finite"]
