"""``dense_gemm``: the adjacency as a dense matrix and one GEMM: only for small graphs."""
from __future__ import annotations

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block


class DenseGemm(Aggregation):
    """GEMM: ``A @ x`` with ``A`` a dense ``[num_dst, num_src]`` matrix (mean folded into its rows).

    Refuses blocks wider than ``max_nodes`` (a 8192 x 8192 float32 matrix is 256 MiB).
    """

    name = "dense_gemm"
    data_organization = "dense"
    propagation = "gemm"
    reducers = ("sum", "mean")
    max_nodes = 8192

    def prepare(self, block: Block, reduce: str) -> Tensor:
        values = block.edge_weight if block.edge_weight is not None else torch.ones(block.num_edges, device=block.indices.device)
        dst = block.dst()
        if reduce == "mean":
            values = values / block.in_degree().clamp(min=1).to(values.dtype)[dst]
        dense = torch.zeros(block.num_dst, block.num_src, device=block.indices.device)
        return dense.index_put_((dst, block.indices), values.to(dense.dtype), accumulate=True)

    def run(self, state: Tensor, x: Tensor) -> Tensor:
        return state.to(x.dtype) @ x
