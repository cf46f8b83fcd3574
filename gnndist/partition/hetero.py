"""HeteroPart: a part of a heterogeneous graph's homogeneous view, with its rows and relations typed again.

Partitioners and the exchange plan run on :meth:`HeteroGraph.to_homogeneous` unchanged (a homogeneous
:class:`~gnndist.partition.Part` of the view: owned rows, 1-hop halo, ``send_indices``, labels and masks of
the target type). A HeteroPart adds, per node type, which local rows are of that type (owned first, then
halo, in local order), each type's layer-0 input rows, and per relation the Block over those rows: what a
heterogeneous model reads (:class:`~gnndist.hetero.HeteroBlock`), while the halo exchange moves rows of the
homogeneous layout (:meth:`HeteroPart.gather_owned`, :meth:`HeteroPart.split_halo`).

Mini-batch training samples on the part's homogeneous CSR with every edge's relation
(:attr:`HeteroPart.edge_type`) and reads remote features from the owners' stores, which serve the part's
homogeneous rows: :func:`minibatch_parts` builds parts whose rows hold every featured type's features
zero-padded to the widest type (featureless types' rows are zeros and never requested: their input is
their node ids), and enough halo rings that sampling never asks a store for structure.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.graph import csr_from_edges
from gnndist.hetero import EdgeType, HeteroBlock, HeteroGraph, HomogeneousView
from gnndist.partition.book import PartitionBook
from gnndist.partition.halo import in_edge_ids
from gnndist.partition.part import Part, iter_parts


@dataclass(eq=False)
class HeteroPart:
    """One part of a heterogeneous graph: the view's homogeneous Part plus its typed layout.

    Attributes:
        part: the homogeneous part of the view (global ids, exchange plan, the target's labels and masks).
        rows: per node type, the local rows of that type among owned + 1-hop halo rows: owned ones first.
        num_owned: per node type, how many of ``rows[type]`` are owned (the destinations of a layer).
        inputs: per node type, layer-0 input of ``rows[type]``: features, or type-local node ids (featureless).
        blocks: per relation, owned ``dst_type`` rows pulling from owned + halo ``src_type`` rows (positions in ``rows``).
        edge_type: ``[part.num_edges]`` the relation (index into the schema's edge types) of every edge of the
            part, in its CSR order (owned rows and every halo ring but the outermost have their in-edges).
        offsets: per node type its first global id in the view (node ``g`` is of the last type starting at or before ``g``).
    """

    part: Part
    rows: dict[str, Tensor]
    num_owned: dict[str, int]
    inputs: dict[str, Tensor]
    blocks: dict[EdgeType, Block]
    edge_type: Tensor
    offsets: dict[str, int]

    @classmethod
    def from_part(cls, graph: HeteroGraph, view: HomogeneousView, part: Part) -> "HeteroPart":
        """Types the rows and edges of ``part``, a part of ``view`` (``graph.to_homogeneous()``); a part loaded
        from a typed partition directory brings its rows' and edges' types (:func:`type_part`), others get them
        from the view."""
        if part.node_type is None or part.edge_type is None:
            part = type_part(part, view)
        num_src = part.num_owned + part.num_halo_per_hop[0]
        local_type = part.node_type[:num_src]
        rows, num_owned, inputs, position = {}, {}, {}, torch.empty(num_src, dtype=torch.long)
        for index, node_type in enumerate(view.node_types):
            of_type = (local_type == index).nonzero().flatten()
            rows[node_type], num_owned[node_type] = of_type, int((of_type < part.num_owned).sum())
            position[of_type] = torch.arange(of_type.numel())
            ids = part.global_ids[of_type] - view.offsets[node_type]
            x = graph.nodes[node_type].x
            inputs[node_type] = x[ids] if x is not None else ids
        owned_edges = int(part.indptr[part.num_owned])
        dst = torch.repeat_interleave(torch.arange(part.num_owned), part.indptr[: part.num_owned + 1].diff())
        src = part.indices[:owned_edges]
        edge_type = part.edge_type[:owned_edges]
        blocks = {}
        for index, (src_type, relation, dst_type) in enumerate(view.edge_types):
            mine = edge_type == index
            indptr, indices, _ = csr_from_edges(position[src[mine]], position[dst[mine]], num_owned[dst_type], num_src=rows[src_type].numel())
            blocks[(src_type, relation, dst_type)] = Block(indptr, indices, rows[src_type].numel())
        return cls(part, rows, num_owned, inputs, blocks, part.edge_type, dict(view.offsets))

    def to(self, device: torch.device | str) -> "HeteroPart":
        """The typed layout on ``device`` (the homogeneous part stays where it is: workers read only its plan)."""
        return HeteroPart(
            self.part,
            {t: r.to(device) for t, r in self.rows.items()},
            dict(self.num_owned),
            {t: x.to(device) for t, x in self.inputs.items()},
            {e: b.to(device) for e, b in self.blocks.items()},
            self.edge_type,
            dict(self.offsets),
        )

    def node_type_of(self, global_ids: Tensor) -> Tensor:
        """``[n]`` the type index (node-type order) of every global id of the view."""
        starts = torch.tensor(list(self.offsets.values())[1:], dtype=global_ids.dtype, device=global_ids.device)
        return torch.bucketize(global_ids, starts, right=True)

    def block(self) -> HeteroBlock:
        """The full-graph layer's structure: every relation's Block, owned rows of each type as destinations."""
        halo = {t: rows[self.num_owned[t] :] - self.part.num_owned for t, rows in self.rows.items()}
        return HeteroBlock(dict(self.blocks), dict(self.num_owned), halo)

    def owned_target_rows(self, target: str) -> Tensor:
        """Local ids of the owned ``target`` rows, in the order a model outputs them."""
        return self.rows[target][: self.num_owned[target]]

    def gather_owned(self, out: dict[str, Tensor]) -> Tensor:
        """``[part.num_owned, F]`` owned rows in local order from a layer's output per type (types it did not
        output are zeros: the next layer reads none of them), the layout the halo exchange sends from."""
        first = next(iter(out.values()))
        owned = first.new_zeros(self.part.num_owned, first.size(1))
        for node_type, values in out.items():
            owned = owned.index_copy(0, self.rows[node_type][: self.num_owned[node_type]], values)
        return owned

    def split_halo(self, out: dict[str, Tensor], halo: Tensor) -> dict[str, Tensor]:
        """Every type's next-layer input: its owned output rows, then its halo rows from ``halo`` (``[num_halo, F]``,
        1-hop halo rows in local order)."""
        return {t: torch.cat([values, halo[self.rows[t][self.num_owned[t] :] - self.part.num_owned]]) for t, values in out.items()}


def type_part(part: Part, view: HomogeneousView) -> Part:
    """``part`` (a part of ``view.graph``) with the type of every local row and edge (``Part.node_type``,
    ``Part.edge_type``), what a typed partition directory stores so that its parts can be typed again without
    the view's whole-graph edge types."""
    rows_with_edges = part.num_local - part.num_halo_per_hop[-1]
    edge_ids = in_edge_ids(view.graph.indptr, part.global_ids[:rows_with_edges])  # the part keeps the view's edge order per row
    return dataclasses.replace(part, node_type=view.node_type[part.global_ids], edge_type=view.edge_type[edge_ids])


def minibatch_parts(graph: HeteroGraph, assignment: "Tensor | PartitionBook", halo_hops: int) -> list[HeteroPart]:
    """The typed parts mini-batch workers and stores load: parts of the view with padded features
    (:meth:`HeteroGraph.padded_features`) and ``halo_hops`` rings (the sampling hops, so no store serves structure).

    Args:
        graph: the heterogeneous graph.
        assignment: a partition of the view: its book (``node_part``, ``num_parts``), or ``[num_nodes]`` owners.
        halo_hops: halo rings of every part (>= the model's layers).
    """
    view = graph.to_homogeneous()
    padded = view.graph.with_(x=graph.padded_features())
    return [HeteroPart.from_part(graph, view, part) for part in iter_parts(padded, assignment, halo_hops=halo_hops)]


def hetero_parts(graph: HeteroGraph, parts: list[Part]) -> list[HeteroPart]:
    """Types every part of ``graph``'s homogeneous view (parts built or loaded from a partition of the view)."""
    view = graph.to_homogeneous()
    return [HeteroPart.from_part(graph, view, part) for part in parts]


__all__ = ["HeteroPart", "hetero_parts", "minibatch_parts", "type_part"]
