"""``coo_index_add``: push over an edge list: gather source rows, scatter-add them into destinations."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block


@dataclass(frozen=True)
class EdgeListState:
    """``src``/``dst`` ``[E]``, weights ``[E, 1]`` or None, ``inv_degree`` ``[num_dst, 1]`` for mean."""

    src: Tensor
    dst: Tensor
    weight: Tensor | None
    inv_degree: Tensor | None
    reduce: str
    num_dst: int


class CooIndexAdd(Aggregation):
    """Push: ``x[src] * w`` materialises one message per edge, ``index_add_``/``scatter_reduce`` folds them per destination."""

    name = "coo_index_add"
    data_organization = "coo"
    propagation = "push"
    materializes_messages = True

    def prepare(self, block: Block, reduce: str) -> EdgeListState:
        weight = block.edge_weight.unsqueeze(1) if block.edge_weight is not None else None
        inv_degree = 1.0 / block.in_degree().clamp(min=1).to(torch.float32).unsqueeze(1) if reduce == "mean" else None
        return EdgeListState(block.indices, block.dst(), weight, inv_degree, reduce, block.num_dst)

    def run(self, state: EdgeListState, x: Tensor) -> Tensor:
        messages = x.index_select(0, state.src)
        if state.weight is not None:
            messages = messages * state.weight.to(x.dtype)
        out = x.new_zeros(state.num_dst, x.size(1))
        if state.reduce == "max":
            return out.scatter_reduce(0, state.dst.unsqueeze(1).expand_as(messages), messages, "amax", include_self=False)
        out = out.index_add(0, state.dst, messages)
        return out * state.inv_degree.to(x.dtype) if state.inv_degree is not None else out
