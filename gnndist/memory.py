"""Process memory: current and peak resident memory, the peak of a block of code (CPU or CUDA), freed
memory handed back to the system in processes that hold a part, and shared pages read in place unmapped again.

The one place gnndist measures memory (partitioner cost, benchmark rows, benchmark workers). On
Linux the kernel keeps the process's high-water mark (``VmHWM``), which sees every allocation
(numpy, torch, C++ libraries) and can be reset through ``/proc/self/clear_refs``; elsewhere a thread
samples the resident size. On CUDA the allocator's own peak statistics are exact.
"""
from __future__ import annotations

import ctypes
import functools
import mmap
import resource
import threading
from typing import Any, Sequence

import numpy as np
import psutil
import torch

SAMPLE_INTERVAL_S = 0.005
RETURN_FREED_ABOVE_BYTES = 1 << 20
KEEP_FREED_BELOW_BYTES = 256 << 20
MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)  # Linux/BSD madvise advice; None elsewhere


def _proc(pid: int | None, name: str) -> str:
    return f"/proc/{'self' if pid is None else pid}/{name}"


def _status_kib(field: str, pid: int | None = None) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (None where there is no /proc)."""
    try:
        with open(_proc(pid, "status")) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def resident_bytes(pid: int | None = None) -> int:
    """Current resident memory of this process (or of process ``pid``) in bytes."""
    return psutil.Process(pid).memory_info().rss


_child_peak = 0  # the largest peak of a child that worked for this process since the last reset (record_child_peak)


def record_child_peak(peak_bytes: int) -> None:
    """Counts a child process's peak resident memory as this process's own (a forked child that ran part of
    this process's work, e.g. METIS: :mod:`gnndist.partitioners.forked`), until the next :func:`reset_peak_resident`."""
    global _child_peak
    _child_peak = max(_child_peak, peak_bytes)


def peak_resident_bytes(pid: int | None = None) -> int:
    """Peak resident memory of this process (or of ``pid``, e.g. a benchmark's child process) since it
    started or since its last :func:`reset_peak_resident`; this process's includes :func:`record_child_peak`'s."""
    kib = _status_kib("VmHWM", pid)
    if kib is not None:
        return max(kib * 1024, _child_peak if pid is None else 0)
    if pid is None:
        return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, _child_peak)  # KiB on Linux
    return resident_bytes(pid)  # no high-water mark to read: the current size is the best bound we have


def reset_peak_resident() -> bool:
    """Restarts this process's peak at its current resident memory (Linux ``clear_refs``); False where unsupported."""
    global _child_peak
    _child_peak = 0
    if _status_kib("VmHWM") is None:
        return False
    try:
        with open(_proc(None, "clear_refs"), "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def worker_malloc_env(release: bool) -> dict[str, str]:
    """glibc's malloc settings for a worker process, as the environment variables it reads when the process
    starts (a worker actor's ``runtime_env``): how a worker's heap treats the large tensors every step
    allocates and frees (sampled batches' feature rows, activations, gradients).

    ``release`` (store actors always; workers when ``cluster.release_memory`` asks): every block of 1 MiB or
    more gets its own mapping, unmapped when freed, so a part-sized tensor (activations, gradients, index
    arrays, a store's answers) does not stay resident once freed: the lowest RSS, and every fresh tensor faults
    its pages in. Measured on a 300k-node ``sbm`` (4 parts, GraphSAGE): a full-graph worker's peak fell from
    967 to 839 MiB and the heap kept 250 MiB less between steps; a GraphSAGE step on a 100k-node ``sbm`` (1
    thread) took 1.5-1.7x the CPU seconds (0.49-0.52 s against 0.28-0.35 s).
    Otherwise the heap keeps them: one arena for every thread and blocks below 256 MiB from that heap, which
    keeps up to 256 MiB free before it shrinks. glibc's own defaults fault too: each thread's arena grows in
    64 MiB heaps that are unmapped when they empty, and blocks above its (moving) mmap threshold are unmapped
    on free, so a prefetch thread that allocates a batch the training thread frees faulted every batch's
    pages in again. Measured on a 200k-node ``sbm`` (GraphSAGE [10, 5], batch 1024, 1 thread): the prefetch
    thread's gather took 0.17-0.19 CPU-s per epoch instead of 0.35-0.40 with one worker, 0.23-0.26 instead of
    0.33-0.35 per worker with two. With one arena, threads share its lock: workers run a few threads.
    """
    if release:
        return {"MALLOC_MMAP_THRESHOLD_": str(RETURN_FREED_ABOVE_BYTES)}
    return {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(KEEP_FREED_BELOW_BYTES), "MALLOC_TRIM_THRESHOLD_": str(KEEP_FREED_BELOW_BYTES)}


def shared_resident_bytes() -> int | None:
    """Resident shared-memory pages mapped by this process (``RssShmem``: tmpfs, Ray's object store) in bytes;
    None where the kernel does not say."""
    kib = _status_kib("RssShmem")
    return None if kib is None else kib * 1024


def _shared_mappings() -> list[tuple[int, int]]:
    """``(start, end)`` of this process's shared (``MAP_SHARED``) mappings, from ``/proc/self/maps``."""
    try:
        with open(_proc(None, "maps")) as maps:
            lines = maps.readlines()
    except OSError:
        return []
    spans = []
    for line in lines:
        fields = line.split(maxsplit=2)
        if len(fields) >= 2 and fields[1][3:4] == "s":
            start, end = fields[0].split("-")
            spans.append((int(start, 16), int(end, 16)))
    return spans


@functools.cache
def _madvise() -> Any:
    """The C library's ``madvise`` (None where there is none)."""
    madvise = getattr(ctypes.CDLL(None, use_errno=True), "madvise", None)  # the symbols this process has loaded
    if madvise is not None:
        madvise.argtypes, madvise.restype = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int], ctypes.c_int
    return madvise


