"""Multilevel graph partitioners: METIS (pymetis), KaHIP and KaMinPar on the symmetrized graph.

Directed graphs are symmetrized (u -> v becomes the pair {u, v}, weighted by how many directed
edges it stands for), so the minimised cut is the directed edge cut. KaHIP and KaMinPar are
optional extras: ``pip install gnndist[kahip]`` / ``gnndist[kaminpar]``.
"""
from __future__ import annotations

import ctypes
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

import gnndist.typing as capabilities
from gnndist.graph import Graph
from gnndist.partitioners.adjacency import SymmetricAdjacency, check_balance, symmetric_adjacency, vertex_weights
from gnndist.partitioners.base import Partitioner
from gnndist.partitioners.forked import call_forked, shared_empty
from gnndist.typing import module_status

METIS_NOPTIONS = 40
METIS_OK = 1
METIS_STATUS = {-2: "input error", -3: "out of memory", -4: "error"}
KAHIP_MODES = ("fast", "eco", "strong", "fastsocial", "ecosocial", "strongsocial")


def _require(flag: str, module: str, install: str, method: str) -> None:
    """Raises ImportError saying what to install when a backend does not import."""
    if not getattr(capabilities, flag):
        raise ImportError(f"The {method!r} partitioner needs the {module!r} package, which is not installed or failed to import "
                          f"({module_status(module)[1]}); install it with: pip install {install}")


def _check_imbalance(imbalance: float) -> None:
    if not 0 < imbalance < 1:
        raise ValueError(f"Expected imbalance in (0, 1) (got {imbalance})")


@dataclass
class MetisPartitioner(Partitioner):
    """METIS through pymetis, with multi-constraint balance.

    Args:
        balance: what to balance, one vertex-weight constraint each: ``"nodes"``, ``"edges"``
            (in-edges, for power-law graphs where hubs pile edges into one part), ``"train"``
            (train nodes, so every worker gets a fair share of seeds). Default ``("nodes",)``.
        imbalance: allowed load imbalance per constraint (METIS ``ufactor / 1000``; default 0.03).
        recursive: recursive bisection (True) or k-way (False); None lets pymetis choose
            (recursive up to 8 parts).
    """

    name: ClassVar[str] = "metis"

    balance: tuple[str, ...] = ("nodes",)
    imbalance: float = 0.03
    recursive: bool | None = None

    def __post_init__(self) -> None:
        _require("WITH_METIS", "pymetis", "pymetis", "metis")
        self.balance = check_balance(self.balance)
        _check_imbalance(self.imbalance)

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        adjacency = symmetric_adjacency(graph)
        recursive = num_parts <= 8 if self.recursive is None else self.recursive
        return metis_part_graph(adjacency, vertex_weights(graph, self.balance), num_parts, recursive=recursive, seed=seed, imbalance=self.imbalance)


def metis_part_graph(adjacency: SymmetricAdjacency, weights: np.ndarray, num_parts: int, *, recursive: bool, seed: int, imbalance: float) -> np.ndarray:
    """Calls METIS (the copy pymetis ships) through its C API.

    pymetis' Python wrapper passes a single balance constraint only, so the multi-constraint call
    goes to ``METIS_PartGraphRecursive`` / ``METIS_PartGraphKway`` directly, with the numpy arrays
    passed without copies (which also keeps memory low on large graphs).

    Args:
        adjacency: the symmetrized graph.
        weights: ``[num_nodes, ncon]`` vertex weights, one column per balance constraint.
        num_parts: parts (>= 2).
        recursive: recursive bisection or k-way.
        seed: METIS seed.
        imbalance: allowed imbalance per constraint (``ufactor = imbalance * 1000``).
    """
    import pymetis._internal as metis_module

    index_type = {32: np.int32, 64: np.int64}[metis_module._idx_type_width()]
    library = ctypes.CDLL(metis_module.__file__)
    index_pointer = ctypes.POINTER(ctypes.c_int64 if index_type is np.int64 else ctypes.c_int32)
    options = np.zeros(METIS_NOPTIONS, dtype=index_type)
    library.METIS_SetDefaultOptions(options.ctypes.data_as(index_pointer))
    option_index = metis_module.options_indices
    options[option_index.SEED] = seed
    options[option_index.UFACTOR] = max(1, round(imbalance * 1000))
    options[option_index.NUMBERING] = 0

    def scalar(value: int) -> np.ndarray:
        return np.array([value], dtype=index_type)

    def array(values: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=index_type)

    num_nodes, ncon, parts = scalar(adjacency.num_nodes), scalar(weights.shape[1]), scalar(num_parts)
    xadj, adjncy, vwgt = array(adjacency.indptr), array(adjacency.indices), array(weights.reshape(-1))
    adjwgt = None if adjacency.uniform_weights() else array(adjacency.weights)
    edgecut, part = scalar(0), shared_empty(adjacency.num_nodes, index_type)  # METIS writes part in a forked child
    pointer = lambda values: None if values is None else values.ctypes.data_as(index_pointer)  # noqa: E731
    function = library.METIS_PartGraphRecursive if recursive else library.METIS_PartGraphKway
    status = call_forked(lambda: function(  # its rand() must not be shared with other threads (see forked)
        pointer(num_nodes), pointer(ncon), pointer(xadj), pointer(adjncy), pointer(vwgt), None, pointer(adjwgt),
        pointer(parts), None, None, pointer(options), pointer(edgecut), pointer(part),
    ))
    if status != METIS_OK:
        raise RuntimeError(f"METIS failed with status {status} ({METIS_STATUS.get(status, 'unknown')}) on {adjacency.num_nodes} nodes, {num_parts} parts, {weights.shape[1]} constraint(s)")
    return part.astype(np.int64)  # a copy: the shared mapping is released with its array


