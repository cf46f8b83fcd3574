"""The one timing helper of the benchmarks: seconds per call (CUDA events on GPU) and their summary.

Every benchmark times kernels and layers through :func:`time_call` and whole training epochs through
:func:`run_timed`, so warm-up, CUDA synchronisation and the statistics reported are the same
everywhere. This module imports only the standard library and torch: the peer children, started by
file path where gnndist is not installed, import it from beside them.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


def time_call(fn: Callable[[], Any], device: str | torch.device = "cpu", repeats: int = 1, warmup: int = 1) -> list[float]:
    """Seconds per call of ``fn`` over ``repeats`` runs after ``warmup`` untimed runs.

    On CUDA every run is bracketed by CUDA events (the GPU's time, not the launch's); on CPU by
    ``time.perf_counter``.
    """
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return times
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def run_timed(fn: Callable[[], Any], device: str | torch.device = "cpu") -> tuple[Any, float, float]:
    """Runs ``fn`` once; returns its result, its wall seconds and this process's CPU seconds.

    On CUDA the device is synchronised before each clock read, so the wall time covers the GPU work
    ``fn`` queued, not just its launch (a training epoch, whose kernels run after the host returns).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start, time.process_time() - start_cpu


def median_seconds(fn: Callable[[], Any], repeats: int = 3, device: str | torch.device = "cpu", warmup: int = 0) -> float:
    """Median of :func:`time_call`."""
    return statistics.median(time_call(fn, device, repeats, warmup))


@dataclass(frozen=True)
class TimingStats:
    """Seconds per call over the timed runs: median, quartiles (inclusive method), minimum, run count."""

    median: float
    p25: float
    p75: float
    minimum: float
    runs: int

    @classmethod
    def of(cls, times: Sequence[float]) -> "TimingStats":
        if not times:
            raise ValueError("Expected at least one timed run (got none)")
        ordered = sorted(times)
        quartiles = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 3
        return cls(statistics.median(ordered), quartiles[0], quartiles[2], ordered[0], len(ordered))
