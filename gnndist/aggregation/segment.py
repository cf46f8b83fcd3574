"""``csr_segment``: pull by segment reduction: gather source rows in CSR order, reduce each destination's run."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.block import Block


@dataclass(frozen=True)
class SegmentState:
    """CSR ``indices`` ``[E]``, per-destination ``lengths`` ``[num_dst]``, weights ``[E, 1]`` or None."""

    indices: Tensor
    lengths: Tensor
    weight: Tensor | None
    empty: Tensor | None
    reduce: str


class CsrSegment(Aggregation):
    """Pull: ``torch.segment_reduce`` over the CSR-ordered messages (one contiguous segment per destination)."""

    name = "csr_segment"
    data_organization = "csr"
    propagation = "pull"
    materializes_messages = True

    def prepare(self, block: Block, reduce: str) -> SegmentState:
        indices, lengths, weight = block.indices, block.in_degree(), block.edge_weight
        empty = None
        if reduce == "max":
            # torch.segment_reduce gives every copy of a repeated message the full gradient; the max of
            # a repeated message is the message, so repeated (source, weight) pairs of a row are dropped
            indices, lengths, weight = _without_repeats(block)
            empty = (lengths == 0).unsqueeze(1) if bool((lengths == 0).any()) else None
        return SegmentState(indices, lengths, weight.unsqueeze(1) if weight is not None else None, empty, reduce)

    def run(self, state: SegmentState, x: Tensor) -> Tensor:
        messages = x.index_select(0, state.indices)
        if state.weight is not None:
            messages = messages * state.weight.to(x.dtype)
        # sum and mean give 0 for an empty segment; max gives -inf there, masked back to 0
        out = torch.segment_reduce(messages, state.reduce, lengths=state.lengths, unsafe=True, initial=0.0 if state.reduce != "max" else None)
        return out.masked_fill(state.empty, 0.0) if state.empty is not None else out


def _without_repeats(block: Block) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(indices, lengths, weight)`` of ``block`` with repeated (destination, source, weight) edges kept once."""
    dst, src, weight = block.dst(), block.indices, block.edge_weight
    order = torch.argsort(src, stable=True)
    if weight is not None:
        order = order[torch.argsort(weight[order], stable=True)]
        order = order[torch.argsort(src[order], stable=True)]
    order = order[torch.argsort(dst[order], stable=True)]  # sorted by (dst, src, weight)
    dst, src = dst[order], src[order]
    weight = weight[order] if weight is not None else None
    repeat = torch.zeros_like(dst, dtype=torch.bool)
    if dst.numel() > 1:
        same = (dst[1:] == dst[:-1]) & (src[1:] == src[:-1])
        if weight is not None:
            same &= weight[1:] == weight[:-1]
        repeat[1:] = same
    keep = ~repeat
    lengths = torch.bincount(dst[keep], minlength=block.num_dst)
    return src[keep], lengths, weight[keep] if weight is not None else None
