"""Halo exchange: one autograd function that moves boundary rows forward and their gradients back.

Forward: every part sends ``h[send_indices]`` (grouped by receiver, ``send_counts``) and receives its
1-hop halo rows (grouped by owner, ``recv_counts``), exactly by ``all_to_all_single`` with uneven splits
(works on gloo with torch 2.2 and 2.13, and on NCCL). Backward: the reverse exchange returns every
halo row's gradient to its owner, where ``index_add_`` sums the contributions of all receivers.
*How* rows and gradients travel is a :class:`Transport`: exact, quantised, or stale (the
communication strategies), while :class:`HaloExchange` owns the autograd bookkeeping for all of them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.distributed as dist
from torch import Tensor

from gnndist.comm.shared_reduce import SharedReduce, reducible


@dataclass
class CommStats:
    """Bytes this worker sent and seconds it spent in communication, reset every epoch."""

    bytes_sent: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.bytes_sent, self.seconds = 0, 0.0


@dataclass
class ExchangeRoute:
    """Which rows go where: ``send_indices`` grouped by receiver, and the split sizes of both directions."""

    send_indices: Tensor  # [sum(send_counts)] local ids of owned rows
    send_counts: list[int]  # [P] rows to each part
    recv_counts: list[int]  # [P] rows from each part

    @property
    def num_recv(self) -> int:
        return sum(self.recv_counts)

    def subset(self, keep_send: Tensor, keep_recv: Tensor) -> "ExchangeRoute":
        """The route restricted to the kept send positions / received rows (bool masks)."""
        def counts(mask: Tensor, sizes: list[int]) -> list[int]:
            return [int(chunk.sum()) for chunk in torch.split(mask, sizes)]

        return ExchangeRoute(self.send_indices[keep_send], counts(keep_send, self.send_counts), counts(keep_recv, self.recv_counts))


class Transport(Protocol):
    """How a route's rows travel forward and their gradients backward (one per strategy)."""

    def send_rows(self, rows: Tensor, route: ExchangeRoute) -> Tensor:
        """Sends ``rows`` (``[sum(send_counts), F]``, grouped by receiver); returns the ``[num_recv, F]`` halo rows."""

    def send_grads(self, grad_halo: Tensor, route: ExchangeRoute) -> Tensor:
        """Sends the halo rows' gradients back; returns ``[sum(send_counts), F]`` gradients of the rows sent."""


@dataclass
class _StagedWork:
    """An asynchronous collective on host copies of GPU tensors: waiting also copies the result back."""

    work: object
    host_out: Tensor
    out: Tensor

    def wait(self) -> None:
        self.work.wait()
        self.out.copy_(self.host_out, non_blocking=True)