class SharedPages:
    """Keeps at most ``budget_bytes`` of the shared-memory pages under ``arrays`` mapped in this process.

    A worker that reads other parts' feature rows in place from the node's shared object store maps every page
    it reads, and its RSS then counts pages that are the store's: over an epoch, most of every other part's rows
    (measured on a 2M-node ``sbm``, P=4: 0.74 GiB of a mini-batch worker's 2.61 GiB peak). :meth:`check`, called
    after reads, unmaps them all (``madvise(MADV_DONTNEED)``) once this process's ``RssShmem`` has grown by more
    than ``budget_bytes`` since the last release. On a shared mapping that only drops this process's page-table
    entries: the data stays in the shared memory, and the next read of a page maps it again (a minor fault: rows
    read at random fault once each, which made that run's epoch 1.3x longer at a 256 MiB budget). Private memory would lose its contents, so only arrays that lie wholly in ``MAP_SHARED``
    mappings are ever released; the others (and every array where there is no ``/proc`` or ``madvise``) are left
    alone. No library offers this for an arbitrary numpy buffer, hence ``ctypes``.

    Args:
        arrays: the buffers read in place.
        budget_bytes: growth of ``RssShmem`` allowed between releases (0: release after every read; ``inf``: never).

    Attributes:
        releasable: how many of ``arrays`` can be released.
        releases: releases so far.
    """

    def __init__(self, arrays: Sequence[np.ndarray], budget_bytes: float) -> None:
        self.budget_bytes = budget_bytes
        self.releases = 0
        self._baseline = shared_resident_bytes()
        self._ranges = _shared_ranges(arrays) if budget_bytes != float("inf") and self._baseline is not None else []

    @property
    def releasable(self) -> int:
        return len(self._ranges)

    def check(self) -> bool:
        """Releases every array's pages when ``RssShmem`` grew past the budget; True when it did."""
        if not self._ranges:
            return False
        if shared_resident_bytes() - self._baseline <= self.budget_bytes:
            return False
        self.release()
        return True

    def release(self) -> None:
        """Unmaps every releasable array's pages now."""
        _unmap(self._ranges)
        self._baseline = shared_resident_bytes()
        self.releases += 1


def unmap_shared(arrays: Sequence[np.ndarray]) -> int:
    """Unmaps the pages of those of ``arrays`` that lie in shared memory from this process (see
    :class:`SharedPages`), e.g. answers received from Ray's object store once they are copied; returns how many."""
    ranges = _shared_ranges(arrays)
    _unmap(ranges)
    return len(ranges)


def _shared_ranges(arrays: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """``(start, length)`` of the pages under each of ``arrays`` that lies wholly in ``MAP_SHARED`` mappings; none
    where there is no ``madvise`` or ``/proc``."""
    if MADV_DONTNEED is None or _madvise() is None:
        return []
    spans, page, ranges = _shared_mappings(), mmap.PAGESIZE, []
    for array in arrays:
        start = array.ctypes.data // page * page
        end = -(-(array.ctypes.data + array.nbytes) // page) * page
        if array.nbytes and _covered(start, end, spans):
            ranges.append((start, end - start))
    return ranges


def _unmap(ranges: list[tuple[int, int]]) -> None:
    for start, length in ranges:
        if _madvise()(start, length, MADV_DONTNEED) != 0:
            raise OSError(ctypes.get_errno(), f"madvise(MADV_DONTNEED) failed on {length} bytes of shared memory at {start:#x}")


def _covered(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    """Whether ``[start, end)`` lies wholly inside the (sorted, possibly adjacent) ``spans``."""
    for span_start, span_end in spans:
        if span_start <= start < span_end:
            start = span_end
            if start >= end:
                return True
    return False


def minor_faults(pid: int | None = None) -> int:
    """Minor page faults of this process (or of ``pid``) so far: first touches of fresh memory show up here."""
    try:
        with open(_proc(pid, "stat")) as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[7])  # field 10, after the command name
    except OSError:
        if pid is None:
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        return 0


def reset_peak_cuda(device: str | torch.device) -> int:
    """Restarts the CUDA caching allocator's peak of ``device`` at what is allocated now; returns that (bytes)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device)


def peak_cuda_bytes(device: str | torch.device) -> int:
    """Peak bytes of tensors on CUDA ``device`` (the caching allocator's exact count) since this process
    first used it or since its last :func:`reset_peak_cuda`."""
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


class PeakMemory:
    """Context manager: the peak memory inside the block, of this process (CPU) or of a CUDA device.

    CPU: resets the kernel's high-water mark and reads ``VmHWM`` at the end; where that is not
    possible a thread samples the resident size every 5 ms (and may miss short spikes). CUDA: the
    caching allocator's ``max_memory_allocated`` (tensors only, exact). Not re-entrant: do not nest.

    Args:
        device: "cpu" (default) or a CUDA device.

    Attributes:
        start_bytes, peak_bytes: memory at entry and its maximum inside the block.
        increase_bytes: ``peak_bytes - start_bytes`` (never negative).
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.start_bytes = self.peak_bytes = 0
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def increase_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            self.start_bytes = self.peak_bytes = reset_peak_cuda(self.device)
            return self
        self.start_bytes = self.peak_bytes = resident_bytes()
        if reset_peak_resident():
            return self
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = max(self.start_bytes, peak_cuda_bytes(self.device))
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.peak_bytes = max(self.peak_bytes, resident_bytes(), _child_peak)
        else:
            self.peak_bytes = max(self.start_bytes, peak_resident_bytes())

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self.peak_bytes = max(self.peak_bytes, resident_bytes())
