"""``dgl_gspmm``: DGL's fused generalized SpMM (CSR pull with libxsmm on CPU, cuSPARSE on GPU), when DGL loads."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block


@dataclass(eq=False)
class DglState:
    graph: Any  # a DGL block: sources -> destinations, edge ids in CSR order
    weight: Tensor | None  # [E, 1] float32
    reduce: str
    empty: Tensor | None  # [num_dst, 1] destinations without in-edges, for max (gspmm leaves -inf there)
    _weight_by_dtype: dict = field(default_factory=dict)

    def weight_as(self, dtype: torch.dtype) -> Tensor | None:
        if self.weight is None or self.weight.dtype == dtype:
            return self.weight
        if dtype not in self._weight_by_dtype:
            self._weight_by_dtype[dtype] = self.weight.to(dtype)
        return self._weight_by_dtype[dtype]


class DglGspmm(Aggregation):
    """``dgl.ops.gspmm``: ``copy_lhs`` (unweighted) or ``mul`` by edge weight, reduced by sum/mean/max."""

    name = "dgl_gspmm"
    data_organization = "csr"
    propagation = "pull"
    backend = "dgl"
    requires = "dgl"

    def prepare(self, block: Block, reduce: str) -> DglState:
        import dgl

        graph = dgl.create_block((block.indices, block.dst()), num_src_nodes=block.num_src, num_dst_nodes=block.num_dst)
        graph.create_formats_()  # CSR for forward, CSC for backward: built now, not in the first timed call
        weight = block.edge_weight.to(torch.float32).view(-1, 1) if block.edge_weight is not None else None
        empty = (block.in_degree() == 0).unsqueeze(1)
        return DglState(graph, weight, reduce, empty if reduce == "max" and bool(empty.any()) else None)

    def run(self, state: DglState, x: Tensor) -> Tensor:
        import dgl

        weight = state.weight_as(x.dtype)
        if weight is None:
            out = dgl.ops.gspmm(state.graph, "copy_lhs", state.reduce, x, None)
        else:
            out = dgl.ops.gspmm(state.graph, "mul", state.reduce, x, weight)
        return out.masked_fill(state.empty, 0.0) if state.empty is not None else out
