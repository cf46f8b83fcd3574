"""One-pass (optionally re-streamed) greedy partitioners: LDG and Fennel, compiled with numba.

Nodes arrive one by one and go to the part that holds most of their (undirected) neighbours,
discounted by how full the part is: LDG (Stanton & Kliot, 2012) multiplies by ``1 - size / capacity``,
Fennel (Tsourakakis et al., 2014) subtracts ``alpha * gamma * size ** (gamma - 1)``. No part grows
beyond ``capacity = ceil((1 + imbalance) * num_nodes / num_parts)``. With ``passes > 1`` the stream
is replayed and every node may move, seeing its neighbours' latest parts (restreaming, Nishimura &
Ugander, 2013). Cost: ``O(passes * (num_edges + num_nodes * num_parts))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from gnndist.graph import Graph
from gnndist.partitioners.base import Partitioner
from gnndist.partitioners.jit import compiled

ORDERS = ("bfs", "random", "natural")


@compiled
def _out_csr(indptr, indices):  # pragma: no cover - compiled
    """CSR over outgoing edges (rows sorted) from CSR over incoming edges, by counting sort."""
    num_nodes = indptr.size - 1
    out_indptr = np.zeros(num_nodes + 1, np.int64)
    for e in range(indices.size):
        out_indptr[indices[e] + 1] += 1
    for v in range(num_nodes):
        out_indptr[v + 1] += out_indptr[v]
    fill = out_indptr[:-1].copy()
    out_indices = np.empty(indices.size, np.int64)
    for v in range(num_nodes):
        for e in range(indptr[v], indptr[v + 1]):
            u = indices[e]
            out_indices[fill[u]] = v
            fill[u] += 1
    return out_indptr, out_indices


@compiled
def _stream(indptr, indices, out_indptr, out_indices, order, num_parts, capacity, passes, fennel, alpha, gamma):  # pragma: no cover - compiled
    num_nodes = indptr.size - 1
    part = np.full(num_nodes, -1, np.int64)
    sizes = np.zeros(num_parts, np.float64)
    counts = np.zeros(num_parts, np.float64)
    for _ in range(passes):
        for v in order:
            old = part[v]
            if old >= 0:
                sizes[old] -= 1.0
            for e in range(indptr[v], indptr[v + 1]):
                neighbour_part = part[indices[e]]
                if neighbour_part >= 0 and indices[e] != v:
                    counts[neighbour_part] += 1.0
            for e in range(out_indptr[v], out_indptr[v + 1]):
                neighbour_part = part[out_indices[e]]
                if neighbour_part >= 0 and out_indices[e] != v:
                    counts[neighbour_part] += 1.0
            best = -1
            best_score = -np.inf
            for q in range(num_parts):
                if sizes[q] >= capacity:
                    continue
                if fennel:
                    score = counts[q] - alpha * gamma * sizes[q] ** (gamma - 1.0)
                else:
                    score = counts[q] * (1.0 - sizes[q] / capacity)
                if score > best_score or (score == best_score and sizes[q] < sizes[best]):
                    best = q
                    best_score = score
            part[v] = best
            sizes[best] += 1.0
            counts[:] = 0.0
    return part


@compiled
def _bfs_order(indptr, indices, out_indptr, out_indices, starts):  # pragma: no cover - compiled
    num_nodes = indptr.size - 1
    seen = np.zeros(num_nodes, np.bool_)
    order = np.empty(num_nodes, np.int64)
    head = 0
    tail = 0
    for start in starts:
        if seen[start]:
            continue
        seen[start] = True
        order[tail] = start
        tail += 1
        while head < tail:
            v = order[head]
            head += 1
            for e in range(indptr[v], indptr[v + 1]):
                u = indices[e]
                if not seen[u]:
                    seen[u] = True
                    order[tail] = u
                    tail += 1
            for e in range(out_indptr[v], out_indptr[v + 1]):
                u = out_indices[e]
                if not seen[u]:
                    seen[u] = True
                    order[tail] = u
                    tail += 1
    return order


@dataclass(eq=False)
class UndirectedNeighbours:
    """In- and out-neighbour lists; for a symmetric graph the out-lists are empty (they would repeat the in-lists).

    Attributes:
        in_csr: ``(indptr, indices)`` over incoming edges.
        out_csr: ``(indptr, indices)`` over outgoing edges, or empty rows for a symmetric graph.
        num_entries: neighbour entries over both lists (each undirected edge counts twice).
    """

    in_csr: tuple[np.ndarray, np.ndarray]
    out_csr: tuple[np.ndarray, np.ndarray]
    num_entries: int


def undirected_neighbours(graph: Graph) -> UndirectedNeighbours:
    """Every node's neighbours ignoring direction, with multiplicity (no sort, no de-duplication: O(E))."""
    indptr, indices = graph.indptr.numpy(), graph.indices.numpy()
    out_indptr, out_indices = _out_csr(indptr, indices)
    if np.array_equal(indptr, out_indptr) and np.array_equal(indices, out_indices):
        empty = (np.zeros(indptr.size, np.int64), np.zeros(0, np.int64))
        return UndirectedNeighbours((indptr, indices), empty, indices.size)
    return UndirectedNeighbours((indptr, indices), (out_indptr, out_indices), 2 * indices.size)


