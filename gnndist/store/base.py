"""The store interfaces: feature rows and in-edges served by row id, and the handle a client reaches a store through.

A :class:`FeatureStore` serves feature rows, a :class:`GraphStore` the in-edges of rows; both are
addressed by row id ``0..num_rows-1`` (a part's store: the owner's local ids of its owned nodes).
Each has one public method that validates the request and one protected hook that does the work,
so a backend implements only the hook (as PyG's ``FeatureStore.get_tensor`` / ``_get_tensor``).

A client reaches one part's stores through a :class:`StoreHandle`: ``handle.features(local_ids)``
and ``handle.in_edges(local_ids)`` submit a request and return a :class:`Pending` answer, so a
client sends requests to many owners before it waits on any. Every backend answers in the same
wire form (numpy arrays, which Ray's object store hands over without a copy on one node): the
in-process backend answers at once, the Ray backend with an actor call.
"""
from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass, fields, replace
from typing import Generic, Protocol, TypeVar

import numpy as np
import torch
from torch import Tensor

from gnndist.device import to_device

T = TypeVar("T", covariant=True)


def read_only_tensor(array: np.ndarray) -> Tensor:
    """A tensor over ``array`` without a copy, for arrays mapped read-only from Ray's object store that are only
    read (torch warns about every non-writable array it wraps)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def check_ids(ids: Tensor, num_rows: int, owner: object) -> None:
    """Refuses ``ids`` unless it is a 1-D int64 tensor of row ids in ``[0, num_rows)``; errors name ``owner``."""
    if not isinstance(ids, Tensor) or ids.dtype != torch.long or ids.dim() != 1:
        got = f"{type(ids).__name__} of dtype {ids.dtype} and shape {tuple(ids.shape)}" if isinstance(ids, Tensor) else type(ids).__name__
        raise TypeError(f"{owner!r}: expected row ids as a 1-D int64 tensor (got {got})")
    if ids.numel():
        low, high = (int(value) for value in torch.aminmax(ids))
        if low < 0 or high >= num_rows:
            raise IndexError(f"{owner!r}: expected row ids in [0, {num_rows - 1}] (got ids from {low} to {high})")


def copy_rows(rows: Tensor, ids: Tensor, out: Tensor, positions: Tensor) -> None:
    """``out[positions] = rows[ids]`` for valid ``ids`` (int64, the caller checks them), each row copied once.

    On the CPU gnndist's C kernel copies each row straight from ``rows`` into its place in ``out``
    (:meth:`~gnndist.aggregation.native_kernel.NativeLibrary.copy_rows`); torch has no single operation for it
    (``index_copy_`` of ``index_select`` copies every row twice, through a temporary). Elsewhere, or where the
    kernel does not load, that pair.
    """
    from gnndist.aggregation.native_kernel import native_library

    same_layout = rows.dim() == out.dim() == 2 and rows.size(1) == out.size(1) and rows.dtype == out.dtype and rows.is_contiguous() and out.is_contiguous()
    if rows.device.type == out.device.type == "cpu" and same_layout and (library := native_library()) is not None:
        library.copy_rows(rows, ids.contiguous(), out, positions.contiguous())
    else:
        out.index_copy_(0, positions, to_device(rows.index_select(0, ids.to(rows.device)), out.device))


@dataclass(frozen=True)
class FeatureInfo:
    """The rows a feature store serves: how many, how wide, of which dtype."""

    num_rows: int
    width: int
    dtype: torch.dtype

    @property
    def row_bytes(self) -> int:
        return self.width * torch.empty((), dtype=self.dtype).element_size()


class FeatureStore(abc.ABC):
    """Feature rows by row id: one part's owned rows (by owner-local id), a worker's remote rows, or a cache of them.

    Subclasses implement :attr:`info` and :meth:`_gather`; :meth:`gather` checks the ids first. A store whose
    rows arrive in pieces (from several owners, or part from a cache) also overrides :meth:`_gather_into` to
    write each piece straight into the caller's tensor instead of assembling a tensor of its own first.
    """

    @property
    @abc.abstractmethod
    def info(self) -> FeatureInfo:
        """Rows served, their width and dtype."""

    def gather(self, ids: Tensor) -> Tensor:
        """``[n, width]`` rows of ``ids`` (``[n]`` int64 row ids, in request order)."""
        check_ids(ids, self.info.num_rows, self)
        return self._gather(ids)

    def gather_into(self, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        """Writes the rows of ``ids`` into ``out[positions]`` (``positions``: ``[n]`` int64 rows of ``out``, on its
        device): a batch whose rows come from several stores is assembled in one tensor, each row copied once."""
        check_ids(ids, self.info.num_rows, self)
        if positions.shape != ids.shape:
            raise ValueError(f"{self!r}: expected one position per id (got {tuple(positions.shape)} positions for {tuple(ids.shape)} ids)")
        self._gather_into(ids, out, positions)

    @abc.abstractmethod
    def _gather(self, ids: Tensor) -> Tensor:
        """The rows of valid ``ids``."""

    def _gather_into(self, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        """Writes the rows of valid ``ids`` into ``out[positions]``; this default copies :meth:`_gather`'s rows."""
        out.index_copy_(0, positions, to_device(self._gather(ids), out.device))


