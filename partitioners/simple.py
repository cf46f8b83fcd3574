"""Baselines without graph structure: random (seeded, balanced) and range (contiguous id blocks)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from gnndist.graph import Graph
from gnndist.partitioners.base import Partitioner

RANGE_BALANCE = ("nodes", "edges")


@dataclass
class RandomPartitioner(Partitioner):
    """Each node to a random part: a seeded permutation dealt round-robin, so part sizes differ by at most one."""

    name: ClassVar[str] = "random"

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> Tensor:
        permutation = torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(seed))
        node_part = torch.empty(graph.num_nodes, dtype=torch.long)
        node_part[permutation] = torch.arange(graph.num_nodes) % num_parts
        return node_part


@dataclass
class RangePartitioner(Partitioner):
    """Contiguous blocks of node ids (good when ids carry locality, e.g. after a reordering).

    Args:
        balance: ``"nodes"`` (equal node counts, default) or ``"edges"`` (equal ``in-degree + 1`` per block).
    """

    name: ClassVar[str] = "range"

    balance: str = "nodes"

    def __post_init__(self) -> None:
        if self.balance not in RANGE_BALANCE:
            raise ValueError(f"Expected balance in {list(RANGE_BALANCE)} (got {self.balance!r})")

    def _assign(self, graph: Graph, num_parts: int, *, seed: int) -> Tensor:
        n = graph.num_nodes
        if self.balance == "nodes":
            return torch.arange(n) * num_parts // n
        load = torch.cumsum(graph.in_degrees() + 1, 0)
        starts = torch.searchsorted(load, load[-1] * torch.arange(1, num_parts) // num_parts, right=True)
        return torch.bucketize(torch.arange(n), starts, right=True)
