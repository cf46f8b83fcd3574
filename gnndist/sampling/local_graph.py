"""The graph a worker samples on: its part's CSR, extended through the owners' graph stores until sampling never leaves it.

:func:`build_local_graph` uses the halo rings the part holds on disk and builds each missing ring
by asking the owners of the outermost ring for its in-edges (one request per owner, once at
start-up), addressing them by their owner-local ids from the partition book; sampling is local
afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.memory import unmap_shared
from gnndist.partition import Part, PartitionBook
from gnndist.store import StoreClient


@dataclass(eq=False)
class LocalGraph:
    """The structure a worker samples on: owned nodes, then remote nodes ring by ring, CSR over in-edges.

    Every node within ``hops - 1`` hops of an owned node has all its in-edges, so a ``hops``-layer
    sampler never leaves it; the outermost ring has none (only its features are ever needed).

    Attributes:
        num_owned: owned nodes (local ids ``0..num_owned-1``).
        global_ids: ``[num_local]`` global id of every local node.
        owner: ``[num_remote]`` owner part of every remote node (local id ``num_owned + i``).
        ring_sizes: remote nodes per ring (ring 1 first).
        indptr, indices: ``[num_local + 1]``, ``[E]`` CSR over in-edges, local ids.
        in_degree: ``[num_local]`` whole-graph in-degree of every node.
        edge_weight: ``[E]`` or None.
        structure_bytes: bytes fetched from stores to extend the part's rings.
    """

    num_owned: int
    global_ids: Tensor
    owner: Tensor
    ring_sizes: list[int]
    indptr: Tensor
    indices: Tensor
    in_degree: Tensor
    edge_weight: Tensor | None
    structure_bytes: int = 0

    @property
    def num_local(self) -> int:
        return self.global_ids.numel()

    @property
    def num_remote(self) -> int:
        return self.num_local - self.num_owned

    def owned_block(self) -> Block:
        """Owned rows pulling from owned + ring-1 rows with all their in-edges (full-neighbourhood inference)."""
        num_src = self.num_owned + (self.ring_sizes[0] if self.ring_sizes else 0)
        num_edges = int(self.indptr[self.num_owned])
        weight = None if self.edge_weight is None else self.edge_weight[:num_edges]
        return Block(self.indptr[: self.num_owned + 1], self.indices[:num_edges], num_src, self.in_degree[:num_src], weight)


def build_local_graph(part: Part, hops: int, client: StoreClient | None = None, book: PartitionBook | None = None) -> LocalGraph:
    """The part's CSR extended until every node within ``hops - 1`` hops of an owned node has its in-edges.

    Rings the part holds on disk (``part.halo_hops``) are used as they are (rings beyond ``hops``
    are dropped); each missing ring is built by asking the owners of the outermost ring for its
    in-edges (one request per owner, addressed by owner-local ids from ``book``), so a part
    written with ``halo_hops >= hops`` needs no store.

    Args:
        part: the worker's part.
        hops: sampling hops (= model layers).
        client: the stores; needed only when ``part.halo_hops < hops``.
        book: the partition book; needed with ``client``.
    """
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 1:
        raise ValueError(f"Expected hops >= 1 (got {hops!r})")
    rings = list(part.num_halo_per_hop[:hops])
    num_local = part.num_owned + sum(rings)
    # rows of ring `hops` are never sampled from: keep them without edges
    rows_with_edges = num_local - (rings[-1] if len(rings) == hops else 0)
    num_edges = int(part.indptr[rows_with_edges])
    indptr = part.indptr[: num_local + 1].clone()
    indptr[rows_with_edges:] = num_edges
    graph = LocalGraph(
        num_owned=part.num_owned,
        global_ids=part.global_ids[:num_local],
        owner=part.halo_owner[: num_local - part.num_owned],
        ring_sizes=rings,
        indptr=indptr,
        indices=part.indices[:num_edges],
        in_degree=part.in_degree[:num_local],
        edge_weight=None if part.edge_weight is None else part.edge_weight[:num_edges],
    )
    while len(graph.ring_sizes) < hops and graph.ring_sizes[-1] > 0:
        if client is None or book is None:
            raise ValueError(f"Part {part.part_id} holds {part.halo_hops} halo ring(s) but sampling {hops} hops needs more: pass the stores and the partition book")
        _add_ring(graph, client, book)
    return graph


def _add_ring(graph: LocalGraph, client: StoreClient, book: PartitionBook) -> None:
    """Fetches the in-edges of the outermost ring (its rows are the last, with no edges) and appends the new sources as a ring."""
    ring = graph.ring_sizes[-1]
    start = graph.num_local - ring
    frontier = graph.global_ids[start:]
    answers = client.per_owner("in_edges", *book.to_local(frontier))
    graph.structure_bytes += sum(answer.answer.nbytes for answer in answers)

    # the answers come per owner; put the edges in CSR order (frontier rows in order, each row's edges as stored)
    counts = torch.zeros(ring, dtype=torch.long)
    for answer in answers:
        counts[answer.positions] = torch.from_numpy(np.array(answer.answer.counts, dtype=np.int64))  # a copy: Ray hands answers over read-only
    by_row = _csr_order(counts, torch.cat([answer.positions for answer in answers]))
    sources = _column(answers, "sources", by_row).long()
    weight = _column(answers, "edge_weight", by_row).to(graph.edge_weight.dtype) if graph.edge_weight is not None else None

    # local ids of the sources; unknown ones form the new ring, ordered by (owner, global id). Each edge-sized
    # temporary is dropped once used (with _csr_order, a 500k-node sbm's build peaked +228 MiB above its start, not +389)
    sorted_ids, sorted_local = torch.sort(graph.global_ids)
    position = torch.searchsorted(sorted_ids, sources).clamp_(max=sorted_ids.numel() - 1)
    unknown = (sorted_ids[position] != sources).nonzero().squeeze(1)
    local_sources = sorted_local[position]
    del position
    new_ids, inverse = torch.unique(sources[unknown], return_inverse=True)  # sorted by global id
    del sources
    # the first edge of each new source (unknown is increasing, so its smallest entry is its first)
    first = torch.full((new_ids.numel(),), int(counts.sum()), dtype=torch.long).scatter_reduce_(0, inverse, unknown, "amin")
    at = by_row[first]
    del by_row, first
    new_owner, new_degree = _column(answers, "source_owner", at).long(), _column(answers, "source_degree", at).long()
    # answers from Ray's object store are mapped in place: unmapped now, or their pages would stay in this process's RSS
    unmap_shared([array for answer in answers for array in vars(answer.answer).values() if isinstance(array, np.ndarray)])
    del answers
    ring_order = torch.argsort(new_owner, stable=True)
    rank = torch.empty_like(ring_order)
    rank[ring_order] = torch.arange(ring_order.numel())
    local_sources[unknown] = graph.num_local + rank[inverse]

    edge_end = int(graph.indptr[-1])
    graph.indptr = torch.cat([graph.indptr[: start + 1], edge_end + torch.cumsum(counts, 0), torch.full((new_ids.numel(),), edge_end + int(counts.sum()), dtype=torch.long)])
    graph.indices = torch.cat([graph.indices, local_sources])
    graph.edge_weight = torch.cat([graph.edge_weight, weight]) if weight is not None else None
    graph.global_ids = torch.cat([graph.global_ids, new_ids[ring_order]])
    graph.owner = torch.cat([graph.owner, new_owner[ring_order]])
    graph.in_degree = torch.cat([graph.in_degree, new_degree[ring_order]])
    graph.ring_sizes.append(new_ids.numel())


def _column(answers: list, name: str, at: Tensor) -> Tensor:
    """The ``name`` arrays of ``answers``, concatenated in answer order, at positions ``at``."""
    return torch.from_numpy(np.concatenate([getattr(answer.answer, name) for answer in answers]))[at]


def _csr_order(counts: Tensor, answer_rows: Tensor) -> Tensor:
    """``[sum(counts)]`` answer position of each edge in CSR order, where the answers list the rows ``answer_rows``
    (each frontier row once), each row's ``counts[row]`` edges together.

    The stable argsort of the edges' rows, computed from offsets instead: that sort needed ~4x the edges' bytes
    on top of its result, this needs 2x.
    """
    answer_counts = counts[answer_rows]
    num_edges = int(answer_counts.sum())
    # edge j of the row at answer position k moves from its answer position to its row's CSR start + j
    shift = (torch.cumsum(counts, 0) - counts)[answer_rows] - (torch.cumsum(answer_counts, 0) - answer_counts)
    edges = torch.arange(num_edges)
    csr_position = torch.repeat_interleave(shift, answer_counts, output_size=num_edges)
    csr_position += edges
    order = torch.empty(num_edges, dtype=torch.long)
    order[csr_position] = edges
    return order
