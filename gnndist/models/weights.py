"""The weights of PyG's ``GCNConv`` and ``SAGEConv`` without importing PyG.

GCN and GraphSAGE only read their layers' weights (the aggregation is gnndist's own), so a worker that trains
them needs no PyG: importing ``torch_geometric`` costs ~180 MiB of resident memory per process (it imports
``torch._dynamo``), a fixed cost every worker pays whatever its share of the graph. These modules hold the
same parameters under the same names (checkpoints and state dicts are interchangeable with PyG's layers), and
draw them from the random generator in PyG's order, twice as PyG does (once when each ``Linear`` is built, once
in the layer's ``reset_parameters``), so a seed gives the same weights with or without PyG.
"""
from __future__ import annotations

import math

import torch
from torch import nn

KAIMING_A = math.sqrt(5)


class Linear(nn.Module):
    """``weight [out, in]`` and an optional ``bias [out]``, initialised like PyG's ``Linear``.

    Args:
        in_channels, out_channels: widths.
        bias: whether to hold a bias (uniform in ``±1/sqrt(in)``).
        glorot: Glorot-uniform weights (PyG's ``weight_initializer='glorot'``) instead of Kaiming-uniform.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True, glorot: bool = False):
        super().__init__()
        self.in_channels, self.glorot = in_channels, glorot
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Draws the weight, then the bias, as PyG's ``reset_weight_`` / ``reset_bias_`` do (same bounds, same order)."""
        if self.glorot:
            bound = math.sqrt(6.0 / (self.weight.size(-2) + self.weight.size(-1)))
        else:
            bound = math.sqrt(6 / ((1 + KAIMING_A**2) * self.in_channels))
        self.weight.uniform_(-bound, bound)
        if self.bias is not None:
            bias_bound = 1.0 / math.sqrt(self.in_channels)
            self.bias.uniform_(-bias_bound, bias_bound)


class GCNWeights(nn.Module):
    """``GCNConv``'s parameters: ``lin.weight [out, in]`` (Glorot) and ``bias [out]`` (zeros)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.lin = Linear(in_channels, out_channels, bias=False, glorot=True)
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.bias.zero_()


class SAGEWeights(nn.Module):
    """``SAGEConv``'s parameters (mean aggregation, root weight): ``lin_l`` (neighbours, with bias) and
    ``lin_r`` (the root, no bias)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.lin_l = Linear(in_channels, out_channels, bias=True)
        self.lin_r = Linear(in_channels, out_channels, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.lin_l.reset_parameters()
        self.lin_r.reset_parameters()
