"""What every distributed trainer does with its peers: a layer-wise forward with halo rows from their
owners, the gradient all-reduce, and evaluation counts summed over workers.

The model knows nothing of this: :func:`halo_forward` drives it layer by layer through the two halves of
:class:`~gnndist.models.gnn.Layerwise` and appends the halo rows between them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from gnndist.block import Block
from gnndist.comm import Communicator
from gnndist.hetero import HeteroBlock
from gnndist.train.metrics import Masks, SplitCounts

if TYPE_CHECKING:
    from gnndist.partition.hetero import HeteroPart

Exchange = Callable[[int, Tensor], Tensor]
"""``exchange(layer, messages_owned) -> [num_halo, F]``: the halo rows of layer ``layer``'s row-wise half."""


def halo_forward(model: torch.nn.Module, x: Tensor, block: Block, exchange: Exchange, layers: int | None = None) -> Tensor:
    """Runs ``model`` over a part: owned rows pull from owned + halo rows at every layer.

    Layer 0's halo input rows are stored with the part (``x``), so that layer runs as it would on a whole
    graph. Every later layer's row-wise half (:meth:`~gnndist.models.gnn.Layerwise.rows`: activation, dropout,
    a narrowing linear map) runs on the owned rows only, and ``exchange`` brings the halo rows that their
    owners computed the same way (only the columns a source needs, :meth:`~gnndist.models.gnn.Layerwise.halo_columns`):
    no row is activated or transformed twice, and the narrowest rows travel.

    Args:
        model: a layer-wise model (``num_layers``, ``rows``, ``aggregate``).
        x: ``[block.num_src, F]`` input rows, owned then halo.
        block: owned rows (destinations) pulling from owned + halo rows (sources).
        exchange: ``exchange(layer, messages_owned)``: the halo rows of a layer's row-wise half.
        layers: run the first ``layers`` layers only (default: all); the output is that layer's raw output.
    """
    h = x
    for index in range(model.num_layers if layers is None else layers):
        messages = model.rows(index, h)
        if index:
            halo = exchange(index, model.halo_columns(index, messages))
            messages = torch.cat([messages, F.pad(halo, (0, messages.size(1) - halo.size(1)))])
        h = model.aggregate(index, messages, block)
    return h


def hetero_halo_forward(model: torch.nn.Module, part: "HeteroPart", block: HeteroBlock, exchange: Exchange, layers: int | None = None) -> Tensor:
    """Runs a heterogeneous model over a part (a :class:`~gnndist.partition.hetero.HeteroPart`): each type's owned
    rows pull from its owned + halo rows; between layers the owned outputs travel in the homogeneous layout.

    Returns:
        ``[part.part.num_owned, F]`` the last layer's owned rows in local order (rows of types it does not
        output, all but the target at the last layer, are zeros), as the homogeneous objectives read them.
    """
    h = part.inputs
    for index in range(model.num_layers if layers is None else layers):
        if index:
            h = part.split_halo(h, exchange(index, part.gather_owned(h)))
        h = model.forward_layer(index, h, block)
    return part.gather_owned(h)


@torch.no_grad()
def infer(model: torch.nn.Module, x: Tensor, block: Block, exchange: Exchange, layers: int | None = None) -> Tensor:
    """Exact full-neighbourhood inference (eval mode, every in-edge): ``[block.num_dst, F]`` rows of layer ``layers`` (default: the last).

    ``exchange`` must be exact (the evaluation and ``gnndist predict`` path); a whole graph has no halo.
    """
    model.eval()
    return halo_forward(model, x, block, exchange, layers)


@torch.no_grad()
def infer_typed(model: torch.nn.Module, part: "HeteroPart", block: HeteroBlock, exchange: Exchange) -> Tensor:
    """:func:`infer` for a heterogeneous model over a typed part (:func:`hetero_halo_forward` in eval mode, every
    in-edge): the last layer's owned rows in local order. ``exchange`` must be exact."""
    model.eval()
    return hetero_halo_forward(model, part, block, exchange)


def evaluate_counts(model: torch.nn.Module, x: Tensor, block: Block, exchange: Exchange, y: Tensor, masks: Masks, comm: Communicator) -> SplitCounts:
    """Correct predictions and totals per split of exact full-neighbourhood inference, summed over workers."""
    return SplitCounts.of(infer(model, x, block, exchange), y, masks).summed(comm)


def all_reduce_gradients(model: torch.nn.Module, comm: Communicator, extra: Sequence[Tensor] = (), *, count_bytes: bool = False) -> Tensor:
    """Sums every parameter's gradient over workers (missing gradients count as zeros); the sum is exact.

    ``extra`` scalars (a step's loss, say) travel in the same message; their sums are returned. An embedding
    table (``nn.Embedding``: featureless node types) is summed row-sparsely, as DistDGL's sparse embeddings are:
    the first message also carries which of its rows each worker's step touched, and a second one sums only the
    rows some worker touched (a mini-batch touches a few of them; the rest are zeros on every worker). The
    optimizer still sees the whole, dense gradient, so training equals single-process training.
    """
    grads, tables = [], []
    embedding_weights = {id(module.weight) for module in model.modules() if isinstance(module, torch.nn.Embedding) and not module.sparse}
    for parameter in model.parameters():
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        (tables if id(parameter) in embedding_weights else grads).append(parameter.grad)
    if comm.world_size == 1:  # nothing to add: skip packing every gradient into one buffer and back
        return torch.stack([value.detach().reshape(()).float() for value in extra]) if extra else torch.zeros(0)
    buffer = parameters_to_vector(grads) if grads else torch.zeros(0, device=tables[0].device)
    size = buffer.numel()
    touched = [table.ne(0).any(dim=1).to(buffer.dtype) for table in tables]
    buffer = torch.cat([buffer, *(value.detach().reshape(-1).to(buffer.dtype) for value in extra), *touched])
    comm.all_reduce_sum(buffer, count_bytes=count_bytes)
    if grads:
        vector_to_parameters(buffer[:size], grads)
    sums = buffer[size : size + len(extra)]
    masks = torch.split(buffer[size + len(extra) :], [table.size(0) for table in tables])
    rows = [mask.nonzero().squeeze(1) for mask in masks]
    if tables:
        values = torch.cat([table.index_select(0, ids).reshape(-1) for table, ids in zip(tables, rows)])
        comm.all_reduce_sum(values, count_bytes=count_bytes)
        for table, ids, summed in zip(tables, rows, torch.split(values, [ids.numel() * table.size(1) for table, ids in zip(tables, rows)])):
            table.index_copy_(0, ids, summed.view(ids.numel(), table.size(1)))
    return sums
