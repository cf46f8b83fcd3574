"""Heterogeneous GNNs (``rgcn``, ``hsage``, ``mlp``) built from PyG layers; they know nothing of distribution.

A heterogeneous model reads a :class:`~gnndist.hetero.HeteroSchema` (types, widths, sizes, relations, the
target) and runs layer by layer like the homogeneous built-ins (:class:`~gnndist.models.gnn.Layerwise`),
with one activation per node type: :meth:`HeteroLayerwise.forward_layer` maps ``{node type: [rows, F]}`` and
a :class:`~gnndist.hetero.HeteroBlock` to ``{node type: [block.num_dst[type], F_out]}``. Each relation's
Block has destinations = ``dst_type`` rows and sources = ``src_type`` rows, so a trainer can append halo rows
to each type's input between two layers (the previous layer's raw output) without the model knowing.

Layer 0 reads each type's features, or its node ids when it has none (embedded by an ``nn.Embedding`` of
``num_nodes[type]`` rows). Each layer computes only the types a later layer reads (the last: the target).

PyG is imported when ``rgcn`` or ``hsage`` is built, not with this module: every model build checks
:func:`is_heterogeneous`, and a homogeneous GCN or GraphSAGE worker should not pay PyG's ~180 MiB for it.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gnndist.aggregation import Aggregation, resolve_aggregation
from gnndist.block import Block
from gnndist.hetero import EdgeType, HeteroBlock, HeteroSchema
from gnndist.models.dropout import dropout, relu_dropout


def _mean_then_linear(aggregation: Aggregation, block: Block, h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``mean over block's in-edges of h`` times ``weight`` (``[F_out, F_in]``) plus ``bias``, transforming the
    rows first when that moves fewer columns through the aggregation (the mean is linear)."""
    out_features, in_features = weight.shape
    if out_features < in_features:
        out = aggregation(block, F.linear(h, weight), "mean")
        return out + bias if bias is not None else out
    aggregated = aggregation(block, h, "mean")
    return torch.addmm(bias, aggregated, weight.t()) if bias is not None else aggregated.mm(weight.t())


def is_heterogeneous(factory: object) -> bool:
    """Whether a model factory builds a heterogeneous model (it takes a ``schema``, not ``in_channels``)."""
    return isinstance(factory, type) and issubclass(factory, HeteroLayerwise)


