"""The npz format: one ``.npz`` file users write with numpy (no pickles inside).

Keys (arrays; only ``edge_index`` is required):
    edge_index   int  [2, E]   (src, dst) of every directed edge
    num_nodes    int  scalar   defaults to the length of ``x``/``y`` or max id + 1
    x            float [N, F]  node features
    y            int  [N]      labels (or float [N, C] multi-label)
    train_mask, val_mask, test_mask   bool [N]
    edge_weight  float [E]

Write one with ``np.savez(path, edge_index=..., x=..., y=..., train_mask=...)`` or :func:`save_npz`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gnndist.graph import NODE_FIELDS, Graph

NPZ_KEYS = ("edge_index", "num_nodes", "edge_weight", *NODE_FIELDS)


def npz(path: str, *, root: str | None = None) -> Graph:
    """Loads a graph from ``path`` (relative paths resolve against ``root`` when given)."""
    file = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {file}")
    try:
        with np.load(file, allow_pickle=False) as arrays:
            contents = {key: arrays[key] for key in arrays.files}
    except ValueError as error:
        raise ValueError(f"Cannot read npz dataset {file}: {error} (object arrays are not allowed)") from error
    unknown = sorted(set(contents) - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"{file}: unknown key(s) {unknown}; expected some of {list(NPZ_KEYS)}")
    if "edge_index" not in contents:
        raise ValueError(f"{file}: missing required key 'edge_index' (int array of shape [2, E])")
    num_nodes = int(contents.pop("num_nodes")) if "num_nodes" in contents else None
    edge_index = contents.pop("edge_index")
    weight = contents.pop("edge_weight", None)
    tensors = {key: torch.from_numpy(value) for key, value in contents.items()}
    try:
        return Graph.from_edge_index(torch.from_numpy(edge_index), num_nodes, edge_weight=weight, **tensors)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{file}: {error}") from error


def save_npz(graph: Graph, path: str | Path) -> None:
    """Writes ``graph`` in the npz format (atomically: temp file, fsync, rename)."""
    from gnndist.io import atomic_path

    arrays = {"edge_index": graph.edge_index().numpy(), "num_nodes": np.int64(graph.num_nodes)}
    arrays.update({key: value.numpy() for key, value in graph.node_data().items()})
    if graph.edge_weight is not None:
        arrays["edge_weight"] = graph.edge_weight.numpy()
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)
