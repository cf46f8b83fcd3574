"""Block: the bipartite structure one GNN layer aggregates over (destinations pull from sources)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


def csr_offsets(counts: Tensor) -> Tensor:
    """``[n + 1]`` CSR offsets of ``n`` rows holding ``counts[i]`` entries each: ``[0, c0, c0 + c1, ...]``."""
    offsets = torch.zeros(counts.numel() + 1, dtype=torch.long, device=counts.device)
    torch.cumsum(counts, 0, out=offsets[1:])
    return offsets


def csr_indptr(rows: Tensor, num_rows: int) -> Tensor:
    """``[num_rows + 1]`` CSR offsets of entries whose rows are ``rows`` (entries sorted by row)."""
    return csr_offsets(torch.bincount(rows, minlength=num_rows))


@dataclass(eq=False)
class Block:
    """Destinations ``0..num_dst-1`` pull from sources ``0..num_src-1``; destinations are the first sources.

    This is the one structure every layer sees: the whole graph (``num_dst == num_src``), a part's owned
    rows pulling from owned + halo rows (full-graph training), or one hop of a sampled mini-batch.

    Attributes:
        indptr: ``[num_dst + 1]`` CSR offsets over incoming edges.
        indices: ``[num_edges]`` source row of each edge.
        num_src: number of source rows (``>= num_dst``).
        src_degree: ``[num_src]`` in-degree of each source node in the *whole* graph, used for GCN's
            symmetric normalisation so that a part or a sample normalises like the full graph.
            None means the in-degree within this block.
        edge_weight: ``[num_edges]`` optional edge weights in CSR order.
    """

    indptr: Tensor
    indices: Tensor
    num_src: int
    src_degree: Tensor | None = None
    edge_weight: Tensor | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_graph(cls, graph) -> "Block":
        """The whole graph as one square block, normalised by its own in-degrees."""
        return cls(graph.indptr, graph.indices, graph.num_nodes, graph.in_degrees(), graph.edge_weight)

    @property
    def device(self) -> torch.device:
        return self.indices.device

    @property
    def num_dst(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    def dst(self) -> Tensor:
        """``[num_edges]`` destination of each edge."""
        return self._cached("dst", lambda: torch.repeat_interleave(torch.arange(self.num_dst, device=self.indptr.device), self.indptr.diff()))

    def edge_index(self) -> Tensor:
        """``[2, num_edges]`` (src, dst) for PyG layers that need an edge list."""
        return self._cached("edge_index", lambda: torch.stack([self.indices, self.dst()]))

    def in_degree(self) -> Tensor:
        return self.indptr.diff()

    def degree_of_sources(self) -> Tensor:
        """Whole-graph in-degree of every source row (falls back to this block's in-degree)."""
        if self.src_degree is not None:
            return self.src_degree
        degree = torch.zeros(self.num_src, dtype=torch.long, device=self.indptr.device)
        degree[: self.num_dst] = self.in_degree()
        return degree

    def gcn_normalized(self) -> "Block":
        """GCN's ``D^-1/2 (A + I) D^-1/2`` on this block as a weighted Block, with whole-graph degrees.

        A self loop is added for every destination (destination i is source i); the degree of a node
        is its in-degree plus one for that loop, exactly as PyG's ``gcn_norm`` on the full graph.
        """

        def build() -> "Block":
            degree = self.degree_of_sources().to(torch.float32) + 1.0
            inv_sqrt = degree.pow(-0.5)
            dst = self.dst()
            weight = self.edge_weight if self.edge_weight is not None else torch.ones(self.num_edges, device=dst.device)
            loops = torch.arange(self.num_dst, device=dst.device)
            rows = torch.cat([dst, loops])
            cols = torch.cat([self.indices, loops])
            values = torch.cat([inv_sqrt[self.indices] * weight * inv_sqrt[dst], inv_sqrt[loops].square()])
            order = torch.argsort(rows * self.num_src + cols, stable=True)
            return Block(csr_indptr(rows, self.num_dst), cols[order], self.num_src, self.src_degree, values[order])

        return self._cached("gcn_normalized", build)

    def keep_sources(self, is_kept: Tensor) -> "Block":
        """This block without the edges from the sources where ``is_kept`` (``[num_src]``) is False."""
        kept = is_kept[self.indices]
        weight = self.edge_weight[kept] if self.edge_weight is not None else None
        return Block(csr_indptr(self.dst()[kept], self.num_dst), self.indices[kept], self.num_src, self.src_degree, weight)

    def keep_halo(self, keep: Tensor) -> "Block":
        """A part's block (owned rows first, then ``keep.numel()`` halo rows) without the edges from the halo rows
        where ``keep`` is False: BNS-GCN's boundary sampling, where a dropped halo row loses its edges for an epoch."""
        return self.keep_sources(torch.cat([torch.ones(self.num_dst, dtype=torch.bool, device=keep.device), keep]))

    def to(self, device: torch.device | str) -> "Block":
        move = lambda t: t.to(device) if t is not None else None  # noqa: E731
        return Block(move(self.indptr), move(self.indices), self.num_src, move(self.src_degree), move(self.edge_weight))

    def _cached(self, key: str, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]