class HeteroLayerwise(nn.Module):
    """The layer-wise protocol of heterogeneous models: ``num_layers`` and :meth:`forward_layer` over dicts.

    Subclasses build their layers and implement :meth:`layer`; this class checks the schema, decides which node
    types every layer outputs (:attr:`outputs`), embeds featureless types, validates inputs and blocks, and
    applies dropout (layer 0's input) or ReLU + dropout (the previous layer's raw output) per type.

    Args:
        schema: the graph's types, widths, sizes, relations and target.
        num_layers: message-passing layers (>= 1).
        dropout: dropout probability on each layer's input.
        embedding_dim: width of the embedding of a featureless type that layer 0 reads.
    """

    num_layers: int

    def __init__(self, schema: HeteroSchema, num_layers: int, dropout: float, embedding_dim: int):
        super().__init__()
        if not isinstance(schema, HeteroSchema):
            raise TypeError(f"Expected schema to be a HeteroSchema (got {type(schema).__name__})")
        if schema.target not in schema.num_features:
            raise ValueError(f"schema.target={schema.target!r} is not a node type; node types: {', '.join(schema.node_types)}")
        if num_layers < 1:
            raise ValueError(f"Expected num_layers >= 1 (got {num_layers})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected dropout in [0, 1) (got {dropout})")
        self.schema, self.num_layers, self.dropout = schema, num_layers, dropout
        outputs = [(schema.target,)]
        for _ in range(num_layers - 1):
            outputs.insert(0, self.reads(outputs[0]))
        self.outputs: list[tuple[str, ...]] = outputs
        self.inputs = self.reads(outputs[0])
        self.embeddings = nn.ModuleDict({t: nn.Embedding(schema.num_nodes[t], embedding_dim) for t in self.inputs if schema.num_features[t] == 0})

    def relations_into(self, node_type: str) -> list[EdgeType]:
        """The relations whose destinations are ``node_type`` rows (the model reads them to compute that type)."""
        return [edge_type for edge_type in self.schema.edge_types if edge_type[2] == node_type]

    def reads(self, node_types: Sequence[str]) -> tuple[str, ...]:
        """The node types a layer reads to output ``node_types``: each type itself and the sources of its relations."""
        wanted = set(node_types) | {src for t in node_types for src, _, _ in self.relations_into(t)}
        return tuple(t for t in self.schema.node_types if t in wanted)

    def input_width(self, node_type: str, embedding_dim: int) -> int:
        """Width of ``node_type``'s rows at layer 0 after embedding: its features, or ``embedding_dim``."""
        return self.schema.num_features[node_type] or embedding_dim

    def encode(self, node_type: str, rows: Tensor) -> Tensor:
        """Layer 0's rows of ``node_type`` after embedding, before dropout; default: as they are."""
        return rows

    def layer(self, index: int, h: dict[str, Tensor], block: HeteroBlock) -> dict[str, Tensor]:
        """Layer ``index`` alone on activated inputs: ``{type: [rows, F_in]}`` -> ``{type: [block.num_dst[type], F_out]}``
        for the types in ``outputs[index]``."""
        raise NotImplementedError

    def forward_layer(self, index: int, h: dict[str, Tensor], block: HeteroBlock) -> dict[str, Tensor]:
        """Layer ``index`` with the activation of its input (see :meth:`Layerwise.forward_layer
        <gnndist.models.gnn.Layerwise.forward_layer>`): layer 0 reads each type's features or node ids (embedded
        here), later layers the previous layer's raw output; a trainer may append halo rows to any type."""
        self._check_block(index, block)
        if index == 0:
            h = {t: dropout(self.encode(t, self.embed(t, h)), self.dropout, self.training) for t in self.inputs}
        else:
            missing = [t for t in self.reads(self.outputs[index]) if t not in h]
            if missing:
                raise KeyError(f"Layer {index} reads node types {missing}, which its input lacks (has: {', '.join(h) or 'none'})")
            h = {t: relu_dropout(h[t], self.dropout, self.training) for t in self.reads(self.outputs[index])}
        return self.layer(index, h, block)

    def forward(self, x: dict[str, Tensor], blocks: HeteroBlock | Sequence[HeteroBlock]) -> Tensor:
        """Runs every layer; ``blocks`` is one HeteroBlock for all layers or one per layer (outermost first).

        Returns:
            ``[num_dst[target], out_channels]``: the target type's output rows (what a node task scores).
        """
        h = x
        for index in range(self.num_layers):
            h = self.forward_layer(index, h, blocks if isinstance(blocks, HeteroBlock) else blocks[index])
        return h[self.schema.target]

    def embed(self, node_type: str, x: dict[str, Tensor]) -> Tensor:
        """Layer 0's rows of ``node_type``: its features ``[n, F]`` checked, or its node ids ``[n]`` embedded."""
        if node_type not in x:
            raise KeyError(f"The input has no rows of node type {node_type!r} (has: {', '.join(x) or 'none'}); layer 0 reads {', '.join(self.inputs)}")
        value, width = x[node_type], self.schema.num_features[node_type]
        if width == 0:
            if value.dim() != 1 or value.is_floating_point():
                raise ValueError(f"Input of featureless node type {node_type!r}: expected node ids of shape [n] to embed (got {value.dtype} of shape {list(value.shape)})")
            return self.embeddings[node_type](value)
        if value.dim() != 2 or value.size(1) != width or not value.is_floating_point():
            raise ValueError(f"Input of node type {node_type!r}: expected float features of shape [n, {width}] (got {value.dtype} of shape {list(value.shape)})")
        return value

    def _check_block(self, index: int, block: HeteroBlock) -> None:
        """A block names only known relations, and every relation and destination count layer ``index`` reads."""
        unknown = [edge_type for edge_type in block.blocks if edge_type not in self.schema.edge_types]
        if unknown:
            raise ValueError(f"Unknown relation(s) {unknown} in the block; the model was built for {list(self.schema.edge_types)}")
        for node_type in self.outputs[index]:
            if node_type not in block.num_dst:
                raise KeyError(f"Layer {index} outputs node type {node_type!r} but the block gives no num_dst for it (has: {', '.join(block.num_dst)})")
            for edge_type in self.relations_into(node_type):
                if edge_type not in block.blocks:
                    raise KeyError(f"Layer {index} reads relation {edge_type}, which the block lacks")

    def _sources(self, h: dict[str, Tensor], block: HeteroBlock, edge_type: EdgeType) -> Tensor:
        """The source rows of ``edge_type``, checked against its Block's sizes (a mismatch names the relation)."""
        (src_type, _, dst_type), relation = edge_type, block.blocks[edge_type]
        rows = h[src_type]
        if relation.num_src != rows.size(0) or relation.num_dst != block.num_dst[dst_type]:
            raise ValueError(f"Relation {edge_type}: its block has {relation.num_src} sources and {relation.num_dst} destinations, but the input has {rows.size(0)} {src_type!r} rows and num_dst[{dst_type!r}]={block.num_dst[dst_type]}")
        return rows


