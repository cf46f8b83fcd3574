"""Partition stores and what a worker builds from them: remote feature rows and its local sampling graph.

A :class:`PartitionStore` serves one part's owned rows (feature rows and in-edges) as numpy arrays.
:func:`start_stores` hosts one per part as a Ray actor (``num_cpus=0``, so it always fits, placed
beside its worker), and Ray hands the arrays over through its object store (zero-copy on one node).
A worker talks to the stores through a :class:`StoreClient`, which sends one request per owner and
batch. :func:`build_local_graph` extends a part's CSR with the in-edges its sampler needs beyond the
halo rings on disk, asking the owners' stores once at start-up, so that sampling is local afterwards.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.partition import Part


def _ids(array: np.ndarray) -> Tensor:
    """An int64 tensor of ``array`` (copied: Ray hands arguments over as read-only buffers)."""
    return torch.from_numpy(np.array(array, dtype=np.int64))


class PartLoader(Protocol):
    """Anything that loads one part (``gnndist.train.fullgraph.PartSource``)."""

    def load(self) -> Part: ...


@dataclass
class InEdges:
    """In-edges of some owned rows, in CSR order, with what the asker needs to place their sources.

    Attributes:
        counts: ``[n]`` in-edges of each requested row.
        sources: ``[sum(counts)]`` global id of each edge's source.
        source_owner: ``[sum(counts)]`` owner part of each source.
        source_degree: ``[sum(counts)]`` whole-graph in-degree of each source.
        edge_weight: ``[sum(counts)]`` weight of each edge, or None.
    """

    counts: np.ndarray
    sources: np.ndarray
    source_owner: np.ndarray
    source_degree: np.ndarray
    edge_weight: np.ndarray | None

    @property
    def nbytes(self) -> int:
        arrays = (self.counts, self.sources, self.source_owner, self.source_degree, self.edge_weight)
        return sum(array.nbytes for array in arrays if array is not None)


class PartitionStore:
    """Serves one part's owned rows: feature rows and in-edges (with their sources' owners and degrees).

    A plain class, used in-process or hosted as a Ray actor by :func:`start_stores`. Requests name
    owned rows by the owner's local id (see :meth:`local_ids`); answers are numpy arrays. Only the
    owned rows' data is kept, never the halo copies.

    Args:
        source: the part itself, or a loader of it (``PartSource``).
    """

    def __init__(self, source: Part | PartLoader):
        part = source if isinstance(source, Part) else source.load()
        if part.x is None:
            raise ValueError(f"Part {part.part_id} has no node features 'x' to serve")
        owned = part.num_owned
        self.part_id = part.part_id
        self.owned_global_ids = part.global_ids[:owned].contiguous()
        self.x = part.x[:owned].contiguous()
        num_edges = int(part.indptr[owned])
        self.indptr = part.indptr[: owned + 1].contiguous()
        self.indices = part.indices[:num_edges].contiguous()
        self.edge_weight = None if part.edge_weight is None else part.edge_weight[:num_edges].contiguous()
        # sources of owned rows are owned or 1-hop halo: keep their global ids, owners and degrees
        num_sources = owned + part.num_halo_per_hop[0]
        self.source_global_ids = part.global_ids[:num_sources].contiguous()
        self.source_owner = torch.cat([torch.full((owned,), part.part_id, dtype=torch.long), part.halo_owner[: part.num_halo_per_hop[0]]])
        self.source_degree = part.in_degree[:num_sources].contiguous()

    def ready(self) -> int:
        """The part id, once loaded (a Ray caller waits on this to surface load errors)."""
        return self.part_id

    def feature_shape(self) -> tuple[int, int, str]:
        """``(owned rows, feature width, dtype name)``."""
        return self.x.size(0), self.x.size(1), str(self.x.dtype).removeprefix("torch.")

    def local_ids(self, global_ids: np.ndarray) -> np.ndarray:
        """Local ids of owned nodes given by global id; a node this part does not own is a ``KeyError``."""
        global_ids = _ids(global_ids)
        position = torch.searchsorted(self.owned_global_ids, global_ids).clamp_(max=max(self.owned_global_ids.numel() - 1, 0))
        found = self.owned_global_ids[position] == global_ids if self.owned_global_ids.numel() else torch.zeros_like(global_ids, dtype=torch.bool)
        if not bool(found.all()):
            missing = global_ids[~found][:5].tolist()
            raise KeyError(f"Part {self.part_id} does not own node(s) {missing} (asked for {global_ids.numel()})")
        return position.numpy()

    def features(self, local_ids: np.ndarray) -> np.ndarray:
        """``[n, F]`` feature rows of owned local ids."""
        return self.x.index_select(0, _ids(local_ids)).numpy()

    def in_edges(self, local_ids: np.ndarray) -> InEdges:
        """Every in-edge of the owned local ids, row by row in CSR order."""
        rows = _ids(local_ids)
        starts = self.indptr.index_select(0, rows)
        counts = self.indptr.index_select(0, rows + 1) - starts
        total = int(counts.sum())
        first = torch.cumsum(counts, 0) - counts
        edge_ids = torch.arange(total) + torch.repeat_interleave(starts - first, counts, output_size=total)
        sources = self.indices.index_select(0, edge_ids)
        return InEdges(
            counts=counts.numpy(),
            sources=self.source_global_ids.index_select(0, sources).numpy(),
            source_owner=self.source_owner.index_select(0, sources).numpy(),
            source_degree=self.source_degree.index_select(0, sources).numpy(),
            edge_weight=None if self.edge_weight is None else self.edge_weight.index_select(0, edge_ids).numpy(),
        )


def start_stores(sources: Sequence[Part | PartLoader], *, placement_group: Any = None, timeout_s: float = 600.0) -> list[Any]:
    """Starts one :class:`PartitionStore` actor per part (``sources[p]`` is part ``p``) and waits until they are loaded.

    Args:
        sources: the parts or their loaders, in part order.
        placement_group: the workers' placement group; store ``p`` then runs in bundle ``p``, on its
            worker's node. Stores take no CPU, so they always fit.
        timeout_s: bound on loading.

    Returns:
        The actor handles, in part order.
    """
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    actor = ray.remote(PartitionStore)
    handles = []
    for part_id, source in enumerate(sources):
        options: dict[str, Any] = dict(num_cpus=0, max_concurrency=max(2, len(sources)))
        if placement_group is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(placement_group=placement_group, placement_group_bundle_index=part_id)
        handles.append(actor.options(**options).remote(source))
    loaded = ray.get([handle.ready.remote() for handle in handles], timeout=timeout_s)
    if loaded != list(range(len(sources))):
        stop_stores(handles)
        raise ValueError(f"Store sources must be parts 0..{len(sources) - 1} in order (got parts {loaded})")
    return handles


def stop_stores(stores: Sequence[Any]) -> None:
    """Kills store actors started by :func:`start_stores` (in-process stores are left alone)."""
    import ray

    for store in stores:
        if not isinstance(store, PartitionStore):
            ray.kill(store, no_restart=True)


@dataclass
class StoreStats:
    """Traffic of one client since the last :meth:`reset`: requests sent, bytes received, seconds waited."""

    requests: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.requests, self.bytes_received, self.seconds = 0, 0, 0.0


class StoreClient:
    """A worker's view of every part's store: calls many owners at once and waits for all answers.

    Args:
        stores: one store per part, in part order: Ray actor handles or in-process :class:`PartitionStore` objects.
    """

    def __init__(self, stores: Sequence[Any]):
        if not stores:
            raise ValueError("Expected one store per part (got none)")
        self.stores = list(stores)
        self.stats = StoreStats()

    @property
    def num_parts(self) -> int:
        return len(self.stores)

    def call(self, requests: dict[int, tuple[str, tuple]]) -> dict[int, Any]:
        """Runs ``{part: (method, args)}`` on the parts' stores concurrently; returns ``{part: answer}``."""
        start = time.perf_counter()
        pending = {}
        answers = {}
        for part, (method, args) in requests.items():
            store = self.stores[part]
            if isinstance(store, PartitionStore):
                answers[part] = getattr(store, method)(*args)
            else:
                pending[part] = getattr(store, method).remote(*args)
        if pending:
            import ray

            answers.update(zip(pending, ray.get(list(pending.values()))))
        self.stats.requests += len(requests)
        self.stats.seconds += time.perf_counter() - start
        return answers

    def per_owner(self, method: str, owners: Tensor, ids: Tensor) -> tuple[list[int], list[Tensor], dict[int, Any]]:
        """Calls ``method(ids of owner p as numpy)`` on every owner present in ``owners``, one request each.

        Returns:
            ``(parts, positions, answers)``: the parts asked, for each the positions of its ids in
            ``ids`` (in request order), and the answers by part.
        """
        order = torch.argsort(owners, stable=True)
        counts = torch.bincount(owners, minlength=self.num_parts).tolist()
        parts, positions, requests = [], [], {}
        start = 0
        for part, count in enumerate(counts):
            if count:
                chunk = order[start : start + count]
                parts.append(part)
                positions.append(chunk)
                requests[part] = (method, (ids.index_select(0, chunk).numpy(),))
            start += count
        return parts, positions, self.call(requests)


