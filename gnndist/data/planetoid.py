"""Planetoid citation graphs (Cora, Citeseer, Pubmed) from PyG's raw files in a local folder."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from gnndist.graph import Graph

PLANETOID_NAMES = ("cora", "citeseer", "pubmed")
PYG_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}  # PyG's spelling, its folder name under root
RAW_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")

# The raw Planetoid files are Python pickles (scipy matrices, numpy arrays, a dict of lists).
# No library reads them without unpickling, so we unpickle with an allow-list of exactly
# those classes: anything else in a file is refused instead of executed.
_ALLOWED_CLASSES = {
    ("collections", "defaultdict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("scipy.sparse.csr", "csr_matrix"),
    ("scipy.sparse._csr", "csr_matrix"),
    ("__builtin__", "list"),
    ("builtins", "list"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_CLASSES:
            raise pickle.UnpicklingError(f"Refusing to load {module}.{name}: not a class a Planetoid file contains")
        if module == "__builtin__":
            module = "builtins"
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        if module == "scipy.sparse.csr":
            return sp.csr_matrix
        return super().find_class(module, name)


def _read_pickle(path: Path):
    with open(path, "rb") as file:
        try:
            return _RestrictedUnpickler(file, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:  # what truncated or damaged pickles raise
            raise ValueError(f"Cannot read Planetoid file {path} ({type(error).__name__}: {error}); expected one of PyG's raw Planetoid pickles") from error


def raw_folders(root: Path, name: str) -> list[Path]:
    """Where the raw files of ``name`` may lie under ``root``, in the order tried: ``root`` itself, then
    the layouts PyG's ``Planetoid(root, name)`` downloads into (``root/raw``, ``root/Cora/raw``, ``root/cora/raw``)."""
    spellings = dict.fromkeys([PYG_NAMES[name], name, name.capitalize()])
    return [root, root / "raw", *(root / spelling / "raw" for spelling in spellings)]


def _raw_files(root: Path, name: str) -> dict[str, Path]:
    """The raw files, from the first folder of :func:`raw_folders` that holds any of them; every file must be there."""
    folders = raw_folders(root, name)
    folder = next((f for f in folders if any((f / f"ind.{name}.{part}").is_file() for part in RAW_PARTS)), None)
    if folder is None:
        looked = ", ".join(str(f / f"ind.{name}.x") for f in folders)
        raise FileNotFoundError(f"Planetoid {name!r}: missing raw file ind.{name}.x (and the other PyG raw 'ind.{name}.*' files); looked in: {looked}")
    files = {part: folder / f"ind.{name}.{part}" for part in RAW_PARTS}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"Planetoid {name!r}: missing raw file(s) {', '.join(missing)} (looked in {folder}, the first folder under root={root} with 'ind.{name}.*' files)")
    return files


def planetoid(name: str, *, root: str | None = None, normalize_features: bool = True) -> Graph:
    """Loads ``ind.<name>.*`` raw files with the public split (20 labels per class, 500 val, 1000 test).

    Follows PyG's ``read_planetoid_data``: Citeseer's isolated test nodes get zero features,
    duplicate edges and self loops are removed and the graph is undirected.

    Args:
        name: ``cora``, ``citeseer`` or ``pubmed``.
        root: folder that holds the raw files, or a PyG dataset root above them (``root/Cora/raw``,
            ``root/cora/raw``, ``root/raw``); required: nothing is downloaded.
        normalize_features: divide every feature row by its sum (as in Kipf & Welling).
    """
    name = name.lower()
    if name not in PLANETOID_NAMES:
        raise ValueError(f"Unknown Planetoid dataset {name!r}; available: {', '.join(PLANETOID_NAMES)}")
    if root is None:
        raise ValueError(f"Planetoid {name!r} needs dataset.root: the folder with the raw 'ind.{name}.*' files")
    files = _raw_files(Path(root), name)
    x, tx, allx = (sp.csr_matrix(_read_pickle(files[k])) for k in ("x", "tx", "allx"))
    y, ty, ally = (np.asarray(_read_pickle(files[k])) for k in ("y", "ty", "ally"))
    adjacency = _read_pickle(files["graph"])
    try:
        test_index = np.loadtxt(files["test.index"], dtype=np.int64).reshape(-1)
    except ValueError as error:
        raise ValueError(f"Cannot read Planetoid file {files['test.index']} ({error}); expected one integer node id per line") from error
    sorted_test = np.sort(test_index)

    if name == "citeseer":  # some test nodes are isolated and absent from tx/ty: pad them with zeros
        full_range = np.arange(sorted_test.min(), sorted_test.max() + 1)
        tx_full = sp.lil_matrix((full_range.size, tx.shape[1]), dtype=tx.dtype)
        tx_full[sorted_test - sorted_test.min(), :] = tx
        ty_full = np.zeros((full_range.size, ty.shape[1]), dtype=ty.dtype)
        ty_full[sorted_test - sorted_test.min(), :] = ty
        tx, ty = tx_full.tocsr(), ty_full

    features = sp.vstack([allx, tx]).tolil()
    labels = np.vstack([ally, ty])
    features[test_index, :] = features[sorted_test, :]
    labels[test_index, :] = labels[sorted_test, :]
    x_tensor = torch.from_numpy(np.asarray(features.todense(), dtype=np.float32))
    if normalize_features:
        x_tensor = x_tensor / x_tensor.sum(dim=1, keepdim=True).clamp(min=1.0)
    num_nodes = x_tensor.size(0)

    def mask(index: np.ndarray) -> torch.Tensor:
        result = torch.zeros(num_nodes, dtype=torch.bool)
        result[torch.from_numpy(np.asarray(index, dtype=np.int64))] = True
        return result

    src = np.concatenate([np.full(len(v), k, dtype=np.int64) for k, v in adjacency.items()])
    dst = np.concatenate([np.asarray(v, dtype=np.int64) for v in adjacency.values()])
    keep = (src != dst) & (dst < num_nodes) & (src < num_nodes)
    edge_index = torch.from_numpy(np.stack([src[keep], dst[keep]]))
    graph = Graph.from_edge_index(
        edge_index,
        num_nodes,
        x=x_tensor,
        y=torch.from_numpy(labels.argmax(1)),
        train_mask=mask(np.arange(y.shape[0])),
        val_mask=mask(np.arange(y.shape[0], y.shape[0] + 500)),
        test_mask=mask(sorted_test),
    )
    return graph.to_undirected()
