"""The undirected view of a graph that cut-based partitioners work on (METIS form, numpy arrays)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from gnndist.graph import Graph

BALANCE_NAMES = ("nodes", "edges", "train")


@dataclass(eq=False)
class SymmetricAdjacency:
    """An undirected simple graph: both directions stored, sorted neighbours, no self loops.

    Attributes:
        indptr: ``[num_nodes + 1]`` int64 offsets.
        indices: ``[2 * num_undirected_edges]`` int64 neighbours.
        weights: ``[2 * num_undirected_edges]`` int64 directed edges the pair stands for (1 or 2 in a
            graph without duplicate edges), so that a minimum weighted cut is a minimum directed cut.
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray

    @property
    def num_nodes(self) -> int:
        return self.indptr.size - 1

    @property
    def num_undirected_edges(self) -> int:
        return self.indices.size // 2

    def uniform_weights(self) -> bool:
        """Whether every pair has the same weight (edge weights then change nothing)."""
        return self.weights.size == 0 or bool((self.weights == self.weights[0]).all())


def symmetric_adjacency(graph: Graph) -> SymmetricAdjacency:
    """Symmetrizes ``graph`` (edge u -> v adds the pair {u, v}), dropping self loops and merging duplicates."""
    n = graph.num_nodes
    incoming = sp.csr_matrix((np.ones(graph.num_edges, dtype=np.int64), graph.indices.numpy(), graph.indptr.numpy()), shape=(n, n))
    both = (incoming + incoming.T).tocsr()
    del incoming
    if both.diagonal().any():
        both.setdiag(0)
        both.eliminate_zeros()
    both.sort_indices()
    return SymmetricAdjacency(both.indptr.astype(np.int64), both.indices.astype(np.int64), both.data.astype(np.int64))


def vertex_weights(graph: Graph, balance: Sequence[str]) -> np.ndarray:
    """``[num_nodes, len(balance)]`` int64 weights, one column per balance constraint.

    ``nodes``: 1 per node; ``edges``: the node's in-degree (1 each in a graph without edges);
    ``train``: 1 per train node (needs a train mask with at least one node).
    """
    columns = []
    for name in balance:
        if name == "nodes":
            columns.append(np.ones(graph.num_nodes, dtype=np.int64))
        elif name == "edges":
            degree = graph.in_degrees().numpy()
            columns.append(degree if degree.any() else np.ones(graph.num_nodes, dtype=np.int64))
        elif name == "train":
            if graph.train_mask is None or not bool(graph.train_mask.any()):
                raise ValueError("balance 'train' needs a graph with a non-empty train_mask")
            columns.append(graph.train_mask.numpy().astype(np.int64))
        else:
            raise ValueError(f"Unknown balance constraint {name!r}; expected some of {list(BALANCE_NAMES)}")
    return np.stack(columns, axis=1)


def check_balance(balance: Sequence[str]) -> tuple[str, ...]:
    """Validates a balance option: a non-empty tuple of distinct names from BALANCE_NAMES."""
    balance = (balance,) if isinstance(balance, str) else tuple(balance)
    unknown = [name for name in balance if name not in BALANCE_NAMES]
    if not balance or unknown or len(set(balance)) != len(balance):
        raise ValueError(f"Expected 'balance' as distinct names from {list(BALANCE_NAMES)} (got {list(balance)})")
    return balance
