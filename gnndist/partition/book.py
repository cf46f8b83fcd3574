"""PartitionBook: global node id <-> (owner part, local id within the owner)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from gnndist.block import csr_offsets


def _as_ids(name: str, value: Any) -> Tensor:
    tensor = torch.as_tensor(value)
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise TypeError(f"Expected integer ids in '{name}' (got dtype {tensor.dtype})")
    return tensor.to(torch.long)


@dataclass(eq=False)
class PartitionBook:
    """Where every node lives: its owner part and its local id there (owned nodes are numbered by global id).

    Attributes:
        node_part: ``[num_nodes]`` int64 owner part of each node.
        local_id: ``[num_nodes]`` int64 local id of each node within its owner (``0..owned_counts[part]-1``).
        num_parts: number of parts.
    """

    node_part: Tensor
    local_id: Tensor
    num_parts: int
    _offsets: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        counts = torch.bincount(self.node_part, minlength=self.num_parts)
        self._offsets = csr_offsets(counts)

    @cached_property
    def _owned_by_part(self) -> Tensor:
        """``[num_nodes]`` global ids grouped by owner, in local-id order (built on first use: a worker
        that only routes requests with :meth:`to_local` never holds this third array)."""
        owned_by_part = torch.empty_like(self.node_part)
        owned_by_part[self._offsets[self.node_part] + self.local_id] = torch.arange(self.node_part.numel())
        return owned_by_part

    @classmethod
    def from_assignment(cls, node_part: Tensor, num_parts: int) -> "PartitionBook":
        """Numbers the owned nodes of every part in increasing global id."""
        order = torch.argsort(node_part, stable=True)
        counts = torch.bincount(node_part, minlength=num_parts)
        starts = torch.cumsum(counts, 0) - counts
        local_id = torch.empty_like(node_part)
        local_id[order] = torch.arange(node_part.numel()) - torch.repeat_interleave(starts, counts)
        return cls(node_part, local_id, num_parts)

    @property
    def num_nodes(self) -> int:
        return self.node_part.numel()

    def owned_counts(self) -> Tensor:
        """``[num_parts]`` owned nodes per part."""
        return self._offsets.diff()

    def owned_nodes(self, part: int) -> Tensor:
        """Global ids owned by ``part``, in local-id order (= increasing global id)."""
        self._check_part(part)
        return self._owned_by_part[int(self._offsets[part]) : int(self._offsets[part + 1])]

    def to_local(self, global_ids: Any) -> tuple[Tensor, Tensor]:
        """``(owner part, local id)`` of each global id."""
        global_ids = _as_ids("global_ids", global_ids)
        if global_ids.numel() and (int(global_ids.min()) < 0 or int(global_ids.max()) >= self.num_nodes):
            raise ValueError(f"Expected global ids in [0, {self.num_nodes - 1}] (got {int(global_ids.min())}..{int(global_ids.max())})")
        return self.node_part[global_ids], self.local_id[global_ids]

    def to_global(self, part: Any, local_ids: Any) -> Tensor:
        """Global ids of owned local ids; ``part`` is one part or one part per local id."""
        part = _as_ids("part", part)
        local_ids = _as_ids("local_ids", local_ids)
        part = part.expand_as(local_ids) if part.dim() == 0 else part
        if part.numel() and (int(part.min()) < 0 or int(part.max()) >= self.num_parts):
            raise ValueError(f"Expected parts in [0, {self.num_parts - 1}] (got {int(part.min())}..{int(part.max())})")
        counts = self.owned_counts()[part]
        bad = (local_ids < 0) | (local_ids >= counts)
        if bool(bad.any()):
            first = int(bad.nonzero()[0])
            raise ValueError(f"Local id {int(local_ids[first])} is not owned by part {int(part[first])} (it owns {int(counts[first])} nodes)")
        return self._owned_by_part[self._offsets[part] + local_ids]

    def _check_part(self, part: int) -> None:
        if not 0 <= part < self.num_parts:
            raise ValueError(f"Expected part in [0, {self.num_parts - 1}] (got {part})")