class RGCN(HeteroLayerwise):
    """R-GCN (Schlichtkrull et al.) with PyG ``RGCNConv`` weights: per relation a mean over its in-edges times the
    relation's weight, plus a root weight and a bias, summed per destination.

    Every type's rows first go to width ``hidden_channels`` (a ``Linear`` of its features, or the embedding of a
    featureless type), since relation weights share one input width (and bases or blocks decompose them).

    Args:
        schema: the graph's types, widths, sizes, relations and target.
        hidden_channels, out_channels: widths (``out_channels``: the task's output width).
        num_layers: R-GCN layers (>= 1).
        dropout: dropout probability on each layer's input.
        num_bases: basis decomposition (each relation's weight a combination of ``num_bases`` matrices); None: off.
        num_blocks: block-diagonal decomposition (``num_blocks`` blocks; divides ``hidden_channels`` and
            ``out_channels``); None: off.
        aggregation: aggregation backend name (see ``gnndist.aggregation``) or a built backend.
    """

    def __init__(self, schema: HeteroSchema, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5, num_bases: int | None = None, num_blocks: int | None = None, aggregation: "str | Aggregation" = "auto"):
        super().__init__(schema, num_layers, dropout, hidden_channels)
        if num_bases is not None and num_blocks is not None:
            raise ValueError(f"Give num_bases or num_blocks, not both (got num_bases={num_bases}, num_blocks={num_blocks})")
        for name, value in (("num_bases", num_bases), ("num_blocks", num_blocks)):
            if value is not None and value < 1:
                raise ValueError(f"Expected {name} >= 1 (got {value})")
        if num_blocks is not None and (hidden_channels % num_blocks or out_channels % num_blocks):
            raise ValueError(f"num_blocks={num_blocks} must divide hidden_channels={hidden_channels} and out_channels={out_channels}")
        from torch_geometric.nn import RGCNConv

        self.aggregation = resolve_aggregation(aggregation)
        self.project = nn.ModuleDict({t: nn.Linear(schema.num_features[t], hidden_channels) for t in self.inputs if schema.num_features[t]})
        widths = [hidden_channels] * num_layers + [out_channels]
        self.convs = nn.ModuleList(
            RGCNConv(widths[i], widths[i + 1], len(schema.edge_types), num_bases=num_bases, num_blocks=num_blocks, aggr="mean") for i in range(num_layers)
        )

    def relation_weights(self, index: int) -> Tensor:
        """``[num_relations, F_in, F_out]`` every relation's weight of layer ``index`` (bases combined, blocks on the diagonal)."""
        conv = self.convs[index]
        if conv.num_bases is not None:
            return (conv.comp @ conv.weight.view(conv.num_bases, -1)).view(conv.num_relations, conv.in_channels_l, conv.out_channels)
        if conv.num_blocks is not None:
            return torch.stack([torch.block_diag(*blocks) for blocks in conv.weight])
        return conv.weight

    def encode(self, node_type: str, rows: Tensor) -> Tensor:
        """A featured type's features through its ``Linear`` to ``hidden_channels`` (embeddings have that width)."""
        return self.project[node_type](rows) if node_type in self.project else rows

    def layer(self, index: int, h: dict[str, Tensor], block: HeteroBlock) -> dict[str, Tensor]:
        conv, weights = self.convs[index], self.relation_weights(index)
        out = {}
        for node_type in self.outputs[index]:
            rows = h[node_type][: block.num_dst[node_type]]
            total = torch.addmm(conv.bias, rows, conv.root)
            for edge_type in self.relations_into(node_type):
                relation = block.blocks[edge_type]
                weight = weights[self.schema.edge_types.index(edge_type)]
                total = total + _mean_then_linear(self.aggregation, relation, self._sources(h, block, edge_type), weight.t(), None)
            out[node_type] = total
        return out