@dataclass(eq=False)
class RemoteFeatures:
    """Fetches feature rows of remote nodes from their owners' stores, one request per owner and batch.

    Remote nodes are numbered ``0..count-1`` by the worker; ``owner`` and ``owner_local_id`` say
    where each lives. Used as the ``fetch`` of a :class:`~gnndist.cache.FeatureCache`.

    Attributes:
        client: the stores.
        owner: ``[count]`` owner part of every remote node.
        owner_local_id: ``[count]`` its local id at the owner.
        feature_width, dtype: of the rows.
    """

    client: StoreClient
    owner: Tensor
    owner_local_id: Tensor
    feature_width: int
    dtype: torch.dtype

    @classmethod
    def locate(cls, client: StoreClient, owner: Tensor, global_ids: Tensor) -> "RemoteFeatures":
        """Asks every owner once for the local ids of its remote nodes ``global_ids`` and learns the row shape."""
        local_id = torch.empty_like(global_ids)
        parts, positions, answers = client.per_owner("local_ids", owner, global_ids)
        for part, chunk in zip(parts, positions):
            local_id[chunk] = _ids(answers[part])
        _, width, dtype = client.call({0: ("feature_shape", ())})[0]
        return cls(client, owner, local_id, width, getattr(torch, dtype))

    def __call__(self, remote_ids: Tensor) -> Tensor:
        """``[n, F]`` rows of the remote nodes ``remote_ids``."""
        out = torch.empty(remote_ids.numel(), self.feature_width, dtype=self.dtype)
        if remote_ids.numel() == 0:
            return out
        parts, positions, answers = self.client.per_owner("features", self.owner.index_select(0, remote_ids), self.owner_local_id.index_select(0, remote_ids))
        out_array = out.numpy()
        for part, chunk in zip(parts, positions):
            out_array[chunk.numpy()] = answers[part]  # numpy copies from Ray's read-only buffers without a warning
            self.client.stats.bytes_received += answers[part].nbytes
        return out


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


