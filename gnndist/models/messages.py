"""How wide a layer's row-wise half is: what full-graph workers exchange between layers. Imports no torch.

A layer of the built-in models runs in two halves (:class:`~gnndist.models.gnn.Layerwise`): row-wise
(activation, dropout, and a linear map where that narrows the rows) and the aggregation. The width of the
row-wise half's output is what every halo row costs on the wire, and the planner (pure arithmetic, no
torch) needs it as much as the models do, so the rules live here, once.
"""
from __future__ import annotations


def gcn_message_width(in_channels: int, out_channels: int) -> int:
    """GCN transforms first when that narrows the rows (``A (h W) = (A h) W``)."""
    return min(in_channels, out_channels)


def sage_message_width(in_channels: int, out_channels: int) -> int:
    """GraphSAGE transforms first (neighbour and root maps side by side) when that halves the rows or better;
    a halo row then travels as its neighbour map alone (the root map serves destinations, never halo)."""
    return out_channels if 2 * out_channels < in_channels else in_channels


MESSAGE_WIDTHS = {"gcn": gcn_message_width, "sage": sage_message_width}


def message_width(model: str, in_channels: int, out_channels: int) -> int:
    """The row-wise half's width of a layer of model ``model``; any other model sends its activated input rows."""
    rule = MESSAGE_WIDTHS.get(model)
    return rule(in_channels, out_channels) if rule is not None else in_channels