@dataclass
class InEdges:
    """In-edges of some rows, row by row in CSR order, with what the asker needs to place their sources.

    Arrays are tensors; in the wire form (:meth:`numpy`) numpy arrays.

    Attributes:
        counts: ``[n]`` in-edges of each requested row.
        sources: ``[sum(counts)]`` global id of each edge's source.
        source_owner: ``[sum(counts)]`` owner part of each source.
        source_degree: ``[sum(counts)]`` whole-graph in-degree of each source.
        edge_weight: ``[sum(counts)]`` weight of each edge, or None.
    """

    counts: Tensor
    sources: Tensor
    source_owner: Tensor
    source_degree: Tensor
    edge_weight: Tensor | None

    @property
    def nbytes(self) -> int:
        arrays = (getattr(self, field.name) for field in fields(self))
        return sum(array.nbytes for array in arrays if array is not None)

    def numpy(self) -> "InEdges":
        """The wire form: the same arrays as numpy views (no copy)."""
        return replace(self, **{field.name: getattr(self, field.name).numpy() for field in fields(self) if getattr(self, field.name) is not None})


class GraphStore(abc.ABC):
    """In-edges of rows by row id (a part's store: its owned nodes by owner-local id).

    Subclasses implement :attr:`num_rows` and :meth:`_in_edges`; :meth:`in_edges` checks the ids first.
    """

    @property
    @abc.abstractmethod
    def num_rows(self) -> int:
        """Rows whose in-edges are served."""

    def in_edges(self, ids: Tensor) -> InEdges:
        """Every in-edge of the rows ``ids`` (``[n]`` int64), row by row in CSR order."""
        check_ids(ids, self.num_rows, self)
        return self._in_edges(ids)

    @abc.abstractmethod
    def _in_edges(self, ids: Tensor) -> InEdges:
        """The in-edges of valid ``ids``."""


class Pending(Protocol[T]):
    """An answer that may still be on its way; :meth:`result` waits for it (and raises the store's error)."""

    def result(self) -> T: ...


@dataclass(frozen=True)
class Ready(Generic[T]):
    """An answer that is already here (the in-process backend's)."""

    value: T

    def result(self) -> T:
        return self.value


@dataclass(frozen=True)
class StoreInfo:
    """What a part's stores serve: which part, its feature rows, and the rows whose in-edges it serves."""

    part_id: int
    features: FeatureInfo
    graph_rows: int


class StoreHandle(abc.ABC):
    """A client's way to one part's stores: submits requests and returns pending answers in wire form.

    Backends implement :meth:`_submit` (and :meth:`close` when they hold resources); every request
    names rows by the owner's local id.

    Args:
        info: what the part's stores serve (known once the stores are loaded).
    """

    def __init__(self, info: StoreInfo):
        self.info = info

    @property
    def part_id(self) -> int:
        return self.info.part_id

    def features(self, local_ids: Tensor) -> Pending[np.ndarray]:
        """``[n, width]`` feature rows of owned local ids (``[n]`` int64)."""
        return self._submit("features", local_ids.numpy())

    def in_edges(self, local_ids: Tensor) -> Pending[InEdges]:
        """In-edges of owned local ids (``[n]`` int64), as :class:`InEdges` in wire form."""
        return self._submit("in_edges", local_ids.numpy())

    @abc.abstractmethod
    def _submit(self, method: str, local_ids: np.ndarray) -> Pending:
        """Sends ``method(local_ids)`` to the part's :class:`~gnndist.store.local.StoreServer`."""

    def mapped_rows(self) -> np.ndarray | None:
        """The part's ``[num_rows, width]`` feature rows, read-only, when this process can read them in place
        (no request, no copy); None when it cannot (the default)."""
        return None

    def close(self) -> None:
        """Releases what the backend holds (the Ray backend kills its actor); the handle is unusable afterwards."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(part {self.part_id})"


def check_part_order(part_ids: list[int]) -> None:
    """Refuses stores that are not parts ``0..n-1`` in order (a client addresses part ``p`` at position ``p``)."""
    if part_ids != list(range(len(part_ids))):
        raise ValueError(f"Expected one store per part, parts 0..{len(part_ids) - 1} in order (got parts {part_ids})")
