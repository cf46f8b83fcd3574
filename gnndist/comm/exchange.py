"""Halo exchange: an autograd function that moves boundary rows forward and their gradients back.

Forward: every part sends ``h[send_indices]`` (grouped by receiver, ``send_counts``) and receives its
1-hop halo rows (grouped by owner, ``recv_counts``) in one ``all_to_all_single`` with uneven splits
(works on gloo with torch 2.2 and 2.13, and on NCCL). Backward: the reverse exchange returns every
halo row's gradient to its owner, where ``index_add_`` sums the contributions of all receivers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor


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


@dataclass
class Communicator:
    """All-to-all and all-reduce over a torch.distributed group, counting bytes and time."""

    group: object | None = None
    stats: CommStats = field(default_factory=CommStats)

    def all_to_all(self, rows: Tensor, send_counts: list[int], recv_counts: list[int]) -> Tensor:
        """Sends ``rows`` split by ``send_counts``; returns the rows received, split by ``recv_counts``."""
        start = time.perf_counter()
        out = rows.new_empty((sum(recv_counts), *rows.shape[1:]))
        dist.all_to_all_single(out, rows.contiguous(), recv_counts, send_counts, group=self.group)
        self.stats.seconds += time.perf_counter() - start
        self.stats.bytes_sent += rows.numel() * rows.element_size()
        return out

    def all_to_all_async(self, rows: Tensor, send_counts: list[int], recv_counts: list[int]) -> tuple[Tensor, object]:
        """Starts an all-to-all; returns the output buffer and the work handle to ``wait()`` on."""
        out = rows.new_empty((sum(recv_counts), *rows.shape[1:]))
        work = dist.all_to_all_single(out, rows.contiguous(), recv_counts, send_counts, group=self.group, async_op=True)
        self.stats.bytes_sent += rows.numel() * rows.element_size()
        return out, work

    def wait(self, work: object) -> None:
        start = time.perf_counter()
        work.wait()
        self.stats.seconds += time.perf_counter() - start

    def all_reduce_sum(self, tensor: Tensor, count_bytes: bool = False) -> Tensor:
        """Sums ``tensor`` over all workers in place (SUM then divide: AVG fails on gloo with torch 2.2)."""
        start = time.perf_counter()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        self.stats.seconds += time.perf_counter() - start
        if count_bytes:
            self.stats.bytes_sent += tensor.numel() * tensor.element_size()
        return tensor

    @property
    def world_size(self) -> int:
        return dist.get_world_size(self.group)

    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)


class HaloExchange(torch.autograd.Function):
    """``halo = exchange(h_owned)``: exact, differentiable halo exchange along ``route``."""

    @staticmethod
    def forward(ctx, h_owned: Tensor, route: ExchangeRoute, comm: Communicator) -> Tensor:
        ctx.route, ctx.comm, ctx.num_owned = route, comm, h_owned.size(0)
        return comm.all_to_all(h_owned[route.send_indices], route.send_counts, route.recv_counts)

    @staticmethod
    def backward(ctx, grad_halo: Tensor):
        route, comm = ctx.route, ctx.comm
        grad_sent = comm.all_to_all(grad_halo.contiguous(), route.recv_counts, route.send_counts)
        grad_owned = grad_halo.new_zeros((ctx.num_owned, *grad_halo.shape[1:]))
        grad_owned.index_add_(0, route.send_indices, grad_sent)
        return grad_owned, None, None


def exchange_halo(h_owned: Tensor, route: ExchangeRoute, comm: Communicator) -> Tensor:
    """``[num_recv, F]`` halo rows for ``h_owned`` (``[num_owned, F]``), gradients flowing back to owners."""
    return HaloExchange.apply(h_owned, route, comm)
