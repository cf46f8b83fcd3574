"""The built-in GNNs (GCN, GraphSAGE, GAT) with PyG's layer weights. They know nothing of distribution.

GCN and GraphSAGE hold PyG-compatible weights (:mod:`gnndist.models.weights`) and aggregate with gnndist's
backends, so building them imports no PyG (~180 MiB per worker); GAT imports PyG's ``GATConv`` when it is built.

Every layer reads a :class:`~gnndist.block.Block` (destinations pull from sources), so one model
serves the whole graph, a part with its halo, and sampled mini-batches. The layer-wise protocol
(:class:`Layerwise`: :meth:`~Layerwise.rows` then :meth:`~Layerwise.aggregate`) lets a trainer drive the
layers itself: full-graph training computes a layer's row-wise half on owned rows and appends the halo
rows its peers computed the same way, between the two halves.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnndist.aggregation import Aggregation, resolve_aggregation
from gnndist.block import Block
from gnndist.models.dropout import dropout, relu_dropout
from gnndist.models.messages import gcn_message_width, sage_message_width
from gnndist.models.weights import GCNWeights, SAGEWeights


class Layerwise(nn.Module):
    """The layer-wise protocol every trainer drives: ``num_layers``, :meth:`rows` and :meth:`aggregate`.

    A layer is split in two: :meth:`rows`, which acts on every input row alone (activation, dropout, and a
    linear map where that narrows the rows), and :meth:`aggregate`, which combines each destination's
    sources. Rows computed by one worker equal rows computed by another, so full-graph training computes
    :meth:`rows` on owned rows only and sends their result to the workers that hold them as halo: halo rows
    are never activated or transformed twice, and what travels is as narrow as the layer allows.
    """

    num_layers: int

    def rows(self, index: int, h: Tensor) -> Tensor:
        """The row-wise half of layer ``index``: ``[R, F_in]`` -> ``[R, message_width]``, each row on its own.

        ``h`` is the model's input for layer 0 and the previous layer's raw output (before its activation)
        otherwise. Default: the rows as they are.
        """
        return h

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        """The rest of layer ``index``: ``[block.num_src, message_width]`` rows of :meth:`rows` -> ``[block.num_dst, F_out]``
        raw output (no activation)."""
        raise NotImplementedError

    def halo_columns(self, index: int, messages: Tensor) -> Tensor:
        """The part of layer ``index``'s :meth:`rows` that a row's halo copies need (they are sources only, never
        destinations): what the exchange sends. :meth:`aggregate` gets the halo rows zero-padded to full width.
        Default: every column."""
        return messages

    def forward_layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        """Layer ``index`` on a block whose every source row is in ``h``: :meth:`aggregate` of :meth:`rows`."""
        return self.aggregate(index, self.rows(index, h), block)

    def forward(self, x: Tensor, blocks: Block | Sequence[Block]) -> Tensor:
        """Runs every layer; ``blocks`` is one Block for all layers or one per layer (outermost first)."""
        h = x
        for index in range(self.num_layers):
            h = self.forward_layer(index, h, blocks if isinstance(blocks, Block) else blocks[index])
        return h


INPUT_BLOCK_BYTES = 128 << 20
"""Size above which layer 0's dropped input is made and aggregated a column block at a time, where some of its
rows are sources only (:meth:`GNN.aggregate_sources`)."""


class GNN(Layerwise):
    """A stack of message-passing layers with ReLU and dropout between them.

    Args:
        in_channels, hidden_channels, out_channels: widths.
        num_layers: number of message-passing layers (>= 1).
        dropout: dropout probability on each layer's input.
        aggregation: aggregation backend name (see ``gnndist.aggregation``) or a built backend.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5, aggregation: "str | Aggregation" = "auto"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"Expected num_layers >= 1 (got {num_layers})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1) (got {dropout})")
        self.num_layers = num_layers
        self.dropout = dropout
        self.aggregation = resolve_aggregation(aggregation)
        self.widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(self.make_conv(i, self.widths[i], self.widths[i + 1]) for i in range(num_layers))

    fuses_input_dropout = False
    """Whether the subclass's :meth:`aggregate` reads its sources through :meth:`aggregate_sources`, which can apply
    layer 0's input dropout itself (:meth:`defers_dropout`)."""

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    @staticmethod
    def message_width(in_channels: int, out_channels: int) -> int:
        """Width of a layer's :meth:`rows` (what full-graph workers exchange): the input's, unless overridden."""
        return in_channels

    def transforms_rows(self, index: int) -> bool:
        """Whether layer ``index``'s :meth:`rows` applies its linear map (the message is narrower than the input)."""
        return self.message_width(self.widths[index], self.widths[index + 1]) < self.widths[index]

    def defers_dropout(self, index: int, h: Tensor) -> bool:
        """Whether :meth:`rows` leaves layer ``index``'s dropout of ``h`` to :meth:`aggregate_sources`: layer 0 in
        training, when it aggregates its input as it is (no narrowing map first) and the input needs no gradient."""
        return (
            index == 0 and self.fuses_input_dropout and self.training and self.dropout > 0
            and not self.transforms_rows(0) and not (h.requires_grad and torch.is_grad_enabled())
        )

    def rows(self, index: int, h: Tensor) -> Tensor:
        """Dropout on the input of layer 0, ReLU and dropout (fused) on the raw output of the layer before
        otherwise; then the subclass's :meth:`transform` where that narrows the rows. Layer 0's dropout waits for
        :meth:`aggregate_sources` where :meth:`defers_dropout` says so."""
        if self.defers_dropout(index, h):
            return h
        h = dropout(h, self.dropout, self.training) if index == 0 else relu_dropout(h, self.dropout, self.training)
        return self.transform(index, h) if self.transforms_rows(index) else h

    def transform(self, index: int, h: Tensor) -> Tensor:
        """The linear part of layer ``index`` applied row by row (only called when :meth:`transforms_rows`)."""
        raise NotImplementedError

    def aggregate_sources(self, index: int, messages: Tensor, block: Block, reduce: str, roots: bool = False) -> tuple[Tensor, Tensor | None]:
        """``(aggregation [block.num_dst, F], the destinations' own rows [block.num_dst, F] if roots else None)`` of
        layer ``index``'s :meth:`rows` output over ``block`` (the layer's block or its normalised form).

        Where :meth:`rows` left the layer's dropout here (:meth:`defers_dropout`) and some sources are not
        destinations (a full-graph part's halo rows), an input above :data:`INPUT_BLOCK_BYTES` is dropped and
        aggregated a column block at a time (both act on each column alone): the dropped copy of every source
        row, as large as the input and a full-graph worker's largest tensor, never exists whole, and only the
        destinations' dropped rows are kept for backward, not the halo's. Narrower blocks cost aggregation speed
        (4 blocks of 32 columns: +40 % on a 500k-node ``sbm``), so any other input is dropped whole, as before.
        """
        if not self.defers_dropout(index, messages):
            return self.aggregation(block, messages, reduce), (messages[: block.num_dst] if roots else None)
        width = messages.size(1)
        blocks = -(-messages.numel() * messages.element_size() // INPUT_BLOCK_BYTES) if messages.size(0) > block.num_dst else 1
        step = min(width, -(-width // blocks // 16) * 16)  # whole multiples of 16 columns keep the kernel's vector loops
        if step == width:
            dropped = dropout(messages, self.dropout)
            return self.aggregation(block, dropped, reduce), (dropped[: block.num_dst] if roots else None)
        out = messages.new_empty(block.num_dst, width)
        root = messages.new_empty(block.num_dst, width) if roots else None
        for start in range(0, width, step):
            dropped = dropout(messages[:, start : start + step], self.dropout).contiguous()
            out[:, start : start + step] = self.aggregation(block, dropped, reduce)
            if root is not None:
                root[:, start : start + step] = dropped[: block.num_dst]
        return out, root


class GCN(GNN):
    """Kipf & Welling GCN: ``GCNConv``'s weights (:class:`~gnndist.models.weights.GCNWeights`); aggregation over the symmetric-normalised block.

    ``A (h W) = (A h) W``: a layer that narrows (``F_out < F_in``) transforms its rows first, so the
    aggregation and the halo exchange move ``F_out`` columns; a layer that widens aggregates first.
    """

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return GCNWeights(in_channels, out_channels)

    message_width = staticmethod(gcn_message_width)
    fuses_input_dropout = True

    def transform(self, index: int, h: Tensor) -> Tensor:
        return F.linear(h, self.convs[index].lin.weight)

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        conv = self.convs[index]
        aggregated, _ = self.aggregate_sources(index, messages, block.gcn_normalized(), "sum")
        if self.transforms_rows(index):
            return aggregated + conv.bias if conv.bias is not None else aggregated
        weight = conv.lin.weight.t()
        return torch.addmm(conv.bias, aggregated, weight) if conv.bias is not None else aggregated.mm(weight)  # bias fused into the matmul


class GraphSAGE(GNN):
    """GraphSAGE with mean aggregation: ``SAGEConv``'s weights (:class:`~gnndist.models.weights.SAGEWeights`: ``lin_l`` neighbours, ``lin_r`` root).

    A layer that narrows to less than half its input (``2 F_out < F_in``) maps its rows by ``[W_l | W_r]``
    first, so the aggregation moves ``F_out`` columns, and halo rows travel as their ``F_out``-wide neighbour
    part only (the root part serves destinations, which are never halo); otherwise the rows travel activated
    and the layer aggregates first.
    """

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return SAGEWeights(in_channels, out_channels)

    message_width = staticmethod(sage_message_width)
    fuses_input_dropout = True

    def transform(self, index: int, h: Tensor) -> Tensor:
        conv = self.convs[index]
        return h.mm(torch.cat([conv.lin_l.weight, conv.lin_r.weight]).t())  # [neighbour part | root part]

    def halo_columns(self, index: int, messages: Tensor) -> Tensor:
        return messages[:, : self.widths[index + 1]] if self.transforms_rows(index) else messages

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        conv = self.convs[index]
        if self.transforms_rows(index):
            width = conv.lin_l.weight.size(0)
            out = self.aggregation(block, messages[:, :width].contiguous(), "mean")
            out = out + messages[: block.num_dst, width:]
            return out + conv.lin_l.bias if conv.lin_l.bias is not None else out
        weight, bias = conv.lin_l.weight, conv.lin_l.bias
        aggregated, root = self.aggregate_sources(index, messages, block, "mean", roots=True)
        out = torch.addmm(bias, aggregated, weight.t()) if bias is not None else aggregated.mm(weight.t())
        return out.addmm_(root, conv.lin_r.weight.t())  # + the root's own transform, in place


class GAT(GNN):
    """GAT with PyG ``GATConv``: ``heads`` concatenated heads on hidden layers, one head on the output.

    Attention is per edge, so GAT runs PyG's own edge-list propagation rather than an aggregation backend.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5, aggregation: "str | Aggregation" = "auto", heads: int = 4):
        if hidden_channels % heads:
            raise ValueError(f"Expected hidden_channels divisible by heads (got hidden={hidden_channels}, heads={heads})")
        self.heads = heads
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout, aggregation)

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        from torch_geometric.nn import GATConv  # only GAT needs PyG's layer itself

        if index == self.num_layers - 1:
            return GATConv(in_channels, out_channels, heads=1, concat=False)
        return GATConv(in_channels, out_channels // self.heads, heads=self.heads, concat=True)

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        return self.convs[index]((messages, messages[: block.num_dst]), block.edge_index(), size=(block.num_src, block.num_dst))
