"""SpMM with ``torch.sparse``: the CSR pull (the default backend, available wherever torch is) and its CSC twin."""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block, csr_indptr


def edge_values(block: Block, reduce: str) -> Tensor:
    """``[E]`` float32 edge weights (ones when None), divided by the destination's in-degree for mean."""
    values = block.edge_weight.to(torch.float32) if block.edge_weight is not None else torch.ones(block.num_edges, device=block.indices.device)
    if reduce == "mean":
        values = values / block.in_degree().clamp(min=1).to(torch.float32)[block.dst()]
    return values


def sparse_matrix(layout: str, pointers: Tensor, indices: Tensor, values: Tensor, size: tuple[int, int]) -> Tensor:
    """A torch sparse CSR or CSC matrix, without torch's "beta" warning (printed once per process otherwise)."""
    build = torch.sparse_csr_tensor if layout == "csr" else torch.sparse_csc_tensor
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse (CSR|CSC) tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        return build(pointers, indices, values, size=size, check_invariants=False)


def source_major(block: Block) -> tuple[Tensor, Tensor, Tensor]:
    """``(indptr [num_src + 1], dst [E], order [E])``: the edges grouped by source (the transposed CSR, i.e. CSC)."""
    order = torch.argsort(block.indices, stable=True)
    return csr_indptr(block.indices, block.num_src), block.dst()[order], order


class _TorchSparse(Aggregation):
    """Shared by the torch.sparse layouts: the matrix per dtype, and ``torch.sparse.mm``."""

    def run(self, state: dict, x: Tensor) -> Tensor:
        if x.dtype not in state:
            state[x.dtype] = state[torch.float32].to(x.dtype)
        adj = state[x.dtype]
        if state["reduce"] == "max":
            return torch.sparse.mm(adj, x, "amax")
        return torch.sparse.mm(adj, x)


class CsrSpmm(_TorchSparse):
    """Pull: each destination reduces its CSR row with ``torch.sparse.mm`` (mean folded into the values, max via ``reduce="amax"``, CPU only)."""

    name = "csr_spmm"
    data_organization = "csr"
    propagation = "pull"

    def supports(self, block: Block, reduce: str) -> str | None:
        if reduce == "max" and block.device.type != "cpu":
            return f"{self.name}: torch.sparse.mm implements reduce='amax' on CPU only"
        return super().supports(block, reduce)

    def prepare(self, block: Block, reduce: str) -> dict:
        values = edge_values(block, "sum" if reduce == "max" else reduce)
        adj = sparse_matrix("csr", block.indptr, block.indices, values, (block.num_dst, block.num_src))
        return {torch.float32: adj, "reduce": reduce}


class CscSpmm(_TorchSparse):
    """Push from sources: the same SpMM over the transposed storage (CSC: edges grouped by source)."""

    name = "csc_spmm"
    data_organization = "csc"
    propagation = "push"
    reducers = ("sum", "mean")

    def prepare(self, block: Block, reduce: str) -> dict:
        indptr, dst, order = source_major(block)
        values = edge_values(block, reduce)[order]
        adj = sparse_matrix("csc", indptr, dst, values, (block.num_dst, block.num_src))
        return {torch.float32: adj, "reduce": reduce}
