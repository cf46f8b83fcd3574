"""GIN (Xu et al., "How Powerful are Graph Neural Networks?"): a plain PyG module, registered like a user model.

It exposes the adapter's protocol (``convs``, ``act``, ``dropout``; see :mod:`gnndist.models.adapter`) and
nothing else, so it trains through exactly the path a user's model takes.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GINConv


class GIN(nn.Module):
    """``num_layers`` GINConv layers (sum aggregation, a two-layer MLP each), ReLU and dropout between them.

    Args:
        in_channels, hidden_channels, out_channels: widths; every MLP's inner width is ``hidden_channels``.
        num_layers: number of GINConv layers (>= 1).
        dropout: dropout probability after the activation between two layers.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"Expected num_layers >= 1 (got {num_layers})")
        widths = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        mlp = lambda i, o: nn.Sequential(nn.Linear(i, hidden_channels), nn.ReLU(), nn.Linear(hidden_channels, o))  # noqa: E731
        self.convs = nn.ModuleList(GINConv(mlp(widths[i], widths[i + 1])) for i in range(num_layers))
        self.act = nn.ReLU()
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """The whole graph in PyG's convention (what :func:`gnndist.load_model` users call)."""
        for index, conv in enumerate(self.convs):
            if index:
                x = F.dropout(self.act(x), self.dropout, self.training)
            x = conv(x, edge_index)
        return x
