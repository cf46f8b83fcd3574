"""A worker's side of the stores: one request per owner, all sent before any is waited on, and its remote rows as a feature store.

Which part owns a node and its local id there come from the partition book, so the client never
asks a store where a node lives.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from gnndist.memory import SharedPages
from gnndist.store.base import FeatureInfo, FeatureStore, Pending, StoreHandle, check_ids, check_part_order, copy_rows, read_only_tensor

Request = Literal["features", "in_edges"]
"""The name of a :class:`StoreHandle` request method."""


@dataclass
class StoreStats:
    """Traffic of one client since the last :meth:`reset`: requests sent, feature bytes received (read in place
    included), seconds waited."""

    requests: int = 0
    bytes_received: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.requests, self.bytes_received, self.seconds = 0, 0, 0.0


@dataclass
class OwnerAnswer:
    """One owner's answer to a request split by owner.

    Attributes:
        part: the owner.
        positions: ``[k]`` positions, in the split ids, of the ids sent to it (in request order).
        answer: its answer, in wire form.
    """

    part: int
    positions: Tensor
    answer: Any


class StoreClient:
    """Reaches every part's stores: splits a request by owner, sends all parts' requests, then waits for every answer.

    Args:
        stores: one handle per part, part ``p`` at position ``p`` (any backend).
        mapped: feature rows (:meth:`features_into`) of a store whose rows this process can read in place
            (:meth:`StoreHandle.mapped_rows`: a Ray store on this node) are read from there, without a request
            or any work in the store.
        mapped_budget_bytes: how much of those rows' shared-memory pages this process keeps mapped between
            reads (:class:`gnndist.memory.SharedPages`; ``inf``: all it ever read).
    """

    def __init__(self, stores: Sequence[StoreHandle], *, mapped: bool = False, mapped_budget_bytes: float = float("inf")):
        if not stores:
            raise ValueError("Expected one store per part (got none)")
        check_part_order([store.part_id for store in stores])
        self.stores = list(stores)
        self.stats = StoreStats()
        in_place = [store.mapped_rows() if mapped else None for store in self.stores]
        self.mapped: list[Tensor | None] = [None if rows is None else read_only_tensor(rows) for rows in in_place]
        self.mapped_pages = SharedPages([rows for rows in in_place if rows is not None], mapped_budget_bytes)

    @property
    def num_mapped(self) -> int:
        """Parts whose feature rows are read in place."""
        return sum(rows is not None for rows in self.mapped)

    @property
    def num_parts(self) -> int:
        return len(self.stores)

    def per_owner(self, request: Request, owners: Tensor, local_ids: Tensor) -> list[OwnerAnswer]:
        """Sends ``request`` with the local ids of each owner present in ``owners`` to that owner, one request each
        (to the store itself, also where its rows are mapped: :meth:`features_into` reads those in place).

        Args:
            request: the handle method to call (``"features"`` or ``"in_edges"``).
            owners: ``[n]`` owner part of each id.
            local_ids: ``[n]`` each id's local id at its owner.

        Returns:
            The answers, in part order.
        """
        start = time.perf_counter()
        sent = [(part, chunk, self._request(part, request, local_ids.index_select(0, chunk))) for part, chunk in self._by_owner(owners)]
        answers = [OwnerAnswer(part, chunk, pending.result()) for part, chunk, pending in sent]
        self.stats.seconds += time.perf_counter() - start
        return answers

    def features_into(self, owners: Tensor, local_ids: Tensor, out: Tensor, positions: Tensor) -> None:
        """Writes the feature rows of ``local_ids`` (``[n]``, at owners ``owners``) into host tensor ``out`` at rows ``positions``.

        Rows this process reads in place (``mapped``) are copied once, straight from the owner's mapping into
        ``out``, while the requests to the other owners (all sent first) are under way; each answer is then
        copied into its rows.
        """
        start = time.perf_counter()
        in_place, sent = [], []
        for part, chunk in self._by_owner(owners):
            if self.mapped[part] is not None:
                in_place.append((part, chunk))
            else:
                self.stats.requests += 1
                sent.append((chunk, self.stores[part].features(local_ids.index_select(0, chunk))))
        for part, chunk in in_place:
            rows, ids = self.mapped[part], local_ids.index_select(0, chunk)
            check_ids(ids, rows.size(0), self.stores[part])
            copy_rows(rows, ids, out, positions.index_select(0, chunk))
            self.stats.bytes_received += ids.numel() * rows.size(1) * rows.element_size()
        if in_place:
            self.mapped_pages.check()
        out_array = out.numpy()
        for chunk, pending in sent:
            answer = pending.result()
            out_array[positions.index_select(0, chunk).numpy()] = answer  # numpy copies from Ray's read-only buffers without a warning
            self.stats.bytes_received += answer.nbytes
        self.stats.seconds += time.perf_counter() - start

    def _by_owner(self, owners: Tensor) -> list[tuple[int, Tensor]]:
        """Each owner present in ``owners`` with the positions of its entries (in request order), in part order."""
        order = torch.argsort(owners, stable=True)
        counts = torch.bincount(owners, minlength=self.num_parts).tolist()
        chunks, offset = [], 0
        for part, count in enumerate(counts):
            if count:
                chunks.append((part, order[offset : offset + count]))
            offset += count
        return chunks

    def _request(self, part: int, request: Request, local_ids: Tensor) -> Pending:
        self.stats.requests += 1
        return getattr(self.stores[part], request)(local_ids)

    def feature_info(self) -> FeatureInfo:
        """Width and dtype of the stores' rows (``num_rows`` summed over parts); stores that disagree are an error."""
        infos = [store.info.features for store in self.stores]
        shapes = {(info.width, info.dtype) for info in infos}
        if len(shapes) != 1:
            raise ValueError(f"Stores serve rows of different widths or dtypes: {[(store.part_id, info.width, str(info.dtype)) for store, info in zip(self.stores, infos)]}")
        return FeatureInfo(sum(info.num_rows for info in infos), infos[0].width, infos[0].dtype)


