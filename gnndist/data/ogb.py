"""OGB node-property datasets read from local raw files, offline: ``ogb:ogbn-arxiv`` (a Graph), ``ogb:ogbn-mag`` (a HeteroGraph)."""
from __future__ import annotations

import importlib.util
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnndist.data.npz import read_npz
from gnndist.graph import MASK_FIELDS, Graph
from gnndist.hetero import EdgeType, HeteroGraph


def _ogb_meta(name: str) -> dict[str, str]:
    """The dataset's row of ogb's ``nodeproppred/master.csv``, read without importing ogb.

    Importing ogb starts a background version check against PyPI (its ``outdated`` dependency), so the
    heterogeneous reader, which needs nothing else from ogb, never imports it.
    """
    spec = importlib.util.find_spec("ogb")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"Dataset 'ogb:{name}' needs the ogb package: pip install 'gnndist[ogb]'")
    import pandas as pd  # a dependency of ogb

    master = pd.read_csv(Path(spec.submodule_search_locations[0]) / "nodeproppred" / "master.csv", index_col=0, keep_default_na=False)
    if name not in master:
        raise ValueError(f"Unknown OGB node dataset {name!r}; available: {', '.join(master.columns)}")
    return {key: str(value) for key, value in master[name].items()}


READ_ERRORS = (OSError, EOFError, ValueError, zlib.error)  # gzip/zip damage, truncation, unparsable text (pandas' parser errors are ValueErrors)
SPLIT_FILES = (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test"))


def _read_csv_gz(path: Path, expected: str, *, dtype: Any = None, header: int | None = None) -> Any:
    """A gzipped CSV as a pandas DataFrame; a damaged or malformed file is an error naming it.

    pandas is the reader the ogb package uses (and about 3x faster than ``numpy.loadtxt`` on OGB's feature files).
    """
    import pandas as pd

    try:
        return pd.read_csv(path, compression="gzip", header=header, dtype=dtype)
    except READ_ERRORS as error:
        raise ValueError(f"Cannot read OGB file {path} ({type(error).__name__}: {error}); expected {expected} in a gzipped CSV") from error


def _read_array(path: Path, expected: str, dtype: Any) -> np.ndarray:
    """A headerless gzipped CSV as a writable ``[rows, columns]`` array (pandas hands out read-only views)."""
    return _read_csv_gz(path, expected, dtype=dtype).to_numpy(copy=True)


def _require(name: str, meta: dict[str, str], folder: Path, paths: list[Path]) -> None:
    """Fails, listing every missing file and where the dataset comes from, unless all of ``paths`` exist."""
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"OGB dataset {name!r}: missing file(s) {', '.join(missing)}; gnndist never downloads: get it once with the ogb package "
            f"(ogb.nodeproppred.NodePropPredDataset({name!r}, root=ROOT) unpacks ROOT/{folder.name}/), or unzip {meta['url']} and rename its folder "
            f"{meta['download_name']}/ to {folder}"
        )


def _check_rows(path: Path, array: np.ndarray, expected_rows: int, what: str) -> None:
    """Fails, naming the file, when it has another row count (a CSV cut at a line boundary still parses)."""
    if array.shape[0] != expected_rows:
        raise ValueError(f"{path} has {array.shape[0]} rows; expected {expected_rows} ({what})")


def _as_labels(labels: np.ndarray, num_classes: str) -> tuple[Tensor, int | None]:
    """OGB labels ``[N, tasks]`` as Graph labels: one task -> ``[N]`` with the dataset's class count (NaN, unlabeled, becomes -1 in Graph); several -> float multi-labels."""
    y = torch.from_numpy(labels.reshape(labels.shape[0], -1).astype(np.float64))
    return (y.float(), None) if y.size(1) > 1 else (y.view(-1), int(num_classes))


def _read_labels(path: Path, num_nodes: int, num_classes: str) -> tuple[Tensor, int | None]:
    """``node-label.csv.gz`` (one row per node) as Graph labels (see :func:`_as_labels`)."""
    labels = _read_array(path, "one label (or one row of labels) per node", np.float64)
    _check_rows(path, labels, num_nodes, "one per node")
    return _as_labels(labels, num_classes)


def _split_masks(folder: Path, num_nodes: int) -> dict[str, Tensor]:
    """``train_mask``/``val_mask``/``test_mask`` from ``folder/{train,valid,test}.csv.gz`` (one node id per line)."""
    masks = {}
    for field, part in SPLIT_FILES:
        path = folder / f"{part}.csv.gz"
        ids = _read_array(path, "one integer node id per line", np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= num_nodes):
            raise ValueError(f"{path}: node id {ids.min() if ids.min() < 0 else ids.max()} out of range [0, {num_nodes - 1}]")
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.from_numpy(ids)] = True
        masks[field] = mask
    return masks


