"""Link decoders by name (``task.decoder``): an edge's score from its endpoints' rows, and the model that
pairs an encoder with one. Like every model here they know nothing of distribution."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from gnndist.block import Block
from gnndist.models.gnn import Layerwise


class DotDecoder(nn.Module):
    """GAE's inner product ``<h_src, h_dst>`` (no parameters)."""

    def __init__(self, hidden: int):
        super().__init__()

    def forward(self, h_src: Tensor, h_dst: Tensor) -> Tensor:
        return (h_src * h_dst).sum(dim=-1)


class MLPDecoder(nn.Module):
    """A two-layer MLP on ``h_src * h_dst`` (PyG's link prediction examples): ``hidden -> hidden -> 1``."""

    def __init__(self, hidden: int):
        super().__init__()
        self.lins = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h_src: Tensor, h_dst: Tensor) -> Tensor:
        return self.lins(h_src * h_dst).squeeze(-1)


class LinkModel(Layerwise):
    """An encoder (any layer-wise model) and a decoder: layers run the encoder's, :meth:`decode` scores edges.

    The decoder's parameters are the model's, so the optimizer, the gradient all-reduce and checkpoints
    cover them like the encoder's.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.num_layers = encoder.num_layers

    def rows(self, index: int, h: Tensor) -> Tensor:
        return self.encoder.rows(index, h)

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        return self.encoder.aggregate(index, messages, block)

    def halo_columns(self, index: int, messages: Tensor) -> Tensor:
        return self.encoder.halo_columns(index, messages)

    def forward(self, x: Tensor, blocks: Block | Sequence[Block]) -> Tensor:
        return self.encoder(x, blocks)

    def decode(self, h_src: Tensor, h_dst: Tensor) -> Tensor:
        """``[E]`` logits of the edges whose endpoints' rows are ``h_src``, ``h_dst`` (``[E, hidden]``)."""
        return self.decoder(h_src, h_dst)


def with_decoder(encoder: nn.Module, decoder: str, hidden: int) -> LinkModel:
    """``encoder`` paired with the decoder registered as ``decoder`` (``gnndist.registry.DECODERS``)."""
    from gnndist.registry import DECODERS

    return LinkModel(encoder, DECODERS.resolve(decoder, hidden=hidden))



