"""The built-in GNNs (GCN, GraphSAGE, GAT), built from PyG layers. They know nothing of distribution.

Every layer reads a :class:`~gnndist.block.Block` (destinations pull from sources), so one model
serves the whole graph, a part with its halo, and sampled mini-batches. The layer-wise protocol,
:meth:`GNN.forward_layer`, lets a trainer drive the layers itself: full-graph training appends the
halo rows of a layer's input between two calls (the previous layer's output before its ReLU, which
commutes with moving rows; every worker applies ReLU and its own dropout to the rows it aggregates).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from gnndist.aggregation import Aggregation, resolve_aggregation
from gnndist.block import Block
from gnndist.models.dropout import dropout, relu_dropout


class Layerwise(nn.Module):
    """The layer-wise protocol every trainer drives: ``num_layers`` and :meth:`forward_layer`.

    Subclasses set ``num_layers`` and implement ``forward_layer``; ``forward`` runs every layer.
    """

    num_layers: int

    def forward_layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        """Layer ``index`` with the activation of its input: ``[block.num_src, F_in]`` -> ``[block.num_dst, F_out]``.

        ``h`` is the model's input for layer 0 and the previous layer's raw output (before its activation)
        otherwise: what travels between workers is that raw output, so a trainer that adds halo rows to
        ``h`` between two layers needs nothing else from the model.
        """
        raise NotImplementedError

    def forward(self, x: Tensor, blocks: Block | Sequence[Block]) -> Tensor:
        """Runs every layer; ``blocks`` is one Block for all layers or one per layer (outermost first)."""
        h = x
        for index in range(self.num_layers):
            h = self.forward_layer(index, h, blocks if isinstance(blocks, Block) else blocks[index])
        return h


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
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(self.make_conv(i, widths[i], widths[i + 1]) for i in range(num_layers))

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        raise NotImplementedError

    def layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        """Layer ``index`` alone: ``[block.num_src, F_in]`` -> ``[block.num_dst, F_out]`` (no activation)."""
        raise NotImplementedError

    def forward_layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        """Layer ``index``: dropout on the input of layer 0, ReLU and dropout (fused) on the raw output of the
        layer before otherwise, then the layer (see :meth:`Layerwise.forward_layer`)."""
        if index == 0:
            h = dropout(h, self.dropout, self.training)
        else:
            h = relu_dropout(h, self.dropout, self.training)
        return self.layer(index, h, block)


def _aggregate_then_transform(aggregate: Callable[[Tensor], Tensor], weight: Tensor, bias: Tensor | None, h: Tensor) -> Tensor:
    """``aggregate(h) @ weight.T + bias``, in whichever order moves fewer columns through the aggregation.

    Aggregating first, the bias is fused into the matmul (``addmm``: one output tensor, not two).
    """
    out_features, in_features = weight.shape
    if in_features <= out_features:
        aggregated = aggregate(h)
        return torch.addmm(bias, aggregated, weight.t()) if bias is not None else aggregated.mm(weight.t())
    out = aggregate(F.linear(h, weight))
    return out + bias if bias is not None else out


class GCN(GNN):
    """Kipf & Welling GCN: PyG ``GCNConv`` weights; aggregation over the symmetric-normalised block."""

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return GCNConv(in_channels, out_channels)

    def layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        conv = self.convs[index]
        normalized = block.gcn_normalized()
        return _aggregate_then_transform(lambda t: self.aggregation(normalized, t, "sum"), conv.lin.weight, conv.bias, h)


class GraphSAGE(GNN):
    """GraphSAGE with mean aggregation: PyG ``SAGEConv`` weights (``lin_l`` neighbours, ``lin_r`` root)."""

    def make_conv(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return SAGEConv(in_channels, out_channels, aggr="mean")

    def layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        conv = self.convs[index]
        out = _aggregate_then_transform(lambda t: self.aggregation(block, t, "mean"), conv.lin_l.weight, conv.lin_l.bias, h)
        return out.addmm_(h[: block.num_dst], conv.lin_r.weight.t())  # + the root's own transform, in place


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
        if index == self.num_layers - 1:
            return GATConv(in_channels, out_channels, heads=1, concat=False)
        return GATConv(in_channels, out_channels // self.heads, heads=self.heads, concat=True)

    def layer(self, index: int, h: Tensor, block: Block) -> Tensor:
        return self.convs[index]((h, h[: block.num_dst]), block.edge_index(), size=(block.num_src, block.num_dst))