@dataclass
class Communicator:
    """All-to-all and all-reduce over a torch.distributed group, counting bytes and time.

    It is also the exact :class:`Transport`: rows and gradients travel as they are, one all-to-all each way.
    GPU tensors travel as they are on NCCL; on gloo (several workers sharing a GPU, or asked for) they are
    staged through pinned host buffers, so callers never care which backend the group has.
    """

    group: object | None = None
    stats: CommStats = field(default_factory=CommStats)
    _shared: SharedReduce | None = field(default=None, init=False, repr=False)
    _shared_failed: bool = field(default=False, init=False, repr=False)

    def _staged(self, tensor: Tensor) -> bool:
        return tensor.is_cuda and dist.get_backend(self.group) == "gloo"

    def all_to_all(self, rows: Tensor, send_counts: list[int], recv_counts: list[int]) -> Tensor:
        """Sends ``rows`` split by ``send_counts``; returns the rows received, split by ``recv_counts``."""
        start = time.perf_counter()
        out, _ = self._all_to_all(rows, send_counts, recv_counts, async_op=False)
        self.stats.seconds += time.perf_counter() - start
        return out

    def all_to_all_async(self, rows: Tensor, send_counts: list[int], recv_counts: list[int]) -> tuple[Tensor, object]:
        """Starts an all-to-all; returns the output buffer and the work handle to :meth:`wait` on before reading it."""
        return self._all_to_all(rows, send_counts, recv_counts, async_op=True)

    def _all_to_all(self, rows: Tensor, send_counts: list[int], recv_counts: list[int], *, async_op: bool) -> tuple[Tensor, object]:
        out = rows.new_empty((sum(recv_counts), *rows.shape[1:]))
        self.stats.bytes_sent += rows.numel() * rows.element_size()
        if not self._staged(rows):
            return out, dist.all_to_all_single(out, rows.contiguous(), recv_counts, send_counts, group=self.group, async_op=async_op)
        host_rows, host_out = _pinned_copy(rows), _pinned_empty(out)
        work = _StagedWork(dist.all_to_all_single(host_out, host_rows, recv_counts, send_counts, group=self.group, async_op=True), host_out, out)
        if not async_op:
            work.wait()
        return out, work

    def send_rows(self, rows: Tensor, route: ExchangeRoute) -> Tensor:
        return self.all_to_all(rows, route.send_counts, route.recv_counts)

    def send_grads(self, grad_halo: Tensor, route: ExchangeRoute) -> Tensor:
        return self.all_to_all(grad_halo, route.recv_counts, route.send_counts)

    def wait(self, work: object) -> None:
        start = time.perf_counter()
        work.wait()
        self.stats.seconds += time.perf_counter() - start

    def all_reduce_sum(self, tensor: Tensor, count_bytes: bool = False) -> Tensor:
        """Sums ``tensor`` over all workers in place (SUM then divide: AVG fails on gloo with torch 2.2).

        CPU tensors on a gloo group whose workers share a machine are summed through shared memory
        (:class:`SharedReduce`: a copy, a one-element barrier and ``P`` additions, not gloo's TCP ring).
        """
        start = time.perf_counter()
        shared = self._shared_reduce(tensor)
        if shared is not None:
            contiguous = tensor.contiguous()
            shared.all_reduce_sum(contiguous)
            if contiguous is not tensor:
                tensor.copy_(contiguous)
        elif self._staged(tensor):
            host = _pinned_copy(tensor)
            dist.all_reduce(host, op=dist.ReduceOp.SUM, group=self.group)
            tensor.copy_(host, non_blocking=True)
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        self.stats.seconds += time.perf_counter() - start
        if count_bytes:
            self.stats.bytes_sent += tensor.numel() * tensor.element_size()
        return tensor

    @property
    def world_size(self) -> int:
        return dist.get_world_size(self.group)

    def _shared_reduce(self, tensor: Tensor) -> SharedReduce | None:
        """The shared-memory reducer for ``tensor``, opened (or grown) on first need; None: gloo's all-reduce.

        Every rank takes the same branch: the decision depends only on what a collective's ranks share (the
        group, the tensor's device, dtype and size) and on earlier collective outcomes.
        """
        if self._shared_failed or not reducible(tensor):
            return None
        group = self.group if self.group is not None else dist.group.WORLD
        if dist.get_world_size(group) == 1 or dist.get_backend(group) != "gloo":
            return None
        if self._shared is None or self._shared.group is not group or not self._shared.fits(tensor):  # first, grown, or a new group
            self._shared = SharedReduce.open(group, tensor.numel() * tensor.element_size())
            self._shared_failed = self._shared is None
        return self._shared

    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)


def _pinned_empty(like: Tensor) -> Tensor:
    return torch.empty(like.shape, dtype=like.dtype, pin_memory=True)


def _pinned_copy(tensor: Tensor) -> Tensor:
    """A host copy of GPU ``tensor`` in pinned memory (complete when this returns: gloo reads it next)."""
    return _pinned_empty(tensor).copy_(tensor)


class HaloExchange(torch.autograd.Function):
    """``halo = exchange(h_owned)`` along ``route``: rows forward, gradients summed back into their owners' rows."""

    @staticmethod
    def forward(ctx, h_owned: Tensor, route: ExchangeRoute, transport: Transport) -> Tensor:
        ctx.route, ctx.transport, ctx.num_owned = route, transport, h_owned.size(0)
        return transport.send_rows(h_owned[route.send_indices], route)

    @staticmethod
    def backward(ctx, grad_halo: Tensor):
        route = ctx.route
        grad_sent = ctx.transport.send_grads(grad_halo.contiguous(), route)
        grad_owned = grad_halo.new_zeros((ctx.num_owned, *grad_halo.shape[1:]))
        grad_owned.index_add_(0, route.send_indices, grad_sent)
        return grad_owned, None, None


def exchange_halo(h_owned: Tensor, route: ExchangeRoute, transport: Transport) -> Tensor:
    """``[num_recv, F]`` halo rows for ``h_owned`` (``[num_owned, F]``), gradients flowing back to owners.

    ``transport`` is a :class:`Communicator` for the exact exchange, or a strategy's own transport.
    """
    return HaloExchange.apply(h_owned, route, transport)
