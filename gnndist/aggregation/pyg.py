"""PyG ``MessagePassing``: on an ``edge_index`` (gather + scatter) and on a sparse adjacency (``message_and_aggregate``)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from gnndist.aggregation.base import Aggregation
from gnndist.aggregation.torch_sparse_csr import edge_values, sparse_matrix
from gnndist.block import Block


class WeightedAggregation(MessagePassing):
    """``out[d] = aggr_s w_sd * x[s]`` as a PyG layer without parameters."""

    def __init__(self, aggr: str):
        super().__init__(aggr=aggr)

    def forward(self, structure: Tensor, x: Tensor, edge_weight: Tensor | None, size: tuple[int, int]) -> Tensor:
        return self.propagate(structure, x=x, edge_weight=edge_weight, size=size)

    def message(self, x_j: Tensor, edge_weight: Tensor | None) -> Tensor:
        return x_j if edge_weight is None else x_j * edge_weight.view(-1, 1).to(x_j.dtype)

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return spmm(adj_t if adj_t.dtype == x.dtype else adj_t.to(x.dtype), x, reduce=self.aggr)


@dataclass(frozen=True)
class PygState:
    layer: WeightedAggregation
    structure: Tensor  # [2, E] edge_index, or [num_dst, num_src] sparse CSR adj_t
    edge_weight: Tensor | None
    size: tuple[int, int]


class PygEdgeIndex(Aggregation):
    """PyG ``MessagePassing.propagate`` on ``edge_index``: one message per edge, then scatter (push)."""

    name = "pyg_edge_index"
    data_organization = "coo"
    propagation = "push"
    backend = "pyg"
    materializes_messages = True

    def prepare(self, block: Block, reduce: str) -> PygState:
        return PygState(WeightedAggregation(reduce), block.edge_index(), block.edge_weight, (block.num_src, block.num_dst))

    def run(self, state: PygState, x: Tensor) -> Tensor:
        return state.layer(state.structure, x, state.edge_weight, state.size)


class PygSparse(Aggregation):
    """PyG ``MessagePassing`` on a torch.sparse CSR ``adj_t``: ``message_and_aggregate`` = SpMM (pull).

    Mean is folded into the values; max needs ``reduce="amax"``, which torch.sparse has on CPU only.
    """

    name = "pyg_sparse"
    data_organization = "csr"
    propagation = "pull"
    backend = "pyg"

    def supports(self, block: Block, reduce: str) -> str | None:
        if reduce == "max" and block.device.type != "cpu":
            return f"{self.name}: torch.sparse SpMM implements max on CPU only"
        return super().supports(block, reduce)

    def prepare(self, block: Block, reduce: str) -> PygState:
        values = edge_values(block, "sum" if reduce == "max" else reduce)
        adj_t = sparse_matrix("csr", block.indptr, block.indices, values, (block.num_dst, block.num_src))
        return PygState(WeightedAggregation("max" if reduce == "max" else "sum"), adj_t, None, (block.num_src, block.num_dst))

    def run(self, state: PygState, x: Tensor) -> Tensor:
        return state.layer(state.structure, x, None, state.size)
