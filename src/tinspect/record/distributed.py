"""Which process of a multi-process training run this is, on every Keras backend.

In a multi-process run (JAX multi-process, torch distributed, TensorFlow multi-worker)
every process runs the same script, so every process constructs the same
``InspectCheckpoint``. Only one of them may write: the others would write the same model
directory at the same time (same header id) or, with their own headers, fill the logdir with
copies of one model. tinspect's rule is the usual one for loggers: process 0 writes, the
others record nothing and never touch the logdir.

Each backend is asked in its own terms, and only when its runtime has been set up for
several processes, so that asking never starts a runtime itself (``jax.process_index()``
before ``jax.distributed.initialize`` would initialize JAX for one process and make the
later ``initialize`` fail).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def process_index(backend: str) -> int:
    """This process's index in a multi-process run on ``backend``; 0 when it runs alone."""
    if backend == "jax":
        return _jax_index()
    if backend == "torch":
        return _torch_rank()
    if backend == "tensorflow":
        return _tf_task_index()
    return 0


def process_count(backend: str) -> int:
    """How many processes train together on ``backend``; 1 when this one runs alone."""
    if backend == "jax":
        jax = sys.modules.get("jax")
        return int(jax.process_count()) if jax is not None and _jax_initialized() else 1
    if backend == "torch":
        dist = getattr(sys.modules.get("torch"), "distributed", None)
        if dist is not None and dist.is_available() and dist.is_initialized():
            return int(dist.get_world_size())
        return 1
    if backend == "tensorflow":
        config = _tf_config()
        return max(1, sum(len(tasks) for tasks in config[2].values())) if config else 1
    return 1


def _jax_initialized() -> bool:
    """Whether ``jax.distributed.initialize`` ran (without starting JAX to find out)."""
    try:
        from jax._src import distributed  # where initialize() keeps its state

        return distributed.global_state.client is not None
    except (ImportError, AttributeError):
        return True  # another JAX layout: asking is safe once Keras has used JAX anyway


def _jax_index() -> int:
    jax = sys.modules.get("jax")
    if jax is None or not _jax_initialized():
        return 0
    return int(jax.process_index())


def _torch_rank() -> int:
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    dist = getattr(torch, "distributed", None)
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return 0
    return int(dist.get_rank())


def _tf_task_index() -> int:
    """0 for the chief of a TensorFlow cluster (or worker 0 when there is no chief)."""
    resolver: Any = None
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            strategy = tf.distribute.get_strategy()
            resolver = getattr(strategy, "cluster_resolver", None)
        except (AttributeError, ValueError, RuntimeError):
            resolver = None
    if resolver is not None and getattr(resolver, "task_type", None):
        task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
        try:
            cluster = resolver.cluster_spec().as_dict()
        except (AttributeError, ValueError, RuntimeError):
            cluster = {}
        return _chief_first(task_type, task_id, cluster)
    config = _tf_config()
    if config is None:
        return 0
    return _chief_first(*config)


def _tf_config() -> tuple[str, int, dict[str, list[Any]]] | None:
    """(task type, task index, cluster: role → its tasks) from ``TF_CONFIG``; None when
    the variable is unset, names no task, or is malformed in any way.

    Malformed means "not a multi-worker run": TensorFlow itself refuses such a
    ``TF_CONFIG`` when a multi-worker strategy is made, and a variable left over in the
    environment of a one-process run must not stop (or silence) its recorder. Roles whose
    value is not a list of tasks are ignored, as is an index that is not a whole number
    ≥ 0 (the task is then taken as index 0 of its role).
    """
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None
    if not isinstance(config, dict):
        return None
    task = config.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str):
        return None
    index = task.get("index", 0)
    if isinstance(index, str):
        try:  # int() refuses superscripts (which isdigit() accepts) and 4,300+ digits
            index = int(index) if index.isdecimal() else 0
        except ValueError:
            index = 0
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        index = 0
    raw = config.get("cluster")
    cluster = (
        {str(role): tasks for role, tasks in raw.items() if isinstance(tasks, list)}
        if isinstance(raw, dict)
        else {}
    )
    return task["type"], index, cluster


def _chief_first(task_type: str, task_id: int, cluster: dict[str, list[Any]]) -> int:
    """A task's index with the chief first: chief 0, then the workers; other roles
    (parameter servers, evaluators) are never 0."""
    has_chief = bool(cluster.get("chief"))
    if task_type in ("chief", "master"):
        return task_id
    if task_type == "worker":
        return task_id + (1 if has_chief else 0)
    return 1 + len(cluster.get("worker") or ()) + task_id + (1 if has_chief else 0)
