"""The npz format: one ``.npz`` file users write with numpy (no pickles inside).

Keys (arrays; only ``edge_index`` is required):
    edge_index   int  [2, E]   (src, dst) of every directed edge
    num_nodes    int  scalar   defaults to the length of ``x``/``y`` or max id + 1
    num_classes  int  scalar   defaults to the largest label + 1 (see ``Graph``)
    x            float [N, F]  node features
    y            int  [N]      labels (or float [N, C] multi-label)
    train_mask, val_mask, test_mask   bool [N]
    edge_weight  float [E]

Write one with ``np.savez(path, edge_index=..., x=..., y=..., train_mask=...)`` or :func:`save_npz`.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from gnndist.graph import NODE_FIELDS, Graph

SCALAR_KEYS = ("num_nodes", "num_classes")
NPZ_KEYS = ("edge_index", *SCALAR_KEYS, "edge_weight", *NODE_FIELDS)
# numpy dtype kinds each key accepts (b bool, i/u integer, f float), and what to say when it has another
EXPECTED_KINDS = {
    "edge_index": ("iu", "integer node ids [2, E]"),
    "num_nodes": ("iu", "an integer scalar"),
    "num_classes": ("iu", "an integer scalar"),
    "edge_weight": ("iuf", "float weights [E]"),
    "x": ("biuf", "numeric features [N, F]"),
    "y": ("iuf", "integer labels [N] or float multi-labels [N, C]"),
    **{name: ("b", "a bool mask [N]") for name in ("train_mask", "val_mask", "test_mask")},
}


def read_npz(file: Path, expected: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``file`` (no pickles), with errors that name the file.

    Args:
        file: the archive.
        expected: what the archive should hold, for the error messages (e.g. "an npz graph with 'edge_index'").

    Raises:
        ValueError: the file is not an npz archive (a ``.npy`` file, another format, truncated) or an
            array in it is corrupted (CRC mismatch, bad header) or holds Python objects.
    """
    with open(file, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"{file} is a single .npy array, not an .npz archive; expected {expected} (write it with np.savez)")
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{file} is not an .npz archive (not a zip file: truncated, or another format); expected {expected}")
    try:
        with np.load(file, allow_pickle=False) as arrays:
            return {key: arrays[key] for key in arrays.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # CRC mismatch, truncated member, bad compression
        raise ValueError(f"{file} is corrupted ({error}); expected {expected}") from error
    except ValueError as error:  # pickled (object) arrays, or a damaged array header
        raise ValueError(f"Cannot read {file}: {error}; expected {expected} with numeric arrays only (object arrays are not allowed)") from error


def npz(path: str, *, root: str | None = None) -> Graph:
    """Loads a graph from ``path`` (relative paths resolve against ``root`` when given)."""
    file = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {file}")
    contents = read_npz(file, "an npz graph with 'edge_index' (see gnndist.data.npz)")
    unknown = sorted(set(contents) - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"{file}: unknown key(s) {unknown}; expected some of {list(NPZ_KEYS)}")
    if "edge_index" not in contents:
        raise ValueError(f"{file}: missing required key 'edge_index' (int array of shape [2, E])")
    for key, value in contents.items():
        kinds, expected = EXPECTED_KINDS[key]
        if value.dtype.kind not in kinds:
            raise ValueError(f"{file}: key {key!r} has dtype {value.dtype}; expected {expected}")
        if key in SCALAR_KEYS and value.ndim != 0:
            raise ValueError(f"{file}: key {key!r} has shape {value.shape}; expected {expected}")
    scalars = {key: int(contents.pop(key)) for key in SCALAR_KEYS if key in contents}
    edge_index = contents.pop("edge_index")
    weight = contents.pop("edge_weight", None)
    tensors = {key: torch.from_numpy(value) for key, value in contents.items()}
    try:
        return Graph.from_edge_index(torch.from_numpy(edge_index), scalars.get("num_nodes"), edge_weight=weight, num_classes=scalars.get("num_classes"), **tensors)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{file}: {error}") from error


def save_npz(graph: Graph, path: str | Path) -> None:
    """Writes ``graph`` in the npz format (atomically: temp file, fsync, rename)."""
    from gnndist.io import atomic_path

    arrays = {"edge_index": graph.edge_index().numpy(), "num_nodes": np.int64(graph.num_nodes)}
    if graph.y is not None:
        arrays["num_classes"] = np.int64(graph.num_classes)
    arrays.update({key: value.numpy() for key, value in graph.node_data().items()})
    if graph.edge_weight is not None:
        arrays["edge_weight"] = graph.edge_weight.numpy()
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)
