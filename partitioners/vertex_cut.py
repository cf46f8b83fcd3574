"""HDRF (Petroni et al., 2015): streaming vertex-cut that replicates high-degree nodes first.

Edges arrive in a seeded random order; edge (u, v) goes to the part maximising
``g(u) + g(v) + lambda * balance``, where ``g(u) = 1 + (1 - theta(u))`` if the part already
holds a copy of ``u`` (``theta(u)`` = u's share of the two partial degrees: the lower-degree end
counts more, so hubs get cut), and ``balance = (max_size - size) / (epsilon + max_size - min_size)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from gnndist.graph import Graph
from gnndist.partitioners.base import VertexCutPartitioner
from gnndist.partitioners.jit import compiled


@compiled
def _hdrf(src, dst, num_nodes, num_parts, balance_weight, epsilon):  # pragma: no cover - compiled
    edge_part = np.empty(src.size, np.int64)
    degree = np.zeros(num_nodes, np.float64)
    has_copy = np.zeros((num_nodes, num_parts), np.bool_)
    sizes = np.zeros(num_parts, np.float64)
    max_size = 0.0
    for e in range(src.size):
        u = src[e]
        v = dst[e]
        degree[u] += 1.0
        degree[v] += 1.0
        theta_u = degree[u] / (degree[u] + degree[v])
        theta_v = 1.0 - theta_u
        min_size = sizes.min()
        best = 0
        best_score = -np.inf
        for q in range(num_parts):
            score = balance_weight * (max_size - sizes[q]) / (epsilon + max_size - min_size)
            if has_copy[u, q]:
                score += 2.0 - theta_u
            if has_copy[v, q]:
                score += 2.0 - theta_v
            if score > best_score:
                best = q
                best_score = score
        edge_part[e] = best
        has_copy[u, best] = True
        has_copy[v, best] = True
        sizes[best] += 1.0
        max_size = max(max_size, sizes[best])
    return edge_part


@dataclass
class HDRFPartitioner(VertexCutPartitioner):
    """High-Degree Replicated First vertex-cut; node owners follow their in-edges (see VertexCutPartitioner).

    Args:
        balance_weight: lambda, the weight of edge balance against replication (default 1.0;
            larger = more balanced, more copies).
        epsilon: keeps the balance term finite while all parts are equal (default 1.0).
    """

    name: ClassVar[str] = "hdrf"

    balance_weight: float = 1.0
    epsilon: float = 1.0

    def __post_init__(self) -> None:
        if not self.balance_weight >= 0:
            raise ValueError(f"Expected balance_weight >= 0 (got {self.balance_weight})")
        if not self.epsilon > 0:
            raise ValueError(f"Expected epsilon > 0 (got {self.epsilon})")

    def _assign_edges(self, graph: Graph, num_parts: int, *, seed: int) -> np.ndarray:
        order = torch.randperm(graph.num_edges, generator=torch.Generator().manual_seed(seed))
        # the stream is laid out in arrival order, so the loop reads memory sequentially
        streamed = _hdrf(graph.indices[order].numpy(), graph.dst()[order].numpy(), graph.num_nodes, num_parts, float(self.balance_weight), float(self.epsilon))
        edge_part = torch.empty(graph.num_edges, dtype=torch.long)
        edge_part[order] = torch.from_numpy(streamed)
        return edge_part