def build_local_graph(part: Part, hops: int, client: StoreClient | None = None) -> LocalGraph:
    """The part's CSR extended until every node within ``hops - 1`` hops of an owned node has its in-edges.

    Rings the part holds on disk (``part.halo_hops``) are used as they are (rings beyond ``hops``
    are dropped); each missing ring is built by asking the owners of the outermost ring for its
    in-edges (one request per owner), so a part written with ``halo_hops >= hops`` needs no store.

    Args:
        part: the worker's part.
        hops: sampling hops (= model layers).
        client: the stores; needed only when ``part.halo_hops < hops``.
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
        if client is None:
            raise ValueError(f"Part {part.part_id} holds {part.halo_hops} halo ring(s) but sampling {hops} hops needs more: pass the stores")
        _add_ring(graph, client)
    return graph


def _add_ring(graph: LocalGraph, client: StoreClient) -> None:
    """Fetches the in-edges of the outermost ring (its rows are the last, with no edges) and appends the new sources as a ring."""
    ring = graph.ring_sizes[-1]
    start = graph.num_local - ring
    frontier = graph.global_ids[start:]
    parts, positions, answers = client.per_owner("local_ids", graph.owner[start - graph.num_owned :], frontier)
    edges: dict[int, InEdges] = client.call({part: ("in_edges", (np.asarray(answers[part], dtype=np.int64),)) for part in parts})
    graph.structure_bytes += sum(edges[part].nbytes for part in parts)

    # the answers come per owner; put the edges in CSR order (frontier rows in order, each row's edges as stored)
    counts = torch.zeros(ring, dtype=torch.long)
    for part, chunk in zip(parts, positions):
        counts[chunk] = _ids(edges[part].counts)
    answer_rows = torch.cat(positions)
    by_row = torch.argsort(torch.repeat_interleave(answer_rows, counts[answer_rows]), stable=True)
    column = lambda name, dtype: torch.from_numpy(np.concatenate([np.asarray(getattr(edges[p], name)) for p in parts])).to(dtype)[by_row]  # noqa: E731
    sources, source_owner, source_degree = column("sources", torch.long), column("source_owner", torch.long), column("source_degree", torch.long)
    weight = column("edge_weight", graph.edge_weight.dtype) if graph.edge_weight is not None else None

    # local ids of the sources; unknown ones form the new ring, ordered by (owner, global id)
    sorted_ids, sorted_local = torch.sort(graph.global_ids)
    position = torch.searchsorted(sorted_ids, sources).clamp_(max=sorted_ids.numel() - 1)
    known = sorted_ids[position] == sources
    local_sources = sorted_local[position]
    unknown = (~known).nonzero().squeeze(1)
    new_ids, inverse = torch.unique(sources[unknown], return_inverse=True)  # sorted by global id
    first = torch.full((new_ids.numel(),), unknown.numel(), dtype=torch.long).scatter_reduce_(0, inverse, torch.arange(unknown.numel()), "amin")
    new_owner, new_degree = source_owner[unknown][first], source_degree[unknown][first]
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
