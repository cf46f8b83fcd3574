"""Checkpoints: one folder per checkpoint, written atomically, verified before use.

Layout::

    DIR/ckpt-000005/meta.json        epochs completed, config and graph fingerprints, world size, sha256 per file
    DIR/ckpt-000005/shared.pt        state every rank holds identically: model, optimizer (taken from rank 0)
    DIR/ckpt-000005/rank-00000.pt    each rank's own state: strategy buffers and caches, RNG states

A checkpoint is built in a hidden sibling folder, every file and the folder are fsynced, then it is
renamed into place: an interrupted write never leaves a ``ckpt-*`` folder that looks complete.
Tensors go through ``torch.save`` and come back with ``torch.load(weights_only=True)`` (no code runs on
load). Reading checks every file's sha256 against ``meta.json``; a damaged checkpoint is reported by
file name and the next older valid one is used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

import gnndist
from gnndist.io import fsync_dir, install_dir, write_synced

if TYPE_CHECKING:
    from gnndist.config import JobConfig

FORMAT_VERSION = 1
META_FILE = "meta.json"
SHARED_FILE = "shared.pt"
SHARED_KEYS = ("model", "optimizer")  # identical on every rank: stored once
PREFIX = "ckpt-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, damaged, or written for another job. Names the file."""


