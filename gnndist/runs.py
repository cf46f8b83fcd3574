"""A finished run in Python: its config, checkpoint and trained model; prediction exports written and read.

``load_model(RUN_DIR)`` gives the trained ``torch.nn.Module`` (a user model unwrapped: the class the config
named) and the run's config. ``gnndist predict`` writes one file per part into a folder:

    OUT/meta.json                 what was exported: run, checkpoint, what, layer, shapes, files, accuracies
    OUT/part-00000.safetensors    ``global_ids`` [n] int64 and ``rows`` [n, F] float32 of the part's nodes

The folder is built beside its target and renamed into place (never half written), and replaces an
existing one only when asked (``force``) and only if gnndist wrote it. Everything is read back safely:
checkpoints with ``torch.load(weights_only=True)``, exports with safetensors (no code runs on load).
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import torch

import gnndist
from gnndist.io import check_replaceable, fsync_dir, install_dir, write_synced

if TYPE_CHECKING:
    from gnndist.config import JobConfig
    from gnndist.models import ModelSpec
    from gnndist.train.predict import Prediction

META_FILE = "meta.json"
EXPORT_FORMAT = "gnndist.predictions"


def part_file(part_id: int) -> str:
    return f"part-{part_id:05d}.safetensors"


@dataclass(frozen=True)
class TrainedRun:
    """What a run directory holds for inference.

    Attributes:
        run_dir: the run directory.
        config: its job config (``config.yaml``).
        spec: the model as trained (widths from ``summary.json``).
        model_state: the trained parameters (the checkpoint's ``model``).
        checkpoint: the checkpoint folder they come from; ``graph_fingerprint`` the graph it was trained on.
        summary: ``summary.json`` (empty when the run did not finish).
    """

    run_dir: Path
    config: "JobConfig"
    spec: "ModelSpec"
    model_state: dict[str, Any]
    checkpoint: Path
    graph_fingerprint: str
    summary: dict[str, Any]


def read_run(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> TrainedRun:
    """Reads a run directory: ``config.yaml`` (with ``overrides``), ``summary.json`` and a checkpoint.

    Args:
        run_dir: ``output.dir`` of a ``gnndist train`` run.
        checkpoint: a checkpoint folder (default: the newest valid one of the run).
        overrides: ``section.key=value`` applied to the run's config (settings that do not change the model).

    Raises:
        FileNotFoundError: no ``config.yaml`` or no checkpoint.
        CheckpointError: a damaged checkpoint (naming the file).
    """
    from gnndist.config import load_config
    from gnndist.models import ModelSpec
    from gnndist.runtime.checkpoint import CheckpointStore, read_checkpoint

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"No config.yaml in {run_dir}: is it a gnndist run directory?")
    config = load_config(config_path, list(overrides))
    if checkpoint is not None:
        found = read_checkpoint(checkpoint)
    else:
        directory = Path(config.checkpoint.dir) if config.checkpoint.dir else run_dir / "checkpoints"
        found = CheckpointStore(directory).latest()
        if found is None:
            raise FileNotFoundError(f"No checkpoint in {directory}: the run saved none (checkpoints are written at the end of training); give one with --checkpoint")
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if "graph" in summary:
        num_features, num_classes = summary["graph"]["num_features"], summary["graph"]["num_classes"]
    else:  # an unfinished run: the widths come from the dataset
        from gnndist.modes.base import JobData

        info = JobData(config).info
        num_features, num_classes = info.num_features, info.num_classes
    spec = ModelSpec.from_config(config, num_features, num_classes)
    model_state = found.load_states()[0]["model"]
    return TrainedRun(run_dir, config, spec, model_state, found.path, found.meta.graph_fingerprint, summary)


class LoadedModel(NamedTuple):
    """A run's trained model (eval mode) and its config: ``model, config = gnndist.load_model(RUN_DIR)``."""

    model: torch.nn.Module
    config: "JobConfig"


def load_model(run_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None) -> LoadedModel:
    """The trained model of a run, in eval mode, and the run's config: ``model, config = gnndist.load_model(RUN_DIR)``.

    A user model (``model.name=package.module:Class``) comes back as that class, callable as the user wrote it
    (``model(x, edge_index)``); a built-in as gnndist's layer-wise GNN (``model(x, Block)``).

    Args:
        run_dir: ``output.dir`` of a ``gnndist train`` run.
        checkpoint: a checkpoint folder (default: the run's newest valid one).
    """
    from gnndist.models.adapter import PyGLayers
    from gnndist.train.predict import build_trained

    run = read_run(run_dir, checkpoint)
    model = build_trained(run.spec, run.model_state)
    return LoadedModel(model.module if isinstance(model, PyGLayers) else model, run.config)


# --- prediction exports ---------------------------------------------------------------------------------


def is_export_directory(directory: Path) -> bool:
    """Whether ``directory`` holds a ``meta.json`` that ``gnndist predict`` wrote."""
    try:
        values = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(values, dict) and values.get("format") == EXPORT_FORMAT


def check_export_target(directory: Path, force: bool) -> None:
    """Raises unless ``directory`` may be written: absent, or (with ``force``) empty or an export gnndist wrote
    (the rule of :func:`gnndist.io.check_replaceable`: ``--force`` never deletes a user's folder)."""
    check_replaceable(directory, force, kind="Output folder", ours="a prediction export gnndist wrote", is_ours=is_export_directory)


def write_predictions(directory: str | os.PathLike, predictions: Sequence["Prediction"], meta: dict[str, Any], *, force: bool = False) -> Path:
    """Writes one safetensors file per part (``global_ids``, ``rows``) and ``meta.json``, atomically.

    Args:
        directory: the export folder (see :func:`check_export_target`).
        predictions: one per part, in part order.
        meta: what was exported (run, checkpoint, what, layer, ...); files and shapes are added.
        force: replace an export gnndist wrote there before.
    """
    from safetensors.torch import save

    directory = Path(directory)
    check_export_target(directory, force)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        files = {}
        for part_id, prediction in enumerate(predictions):
            tensors = {"global_ids": prediction.global_ids.to(torch.int64).contiguous(), "rows": prediction.rows.to(torch.float32).contiguous()}
            files[part_file(part_id)] = {"rows": list(prediction.rows.shape), "sha256": write_synced(tmp / part_file(part_id), save(tensors))}
        num_nodes = sum(p.rows.size(0) for p in predictions)
        width = predictions[0].rows.size(1) if predictions else 0
        values = {"format": EXPORT_FORMAT, "gnndist_version": gnndist.__version__, **meta, "shape": [num_nodes, width], "parts": len(predictions), "files": files}
        write_synced(tmp / META_FILE, (json.dumps(values, indent=2) + "\n").encode())
        fsync_dir(tmp)
        check_export_target(directory, force)  # again: it may have appeared while the rows were computed
        install_dir(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


def read_predictions(directory: str | os.PathLike) -> "Prediction":
    """Every part's rows of an export, ordered by global id (safetensors: no code runs on load)."""
    from safetensors.torch import load_file

    from gnndist.train.predict import Prediction

    directory = Path(directory)
    if not is_export_directory(directory):
        raise FileNotFoundError(f"{directory} is not a gnndist prediction export (no gnndist {META_FILE})")
    meta = json.loads((directory / META_FILE).read_text())
    loaded = [load_file(directory / name) for name in meta["files"]]
    global_ids = torch.cat([t["global_ids"] for t in loaded])
    rows = torch.cat([t["rows"] for t in loaded])
    order = torch.argsort(global_ids)
    return Prediction(global_ids[order], rows[order])