def ogb(name: str, *, root: str | None = None, add_reverse: bool | None = None) -> Graph | HeteroGraph:
    """Loads the OGB node dataset ``name`` from ``root/<name with _>/`` (the folder the ogb package unpacks); no download, no pickles.

    Homogeneous datasets: ``raw/edge.csv.gz``, ``raw/node-feat.csv.gz``, ``raw/node-label.csv.gz``,
    ``raw/num-node-list.csv.gz`` (or ``raw/data.npz`` for binary datasets) and ``split/<split>/{train,valid,test}.csv.gz``,
    read through ``ogb.io``. Heterogeneous ``ogbn-mag``: see :func:`_ogb_hetero`.

    Args:
        name: an OGB node dataset (``ogbn-arxiv``, ``ogbn-products``, ``ogbn-mag``, ...).
        root: the folder that holds the dataset folder.
        add_reverse: heterogeneous datasets only: add ``(dst, rev_<relation>, src)`` for every relation so that
            messages also flow against OGB's edge directions (papers to their authors and fields); None means
            True (as for ``hsbm``). Homogeneous datasets refuse it (OGB adds inverse edges where the dataset needs them).
    """
    meta = _ogb_meta(name)
    if root is None:
        raise ValueError(f"OGB dataset {name!r} needs dataset.root: the folder that holds {name.replace('-', '_')}/")
    folder = Path(root) / name.replace("-", "_")
    if meta["is hetero"] == "True":
        return _ogb_hetero(name, meta, folder, add_reverse=True if add_reverse is None else add_reverse)
    if add_reverse is not None:
        raise ValueError(f"add_reverse={add_reverse} applies to heterogeneous OGB datasets (ogbn-mag); {name!r} is homogeneous")
    raw = folder / "raw"
    binary = meta["binary"] == "True"
    required = [raw / "data.npz", raw / "node-label.npz"] if binary else [raw / "edge.csv.gz", raw / "num-node-list.csv.gz", raw / "node-label.csv.gz"]
    split = folder / "split" / meta["split"]
    _require(name, meta, folder, [*required, *(split / f"{part}.csv.gz" for _, part in SPLIT_FILES)])
    from ogb.io.read_graph_raw import read_binary_graph_raw, read_csv_graph_raw

    add_inverse = meta["add_inverse_edge"] == "True"
    try:
        graph_dict = (read_binary_graph_raw if binary else read_csv_graph_raw)(str(raw), add_inverse_edge=add_inverse)[0]
    except (*READ_ERRORS, KeyError) as error:  # ogb's readers do not name the file that failed
        raise ValueError(f"Cannot read the OGB graph files in {raw} ({type(error).__name__}: {error}); expected the files the ogb package unpacks, undamaged") from error
    num_nodes = int(graph_dict["num_nodes"])
    if binary:
        labels_path = raw / "node-label.npz"
        labels = read_npz(labels_path, "an npz archive with 'node_label'").get("node_label")
        if labels is None:
            raise ValueError(f"{labels_path} lacks the array 'node_label'")
        y, num_classes = _as_labels(labels, meta["num classes"])
    else:
        y, num_classes = _read_labels(raw / "node-label.csv.gz", num_nodes, meta["num classes"])
    x = graph_dict.get("node_feat")
    return Graph.from_edge_index(
        torch.from_numpy(graph_dict["edge_index"].astype(np.int64)),
        num_nodes,
        x=torch.from_numpy(x).float() if x is not None else None,
        y=y,
        num_classes=num_classes,
        **_split_masks(split, num_nodes),
    )


def _type_row(path: Path, expected: str, dtype: Any) -> dict[str, Any]:
    """A CSV with a header of node types and exactly one row of values (``num-node-dict``, ``nodetype-has-*``)."""
    frame = _read_csv_gz(path, expected, dtype=dtype, header=0)
    if len(frame) != 1:
        raise ValueError(f"{path} has {len(frame)} rows under its header; expected {expected}")
    return {str(node_type): value for node_type, value in frame.iloc[0].items()}


def _type_flags(path: Path, node_types: list[str]) -> list[str]:
    """The node types a ``nodetype-has-{feat,label,split}.csv.gz`` file marks True."""
    expected = "a header of node types and one row of True/False"
    flags = _type_row(path, expected, str)
    unknown = sorted(set(flags) - set(node_types))
    if unknown or not set(flags.values()) <= {"True", "False"}:
        raise ValueError(f"{path}: expected {expected} for the node types {node_types} (got {flags})")
    return [node_type for node_type in node_types if flags.get(node_type) == "True"]


