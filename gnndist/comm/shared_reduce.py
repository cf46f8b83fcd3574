"""Sums over the workers of one machine through shared memory: each writes its tensor once, all add the same slots.

gloo's all-reduce moves a tensor through loopback TCP in ``2 (P - 1)`` ring steps, and its TCP loop thread
spends ~1 ms (2 workers) to ~1.5 ms (4 workers on 2 cores) of CPU per call on a mini-batch step's 74k-float
gradient: 10-18 % of a worker's CPU at 30-50 steps per second. On one machine the rows need not travel:
every rank copies its tensor into its slot of a shared ``/dev/shm`` buffer, the ranks meet at a barrier, and
each adds the ``P`` slots in rank order into its tensor. Same bits on every rank (same additions in the same
order), so replicas stay identical as with gloo's ring.

The barrier lives in the buffer too: an arrival count and a generation that the last rank to arrive bumps,
the others sleeping on it (a futex, gnndist's native library). A one-element gloo all-reduce as the barrier
still cost its TCP threads ~0.8 ms of CPU per call and rank at 4 workers on 2 cores (~0.15 of 2.6 CPU-s an epoch,
200k ``sbm``, [10, 5]). A rank waiting there checks every ``LIVENESS_S`` that its peers' processes are alive,
so a peer that dies fails the call within that time (as gloo's "Connection reset by peer" did), and gives up
after the group's timeout. Without the native library (or off Linux) the barrier is the gloo all-reduce.

No library fits: gloo has no shared-memory transport, torch.distributed has no CPU shared-memory backend,
and the ones that do (oneCCL, DeepSpeed's CPU ``shm`` all-reduce) are heavy dependencies for a copy and a sum.

Two buffers alternate between calls, so a rank that has passed call ``k``'s barrier writes call ``k + 1``'s
buffer while slower ranks still read call ``k``'s; it cannot reach call ``k + 2`` (the first buffer again)
before every rank has entered call ``k + 1``'s barrier, i.e. finished reading call ``k``.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor

from gnndist.aggregation.native_kernel import NativeLibrary, native_library

SHM_DIR = Path("/dev/shm")
ALIGN = 64
TOKEN_BYTES = 16  # the creator's random token, checked by every rank: the same file, not a namesake on another machine
BARRIER_OFFSET = 64  # two int32: the barrier's arrival count and generation, on their own cache line
PIDS_OFFSET = 128  # one int32 per rank: its process id, for the liveness checks of a waiting rank
LIVENESS_S = 0.1  # a rank waiting at the barrier checks this often that its peers are alive
FAILURE = "Shared-memory all-reduce failed"  # marks a peer's failure (gnndist.runtime.failures recognises it)
MIN_SLOT_BYTES = 1 << 20  # a step's gradient of most models fits the first buffer (GraphSAGE 128-256-16: 0.3 MB)
MAX_SLOT_BYTES = 64 << 20  # bounds the buffer (2 P slots in /dev/shm); larger tensors, where gloo's per-call cost weighs least, keep its ring


class SharedReduce:
    """A same-machine sum over a gloo group's ranks through a shared buffer (see the module docstring).

    Built by :meth:`open` (collective); ``None`` from it means some rank cannot map rank 0's buffer (another
    machine, no ``/dev/shm``), and the caller keeps gloo's all-reduce.
    """

    def __init__(self, group: object | None, buffer: Tensor, slot_bytes: int, barrier: NativeLibrary | None, pids: list[int], timeout_s: float):
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.slot_bytes = slot_bytes
        self.slots = buffer[header_bytes(self.world_size) :].view(2, self.world_size, slot_bytes)
        self.words = buffer[BARRIER_OFFSET : BARRIER_OFFSET + 8].view(torch.int32)
        self.barrier, self.pids, self.timeout_s = barrier, pids, timeout_s
        self.calls = 0
        self._flag = torch.zeros(1, dtype=torch.int32)

    @classmethod
    def open(cls, group: object | None, nbytes: int, directory: Path = SHM_DIR) -> "SharedReduce | None":
        """Maps a buffer of two slots of at least ``nbytes`` per rank; collective over ``group``, like a collective call.

        Rank 0 creates the file (``O_EXCL``, mode 0600, its pages reserved, at most half the free space of
        ``directory``) and writes a random token into its header; after a barrier every rank maps it, checks
        the token and writes its process id; the ranks agree (all-reduce of the checks, and of whether each
        sees every peer's process, which the shared barrier's liveness checks need) and rank 0 unlinks the
        file: the mappings keep the memory until every process drops it, and nothing is left in ``directory``
        even if a worker is killed later.
        """
        rank, world_size = dist.get_rank(group), dist.get_world_size(group)
        first = 0 if group is None else dist.get_global_rank(group, 0)  # broadcasts name their source by global rank
        slot_bytes = -(-max(nbytes, MIN_SLOT_BYTES) // ALIGN) * ALIGN
        total = header_bytes(world_size) + 2 * world_size * slot_bytes
        name = torch.zeros(2, dtype=torch.int64)
        if rank == 0:
            name[0], name[1] = secrets.randbits(63), secrets.randbits(63)
        dist.broadcast(name, src=first, group=group)
        token = name.numpy().tobytes()
        path = directory / f"gnndist-reduce-{token.hex()}"
        buffer = None
        if rank == 0:
            try:
                free = os.statvfs(directory)
                if total > free.f_bavail * free.f_frsize // 2:  # a full tmpfs would kill a writer with SIGBUS
                    raise OSError(f"{directory} has {free.f_bavail * free.f_frsize} bytes free, {total} asked")
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    if hasattr(os, "posix_fallocate"):  # pages reserved now: a tmpfs filled later cannot fail a write (SIGBUS)
                        os.posix_fallocate(fd, 0, total)
                    else:
                        os.ftruncate(fd, total)
                    os.pwrite(fd, token, 0)
                finally:
                    os.close(fd)
            except OSError:
                path = None
        created = torch.tensor([int(path is not None)], dtype=torch.int32)
        dist.broadcast(created, src=first, group=group)  # the file exists (or never will) before anyone looks
        try:
            if created.item() and path.is_file() and path.stat().st_size == total:  # a missing file is not created here
                mapped = torch.from_file(str(path), shared=True, size=total, dtype=torch.uint8)
                if mapped[:TOKEN_BYTES].numpy().tobytes() == token:
                    buffer = mapped
                    _pids(buffer, world_size)[rank] = os.getpid()
        except (OSError, RuntimeError):
            buffer = None
        agreed = torch.tensor([int(buffer is not None)], dtype=torch.int32)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN, group=group)  # also a barrier: every pid is written
        if rank == 0 and path is not None:
            path.unlink(missing_ok=True)
        if not agreed.item():
            return None
        pids = _pids(buffer, world_size).tolist()
        barrier = _native_barrier()
        sees_peers = torch.tensor([int(barrier is not None and all(_alive(pid) for pid in pids))], dtype=torch.int32)
        dist.all_reduce(sees_peers, op=dist.ReduceOp.MIN, group=group)  # another pid namespace: gloo's barrier
        return cls(group, buffer, slot_bytes, barrier if sees_peers.item() else None, pids, _group_timeout_s(group))

    def fits(self, tensor: Tensor) -> bool:
        return tensor.numel() * tensor.element_size() <= self.slot_bytes

    def all_reduce_sum(self, tensor: Tensor) -> Tensor:
        """Sums a contiguous CPU ``tensor`` (that :meth:`fits`) over the ranks, in place; every rank gets the same bits."""
        nbytes = tensor.numel() * tensor.element_size()
        flat = tensor.view(-1)
        slots = self.slots[self.calls % 2, :, :nbytes]
        self.calls += 1
        slots[self.rank].view(tensor.dtype).copy_(flat)
        self._wait_for_all()  # every rank's slot is written
        flat.copy_(slots[0].view(tensor.dtype))
        for rank in range(1, self.world_size):
            flat.add_(slots[rank].view(tensor.dtype))
        return tensor

    def _wait_for_all(self) -> None:
        """The barrier: the shared one (checking peers every ``LIVENESS_S``, up to the group's timeout), or gloo's."""
        if self.barrier is None:
            dist.all_reduce(self._flag, group=self.group)
            return
        generation = self.barrier.barrier_arrive(self.words, self.world_size)
        if generation < 0:
            return
        deadline = time.monotonic() + self.timeout_s
        while not self.barrier.barrier_wait(self.words, generation, LIVENESS_S):
            for rank, pid in enumerate(self.pids):
                if rank != self.rank and not _alive(pid):
                    raise RuntimeError(f"{FAILURE}: rank {rank} (process {pid}) exited while rank {self.rank} waited for it")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{FAILURE}: Timed out waiting {self.timeout_s:g} s for every rank to arrive (rank {self.rank})")


def header_bytes(world_size: int) -> int:
    """Bytes before the slots: token, barrier words, one process id per rank (rounded up to ``ALIGN``)."""
    return -(-(PIDS_OFFSET + 4 * world_size) // ALIGN) * ALIGN


def _pids(buffer: Tensor, world_size: int) -> Tensor:
    """The header's ``[world_size]`` int32 process ids, one per rank (a view of the shared buffer)."""
    return buffer[PIDS_OFFSET : PIDS_OFFSET + 4 * world_size].view(torch.int32)


def _native_barrier() -> NativeLibrary | None:
    """gnndist's native library where it is built and has the futex barrier (Linux), else None (gloo's barrier)."""
    library = native_library()
    return library if library is not None and library.has_barrier else None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` is visible here and not a zombie (a dead worker its parent has not reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _group_timeout_s(group: object | None) -> float:
    """The gloo group's timeout (what its own barrier would wait), or torch's default where torch does not say."""
    try:
        group = group if group is not None else dist.distributed_c10d._get_default_group()
        return group._get_backend(torch.device("cpu")).options._timeout.total_seconds()
    except (AttributeError, RuntimeError):
        return dist.default_pg_timeout.total_seconds()


def reducible(tensor: Tensor) -> bool:
    """Whether :class:`SharedReduce` can sum ``tensor``: a CPU tensor of numbers, at most ``MAX_SLOT_BYTES``."""
    return (tensor.device.type == "cpu" and tensor.dtype != torch.bool and not tensor.is_complex()
            and tensor.numel() * tensor.element_size() <= MAX_SLOT_BYTES)
