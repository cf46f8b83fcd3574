"""Part: one partition with its halo, local CSR, node data and exchange plan; built from an assignment."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import torch
from torch import Tensor

from gnndist.block import Block, csr_offsets
from gnndist.graph import MASK_FIELDS, Graph
from gnndist.partition.halo import ExchangePlan, halo_rings, in_edge_ids

if TYPE_CHECKING:
    from gnndist.partitioners.base import PartitionResult

TENSOR_FIELDS = ("global_ids", "halo_owner", "indptr", "indices", "in_degree", "send_indices", "send_counts", "recv_counts")
NODE_DATA_FIELDS = ("x", "y", "train_mask", "val_mask", "test_mask")  # the graph's node data, per local row
TYPE_FIELDS = ("node_type", "edge_type")  # a heterogeneous graph's view only (gnndist.partition.hetero.type_part)
OPTIONAL_FIELDS = (*NODE_DATA_FIELDS, "edge_weight", *TYPE_FIELDS)


@dataclass(eq=False)
class Part:
    """One part: owned nodes ``0..num_owned-1``, then halo nodes ring by ring.

    Attributes:
        part_id, num_parts: which part of how many.
        num_owned: owned nodes (local ids ``0..num_owned-1``, in increasing global id).
        halo_hops: rings of halo kept; ``num_halo_per_hop[h]`` nodes in ring ``h + 1``.
        global_ids: ``[n_local]`` int64 global id of each local node: owned nodes, then halo nodes
            ordered by (hop, owner part, global id).
        halo_owner: ``[n_halo]`` owner part of each halo node.
        indptr, indices: local CSR over incoming edges (``indices`` are local ids). Owned nodes and
            halo nodes of rings ``< halo_hops`` have all their in-edges; the outermost ring has none.
        in_degree: ``[n_local]`` whole-graph in-degree of every local node (GCN normalisation).
        send_indices: local ids of the owned rows sent per layer exchange, grouped by destination
            part in part order, each group sorted by global id; ``send_counts[q]`` go to part ``q``.
        recv_counts: ``[num_parts]`` 1-hop halo rows arriving from each part, in halo row order.
        x, y, train_mask, val_mask, test_mask: node data of all local rows (masks False on halo rows).
        edge_weight: ``[local edges]`` weights in local CSR order, or None.
        node_type, edge_type: for a part of a heterogeneous graph's view, ``[n_local]`` the node type and
            ``[local edges]`` the relation (indices into the partition's ``types``) of every local row and
            edge, in local order; None for a homogeneous graph.

    One full-graph layer exchange is exactly
    ``all_to_all_single(h[part.halo_slice()], h[send_indices], recv_counts, send_counts)``.
    """

    part_id: int
    num_parts: int
    num_owned: int
    halo_hops: int
    num_halo_per_hop: list[int]
    global_ids: Tensor
    halo_owner: Tensor
    indptr: Tensor
    indices: Tensor
    in_degree: Tensor
    send_indices: Tensor
    send_counts: Tensor
    recv_counts: Tensor
    x: Tensor | None = None
    y: Tensor | None = None
    train_mask: Tensor | None = None
    val_mask: Tensor | None = None
    test_mask: Tensor | None = None
    edge_weight: Tensor | None = None
    node_type: Tensor | None = None
    edge_type: Tensor | None = None

    @property
    def num_local(self) -> int:
        return self.global_ids.numel()

    @property
    def num_halo(self) -> int:
        return self.num_local - self.num_owned

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    @property
    def owned_global_ids(self) -> Tensor:
        return self.global_ids[: self.num_owned]

    def halo_slice(self, hop: int = 1) -> slice:
        """Local rows of halo ring ``hop`` (1-based); ``halo_slice(1)`` is where a layer exchange writes."""
        if not 1 <= hop <= self.halo_hops:
            raise ValueError(f"Expected hop in [1, {self.halo_hops}] (got {hop})")
        start = self.num_owned + sum(self.num_halo_per_hop[: hop - 1])
        return slice(start, start + self.num_halo_per_hop[hop - 1])

    def block(self) -> Block:
        """The full-graph layer's block: owned rows pull from owned + 1-hop halo rows, whole-graph degrees."""
        num_src = self.num_owned + self.num_halo_per_hop[0]
        num_edges = int(self.indptr[self.num_owned])
        return Block(
            self.indptr[: self.num_owned + 1],
            self.indices[:num_edges],
            num_src=num_src,
            src_degree=self.in_degree[:num_src],
            edge_weight=None if self.edge_weight is None else self.edge_weight[:num_edges],
        )

    def tensors(self) -> dict[str, Tensor]:
        """Every tensor field that is set, by name (what the on-disk format stores)."""
        names = TENSOR_FIELDS + tuple(name for name in OPTIONAL_FIELDS if getattr(self, name) is not None)
        return {name: getattr(self, name) for name in names}


def _node_part_of(assignment: "Tensor | PartitionResult") -> tuple[Tensor, int]:
    if isinstance(assignment, Tensor):
        node_part = assignment.to(torch.long)
        return node_part, int(node_part.max()) + 1
    return assignment.node_part, assignment.num_parts


def build_part(graph: Graph, node_part: Tensor, part_id: int, *, halo_hops: int = 1, plan: ExchangePlan) -> Part:
    """Builds part ``part_id`` from the owner of every node (see :class:`Part` for the layout)."""
    owned = (node_part == part_id).nonzero().flatten()
    rings = halo_rings(graph, node_part, part_id, halo_hops, plan)
    global_ids = torch.cat([owned, *rings])
    n_local = global_ids.numel()
    global_to_local = torch.full((graph.num_nodes,), -1, dtype=torch.long)
    global_to_local[global_ids] = torch.arange(n_local)

    rows_with_edges = n_local - rings[-1].numel()
    edge_ids = in_edge_ids(graph.indptr, global_ids[:rows_with_edges])
    degree = graph.in_degrees()
    indptr = torch.zeros(n_local + 1, dtype=torch.long)
    torch.cumsum(degree[global_ids[:rows_with_edges]], 0, out=indptr[1 : rows_with_edges + 1])
    indptr[rows_with_edges + 1 :] = indptr[rows_with_edges]
    indices = global_to_local[graph.indices[edge_ids]]

    send_nodes = [plan.send_nodes(part_id, receiver) for receiver in range(plan.num_parts)]
    is_owned = torch.arange(n_local) < owned.numel()
    node_data = {name: value[global_ids] for name, value in graph.node_data().items()}
    for name in MASK_FIELDS:
        if name in node_data:
            node_data[name] &= is_owned
    return Part(
        part_id=part_id,
        num_parts=plan.num_parts,
        num_owned=owned.numel(),
        halo_hops=halo_hops,
        num_halo_per_hop=[ring.numel() for ring in rings],
        global_ids=global_ids,
        halo_owner=node_part[global_ids[owned.numel() :]],
        indptr=indptr,
        indices=indices,
        in_degree=degree[global_ids],
        send_indices=global_to_local[torch.cat(send_nodes)],
        send_counts=plan.send_counts(part_id),
        recv_counts=plan.recv_counts(part_id),
        edge_weight=None if graph.edge_weight is None else graph.edge_weight[edge_ids],
        **node_data,
    )


def iter_parts(graph: Graph, assignment: "Tensor | PartitionResult", *, halo_hops: int = 1, plan: ExchangePlan | None = None) -> Iterator[Part]:
    """Yields the parts one by one (so a writer holds one part at a time besides the graph).

    Args:
        graph: the partitioned graph.
        assignment: a PartitionResult, or the ``[num_nodes]`` owner part of every node.
        halo_hops: halo rings to keep (>= 1: owned rows need their 1-hop halo).
        plan: the exchange plan if already built.
    """
    node_part, num_parts = _node_part_of(assignment)
    if isinstance(halo_hops, bool) or not isinstance(halo_hops, int) or halo_hops < 1:
        raise ValueError(f"Expected halo_hops >= 1 (got {halo_hops!r})")
    if node_part.shape != (graph.num_nodes,):
        raise ValueError(f"Expected an assignment of shape [{graph.num_nodes}] (got {tuple(node_part.shape)})")
    if int(node_part.min()) < 0:
        raise ValueError(f"Expected assignment parts >= 0 (got {int(node_part.min())})")
    plan = plan if plan is not None else ExchangePlan.build(graph, node_part, num_parts)
    for part_id in range(num_parts):
        yield build_part(graph, node_part, part_id, halo_hops=halo_hops, plan=plan)


def build_parts(graph: Graph, assignment: "Tensor | PartitionResult", *, halo_hops: int = 1) -> list[Part]:
    """Every part of ``assignment`` (all in memory; :func:`iter_parts` yields them one at a time)."""
    return list(iter_parts(graph, assignment, halo_hops=halo_hops))


def assemble_graph(parts: list[Part]) -> Graph:
    """Rebuilds the whole graph from all its parts (owned rows only): the inverse of partitioning.

    Rows keep their edge order, so a partitioned graph reassembles to an identical CSR.
    """
    parts = sorted(parts, key=lambda part: part.part_id)
    num_nodes = sum(part.num_owned for part in parts)
    degree = torch.zeros(num_nodes, dtype=torch.long)
    for part in parts:
        degree[part.owned_global_ids] = part.indptr[: part.num_owned + 1].diff()
    indptr = csr_offsets(degree)
    indices = torch.empty(int(indptr[-1]), dtype=torch.long)
    has_weight = parts[0].edge_weight is not None
    edge_weight = torch.empty(indices.numel()) if has_weight else None
    for part in parts:
        owned_edges = int(part.indptr[part.num_owned])
        positions = in_edge_ids(indptr, part.owned_global_ids)
        indices[positions] = part.global_ids[part.indices[:owned_edges]]
        if has_weight:
            edge_weight[positions] = part.edge_weight[:owned_edges]
    node_data = {}
    for name in NODE_DATA_FIELDS:
        first = getattr(parts[0], name)
        if first is None:
            continue
        merged = torch.empty((num_nodes, *first.shape[1:]), dtype=first.dtype)
        for part in parts:
            merged[part.owned_global_ids] = getattr(part, name)[: part.num_owned]
        node_data[name] = merged
    return Graph(indptr, indices, edge_weight=edge_weight, **node_data)
