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

Typed variant (a :class:`~gnndist.hetero.HeteroGraph`; a file with ``node_types`` is one). Node data per type
under ``<type>/``, a relation's edges under its :func:`~gnndist.hetero.edge_type_name`:
    node_types                       str [T]       the node types, in order
    edge_types                       str [R, 3]    (src_type, relation, dst_type) of every relation, in order
    target                           str scalar    the node type a node task trains on (default: the one labeled type)
    <type>/num_nodes                 int scalar    required for every node type
    <type>/num_classes               int scalar
    <type>/x, <type>/y, <type>/train_mask, <type>/val_mask, <type>/test_mask   as above, [N_type] rows
    <src>__<rel>__<dst>/edge_index   int [2, E]    (src, dst) in the two types' own ids; required for every relation

e.g. ``paper/x``, ``author__writes__paper/edge_index``. :func:`save_npz` writes a HeteroGraph this way.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

from gnndist.graph import MASK_FIELDS, NODE_FIELDS, Graph
from gnndist.hetero import EdgeType, HeteroGraph, edge_type_name

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
    **{name: ("b", "a bool mask [N]") for name in MASK_FIELDS},
}
TYPED_KEYS = {  # the typed variant's own keys: numpy dtype kind (U: str), dimensions, what to say when wrong
    "node_types": ("U", 1, "node type names [T]"),
    "edge_types": ("U", 2, "(src_type, relation, dst_type) names [R, 3]"),
    "target": ("U", 0, "a node type name (a string scalar)"),
}
TYPE_FIELDS = ("num_nodes", "num_classes", *NODE_FIELDS)  # a node type's keys, under "<type>/"


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


def _check_kind(file: Path, key: str, value: np.ndarray, field: str) -> None:
    """Fails, naming the key, when ``value`` has a dtype or (for scalars) a shape that ``field`` does not accept."""
    kinds, expected = EXPECTED_KINDS[field]
    if value.dtype.kind not in kinds:
        raise ValueError(f"{file}: key {key!r} has dtype {value.dtype}; expected {expected}")
    if field in SCALAR_KEYS and value.ndim != 0:
        raise ValueError(f"{file}: key {key!r} has shape {value.shape}; expected {expected}")


def npz(path: str, *, root: str | None = None) -> Graph | HeteroGraph:
    """Loads a graph from ``path`` (relative paths resolve against ``root`` when given); a typed file as a HeteroGraph."""
    file = Path(root) / path if root is not None and not Path(path).is_absolute() else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {file}")
    contents = read_npz(file, "an npz graph with 'edge_index' (see gnndist.data.npz)")
    if "node_types" in contents:
        return _typed_npz(file, contents)
    unknown = sorted(set(contents) - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"{file}: unknown key(s) {unknown}; expected some of {list(NPZ_KEYS)}")
    if "edge_index" not in contents:
        raise ValueError(f"{file}: missing required key 'edge_index' (int array of shape [2, E])")
    for key, value in contents.items():
        _check_kind(file, key, value, key)
    scalars = {key: int(contents.pop(key)) for key in SCALAR_KEYS if key in contents}
    edge_index = contents.pop("edge_index")
    weight = contents.pop("edge_weight", None)
    tensors = {key: torch.from_numpy(value) for key, value in contents.items()}
    try:
        return Graph.from_edge_index(torch.from_numpy(edge_index), scalars.get("num_nodes"), edge_weight=weight, num_classes=scalars.get("num_classes"), **tensors)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{file}: {error}") from error