def _read_edges(directory: Path) -> Tensor:
    """``[2, E]`` (src, dst) of one relation from ``edge.csv.gz``, its row count checked against ``num-edge-list.csv.gz``."""
    path, count_path = directory / "edge.csv.gz", directory / "num-edge-list.csv.gz"
    edges = _read_array(path, "two integer columns (source id, destination id) per edge", np.int64)
    if edges.shape[1] != 2:
        raise ValueError(f"{path} has rows of {edges.shape[1]} values; expected two integer columns (source id, destination id) per edge")
    num_edges = int(_read_array(count_path, "the relation's edge count", np.int64).sum())
    _check_rows(path, edges, num_edges, f"the edge count in {count_path}")
    return torch.from_numpy(np.ascontiguousarray(edges.T))


def _ogb_hetero(name: str, meta: dict[str, str], folder: Path, *, add_reverse: bool) -> HeteroGraph:
    """Reads a heterogeneous OGB node dataset (``ogbn-mag``) in the layout the ogb package unpacks.

    ``raw/num-node-dict.csv.gz`` (node types, counts), ``raw/triplet-type-list.csv.gz`` (the relations),
    ``raw/nodetype-has-{feat,label}.csv.gz`` and ``split/<split>/nodetype-has-split.csv.gz`` (which types have
    features, labels, a split), then per relation ``raw/relations/<src>___<rel>___<dst>/edge.csv.gz`` (src, dst
    ids per type) and ``num-edge-list.csv.gz``, per type ``raw/node-feat/<type>/node-feat.csv.gz``,
    ``raw/node-label/<type>/node-label.csv.gz`` and ``split/<split>/<type>/{train,valid,test}.csv.gz``. Types and
    relations are sorted by name, as ogb's reader does. For ogbn-mag: papers carry 128 features, labels (349
    venues) and the time split; authors, institutions and fields of study are featureless.

    Hand-written with pandas rather than ``ogb.io.read_csv_heterograph_raw``: that reader reports any missing
    file as "No necessary file", silently skips a missing feature file, checks consistency with ``assert``
    and names no file it fails to read; here every missing, damaged or inconsistent file is named.
    """
    raw, split = folder / "raw", folder / "split" / meta["split"]
    counts_path, triplets_path = raw / "num-node-dict.csv.gz", raw / "triplet-type-list.csv.gz"
    flag_paths = {kind: raw / f"nodetype-has-{kind}.csv.gz" for kind in ("feat", "label")} | {"split": split / "nodetype-has-split.csv.gz"}
    _require(name, meta, folder, [counts_path, triplets_path, *flag_paths.values()])
    counts = _type_row(counts_path, "a header of node types and one row of node counts", np.int64)
    num_nodes = {node_type: int(counts[node_type]) for node_type in sorted(counts)}
    flagged = {kind: _type_flags(path, list(num_nodes)) for kind, path in flag_paths.items()}
    triplets = _read_array(triplets_path, "one 'source type,relation,destination type' per line", str)
    if triplets.ndim != 2 or triplets.shape[1] != 3:
        raise ValueError(f"{triplets_path} has rows of {triplets.shape[1]} values; expected 'source type,relation,destination type' per line")
    relations: list[EdgeType] = sorted((str(src), str(relation), str(dst)) for src, relation, dst in triplets)
    relation_dirs = {relation: raw / "relations" / "___".join(relation) for relation in relations}
    _require(name, meta, folder, [
        *(directory / file for directory in relation_dirs.values() for file in ("edge.csv.gz", "num-edge-list.csv.gz")),
        *(raw / "node-feat" / node_type / "node-feat.csv.gz" for node_type in flagged["feat"]),
        *(raw / "node-label" / node_type / "node-label.csv.gz" for node_type in flagged["label"]),
        *(split / node_type / f"{part}.csv.gz" for node_type in flagged["split"] for _, part in SPLIT_FILES),
    ])
    edge_index = {relation: _read_edges(directory) for relation, directory in relation_dirs.items()}
    x = {}
    for node_type in flagged["feat"]:
        path = raw / "node-feat" / node_type / "node-feat.csv.gz"
        features = _read_array(path, "one row of float features per node", np.float32)
        _check_rows(path, features, num_nodes[node_type], f"one per {node_type!r} node")
        x[node_type] = torch.from_numpy(features)
    y, num_classes = {}, {}
    for node_type in flagged["label"]:
        y[node_type], classes = _read_labels(raw / "node-label" / node_type / "node-label.csv.gz", num_nodes[node_type], meta["num classes"])
        if classes is not None:
            num_classes[node_type] = classes
    masks: dict[str, dict[str, Tensor]] = {field: {} for field in MASK_FIELDS}
    for node_type in flagged["split"]:
        for field, mask in _split_masks(split / node_type, num_nodes[node_type]).items():
            masks[field][node_type] = mask
    try:
        return HeteroGraph.from_edge_index(num_nodes, edge_index, x=x, y=y, num_classes=num_classes, add_reverse=add_reverse, **masks)
    except (ValueError, TypeError) as error:
        raise type(error)(f"OGB dataset {name!r} in {folder}: {error}") from error