@dataclass
class StreamingPartitioner(Partitioner):
    """Shared options of LDG and Fennel.

    Args:
        imbalance: parts hold at most ``ceil((1 + imbalance) * num_nodes / num_parts)`` nodes (default 0.05).
        passes: times the node stream is replayed (default 1: one pass).
        order: the stream: ``"bfs"`` (default: breadth-first from a seeded random node, restarting
            from the next unvisited node of a seeded permutation; neighbours arrive close together,
            which is what greedy placement needs), ``"random"`` (a seeded permutation) or
            ``"natural"`` (node id order).
    """

    imbalance: float = 0.05
    passes: int = 1
    order: str = "bfs"

    def __post_init__(self) -> None:
        if not self.imbalance >= 0:
            raise ValueError(f"Expected imbalance >= 0 (got {self.imbalance})")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or self.passes < 1:
            raise ValueError(f"Expected passes >= 1 (got {self.passes!r})")
        if self.order not in ORDERS:
            raise ValueError(f"Expected order in {list(ORDERS)} (got {self.order!r})")

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        n = graph.num_nodes
        neighbours = undirected_neighbours(graph)
        if self.order == "natural":
            order = np.arange(n, dtype=np.int64)
        else:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
            if self.order == "bfs":
                order = _bfs_order(*neighbours.in_csr, *neighbours.out_csr, order)
        capacity = float(math.ceil((1.0 + self.imbalance) * n / num_parts))
        fennel, alpha, gamma = self._objective(neighbours.num_entries, n, num_parts)
        return _stream(*neighbours.in_csr, *neighbours.out_csr, order, num_parts, capacity, self.passes, fennel, alpha, gamma)

    def _objective(self, num_entries: int, num_nodes: int, num_parts: int) -> tuple[bool, float, float]:
        """``(is_fennel, alpha, gamma)`` for the kernel; ``num_entries`` counts neighbour-list entries."""
        raise NotImplementedError


@dataclass
class LDGPartitioner(StreamingPartitioner):
    """Linear Deterministic Greedy: neighbours in the part times ``1 - size / capacity``."""

    name: ClassVar[str] = "ldg"

    def _objective(self, num_entries: int, num_nodes: int, num_parts: int) -> tuple[bool, float, float]:
        return False, 0.0, 1.0


@dataclass
class FennelPartitioner(StreamingPartitioner):
    """Fennel: neighbours in the part minus ``alpha * gamma * size ** (gamma - 1)``.

    Args:
        gamma: exponent of the size penalty (default 1.5).
        alpha: penalty scale; default ``sqrt(num_parts) * num_edges / num_nodes ** gamma`` with
            ``num_edges`` the edges of the undirected view.
    """

    name: ClassVar[str] = "fennel"

    gamma: float = 1.5
    alpha: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gamma > 1:
            raise ValueError(f"Expected gamma > 1 (got {self.gamma})")
        if self.alpha is not None and not self.alpha > 0:
            raise ValueError(f"Expected alpha > 0 or None (got {self.alpha})")

    def _objective(self, num_entries: int, num_nodes: int, num_parts: int) -> tuple[bool, float, float]:
        # neighbour counts see every undirected edge from both ends, as the standard m does
        alpha = self.alpha if self.alpha is not None else math.sqrt(num_parts) * max(num_entries / 2, 1) / num_nodes**self.gamma
        return True, float(alpha), float(self.gamma)
