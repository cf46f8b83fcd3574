"""METIS in a forked child: the same partition whatever other threads of the process do, errors and memory reported."""
from __future__ import annotations

import ctypes
import threading

import numpy as np
import pytest
import torch

from gnndist.data import load_dataset
from gnndist.memory import PeakMemory, resident_bytes
from gnndist.partitioners import resolve_partitioner
from gnndist.partitioners.forked import call_forked, shared_empty


def test_metis_ignores_other_threads_calling_rand():
    """METIS draws from the C library's rand(): a thread calling it meanwhile changed the partition before METIS ran in a child."""
    graph = load_dataset("sbm", num_nodes=20000, num_classes=8, avg_degree=10, homophily=0.7, feature_dim=4, seed=0)
    metis = resolve_partitioner("metis")
    alone = metis.partition(graph, 4, seed=0).node_part
    libc, stop = ctypes.CDLL(None), threading.Event()

    def spin() -> None:
        while not stop.is_set():
            libc.rand()

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        busy = [metis.partition(graph, 4, seed=0).node_part for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    assert all(torch.equal(alone, other) for other in busy)


def test_child_result_error_and_peak():
    out = shared_empty(1000, np.int32)

    big = resident_bytes() + (256 << 20)  # more than this process holds

    def fill() -> int:
        out[:] = np.arange(1000)
        np.ones(big, np.uint8).sum()  # touched in the child only
        return 7

    with PeakMemory() as memory:
        assert call_forked(fill) == 7
    assert np.array_equal(out, np.arange(1000))
    assert resident_bytes() < big <= memory.peak_bytes, "the child's peak counts as this process's"

    def fail() -> int:
        raise ValueError("bad vertex weights")

    with pytest.raises(RuntimeError, match="ValueError: bad vertex weights"):
        call_forked(fail)