def _typed_npz(file: Path, contents: dict[str, np.ndarray]) -> HeteroGraph:
    """The typed variant (see the module docstring) as a HeteroGraph; every error names the file and the key."""
    for key, (kind, ndim, expected) in TYPED_KEYS.items():
        value = contents.get(key)
        if value is not None and (value.dtype.kind != kind or value.ndim != ndim or (key == "edge_types" and value.shape[1] != 3)):
            raise ValueError(f"{file}: key {key!r} has dtype {value.dtype} and shape {value.shape}; expected {expected}")
    node_types = [str(name) for name in contents["node_types"]]
    edge_types: list[EdgeType] = [(str(src), str(relation), str(dst)) for src, relation, dst in contents.get("edge_types", np.zeros((0, 3), dtype=str))]
    for key, names in (("node_types", node_types), ("edge_types", edge_types)):
        if len(set(names)) != len(names):
            raise ValueError(f"{file}: key {key!r} lists {sorted({name for name in names if names.count(name) > 1})} more than once")
    fields = {f"{node_type}/{field}": (node_type, field) for node_type in node_types for field in TYPE_FIELDS}
    relations = {f"{edge_type_name(edge_type)}/edge_index": edge_type for edge_type in edge_types}
    unknown = sorted(set(contents) - set(TYPED_KEYS) - set(fields) - set(relations))
    if unknown:
        raise ValueError(
            f"{file}: unknown key(s) {unknown}; a typed npz (it has 'node_types') holds node_types, edge_types, target, "
            f"<type>/<field> for a listed type and a field in {list(TYPE_FIELDS)}, <src>__<relation>__<dst>/edge_index for a listed edge type"
        )
    missing = [key for key in (*(f"{node_type}/num_nodes" for node_type in node_types), *relations) if key not in contents]
    if missing:
        raise ValueError(f"{file}: missing required key(s) {missing} (every node type needs <type>/num_nodes, every edge type <src>__<relation>__<dst>/edge_index)")
    by_field: dict[str, dict[str, np.ndarray]] = {field: {} for field in TYPE_FIELDS}  # in node_types order
    for key, (node_type, field) in fields.items():
        if key in contents:
            _check_kind(file, key, contents[key], field)
            by_field[field][node_type] = contents[key]
    num_nodes = {node_type: int(value) for node_type, value in by_field.pop("num_nodes").items()}
    num_classes = {node_type: int(value) for node_type, value in by_field.pop("num_classes").items()}
    node_data = {field: {node_type: torch.from_numpy(value) for node_type, value in values.items()} for field, values in by_field.items()}
    edge_index = {}
    for key, edge_type in relations.items():
        _check_kind(file, key, contents[key], "edge_index")
        edge_index[edge_type] = torch.from_numpy(contents[key])
    target = str(contents["target"]) if "target" in contents else None
    try:
        return HeteroGraph.from_edge_index(num_nodes, edge_index, num_classes=num_classes, target=target, **node_data)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{file}: {error}") from error


def save_npz(graph: Graph | HeteroGraph, path: str | Path) -> None:
    """Writes ``graph`` in the npz format, a HeteroGraph in its typed variant (atomically: temp file, fsync, rename)."""
    from gnndist.io import atomic_path

    if isinstance(graph, HeteroGraph):
        arrays = _typed_arrays(graph)
    else:
        arrays = {"edge_index": graph.edge_index().numpy(), **_node_arrays(graph)}
        if graph.edge_weight is not None:
            arrays["edge_weight"] = graph.edge_weight.numpy()
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as file:
        np.savez(file, **arrays)


def _node_arrays(graph: Graph, prefix: str = "") -> dict[str, np.ndarray]:
    """``num_nodes``, ``num_classes`` (with labels) and the node data of ``graph``, keys under ``prefix``."""
    arrays = {f"{prefix}num_nodes": np.int64(graph.num_nodes)}
    if graph.y is not None:
        arrays[f"{prefix}num_classes"] = np.int64(graph.num_classes)
    arrays.update({f"{prefix}{key}": value.numpy() for key, value in graph.node_data().items()})
    return arrays


def _typed_arrays(graph: HeteroGraph) -> dict[str, np.ndarray]:
    """A heterogeneous graph's arrays by typed npz key (see the module docstring)."""
    arrays = {"node_types": np.array(graph.node_types, dtype=str), "edge_types": np.array(graph.edge_types, dtype=str).reshape(-1, 3)}
    if graph.target is not None:
        arrays["target"] = np.array(graph.target, dtype=str)
    for node_type, nodes in graph.nodes.items():
        arrays.update(_node_arrays(nodes, f"{node_type}/"))
    for edge_type in graph.edge_types:
        arrays[f"{edge_type_name(edge_type)}/edge_index"] = graph.edge_index(edge_type).numpy()
    return arrays
