"""``torch_sparse_spmm``: the torch-sparse extension's ``SparseTensor`` matmul (sum/mean/max), when it is installed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block


@dataclass(frozen=True)
class TorchSparseState:
    adj_t: Any  # torch_sparse.SparseTensor [num_dst, num_src]
    reduce: str


class TorchSparseSpmm(Aggregation):
    """``torch_sparse.matmul(adj_t, x, reduce)``: CSR pull with torch-scatter's segment kernels (PyG's former default)."""

    name = "torch_sparse_spmm"
    data_organization = "csr"
    propagation = "pull"
    backend = "torch_sparse"
    requires = "torch_sparse"

    def prepare(self, block: Block, reduce: str) -> TorchSparseState:
        import torch_sparse

        adj_t = torch_sparse.SparseTensor(rowptr=block.indptr, col=block.indices, value=block.edge_weight, sparse_sizes=(block.num_dst, block.num_src))
        return TorchSparseState(adj_t, reduce)

    def run(self, state: TorchSparseState, x: Tensor) -> Tensor:
        import torch_sparse

        return torch_sparse.matmul(state.adj_t, x, state.reduce)