class RemoteFeatures(FeatureStore):
    """Feature rows of a worker's remote nodes (row ``i`` = remote node ``i``), from their owners' stores, one request per owner and batch.

    Args:
        client: the stores.
        owner: ``[count]`` owner part of every remote node (from the partition book).
        owner_local_id: ``[count]`` its local id at the owner (from the partition book).
    """

    def __init__(self, client: StoreClient, owner: Tensor, owner_local_id: Tensor):
        if owner.shape != owner_local_id.shape or owner.dim() != 1:
            raise ValueError(f"Expected 'owner' and 'owner_local_id' of one shape [count] (got {tuple(owner.shape)} and {tuple(owner_local_id.shape)})")
        self.client = client
        self.owner = owner
        self.owner_local_id = owner_local_id
        stores = client.feature_info()
        self._info = FeatureInfo(owner.numel(), stores.width, stores.dtype)

    @property
    def info(self) -> FeatureInfo:
        return self._info

    def _gather(self, ids: Tensor) -> Tensor:
        out = torch.empty(ids.numel(), self._info.width, dtype=self._info.dtype)
        self._write(ids, out, None)
        return out

    def _gather_into(self, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        if out.device.type != "cpu":
            super()._gather_into(ids, out, positions)
        else:
            self._write(ids, out, positions)

    def _write(self, ids: Tensor, out: Tensor, positions: Tensor | None) -> None:
        """Copies the rows of ``ids`` into host tensor ``out`` (``positions[i]``: the row of ``ids[i]``; None: row ``i``)."""
        if ids.numel() == 0:
            return
        rows = torch.arange(ids.numel()) if positions is None else positions
        self.client.features_into(self.owner.index_select(0, ids), self.owner_local_id.index_select(0, ids), out, rows)

    def __repr__(self) -> str:
        return f"RemoteFeatures({self._info.num_rows} remote rows from {self.client.num_parts} parts)"

