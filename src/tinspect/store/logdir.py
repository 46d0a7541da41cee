"""The store: every model under one or more logdirs, read lazily, refreshed cheaply.

Opening a logdir reads headers only (``model.json``, ``metrics.jsonl``, directory
listings); checkpoint files are opened when data is asked for. ``refresh`` notices new
models, checkpoints and metric lines while training writes them, without re-reading files
that did not change. Whatever is wrong with a file becomes a ``Problem``; the rest works.
"""

from __future__ import annotations

import copy
import os
import stat
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from tinspect import format as fmt
from tinspect.store import h5, index
from tinspect.store.arrays import Arrays
from tinspect.store.cache import Cache, default_cache_dir
from tinspect.store.checkpoint import (
    ChannelsLastDataset,
    CheckpointUnreadable,
    DataError,
    SummaryTable,
    check_version,
    read_attrs,
    read_summary,
    stored_once,
)
from tinspect.store.model import ModelLogs, ModelUnreadable
from tinspect.store.problems import ProblemLog, Severity, problem
from tinspect.store.tree import ModelTree, build_tree
from tinspect.store.uoa import UnitNotFound, UoA, UoAError, format_path, parse_path

if TYPE_CHECKING:
    import h5py

#: Summary tables kept in memory (a few KiB each).
SUMMARY_TABLES_KEPT = 512

T = TypeVar("T")


