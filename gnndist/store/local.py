"""The in-process store backend: one part's owned rows served from memory, and the server every backend hosts.

:class:`LocalFeatureStore` and :class:`LocalGraphStore` hold one part's owned feature rows and
in-edges (never its halo copies). :class:`StoreServer` answers requests to both in wire form
(numpy); :class:`LocalHandle` calls it in-process, and the Ray backend hosts the same class as an
actor (``gnndist.store.ray``).
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from gnndist.partition import Part
from gnndist.store.base import FeatureInfo, FeatureStore, GraphStore, InEdges, Ready, StoreHandle, StoreInfo, check_part_order, copy_rows, read_only_tensor


class PartLoader(Protocol):
    """Anything that loads one part (``gnndist.train.fullgraph.PartSource``)."""

    def load(self) -> Part: ...


class LocalFeatureStore(FeatureStore):
    """Feature rows held in memory: ``rows[i]`` is row ``i``.

    Args:
        rows: ``[num_rows, width]`` the rows (a part's owned rows: :meth:`from_part`).
        name: what the rows are, for error messages.
    """

    def __init__(self, rows: Tensor, name: str = "rows"):
        if rows.dim() != 2:
            raise ValueError(f"Expected feature rows of shape [num_rows, width] for {name} (got {tuple(rows.shape)})")
        self.rows = rows
        self.name = name
        self._info = FeatureInfo(rows.size(0), rows.size(1), rows.dtype)

    @classmethod
    def from_part(cls, part: Part) -> "LocalFeatureStore":
        """The owned rows of ``part`` (its halo copies are left out)."""
        if part.x is None:
            raise ValueError(f"Part {part.part_id} has no node features 'x' to serve")
        return cls(part.x[: part.num_owned].contiguous(), name=f"part {part.part_id}")

    @property
    def info(self) -> FeatureInfo:
        return self._info

    def _gather(self, ids: Tensor) -> Tensor:
        return self.rows.index_select(0, ids)

    def _gather_into(self, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        copy_rows(self.rows, ids, out, positions)

    def __repr__(self) -> str:
        return f"LocalFeatureStore({self.name}, {self._info.num_rows} rows)"


class LocalGraphStore(GraphStore):
    """In-edges of one part's owned nodes, with their sources' global ids, owners and whole-graph degrees.

    Sources of owned nodes are owned or in the part's first halo ring, so those rows' global ids,
    owners and degrees are all it keeps besides the owned rows' CSR.
    """

    def __init__(self, part: Part):
        owned = part.num_owned
        self.part_id = part.part_id
        num_edges = int(part.indptr[owned])
        self.indptr = part.indptr[: owned + 1].contiguous()
        self.indices = part.indices[:num_edges].contiguous()
        self.edge_weight = None if part.edge_weight is None else part.edge_weight[:num_edges].contiguous()
        num_sources = owned + part.num_halo_per_hop[0]
        self.source_global_ids = part.global_ids[:num_sources].contiguous()
        self.source_owner = torch.cat([torch.full((owned,), part.part_id, dtype=torch.long), part.halo_owner[: part.num_halo_per_hop[0]]])
        self.source_degree = part.in_degree[:num_sources].contiguous()

    @property
    def num_rows(self) -> int:
        return self.indptr.numel() - 1

    def _in_edges(self, ids: Tensor) -> InEdges:
        starts = self.indptr.index_select(0, ids)
        counts = self.indptr.index_select(0, ids + 1) - starts
        total = int(counts.sum())
        first = torch.cumsum(counts, 0) - counts
        edge_ids = torch.arange(total) + torch.repeat_interleave(starts - first, counts, output_size=total)
        sources = self.indices.index_select(0, edge_ids)
        return InEdges(
            counts=counts,
            sources=self.source_global_ids.index_select(0, sources),
            source_owner=self.source_owner.index_select(0, sources),
            source_degree=self.source_degree.index_select(0, sources),
            edge_weight=None if self.edge_weight is None else self.edge_weight.index_select(0, edge_ids),
        )

    def __repr__(self) -> str:
        return f"LocalGraphStore(part {self.part_id}, {self.num_rows} rows)"


def _ids(array: np.ndarray) -> Tensor:
    """An int64 tensor of ``array`` (copied: Ray hands arguments over as read-only buffers)."""
    return torch.from_numpy(np.array(array, dtype=np.int64))


class StoreServer:
    """Serves one part's feature store and graph store in wire form: numpy local ids in, numpy arrays out.

    A plain class, called in-process by :class:`LocalHandle` or hosted as a Ray actor by
    :func:`gnndist.store.ray.start_stores`. It loads the part itself, so an actor reads it where it runs.

    Args:
        source: the part itself, or a loader of it (``PartSource``).
        own_process: it runs in a process of its own (a Ray actor, started with the heap settings that hand
            freed memory back to the system: :func:`gnndist.store.ray.start_stores`). Its feature rows then
            move into Ray's shared-memory object store (one copy, which it serves from), so that workers on
            its node read them in place (:meth:`shared_rows`).
    """

    def __init__(self, source: Part | PartLoader, *, own_process: bool = False):
        part = source if isinstance(source, Part) else source.load()
        self.part_id = part.part_id
        self.feature_store = LocalFeatureStore.from_part(part)
        self.graph_store = LocalGraphStore(part)
        self._shared: list[Any] | None = None
        if own_process:
            self._share_rows()

    def _share_rows(self) -> None:
        """Puts the feature rows into Ray's object store and serves from that mapping, freeing the private copy."""
        import ray

        ref = ray.put(self.feature_store.rows.numpy())
        self.feature_store = LocalFeatureStore(read_only_tensor(ray.get(ref)), name=self.feature_store.name)
        self._shared = [ref]  # in a list, so that Ray hands callers the reference, not the rows

    def shared_rows(self) -> tuple[str, list[Any]] | None:
        """The node this server runs on and ``[ref]``, the Ray object of its feature rows (None in-process)."""
        import ray

        return None if self._shared is None else (ray.get_runtime_context().get_node_id(), self._shared)

    def ready(self) -> StoreInfo:
        """What this server serves, once loaded (a Ray caller waits on this to surface load errors)."""
        return StoreInfo(self.part_id, self.feature_store.info, self.graph_store.num_rows)

    def process(self) -> dict[str, Any]:
        """Where this server runs (``pid``, ``host``), its peak resident memory (``peak_bytes``) and the CPU seconds
        its process has used (``cpu_s``, every thread): for the run's memory and CPU accounting, logs, and tests
        that kill it."""
        from gnndist.memory import peak_resident_bytes

        return {"pid": os.getpid(), "host": socket.gethostname(), "peak_bytes": peak_resident_bytes(), "cpu_s": time.process_time()}

    def features(self, local_ids: np.ndarray) -> np.ndarray:
        return self.feature_store.gather(_ids(local_ids)).numpy()

    def in_edges(self, local_ids: np.ndarray) -> InEdges:
        return self.graph_store.in_edges(_ids(local_ids)).numpy()


class LocalHandle(StoreHandle):
    """The in-process backend: calls its :class:`StoreServer` directly; answers are ready at once."""

    def __init__(self, server: StoreServer):
        super().__init__(server.ready())
        self.server = server

    def _submit(self, method: str, local_ids: np.ndarray) -> Ready:
        return Ready(getattr(self.server, method)(local_ids))

    def mapped_rows(self) -> np.ndarray:
        return self.server.feature_store.rows.numpy()


def local_stores(parts: Sequence[Part | PartLoader]) -> list[LocalHandle]:
    """In-process stores of ``parts`` (part ``p`` at position ``p``), for single-process runs and tests."""
    handles = [LocalHandle(StoreServer(part)) for part in parts]
    check_part_order([handle.part_id for handle in handles])
    return handles
