"""Halo construction and the full-graph exchange plan: which owned rows each part sends to which part."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.block import csr_offsets
from gnndist.graph import Graph


def in_edge_ids(indptr: Tensor, nodes: Tensor) -> Tensor:
    """``[sum of in-degrees]`` CSR positions of the in-edges of ``nodes``, node by node in the given order."""
    starts = indptr[nodes]
    counts = indptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    first_of_node = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - first_of_node, counts) + torch.arange(total)


@dataclass(eq=False)
class ExchangePlan:
    """Which owned rows every part sends to every other part for one full-graph layer.

    Part ``q`` needs, as 1-hop halo, every node owned elsewhere that has an edge into a node ``q``
    owns. ``counts[p, q]`` rows go from ``p`` to ``q``: the nodes ``send_nodes(p, q)``, sorted by
    global id. ``halo_nodes(q)`` concatenates ``send_nodes(p, q)`` over ``p`` in part order, which
    is the order of ``q``'s 1-hop halo rows (by owner part, then global id).

    Attributes:
        num_parts: number of parts ``P``.
        counts: ``[P, P]`` int64 rows sent from part ``p`` (row) to part ``q`` (column); zero diagonal.
        nodes: ``[sum(counts)]`` global ids grouped by (sender, receiver), each group sorted.
        offsets: ``[P * P + 1]`` start of group ``(p, q)`` at ``offsets[p * P + q]``.
    """

    num_parts: int
    counts: Tensor
    nodes: Tensor
    offsets: Tensor

    @classmethod
    def build(cls, graph: Graph, node_part: Tensor, num_parts: int) -> "ExchangePlan":
        """Computes the plan from the owner part of every node (``[num_nodes]`` int64)."""
        n = graph.num_nodes
        src_part = node_part[graph.indices]
        dst_part = node_part[graph.dst()]
        cut = src_part != dst_part
        key = torch.unique((src_part[cut] * num_parts + dst_part[cut]) * n + graph.indices[cut])
        del src_part, dst_part, cut
        counts = torch.bincount(key // n, minlength=num_parts * num_parts)
        offsets = csr_offsets(counts)
        return cls(num_parts, counts.view(num_parts, num_parts), key % n, offsets)

    def send_nodes(self, sender: int, receiver: int) -> Tensor:
        """Global ids of the rows ``sender`` sends to ``receiver``, sorted."""
        group = sender * self.num_parts + receiver
        return self.nodes[int(self.offsets[group]) : int(self.offsets[group + 1])]

    def halo_nodes(self, part: int) -> Tensor:
        """Global ids of ``part``'s 1-hop halo, ordered by owner part, then global id."""
        return torch.cat([self.send_nodes(owner, part) for owner in range(self.num_parts)])

    def send_counts(self, part: int) -> Tensor:
        """``[P]`` rows ``part`` sends to each part."""
        return self.counts[part].clone()

    def recv_counts(self, part: int) -> Tensor:
        """``[P]`` rows ``part`` receives from each part."""
        return self.counts[:, part].clone()

    def halo_counts(self) -> Tensor:
        """``[P]`` 1-hop halo nodes per part."""
        return self.counts.sum(dim=0)

    def bytes_per_layer(self, feature_width: int, bytes_per_value: int = 4) -> int:
        """Bytes moved by one full-graph layer exchange of ``feature_width``-wide rows (fp32 by default)."""
        return exchange_bytes(self.counts, feature_width, bytes_per_value)


def exchange_bytes(counts: Tensor, feature_width: int, bytes_per_value: int = 4) -> int:
    """Bytes one full-graph layer exchange moves under the ``[P, P]`` row counts ``counts`` (``ExchangePlan.counts``)."""
    return int(counts.sum()) * feature_width * bytes_per_value


def halo_rings(graph: Graph, node_part: Tensor, part_id: int, halo_hops: int, plan: ExchangePlan) -> list[Tensor]:
    """The halo of ``part_id`` hop by hop: ring ``h`` holds the in-neighbours of ring ``h - 1`` not yet local.

    Ring 0 is the owned set; ring 1 comes from the exchange plan. Each ring is ordered by
    (owner part, global id).

    Returns:
        ``halo_hops`` tensors of global ids (some may be empty).
    """
    n = graph.num_nodes
    is_local = node_part == part_id
    rings = [plan.halo_nodes(part_id)]
    is_local[rings[0]] = True
    for _ in range(1, halo_hops):
        sources = torch.unique(graph.indices[in_edge_ids(graph.indptr, rings[-1])])
        ring = sources[~is_local[sources]]
        ring = ring[torch.argsort(node_part[ring] * n + ring)]
        is_local[ring] = True
        rings.append(ring)
    return rings