class _ByIdentity(Generic[T]):
    """What was read from checkpoint files, by path, with the ``FileIdentity`` each was
    read at: a value is returned only while the file is still that file. Least recently
    used first out beyond ``kept``; thread-safe (the viewer's workers share the store)."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._items: OrderedDict[str, tuple[h5.FileIdentity, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, identity: h5.FileIdentity | None) -> T | None:
        with self._lock:
            cached = self._items.get(key)
            if cached is None or identity is None or cached[0] != identity:
                return None
            self._items.move_to_end(key)
            return cached[1]

    def put(self, key: str, identity: h5.FileIdentity, value: T) -> None:
        with self._lock:
            self._items[key] = (identity, value)
            self._items.move_to_end(key)
            while len(self._items) > self._kept:
                self._items.popitem(last=False)


#: A refresh with a time budget still parses this many new models (a first screen's worth).
MIN_PARSED = 40
#: Models a start-up from the header index builds before the first screen (two screenfuls
#: of the L3 tree even when every experiment holds one model); the loader builds the rest.
FIRST_SCREEN_MODELS = 200


@dataclass
class Changes:
    """What a refresh found (ids of models; the viewer rebuilds and reloads from this)."""

    new_models: list[str] = field(default_factory=list)
    changed_models: list[str] = field(default_factory=list)
    removed_models: list[str] = field(default_factory=list)
    new_checkpoints: dict[str, list[int]] = field(default_factory=dict)
    new_metric_rows: dict[str, int] = field(default_factory=dict)
    #: Epochs whose checkpoint file disappeared, by model id (models still present).
    removed_checkpoints: dict[str, list[int]] = field(default_factory=dict)
    #: Epochs whose checkpoint was read this session and has since been rewritten in place
    #: (another size or mtime: a writer replaced it, or it was truncated), by model id.
    changed_checkpoints: dict[str, list[int]] = field(default_factory=dict)
    #: Model directories found but not read yet (a refresh with a time budget stopped);
    #: not a change in itself: the next refresh reads them.
    pending: int = 0

    @property
    def touched_models(self) -> set[str]:
        """Models whose data a viewer shows may have changed (reload what shows them)."""
        return (
            set(self.changed_models)
            | set(self.new_checkpoints)
            | set(self.new_metric_rows)
            | set(self.removed_checkpoints)
            | set(self.changed_checkpoints)
        )

    def __bool__(self) -> bool:
        return bool(
            self.new_models
            or self.changed_models
            or self.removed_models
            or self.new_checkpoints
            or self.new_metric_rows
            or self.removed_checkpoints
            or self.changed_checkpoints
        )


class Found(NamedTuple):
    """A model directory a walk (or the header index) found."""

    root: Path
    directory: Path
    relative: str  # to root; "." for a logdir that is itself a model
    linked: bool  # model.json is a symbolic link
    #: model.json's ``lstat`` when the walk took one (None: it did not): a regular file's
    #: identity then needs no second ``stat``.
    stat: os.stat_result | None = None


def _directory(root: Path, relative: str) -> Path:
    """The model directory an index entry names ("." is the logdir itself)."""
    return root if relative == "." else root / relative


class Store:
    """Models found under ``roots``, by id. Thread-safe for reads of checkpoint data."""

    def __init__(
        self,
        *roots: str | Path,
        cache: Cache | None = None,
        max_open_files: int = 16,
        budget: float | None = None,
    ) -> None:
        """Open ``roots``. With ``budget`` (seconds), the first refresh stops parsing new
        models after that long and leaves the rest ``pending`` for the next refreshes (the
        viewer shows its first screen meanwhile); None reads everything now."""
        if not roots:
            raise ValueError("a store needs at least one logdir")
        self.roots = [Path(r) for r in roots]
        self.problems = ProblemLog()
        self.models: dict[str, ModelLogs] = {}
        self.files = h5.H5Files(max_open_files)
        self.cache = (
            cache if cache is not None else Cache(default_cache_dir(), forbidden=self.roots)
        )
        self._by_dir: dict[Path, ModelLogs] = {}
        self._bad_dirs: dict[Path, h5.FileIdentity | None] = {}
        self._tree: ModelTree | None = None
        self._checked: dict[str, h5.FileIdentity] = {}
        #: Checkpoint paths found inside their logdir -> (device, inode) they led to.
        self._inside_files: dict[str, tuple[int, int]] = {}
        #: Root attributes (as many as summary tables): ``checkpoint`` reads them to check
        #: a new file, ``attrs`` then returns them without a second read.
        self._attrs: _ByIdentity[dict[str, Any]] = _ByIdentity(SUMMARY_TABLES_KEPT)
        #: Summary tables: checks and overviews ask for the same table many times per
        #: checkpoint.
        self._summaries: _ByIdentity[SummaryTable] = _ByIdentity(SUMMARY_TABLES_KEPT)
        #: Checkpoints found damaged: path -> (identity when found, one-line message).
        self._damaged: dict[str, tuple[h5.FileIdentity | None, str]] = {}
        self._damaged_lock = threading.Lock()
        #: Model directories seen but not read yet (see ``budget``); how many are expected.
        self.pending = 0
        self._expected = 0
        #: Header index entries by root (store/index.py), and whether the files need writing.
        self._index: dict[Path, Mapping[str, index.Entry]] = {}
        self._index_stale = False
        self._name_counts: Counter[str] | None = None
        #: Work a budgeted refresh left for the next: a walk or the index's directories.
        self._resume: Iterator[Found] | None = None
        self._resume_kind = "walk"
        self._walked: set[Path] = set()
        self._refresh_lock = threading.Lock()
        #: Roots opened from their index's head: the whole index's digest, read later.
        self._heads: dict[Path, str] = {}
        cache_dir = self.cache.directory
        heads = (
            {r: index.load_head(index.index_path(cache_dir, r), r) for r in self.roots}
            if cache_dir is not None and budget is not None
            else {}
        )
        if heads and all(head is not None for head in heads.values()):
            for root, head in heads.items():
                assert head is not None
                self._index[root], total, self._heads[root] = head
                self._expected += total
        elif cache_dir is not None:
            for root in self.roots:
                path = index.index_path(cache_dir, root)
                self._index[root] = index.load(path, root)
                if not index.head_path(path).exists():
                    self._index_stale = True  # written with the index after this open
        for root in self.roots:
            if not root.is_dir():
                self.problems.add(
                    problem(
                        root,
                        "is not a directory",
                        "give the logdir the callback wrote",
                        Severity.ERROR,
                    )
                )
        self.unverified = False
        if budget is not None and all(self._index.get(root) for root in self.roots):
            # The first screen from the index (no walk, no stat); the loader checks it.
            self._resume, self._resume_kind = self._index_work(), "index"
            if not self._heads:
                self._expected = sum(len(self._index[root]) for root in self.roots)
        self.refresh(budget)

    # --- discovery and refresh -------------------------------------------------------------
    def _model_dirs(self) -> Iterator[Found]:
        """(root, model directory, its path relative to root, model.json is a symlink),
        depth first in name order.

        A model directory holds no further models. A directory the store already knows (or
        the index names) as a model costs one ``lstat`` of its model.json, not a listing.
        Symbolic links to directories are not followed. Paths are joined as strings:
        pathlib's joins cost more than the system calls at thousands of models.
        """
        for root in self.roots:
            if not root.is_dir():
                continue
            root_s = str(root)
            # Relative paths by slicing strings (Path.relative_to cost ~10 µs a model, at
            # every periodic refresh).
            prefix = os.path.join(root_s, "")
            known = {
                "." if text == root_s else text[len(prefix) :]
                for text in map(str, self._by_dir)
                if text == root_s or text.startswith(prefix)
            }
            known.update(self._index.get(root, {}))
            stack: list[tuple[Path, str]] = [(root, "")]
            while stack:
                current, relative = stack.pop()
                current_s = os.path.join(root_s, relative) if relative else root_s
                if relative in known:
                    try:
                        st = os.lstat(os.path.join(current_s, fmt.MODEL_JSON))
                    except OSError:
                        pass  # no longer a model directory: list it
                    else:
                        yield Found(root, current, relative, stat.S_ISLNK(st.st_mode), st)
                        continue
                try:
                    entries = list(os.scandir(current_s))
                except OSError:
                    continue
                header = next((e for e in entries if e.name == fmt.MODEL_JSON), None)
                if header is not None:  # relative "": the logdir itself holds one model
                    yield Found(root, current, relative or ".", header.is_symlink())
                    continue
                subdirs = sorted(
                    e.name
                    for e in entries
                    if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                )
                stack.extend(
                    (current / name, os.path.join(relative, name) if relative else name)
                    for name in reversed(subdirs)
                )

    def _inside(self, root: Path, path: Path) -> bool:
        """True when ``path`` (after following symlinks) stays inside ``root``."""
        try:
            return path.resolve().is_relative_to(root.resolve())
        except OSError:
            return False

    def _checkpoint_inside(self, root: Path, path: Path) -> bool:
        """``_inside`` for a checkpoint, remembered per path and the file it leads to.

        Resolving a path walks every component with ``lstat`` (~0.13 ms here), and the
        checks ask for the same checkpoint a dozen times per run: ~20 % of their time.
        The answer is kept with the device and inode that ``stat`` (which follows links)
        finds; when the path leads to another file (a symlink or a directory swapped),
        it is resolved again. Only "inside" is remembered, so an outside path is
        re-examined at each access.
        """
        key = str(path)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        target = None if st is None else (st.st_dev, st.st_ino)
        if target is not None and self._inside_files.get(key) == target:
            return True
        inside = self._inside(root, path)
        if inside and target is not None:
            self._inside_files[key] = target
        return inside

    def refresh(self, budget: float | None = None) -> Changes:
        """Re-scan the logdirs; re-read only what changed.

        Readers on other threads (the viewer's workers) see one consistent snapshot: a model
        that changed is refreshed on a copy, and the new ``models`` dict and tree replace the
        old ones in one assignment each; the objects a reader already holds never change.
        A model the header index knows unchanged is built from its entry (no parse). With
        ``budget`` (seconds), new models that need parsing stop being parsed after that
        long; they are counted in ``Changes.pending`` and read by the next refresh.
        """
        with self._refresh_lock:  # the viewer's loader and its periodic refresh
            return self._refresh(budget)

    def _refresh(self, budget: float | None) -> Changes:
        changes = Changes()
        models = dict(self.models)
        by_dir = dict(self._by_dir)
        tree_stale = False
        deadline = None if budget is None else time.perf_counter() + budget
        done = 0  # models parsed or built from the index in this call
        # A budgeted refresh that ran out of time leaves its work (the walk, or the index
        # entries of a start-up) suspended; the next refresh resumes it where it stopped, so
        # a loader reading a logdir slice by slice pays for each model once.
        if self._resume is None:
            self._resume, self._resume_kind, self._walked = self._model_dirs(), "walk", set()
            # Only a budgeted walk can stop early and report progress: a plain refresh (the
            # CLI, the viewer's periodic one) does not list the logdirs a second time.
            self._expected = self._count_dirs() if budget is not None else 0
        work, kind = self._resume, self._resume_kind
        # A start-up from the index stops after a first screen's worth of models (built
        # in a few ms); building them all first would cost ~0.1 ms each.
        limit = FIRST_SCREEN_MODELS if kind == "index" and budget is not None else None
        finished = True
        for found in work:
            directory = found.directory
            self._walked.add(directory)
            if kind == "index":
                if directory not in by_dir and self._add_indexed(found, models, by_dir, changes):
                    done += 1
                    tree_stale = True
            else:
                outcome = self._visit(found, models, by_dir, changes)
                if outcome == "new":
                    done += 1
                    tree_stale = True
                elif outcome == "changed":
                    tree_stale = True
            if limit is not None and not self.models:
                if done >= limit:  # a first screen from the index: a count, not a time
                    finished = False
                    break
            elif deadline is not None and done >= MIN_PARSED and time.perf_counter() > deadline:
                finished = False
                break
        if finished:
            self._resume = None
            if kind == "walk":  # every directory seen: what was not seen is gone
                for directory in [d for d in by_dir if d not in self._walked]:
                    model = by_dir.pop(directory)
                    models.pop(model.id, None)
                    changes.removed_models.append(model.id)
                    tree_stale = self._index_stale = True
                self.unverified = False
            else:
                self.unverified = True  # shown from the index; a walk checks it next
        self._find_rewritten(models, changes)
        if tree_stale or self._tree is None:
            tree = build_tree(models, self.problems)  # reports parent cycles now
            self.models, self._by_dir, self._tree = models, by_dir, tree
            self._name_counts = None
        else:
            self.models, self._by_dir = models, by_dir
        # Models still to come: the directories (or index entries) counted at the start
        # minus the models read; 0 once the work is done.
        self.pending = changes.pending = 0 if finished else max(0, self._expected - len(models))
        if finished and kind == "walk" and self._index_stale:
            self._save_index()
        return changes

    def _count_dirs(self) -> int:
        """How many model directories a walk will probably find (one listing per logdir):
        the "of N" of a loader's progress, exact for flat logdirs."""
        total = 0
        for root in self.roots:
            try:
                with os.scandir(root) as entries:
                    total += sum(1 for e in entries if not e.name.startswith(".") and e.is_dir())
            except OSError:
                continue
        return total

    def _index_work(self) -> Iterator[Found]:
        """The directories the header index lists, in its (display) order: a start-up
        builds the first screen from them without a walk or a ``stat``."""
        for root in self.roots:
            given: set[str] = set()
            for relative in self._index.get(root, {}):
                given.add(relative)
                yield Found(root, _directory(root, relative), relative, False)
            digest = self._heads.pop(root, None)
            if digest is None or self.cache.directory is None:
                continue
            # Past the head: now the whole index (read here, in the loader's thread), if it
            # is the one the head was written with; else the walk that follows reads all.
            path = index.index_path(self.cache.directory, root)
            whole = index.load(path, root) if index.digest_of(path) == digest else {}
            self._index[root] = whole
            for relative in whole:
                if relative not in given:
                    yield Found(root, _directory(root, relative), relative, False)

    def _add_indexed(
        self,
        found: Found,
        models: dict[str, ModelLogs],
        by_dir: dict[Path, ModelLogs],
        changes: Changes,
    ) -> bool:
        root, directory = found.root, found.directory
        entry = self._index.get(root, {}).get(found.relative)
        if entry is None:
            return False  # a malformed entry: the walk that follows reads the directory
        model = entry.model(directory, root)
        model._problems = self.problems
        if model.id in models:
            return False  # the walk that follows reports the duplicate
        models[model.id] = by_dir[directory] = model
        self._record_new(model, changes)
        return True

    @staticmethod
    def _record_new(model: ModelLogs, changes: Changes) -> None:
        changes.new_models.append(model.id)
        if model.checkpoint_names:
            changes.new_checkpoints[model.id] = model.epochs
        if model.n_metric_rows:
            changes.new_metric_rows[model.id] = model.n_metric_rows

    def _visit(
        self,
        found: Found,
        models: dict[str, ModelLogs],
        by_dir: dict[Path, ModelLogs],
        changes: Changes,
    ) -> str:
        """Read one model directory of a walk: "new", "changed" (tree-relevant), or ""."""
        root, directory = found.root, found.directory
        json_path = directory / fmt.MODEL_JSON
        identity: h5.FileIdentity | None = None
        if found.stat is not None and stat.S_ISREG(found.stat.st_mode):
            st = found.stat  # a regular file: its lstat is its stat
            identity = h5.FileIdentity(str(json_path), st.st_size, st.st_mtime_ns)
        if found.linked and not self._inside(root, json_path):
            self.problems.add(
                problem(json_path, "leads outside the logdir; not read", severity=Severity.ERROR)
            )
            return ""
        model = by_dir.get(directory)
        if model is None:
            if identity is None:
                try:
                    identity = h5.FileIdentity.of(json_path)
                except OSError:
                    identity = None
            if directory in self._bad_dirs and self._bad_dirs[directory] == identity:
                return ""  # still the same broken file: reported already
            entry = self._index.get(root, {}).get(found.relative)
            if entry is not None and entry.json_identity == identity:
                model = entry.model(directory, root)
            else:
                model = ModelLogs(directory, root)
                self._index_stale = True
            try:
                model.refresh(self.problems, identity)
            except ModelUnreadable as error:
                self._bad_dirs[directory] = identity
                self.problems.add(
                    problem(json_path, str(error), "this model is skipped", Severity.ERROR)
                )
                return ""
            self._bad_dirs.pop(directory, None)
            if model.id in models:
                other = models[model.id].directory
                self._bad_dirs[directory] = identity
                self.problems.add(
                    problem(
                        json_path,
                        f"duplicate model id {model.id[:8]} (also in {other}); skipped",
                        "each training run needs its own header",
                        Severity.ERROR,
                    )
                )
                return ""
            self._record_new(model, changes)
            model.release()  # until a screen needs more than its headline
            models[model.id] = by_dir[directory] = model
            return "new"
        fresh = model.copy()
        try:
            changed, epochs, rows = fresh.refresh(self.problems, identity)
        except ModelUnreadable as error:
            self.problems.add(problem(json_path, str(error), "showing the last readable version"))
            return ""
        removed = sorted(set(model.checkpoint_names) - set(fresh.checkpoint_names))
        if not (changed or epochs or rows or removed):
            return ""  # keep the object readers hold
        self._index_stale = True
        models[model.id] = by_dir[directory] = fresh
        if changed:
            changes.changed_models.append(model.id)
        if epochs:
            changes.new_checkpoints[model.id] = epochs
        if rows:
            changes.new_metric_rows[model.id] = rows
        if removed:
            changes.removed_checkpoints[model.id] = removed
        return "changed" if changed else ""

    def _save_index(self) -> None:
        """Write each logdir's header index when models changed since it was read (or an
        entry was missing): the next open then costs a ``stat`` per file."""
        directory = self.cache.directory
        if directory is None:
            return
        for root in self.roots:
            known = self._index.get(root, {})
            entries = {}
            ordered = self.ordered_models()  # display order: the first screen first
            placed = {m.id for m in ordered}
            ordered += [m for m in self._by_dir.values() if m.id not in placed]
            for model in ordered:
                path = model.directory
                if not path.is_relative_to(root):
                    continue
                relative = str(path.relative_to(root))
                entry = known.get(relative)
                if entry is None or entry.json_identity != model._json_identity or model.loaded:
                    entry = index.entry_of(model)
                if entry is not None:
                    entries[relative] = entry
            before = {k: e for k in known if (e := known.get(k)) is not None}
            path = index.index_path(directory, root)
            if entries != before or not index.head_path(path).exists():
                index.save(path, root, entries)
            self._index[root] = entries
        self._index_stale = False

    def _find_rewritten(self, models: dict[str, ModelLogs], changes: Changes) -> None:
        """Checkpoints read this session whose file changed since (one stat each, only for
        files actually read: a logdir of thousands of checkpoints costs nothing extra)."""
        if not self._checked and not self._damaged:
            return
        by_dir = {str(m.directory): m for m in models.values()}  # the snapshot being built

        def owner_of(key: str) -> tuple[str, int] | None:
            folder, name = os.path.split(key)
            model = by_dir.get(os.path.dirname(folder))
            epoch = fmt.parse_checkpoint_name(name)
            if model is None or epoch is None or model.id not in models:
                return None
            if model.checkpoint_names.get(epoch) != name:
                return None
            return model.id, epoch

        for key, identity in list(self._checked.items()):
            owner = owner_of(key)
            if owner is None:
                self._checked.pop(key, None)  # gone: reported as a removed checkpoint/model
                continue
            try:
                now: h5.FileIdentity | None = h5.FileIdentity.of(Path(key))
            except OSError:
                now = None
            if now != identity:
                self._checked.pop(key, None)  # re-checked (and re-read) on the next access
                self.files.close(Path(key))
                changes.changed_checkpoints.setdefault(owner[0], []).append(owner[1])
        with self._damaged_lock:
            marks = list(self._damaged.items())
        for key, (marked, _message) in marks:
            owner = owner_of(key)
            if owner is None:
                continue
            try:
                now = h5.FileIdentity.of(Path(key))
            except OSError:
                now = None
            if now != marked and owner[1] not in changes.changed_checkpoints.get(owner[0], []):
                # a damaged file was replaced: cards showing the damage try again
                changes.changed_checkpoints.setdefault(owner[0], []).append(owner[1])

    # --- the model tree and names ----------------------------------------------------------
    @property
    def tree(self) -> ModelTree:
        if self._tree is None:
            self._tree = build_tree(self.models, self.problems)
        return self._tree

    def ordered_models(self) -> list[ModelLogs]:
        """Models experiment by experiment, each by depth then name."""
        return [self.models[i] for e in self.tree.experiments for i in e.models]

    def display_name(self, model: ModelLogs) -> str:
        """The model's name, or its directory name when another model has the same name."""
        counts = self._name_counts
        if counts is None:  # once per snapshot: L3 asks for thousands of names
            counts = self._name_counts = Counter(m.name for m in self.models.values())
        return model.dirname if counts[model.name] > 1 else model.name

    def find_models(self, ref: str) -> list[ModelLogs]:
        """Models that ``ref`` names: exact name, label or directory name; else an id prefix."""
        exact = [m for m in self.models.values() if ref in (m.name, m.label, m.dirname, m.id)]
        if exact:
            by_name = [m for m in exact if m.name == ref or m.dirname == ref or m.id == ref]
            return by_name or exact
        if len(ref) >= 4:
            return [
                m
                for m in self.models.values()
                if m.id.replace("-", "").startswith(ref.replace("-", ""))
            ]
        return []

    def model(self, ref: str) -> ModelLogs:
        """The one model ``ref`` names; UoAError listing candidates otherwise."""
        found = self.find_models(ref)
        if len(found) == 1:
            return found[0]
        if not found:
            names = ", ".join(sorted(self.display_name(m) for m in self.models.values())) or "none"
            raise UoAError(f"no model named {ref!r}; models: {names}")
        options = ", ".join(sorted(f"{m.dirname} (id {m.short_id})" for m in found))
        raise UoAError(
            f"{ref!r} names {len(found)} models: {options}; use the directory name or id"
        )

    def resolve(self, path: str) -> UoA:
        """The unit a path names, checked against the model's architecture."""
        parsed = parse_path(path)
        model = self.model(parsed.model)
        if parsed.layer is None:
            return UoA(model.id)
        try:
            layer = model.layer(parsed.layer)
        except KeyError:
            names = ", ".join(layer.name for layer in model.layers)
            raise UoAError(f"{model.name} has no layer {parsed.layer!r}; layers: {names}") from None
        if parsed.variable is not None and parsed.variable not in layer.variable_names:
            options = ", ".join(layer.variable_names) or "none"
            raise UoAError(
                f"{model.name}/{layer.name} has no variable {parsed.variable!r}; "
                f"variables: {options}"
            )
        if parsed.neuron is not None and layer.units is not None and parsed.neuron >= layer.units:
            raise UoAError(
                f"{model.name}/{layer.name} has {layer.units} units; "
                f"#{parsed.neuron} is out of range"
            )
        return UoA(model.id, layer.name, parsed.variable, parsed.neuron)

    def path(self, uoa: UoA) -> str:
        return format_path(self.display_name(self.model_by_id(uoa.model)), uoa)

    @property
    def arrays(self) -> Arrays:
        """Array facts of checkpoints: summaries, reductions, reads (store/arrays.py).

        A new, stateless service object each time (no reference cycle keeps a dropped store
        and its open files alive); its state (files, cache, damage marks) is the store's.
        """
        return Arrays(self)

    def model_by_id(self, model_id: str) -> ModelLogs:
        """The model with this id (``UnitNotFound`` when it is not, or no longer, here)."""
        model = self.models.get(model_id)
        if model is None:
            raise UnitNotFound(
                f"model id {model_id[:8]} is not in the logdir (its directory was removed?)"
            )
        return model

    # --- checkpoint data ---------------------------------------------------------------------
    # Array data is read through ``self.arrays`` (store/arrays.py); the methods below are
    # its building blocks: find, open and check a file, and mark it damaged.
    def checkpoint_path(self, model_id: str, epoch: int) -> Path:
        model = self.model_by_id(model_id)
        try:
            return model.checkpoints[epoch]
        except KeyError:
            available = ", ".join(map(str, model.epochs)) or "none"
            raise DataError(
                f"{model.name} has no checkpoint of epoch {epoch}; epochs: {available}"
            ) from None

    def identity(self, model_id: str, epoch: int) -> h5.FileIdentity:
        path = self.checkpoint_path(model_id, epoch)
        try:
            return h5.FileIdentity.of(path)
        except OSError as error:
            raise DataError(f"{path}: {error.strerror}") from None

    def checkpoint_label(self, model_id: str, epoch: int) -> str:
        """``checkpoint epoch-0004.h5 of model beta``: how messages name a checkpoint."""
        model = self.model_by_id(model_id)
        path = model.checkpoints.get(epoch)
        name = path.name if path is not None else fmt.checkpoint_name(epoch)
        return f"checkpoint {name} of model {self.display_name(model)}"

    def damaged(self, model_id: str, epoch: int) -> str | None:
        """Why this checkpoint is marked damaged (None when it is not): once a read of it
        failed, it is skipped until the file changes."""
        path = self.models[model_id].checkpoints.get(epoch) if model_id in self.models else None
        if path is None:
            return None
        mark = self._damaged.get(str(path))
        if mark is None:
            return None
        try:
            identity: h5.FileIdentity | None = h5.FileIdentity.of(path)
        except OSError:
            identity = None
        if identity != mark[0]:
            with self._damaged_lock:
                self._damaged.pop(str(path), None)
            self.problems.discard_path(path)
            return None
        return mark[1]

    def damaged_checkpoints(self) -> list[str]:
        """One line per checkpoint found damaged this session (those of models still here)."""
        with self._damaged_lock:
            return [message for _identity, message in self._damaged.values()]

    def mark_damaged(self, model_id: str, epoch: int, what: str) -> CheckpointUnreadable:
        """Record that a checkpoint cannot be read: one ``Problem`` naming the file, and the
        checkpoint skipped for the rest of the session. Returns the error to raise, whose
        message is one line naming the checkpoint and its model."""
        path = self.checkpoint_path(model_id, epoch)
        message = f"{self.checkpoint_label(model_id, epoch)}: {what}"
        try:
            identity: h5.FileIdentity | None = h5.FileIdentity.of(path)
        except OSError:
            identity = None
        with self._damaged_lock:
            first = str(path) not in self._damaged
            if first:
                self._damaged[str(path)] = (identity, message)
        if first:
            self.problems.add(
                problem(path, what, "skipped for this session; other checkpoints remain usable")
            )
        self.files.close(path)
        return CheckpointUnreadable(message if first else self._damaged[str(path)][1])

    def checkpoint(self, model_id: str, epoch: int) -> h5py.File:
        """The open, checked checkpoint file (``CheckpointUnreadable`` + a Problem when it
        cannot be used: damaged, truncated, another model's or epoch's, another format)."""
        path = self.checkpoint_path(model_id, epoch)
        reason = self.damaged(model_id, epoch)
        if reason is not None:
            raise CheckpointUnreadable(reason)
        model = self.models[model_id]
        if not self._checkpoint_inside(model.root, path):
            raise self.mark_damaged(model_id, epoch, "leads outside the logdir; not read")
        try:
            f = self.files.get(path)
        except FileNotFoundError:
            raise DataError(
                f"{self.checkpoint_label(model_id, epoch)} disappeared (deleted while reading?)"
            ) from None
        except IsADirectoryError:
            raise self.mark_damaged(model_id, epoch, "is a directory, not a file") from None
        except OSError:
            raise self.mark_damaged(
                model_id, epoch, "cannot be opened (file damaged or truncated)"
            ) from None
        try:
            identity = h5.FileIdentity.of(path)
        except OSError:
            raise DataError(
                f"{self.checkpoint_label(model_id, epoch)} disappeared (deleted while reading?)"
            ) from None
        if self._checked.get(str(path)) != identity:
            try:
                attrs = read_attrs(f)
                self._attrs.put(str(path), identity, attrs)
                check_version(attrs)
            except h5.ReadError:
                raise self.mark_damaged(
                    model_id, epoch, "attributes cannot be read (file damaged or truncated)"
                ) from None
            except DataError as error:
                raise self.mark_damaged(model_id, epoch, str(error)) from None
            mismatch = _belongs_elsewhere(attrs, model, epoch)
            if mismatch is not None:
                raise self.mark_damaged(model_id, epoch, mismatch)
            self._checked[str(path)] = identity
        return f

    def attrs(self, model_id: str, epoch: int) -> dict[str, Any]:
        """The checkpoint's root attributes: those ``checkpoint`` read when it checked the
        file (a copy), else read now."""
        f = self.checkpoint(model_id, epoch)
        key = str(self.checkpoint_path(model_id, epoch))
        cached = self._attrs.get(key, self._checked.get(key))
        if cached is not None:
            return copy.deepcopy(cached)  # callers may change theirs
        try:
            return read_attrs(f)
        except h5.ReadError:
            raise self.mark_damaged(
                model_id, epoch, "attributes cannot be read (file damaged or truncated)"
            ) from None

    def summary_table(self, model_id: str, epoch: int) -> SummaryTable:
        f = self.checkpoint(model_id, epoch)
        key = str(self.checkpoint_path(model_id, epoch))
        identity = self._checked.get(key)  # set by checkpoint() for the file just opened
        cached = self._summaries.get(key, identity)
        if cached is not None:
            return cached
        try:
            table = read_summary(f)
        except h5.ReadError:
            raise self.mark_damaged(
                model_id,
                epoch,
                f"dataset {fmt.SUMMARY_GROUP} cannot be read (file damaged or truncated)",
            ) from None
        if identity is not None:
            self._summaries.put(key, identity, table)
        return table

    def dataset(self, model_id: str, epoch: int, name: str) -> h5py.Dataset:
        """A dataset of a checkpoint by its HDF5 path (hard links only); a channels-first
        layer's activations and class means, and a weight whose units are not its last axis
        (torch's), with that axis last (see ``ChannelsLastDataset``)."""
        node = self._dataset(model_id, epoch, name)
        axis = self._unit_axis(model_id, name)
        if axis is None:
            return node
        try:
            ndim = len(h5.shape(node))
        except h5.ReadError:
            raise self.unreadable(model_id, epoch, name) from None
        if ndim > axis + 1:
            return ChannelsLastDataset(node, axis)  # answers the Dataset interface we use
        return node

    def _unit_axis(self, model_id: str, name: str) -> int | None:
        """The axis of the units of a layer's activations, class means or weight when
        model.json names one other than the last (``channel_axis``, ``unit_axis``)."""
        parts = name.strip("/").split("/")
        if len(parts) < 3 or parts[0] != fmt.LAYERS_GROUP:
            return None
        model = self.models.get(model_id)
        layer = next(
            (x for x in (model.layers if model else []) if fmt.h5_key(x.name) == parts[1]), None
        )
        if layer is None:
            return None
        if len(parts) == 3 and parts[2] in (fmt.ACTIVATIONS, fmt.MEAN_CLASS_ACTIVATIONS):
            return layer.channel_axis
        if len(parts) == 4 and parts[2] == fmt.WEIGHTS_GROUP:
            for variable in layer.variables:
                axis = variable.get("unit_axis")
                if fmt.h5_key(str(variable.get("name"))) == parts[3] and isinstance(axis, int):
                    return axis if not isinstance(axis, bool) and axis >= 0 else None
        return None

    def _dataset(self, model_id: str, epoch: int, name: str) -> h5py.Dataset:
        f = self.checkpoint(model_id, epoch)
        try:
            node = h5.safe_get(f, name)
        except KeyError:
            try:
                once = stored_once(f, name)  # a layer whose values another layer's repeat
            except h5.ReadError:
                raise self.unreadable(model_id, epoch, name) from None
            if once is not None:
                return once  # the part of the Dataset interface the store uses
            raise DataError(f"{self.models[model_id].name} epoch {epoch} has no {name!r}") from None
        except h5.UnsafeObject as error:  # refused, not damaged: the rest stays readable
            path = self.checkpoint_path(model_id, epoch)
            self.problems.add(problem(path, str(error), "other checkpoints remain usable"))
            raise DataError(f"{self.checkpoint_label(model_id, epoch)}: {error}") from None
        except h5.ReadError:
            raise self.unreadable(model_id, epoch, name) from None
        if not hasattr(node, "dtype"):  # a group, not a dataset
            raise DataError(f"{name!r} is a group, not a dataset")
        return node

    def unreadable(self, model_id: str, epoch: int, name: str) -> CheckpointUnreadable:
        """Mark the checkpoint damaged because dataset ``name`` cannot be read."""
        return self.mark_damaged(
            model_id, epoch, f"dataset {name} cannot be read (file damaged or truncated)"
        )

    def has(self, model_id: str, epoch: int, name: str) -> bool:
        """Whether the checkpoint holds dataset ``name``. ``CheckpointUnreadable`` for a
        checkpoint that cannot be read: "damaged" must not read as "absent" (a caller would
        then report a missing array, or fail the whole query, instead of skipping it)."""
        try:
            f = self.checkpoint(model_id, epoch)
            return h5.has(f, name) or stored_once(f, name) is not None
        except h5.ReadError:
            raise self.unreadable(model_id, epoch, name) from None
        except CheckpointUnreadable:
            raise
        except DataError:
            return False

    def close(self) -> None:
        self.files.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _belongs_elsewhere(attrs: dict[str, Any], model: ModelLogs, epoch: int) -> str | None:
    """Why a checkpoint's attributes say it is not this model's checkpoint of ``epoch`` (a
    file copied or swapped into the wrong place), or None. Absent attributes pass."""
    owner = attrs.get(fmt.ATTR_MODEL_ID)
    if isinstance(owner, str) and owner and model.id and owner != model.id:
        return f"belongs to another model (id {owner[:8]}, not {model.short_id}); not read"
    written = attrs.get(fmt.ATTR_EPOCH)
    if isinstance(written, int) and not isinstance(written, bool) and written != epoch:
        return f"holds epoch {written}, not {epoch} (renamed or swapped?); not read"
    return None
