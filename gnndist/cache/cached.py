"""A feature store with a cache in front: some rows held in memory, the rest read from the store behind it.

The shape of graphbolt's ``CPUCachedFeature``: :class:`CachedFeatureStore` wraps a
:class:`~gnndist.store.FeatureStore` (a worker's remote rows, fetched from their owners) and a
:class:`~gnndist.cache.base.CachePolicy`, and is itself a feature store: ``gather(remote_ids)``
serves hits from its rows and fetches only the misses, counting hits, misses and bytes fetched.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.cache.base import CachePolicy, RemoteNodes
from gnndist.device import to_device
from gnndist.store import FeatureInfo, FeatureStore
from gnndist.store.base import copy_rows


@dataclass
class CacheStats:
    """Counters since the last :meth:`reset`: rows served from the cache, rows fetched, bytes fetched."""

    hits: int = 0
    misses: int = 0
    bytes_fetched: int = 0

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        """Fraction of requested rows served from the cache (None before any request)."""
        return self.hits / self.requests if self.requests else None

    def reset(self) -> None:
        self.hits, self.misses, self.bytes_fetched = 0, 0, 0


class CachedFeatureStore(FeatureStore):
    """The rows of ``source``, some held in memory: hits come from there, misses from ``source``.

    The rows the policy holds from the start are read from ``source`` when the cache is built
    (``fill_bytes``); a dynamic policy refills slots with rows a batch missed. ``gather`` expects
    distinct ids (a batch's input nodes). Used by one thread at a time.

    The held rows live on ``device`` (a GPU worker's hottest remote rows in GPU memory), and so does what
    ``gather`` returns; the bookkeeping (which row sits in which slot, the policy's state) stays on the
    host, where the requests arrive.

    Args:
        source: the store behind the cache (a worker's remote rows: ``gnndist.store.RemoteFeatures``).
        policy: which rows to hold (``resolve_cache(name, capacity=...)``).
        remote: what the policy ranks ``source``'s rows by.
        device: where the held rows live.
    """

    def __init__(self, source: FeatureStore, policy: CachePolicy, remote: RemoteNodes, device: torch.device | str = "cpu"):
        info = source.info
        if remote.in_degree.shape != (info.num_rows,):
            raise ValueError(f"Expected 'in_degree' of shape [{info.num_rows}] (the rows of {source!r}) (got {tuple(remote.in_degree.shape)})")
        self.source = source
        self.policy = policy
        self.stats = CacheStats()
        self.row_bytes = info.row_bytes
        self.capacity_rows = policy.capacity_rows(info.num_rows, info.row_bytes)
        self._slot = torch.full((info.num_rows,), -1, dtype=torch.long)  # slot of each row in _rows, -1 when absent
        self._node_of_slot = torch.full((self.capacity_rows,), -1, dtype=torch.long)
        self._rows = torch.empty(self.capacity_rows, info.width, dtype=info.dtype, device=device)
        self.device = self._rows.device  # with its index ("cuda:0"), as the tensors it is compared with
        held = policy.choose(remote, self.capacity_rows)
        if held.numel():
            self._fill(torch.arange(held.numel()), held, source.gather(held))
        self.fill_bytes = held.numel() * self.row_bytes

    @property
    def info(self) -> FeatureInfo:
        return self.source.info

    def _gather(self, ids: Tensor) -> Tensor:
        out = torch.empty(ids.numel(), self._rows.size(1), dtype=self._rows.dtype, device=self.device)
        self._gather_into(ids, out, torch.arange(ids.numel(), device=self.device))
        return out

    def _gather_into(self, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        """Hits are copied from the held rows, misses are written by the store behind straight into ``out``."""
        if out.device != self.device:
            super()._gather_into(ids, out, positions)
            return
        ids = ids.cpu()
        slots = self._slot.index_select(0, ids)
        hit = slots >= 0
        num_hits = int(hit.sum()) if self.capacity_rows else 0
        if num_hits == 0:
            miss_ids, miss_at, hit_slots = ids, positions, slots[:0]
        else:
            hit_positions = hit.nonzero().squeeze(1)
            miss_positions = (~hit).nonzero().squeeze(1)
            hit_slots = slots.index_select(0, hit_positions)
            miss_ids = ids.index_select(0, miss_positions)
            hit_at = positions.index_select(0, to_device(hit_positions, self.device))
            copy_rows(self._rows, to_device(hit_slots, self.device), out, hit_at)
            miss_at = positions.index_select(0, to_device(miss_positions, self.device))
        if miss_ids.numel():
            self.source.gather_into(miss_ids, out, miss_at)
        self.stats.hits += num_hits
        self.stats.misses += miss_ids.numel()
        self.stats.bytes_fetched += miss_ids.numel() * self.row_bytes
        refill = self.policy.admit(hit_slots, miss_ids.numel())
        if refill.numel():
            self._fill(refill, miss_ids[: refill.numel()], out.index_select(0, miss_at[: refill.numel()]))

    def _fill(self, slots: Tensor, ids: Tensor, rows: Tensor) -> None:
        """Puts ``rows`` of ``ids`` into ``slots``, evicting what those slots held."""
        evicted = self._node_of_slot.index_select(0, slots)
        self._slot.index_fill_(0, evicted[evicted >= 0], -1)
        self._slot.index_copy_(0, ids, slots)
        self._node_of_slot.index_copy_(0, slots, ids)
        self._rows.index_copy_(0, to_device(slots, self.device), to_device(rows, self.device))

    def held_nodes(self) -> Tensor:
        """Row ids currently held, in slot order."""
        held = (self._slot >= 0).nonzero().squeeze(1)
        return held[torch.argsort(self._slot[held])]

    def __repr__(self) -> str:
        return f"CachedFeatureStore({self.policy!r}, rows={self.capacity_rows}, source={self.source!r})"