@dataclass
class KaHIPPartitioner(Partitioner):
    """KaHIP's ``kaffpa`` (optional: ``pip install gnndist[kahip]``); balances nodes.

    Args:
        mode: ``fast`` (default), ``eco``, ``strong`` or their ``*social`` variants for power-law
            graphs; eco/strong cut less and take much longer (eco: minutes on millions of edges).
        imbalance: allowed node imbalance (default 0.03).
    """

    name: ClassVar[str] = "kahip"

    mode: str = "fast"
    imbalance: float = 0.03

    def __post_init__(self) -> None:
        _require("WITH_KAHIP", "kahip", "gnndist[kahip]", "kahip")
        if self.mode not in KAHIP_MODES:
            raise ValueError(f"Expected mode in {list(KAHIP_MODES)} (got {self.mode!r})")
        _check_imbalance(self.imbalance)

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        import kahip

        adjacency = symmetric_adjacency(graph)
        node_weights = np.ones(graph.num_nodes, dtype=np.int64)
        _, blocks = kahip.kaffpa(node_weights, adjacency.indptr, adjacency.weights, adjacency.indices, num_parts, self.imbalance, True, seed, KAHIP_MODES.index(self.mode))
        return np.asarray(blocks, dtype=np.int64)


@dataclass
class KaMinParPartitioner(Partitioner):
    """KaMinPar (optional: ``pip install gnndist[kaminpar]``), read from a METIS-format temp file; balances nodes.

    Args:
        preset: a KaMinPar context name (``default``, ``fast``, ``strong``, ``eco``, ...).
        imbalance: allowed node imbalance (default 0.03).
        num_threads: worker threads (1 keeps the result a function of the seed).
    """

    name: ClassVar[str] = "kaminpar"

    preset: str = "default"
    imbalance: float = 0.03
    num_threads: int = 1

    def __post_init__(self) -> None:
        _require("WITH_KAMINPAR", "kaminpar", "gnndist[kaminpar]", "kaminpar")
        import kaminpar

        if self.preset not in kaminpar.context_names():
            raise ValueError(f"Expected preset in {sorted(kaminpar.context_names())} (got {self.preset!r})")
        _check_imbalance(self.imbalance)
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1:
            raise ValueError(f"Expected num_threads >= 1 (got {self.num_threads!r})")

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        import kaminpar

        adjacency = symmetric_adjacency(graph)
        with tempfile.TemporaryDirectory(prefix="gnndist-kaminpar-") as tmp:
            path = Path(tmp) / "graph.metis"
            write_metis_file(adjacency, path)
            kaminpar_graph = kaminpar.load_graph(str(path), kaminpar.GraphFileFormat.METIS)
        kaminpar.reseed(seed)
        solver = kaminpar.KaMinPar(self.num_threads, kaminpar.context_by_name(self.preset))
        return np.asarray(solver.compute_partition(kaminpar_graph, num_parts, self.imbalance), dtype=np.int64)


def write_metis_file(adjacency: SymmetricAdjacency, path: Path) -> None:
    """Writes the METIS graph format: header ``n m [fmt]``, then one line of 1-based neighbours per node."""
    weighted = not adjacency.uniform_weights()
    neighbours = adjacency.indices + 1
    if weighted:
        neighbours = np.stack([neighbours, adjacency.weights], axis=1).reshape(-1)
    step = 2 if weighted else 1
    with open(path, "w") as file:
        file.write(f"{adjacency.num_nodes} {adjacency.num_undirected_edges}{' 001' if weighted else ''}\n")
        values = neighbours.tolist()
        bounds = (adjacency.indptr * step).tolist()
        for start, end in zip(bounds[:-1], bounds[1:]):
            file.write(" ".join(map(str, values[start:end])) + "\n")
