"""Typed mini-batches: per-relation fanouts resolved against a schema, and a sampled batch split into HeteroBlocks.

A heterogeneous graph is sampled as its homogeneous view with every edge's relation carried along
(:class:`~gnndist.sampling.NeighborSampler` with ``edge_type``: up to ``fanout`` in-neighbours per
destination and relation). :func:`split_batch` then types the sampled batch: each node type's rows are its
nodes among the batch's input nodes in their order, so every layer's destinations of a type are the first
rows of that type (the prefix property of a :class:`~gnndist.sampling.SampledBatch` holds per type), and
each block becomes one Block per relation, which the heterogeneous models read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import Tensor

from gnndist.block import Block, csr_offsets
from gnndist.hetero import EdgeType, HeteroBlock, edge_type_name
from gnndist.sampling.sampler import SampledBatch


def check_fanouts(fanouts: Sequence[int] | Mapping[str, Sequence[int]], layers: int) -> None:
    """Refuses ``train.fanouts`` without one fanout per layer (for a mapping: per relation), naming the lists.

    The config checks it as well; trainers built directly, without a config, rely on this.
    """
    if isinstance(fanouts, Mapping):
        wrong = {name: list(hops) for name, hops in fanouts.items() if len(hops) != layers}
        if wrong:
            raise ValueError(f"train.fanouts: every relation needs one fanout per layer ({layers}); got {wrong}")
    elif len(fanouts) != layers:
        raise ValueError(f"train.fanouts has {len(fanouts)} hops {list(fanouts)} but the model has {layers} layers: give one fanout per layer")


def relation_fanouts(fanouts: Sequence[int] | Mapping[str, Sequence[int]], edge_types: Sequence[EdgeType], layers: int) -> list[tuple[int, ...]]:
    """Every hop's fanout per relation (relation order of ``edge_types``), from ``train.fanouts``.

    Args:
        fanouts: a list per hop (each relation samples that many per destination, DGL's semantics), or a
            mapping ``relation name -> list per hop`` naming every relation (names as :func:`edge_type_name`).
        edge_types: the graph's relations.
        layers: the model's layers (one fanout per hop).

    Raises:
        ValueError: naming an unknown or missing relation, or lists of the wrong length.
    """
    names = [edge_type_name(edge_type) for edge_type in edge_types]
    check_fanouts(fanouts, layers)
    if not isinstance(fanouts, Mapping):
        return [(int(fanout),) * len(names) for fanout in fanouts]
    unknown = sorted(set(fanouts) - set(names))
    if unknown:
        raise ValueError(f"train.fanouts names unknown relation(s) {unknown}; the graph's relations: {', '.join(names)}")
    missing = [name for name in names if name not in fanouts]
    if missing:
        raise ValueError(f"train.fanouts is a mapping per relation but lacks relation(s) {missing}: give every relation a list of {layers} fanouts")
    return [tuple(int(fanouts[name][hop]) for name in names) for hop in range(layers)]


@dataclass(eq=False)
class HeteroBatch:
    """A sampled mini-batch typed: per layer a HeteroBlock, per node type its rows among the input nodes.

    Attributes:
        seeds: ``[B]`` the seeds (local ids of the sampled graph, all of the target type).
        input_nodes: ``[num_input]`` every node the batch touches, as the homogeneous batch numbers them.
        rows: per node type, the positions in ``input_nodes`` of its nodes, in order: row ``i`` of a type's
            layer-0 input is node ``input_nodes[rows[type][i]]``.
        blocks: one HeteroBlock per layer, outermost first; each relation's Block numbers its sources and
            destinations by the rows of their types.
    """

    seeds: Tensor
    input_nodes: Tensor
    rows: dict[str, Tensor]
    blocks: list[HeteroBlock]

    def to(self, device: torch.device | str) -> "HeteroBatch":
        return HeteroBatch(self.seeds.to(device), self.input_nodes.to(device), {t: r.to(device) for t, r in self.rows.items()}, [block.to(device) for block in self.blocks])


def split_batch(batch: SampledBatch, node_type: Tensor, node_types: Sequence[str], edge_types: Sequence[EdgeType]) -> HeteroBatch:
    """Types a batch of a typed sampler (``batch.edge_types`` set).

    Args:
        batch: the homogeneous batch.
        node_type: ``[num_input]`` type index (into ``node_types``) of every input node.
        node_types, edge_types: the names the indices refer to.
    """
    if batch.edge_types is None:
        raise ValueError("split_batch needs a batch of a typed sampler (NeighborSampler with edge_type): this one carries no edge types")
    device = node_type.device
    rank = torch.empty_like(node_type)  # position of every input node among the nodes of its type
    rows = {}
    for index, name in enumerate(node_types):
        positions = (node_type == index).nonzero().squeeze(1)
        rank[positions] = torch.arange(positions.numel(), device=device)
        rows[name] = positions
    type_index = {name: index for index, name in enumerate(node_types)}
    blocks = []
    for block, types in zip(batch.blocks, batch.edge_types):
        prefix = lambda count: torch.bincount(node_type[:count], minlength=len(node_types))  # noqa: E731
        num_src, num_dst = prefix(block.num_src).tolist(), prefix(block.num_dst).tolist()
        dst = torch.repeat_interleave(torch.arange(block.num_dst, device=device), block.indptr.diff())
        relations = {}
        for index, edge_type in enumerate(edge_types):
            src_type, _, dst_type = edge_type
            mine = (types == index).nonzero().squeeze(1)
            counts = torch.bincount(rank.index_select(0, dst.index_select(0, mine)), minlength=num_dst[type_index[dst_type]])
            relations[edge_type] = Block(csr_offsets(counts), rank.index_select(0, block.indices.index_select(0, mine)), num_src[type_index[src_type]])
        blocks.append(HeteroBlock(relations, {name: num_dst[index] for index, name in enumerate(node_types)}))
    return HeteroBatch(batch.seeds, batch.input_nodes, rows, blocks)


__all__ = ["HeteroBatch", "check_fanouts", "relation_fanouts", "split_batch"]
