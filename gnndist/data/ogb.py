"""OGB node-property datasets (``ogb:ogbn-arxiv``) read from local raw files, offline."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnndist.data.npz import read_npz
from gnndist.graph import Graph


def _ogb_meta(name: str) -> dict[str, str]:
    try:
        import ogb.nodeproppred as nodeproppred
        import pandas as pd
    except ImportError as error:
        raise ImportError(f"Dataset 'ogb:{name}' needs the ogb package: pip install 'gnndist[ogb]' ({error})") from error
    master = pd.read_csv(Path(nodeproppred.__file__).parent / "master.csv", index_col=0, keep_default_na=False)
    if name not in master:
        raise ValueError(f"Unknown OGB node dataset {name!r}; available: {', '.join(master.columns)}")
    return {key: str(value) for key, value in master[name].items()}


READ_ERRORS = (OSError, EOFError, ValueError, zlib.error)  # gzip/zip damage, truncation, unparsable text


def _read_csv_gz(path: Path, expected: str, **loadtxt: Any) -> np.ndarray:
    """``np.loadtxt`` of a gzipped CSV; a damaged or malformed file is an error naming it."""
    try:
        with gzip.open(path, "rt") as file:
            return np.loadtxt(file, **loadtxt)
    except READ_ERRORS as error:
        raise ValueError(f"Cannot read OGB file {path} ({type(error).__name__}: {error}); expected {expected} in a gzipped CSV") from error


def _read_split(folder: Path, part: str) -> np.ndarray:
    path = folder / f"{part}.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"OGB split file missing: {path}")
    return _read_csv_gz(path, "one integer node id per line", dtype=np.int64, ndmin=1)


def ogb(name: str, *, root: str | None = None) -> Graph:
    """Loads ``root/<name with _>/raw`` and its ``split/`` through ``ogb.io`` (no download, no pickles).

    Expects the layout the ogb package unpacks: ``raw/edge.csv.gz``, ``raw/node-feat.csv.gz``,
    ``raw/node-label.csv.gz``, ``raw/num-node-list.csv.gz`` (or ``raw/data.npz`` for binary datasets)
    and ``split/<type>/{train,valid,test}.csv.gz``. Homogeneous datasets only.
    """
    meta = _ogb_meta(name)
    if meta["is hetero"] == "True":
        raise ValueError(f"OGB dataset {name!r} is heterogeneous; gnndist loads homogeneous graphs only")
    if root is None:
        raise ValueError(f"OGB dataset {name!r} needs dataset.root: the folder that holds {name.replace('-', '_')}/")
    folder = Path(root) / name.replace("-", "_")
    raw = folder / "raw"
    binary = meta["binary"] == "True"
    required = [raw / "data.npz", raw / "node-label.npz"] if binary else [raw / "edge.csv.gz", raw / "num-node-list.csv.gz", raw / "node-label.csv.gz"]
    missing = [str(path) for path in required if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"OGB dataset {name!r}: missing file(s) {', '.join(missing)} (looked in root={root}); download it once with the ogb package, gnndist never downloads")
    from ogb.io.read_graph_raw import read_binary_graph_raw, read_csv_graph_raw

    add_inverse = meta["add_inverse_edge"] == "True"
    try:
        graph_dict = (read_binary_graph_raw if binary else read_csv_graph_raw)(str(raw), add_inverse_edge=add_inverse)[0]
    except (*READ_ERRORS, KeyError) as error:  # ogb's readers do not name the file that failed
        raise ValueError(f"Cannot read the OGB graph files in {raw} ({type(error).__name__}: {error}); expected the files the ogb package unpacks, undamaged") from error
    if binary:
        labels_path = raw / "node-label.npz"
        labels = read_npz(labels_path, "an npz archive with 'node_label'").get("node_label")
        if labels is None:
            raise ValueError(f"{labels_path} lacks the array 'node_label'")
        labels = labels.reshape(labels.shape[0], -1).astype(np.float64)
    else:
        labels = _read_csv_gz(raw / "node-label.csv.gz", "one label (or one row of labels) per node", dtype=np.float64, ndmin=2, delimiter=",")
    num_nodes = int(graph_dict["num_nodes"])
    y = torch.from_numpy(labels)
    multi_label = y.size(1) > 1
    y = y.float() if multi_label else y.view(-1)  # single-label: NaN (unlabeled) becomes -1 in Graph
    splits = {}
    for field, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.from_numpy(_read_split(folder / "split" / meta["split"], part))] = True
        splits[field] = mask
    x = graph_dict.get("node_feat")
    return Graph.from_edge_index(
        torch.from_numpy(graph_dict["edge_index"].astype(np.int64)),
        num_nodes,
        x=torch.from_numpy(x).float() if x is not None else None,
        y=y,
        num_classes=None if multi_label else int(meta["num classes"]),
        **splits,
    )