class HeteroSAGE(HeteroLayerwise):
    """GraphSAGE per relation, summed per destination type: a PyG ``HeteroConv`` of ``SAGEConv`` (mean) per layer,
    as ``to_hetero`` builds from a homogeneous GraphSAGE.

    Featured types keep their own widths at layer 0 (each ``SAGEConv`` takes ``(F_src, F_dst)``); featureless
    types are embedded at ``hidden_channels``.

    Args:
        schema: the graph's types, widths, sizes, relations and target.
        hidden_channels, out_channels: widths.
        num_layers: layers (>= 1); every type a layer outputs must be the destination of some relation.
        dropout: dropout probability on each layer's input.
        aggregation: aggregation backend name (see ``gnndist.aggregation``) or a built backend.
    """

    def __init__(self, schema: HeteroSchema, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5, aggregation: "str | Aggregation" = "auto"):
        from torch_geometric.nn import HeteroConv, SAGEConv

        super().__init__(schema, num_layers, dropout, hidden_channels)
        self.aggregation = resolve_aggregation(aggregation)
        convs = []
        for index, node_types in enumerate(self.outputs):
            width = (lambda t: self.input_width(t, hidden_channels)) if index == 0 else (lambda t: hidden_channels)
            out = out_channels if index == num_layers - 1 else hidden_channels
            layer = {}
            for node_type in node_types:
                relations = self.relations_into(node_type)
                if not relations:
                    raise ValueError(f"model 'hsage': node type {node_type!r} is the destination of no relation, so layer {index} cannot compute its rows; add reverse relations (add_reverse=True) or use rgcn (root weight)")
                layer.update({edge_type: SAGEConv((width(edge_type[0]), width(node_type)), out, aggr="mean") for edge_type in relations})
            with warnings.catch_warnings():  # PyG warns of source types it does not update: by design, a layer computes only what later layers read
                warnings.simplefilter("ignore", UserWarning)
                convs.append(HeteroConv(layer, aggr="sum"))
        self.convs = nn.ModuleList(convs)

    def layer(self, index: int, h: dict[str, Tensor], block: HeteroBlock) -> dict[str, Tensor]:
        convs = self.convs[index].convs
        out = {}
        for node_type in self.outputs[index]:
            relations = self.relations_into(node_type)
            rows = h[node_type][: block.num_dst[node_type]]
            root = sum(convs[edge_type].lin_r.weight for edge_type in relations)  # every relation's root transform at once
            total = rows @ root.t()
            for edge_type in relations:
                lin_l, relation = convs[edge_type].lin_l, block.blocks[edge_type]
                total = total + _mean_then_linear(self.aggregation, relation, self._sources(h, block, edge_type), lin_l.weight, lin_l.bias)
            out[node_type] = total
        return out


class TargetMLP(HeteroLayerwise):
    """An MLP on the target type's own features, blind to every relation: the baseline that relations must beat.

    Args:
        schema: the graph's types, widths, sizes, relations and target (which must have features).
        hidden_channels, out_channels: widths.
        num_layers: ``Linear`` layers (>= 1).
        dropout: dropout probability on each layer's input.
    """

    def __init__(self, schema: HeteroSchema, hidden_channels: int, out_channels: int, num_layers: int = 2, dropout: float = 0.5):
        if isinstance(schema, HeteroSchema) and schema.num_features.get(schema.target) == 0:
            raise ValueError(f"model 'mlp' reads only the target type's features, but target node type {schema.target!r} has none (num_features=0); use rgcn or hsage (they embed featureless types)")
        super().__init__(schema, num_layers, dropout, hidden_channels)
        widths = [schema.num_features[schema.target]] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(num_layers))

    def reads(self, node_types: Sequence[str]) -> tuple[str, ...]:
        """Only the types themselves (the target): an MLP reads no relation."""
        return tuple(node_types)

    def _check_block(self, index: int, block: HeteroBlock) -> None:
        if self.schema.target not in block.num_dst:
            raise KeyError(f"Layer {index} outputs node type {self.schema.target!r} but the block gives no num_dst for it (has: {', '.join(block.num_dst)})")

    def layer(self, index: int, h: dict[str, Tensor], block: HeteroBlock) -> dict[str, Tensor]:
        target = self.schema.target
        return {target: self.lins[index](h[target][: block.num_dst[target]])}


__all__ = ["HeteroLayerwise", "HeteroSAGE", "RGCN", "TargetMLP", "is_heterogeneous"]