def rank_file(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


def checkpoint_folder(epoch: int) -> str:
    return f"{PREFIX}{epoch:06d}"


# --- what a checkpoint belongs to --------------------------------------------------------------

def config_identity(config: "JobConfig") -> dict[str, Any]:
    """The config settings that change the trained parameters (:func:`gnndist.config.identity`): locations,
    cluster, checkpoint and output settings, epochs, evaluation and threads may differ when resuming."""
    from gnndist.config import identity

    return identity(config)


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["model.hidden: 16 -> 32", ...]``: the result-changing keys that differ."""
    before, after = _flatten(old), _flatten(new)
    shown = lambda flat, key: repr(flat[key]) if key in flat else "(unset)"  # noqa: E731
    return [f"{key}: {shown(before, key)} -> {shown(after, key)}" for key in sorted(before.keys() | after.keys()) if shown(before, key) != shown(after, key)]


@dataclasses.dataclass(frozen=True)
class JobIdentity:
    """What a checkpoint must match to be resumed: the result-changing config and the graph
    (the config fixes the number of ranks)."""

    config: dict[str, Any]
    graph_fingerprint: str

    @classmethod
    def of(cls, config: "JobConfig", graph_fingerprint: str, aggregation_backends: dict[str, str] | None = None) -> "JobIdentity":
        """The identity of ``config`` on the graph of ``graph_fingerprint``; ``aggregation_backends`` (what ``auto`` resolved to on
        this machine) is part of it, since backends differ in their last bits."""
        identity = config_identity(config)
        if aggregation_backends is not None:
            identity["aggregation"] = {**identity["aggregation"], "backends": aggregation_backends}
        return cls(identity, graph_fingerprint)

    @property
    def config_fingerprint(self) -> str:
        return fingerprint(self.config)


# --- RNG states -----------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """This process's torch, numpy and Python RNG states, as tensors and plain values (``weights_only``-loadable)."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position), "has_gauss": int(has_gauss), "cached_gauss": float(cached_gauss)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- trainers -----------------------------------------------------------------------------------


def collect_states(trainer: Any) -> list[dict[str, Any]]:
    """Per-rank states of ``trainer``: ``state_dicts()`` of a distributed driver, else ``[state_dict()]``."""
    if hasattr(trainer, "state_dicts"):
        return trainer.state_dicts()
    if hasattr(trainer, "state_dict"):
        return [trainer.state_dict()]
    raise TypeError(f"{type(trainer).__name__} has neither state_dicts() nor state_dict(): it cannot be checkpointed")


def restore_states(trainer: Any, states: list[dict[str, Any]]) -> None:
    """Loads per-rank ``states`` into ``trainer`` (the inverse of :func:`collect_states`)."""
    if hasattr(trainer, "load_state_dicts"):
        trainer.load_state_dicts(states)
    else:
        trainer.load_state_dict(states[0])


# --- on disk --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CheckpointMeta:
    """The content of ``meta.json``.

    Attributes:
        format_version: on-disk format version.
        epoch: epochs completed; training resumes at this epoch.
        config_fingerprint, config: hash and content of :func:`config_identity` of the job.
        graph_fingerprint: ``Graph.fingerprint()`` of the trained graph.
        world_size: ranks whose state is stored (one ``rank-*.pt`` each).
        files: sha256 of every file, by name.
        created: UNIX time of writing; gnndist_version: the version that wrote it.
    """

    format_version: int
    epoch: int
    config_fingerprint: str
    config: dict[str, Any]
    graph_fingerprint: str
    world_size: int
    files: dict[str, str]
    created: float
    gnndist_version: str


def _tensor_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One verified checkpoint folder."""

    path: Path
    meta: CheckpointMeta

    @property
    def epoch(self) -> int:
        return self.meta.epoch

    def _checked_bytes(self, name: str) -> bytes:
        path = self.path / name
        if not path.is_file():
            raise CheckpointError(f"Checkpoint file {path} is missing")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CheckpointError(f"Checkpoint file {path} cannot be read ({error})") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.meta.files.get(name):
            raise CheckpointError(f"Checkpoint file {path} is corrupted or truncated: sha256 {digest[:12]}... does not match meta.json")
        return data

    def _read(self, name: str) -> Any:
        data = self._checked_bytes(name)
        try:
            return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        except Exception as error:  # a matching digest with unloadable content: not written by gnndist
            raise CheckpointError(f"Checkpoint file {self.path / name} cannot be loaded ({error})") from None

    def verify(self) -> None:
        """Checks that every file listed in ``meta.json`` exists with its sha256."""
        for name in self.meta.files:
            self._checked_bytes(name)

    def load_states(self) -> list[dict[str, Any]]:
        """Per-rank state dicts: the shared state merged into each rank's own."""
        shared = self._read(SHARED_FILE)
        return [{**shared, **self._read(rank_file(rank))} for rank in range(self.meta.world_size)]

    def check_compatible(self, identity: JobIdentity) -> None:
        """Raises :class:`CheckpointError` naming what differs when ``identity`` is not the job that wrote this."""
        meta, where = self.meta, self.path
        if meta.config_fingerprint != identity.config_fingerprint:
            changes = "; ".join(config_changes(meta.config, identity.config)) or "fingerprints differ"
            raise CheckpointError(f"Cannot resume from {where}: it was written for a different config ({changes}); resume with the original settings or start a new run")
        if meta.graph_fingerprint != identity.graph_fingerprint:
            raise CheckpointError(f"Cannot resume from {where}: it was written for graph {meta.graph_fingerprint}, the dataset now gives graph {identity.graph_fingerprint} (the data changed)")


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads and verifies the checkpoint folder ``path``; raises :class:`CheckpointError` naming the bad file."""
    path = Path(path)
    meta_path = path / META_FILE
    try:
        values = json.loads(meta_path.read_text())
        meta = CheckpointMeta(**values)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint file {meta_path} is missing") from None
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"Checkpoint file {meta_path} is corrupted or truncated ({error})") from None
    if meta.format_version > FORMAT_VERSION:
        raise CheckpointError(f"Checkpoint {path} has format version {meta.format_version}; this gnndist reads up to {FORMAT_VERSION}")
    checkpoint = Checkpoint(path, meta)
    checkpoint.verify()
    return checkpoint


class CheckpointStore:
    """The checkpoint folder of a run: writes ``ckpt-<epoch>`` atomically, keeps the last ``keep``.

    Args:
        directory: where the ``ckpt-*`` folders live.
        identity: the job the checkpoints belong to (fingerprints written into ``meta.json``); None: a store
            that is only read (``gnndist predict``).
        keep: checkpoints kept (older ones are deleted after each write), >= 1.
    """

    def __init__(self, directory: str | os.PathLike, identity: JobIdentity | None = None, *, keep: int = 3):
        if keep < 1:
            raise ValueError(f"Expected checkpoint keep >= 1 (got {keep})")
        self.directory, self.identity, self.keep = Path(directory), identity, keep

    def paths(self) -> list[Path]:
        """Checkpoint folders, oldest first (by epoch)."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()]
        return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))

    def clear(self) -> None:
        """Deletes every checkpoint (a run started again with ``--force``)."""
        for path in self.paths():
            shutil.rmtree(path)

    def discard_partial(self) -> None:
        """Deletes half-written checkpoint folders: an interrupt can land between creating one and the
        ``try`` that removes it, and a killed process leaves its own."""
        if self.directory.is_dir():
            for path in self.directory.glob(f".{PREFIX}*.tmp-*"):
                shutil.rmtree(path, ignore_errors=True)

    def save(self, epoch: int, states: list[dict[str, Any]]) -> Path:
        """Writes the per-rank ``states`` after ``epoch`` completed epochs; returns the folder."""
        if not states:
            raise ValueError("Expected at least one rank state (got none)")
        if self.identity is None:
            raise ValueError(f"Checkpoint store {self.directory} was opened without a job identity: it is read-only")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.discard_partial()
        target = self.directory / checkpoint_folder(epoch)
        tmp = self.directory / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir()
            blobs = {SHARED_FILE: _tensor_bytes({k: states[0][k] for k in SHARED_KEYS if k in states[0]})}
            blobs.update({rank_file(rank): _tensor_bytes({k: v for k, v in state.items() if k not in SHARED_KEYS}) for rank, state in enumerate(states)})
            files = {name: write_synced(tmp / name, data) for name, data in blobs.items()}
            identity = self.identity
            meta = CheckpointMeta(FORMAT_VERSION, epoch, identity.config_fingerprint, identity.config, identity.graph_fingerprint, len(states), files, time.time(), gnndist.__version__)
            write_synced(tmp / META_FILE, (json.dumps(dataclasses.asdict(meta), indent=2) + "\n").encode())
            fsync_dir(tmp)
            install_dir(tmp, target)  # the same epoch again replaces it (after falling back past a damaged one)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        for old in self.paths()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def latest(self, on_invalid: Callable[[CheckpointError], None] | None = None) -> Checkpoint | None:
        """The newest checkpoint that verifies; damaged ones are passed to ``on_invalid`` and skipped.

        Returns None when there is no checkpoint at all; raises :class:`CheckpointError` (naming every
        damaged file) when there are checkpoints but none is valid.
        """
        problems = []
        for path in reversed(self.paths()):
            try:
                return read_checkpoint(path)
            except CheckpointError as error:
                problems.append(str(error))
                if on_invalid is not None:
                    on_invalid(error)
        if problems:
            raise CheckpointError("No valid checkpoint in " + f"{self.directory}: " + "; ".join(problems))
        return None
