"""gnndist.memory: the peak of a block sees a freed allocation, restarts per block, and reads other processes."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from gnndist import memory
from gnndist.memory import PeakMemory, minor_faults, peak_resident_bytes, resident_bytes

MiB = 2**20


def allocate_and_free(mib: int) -> None:
    block = torch.ones(mib * MiB // 4)  # touched: resident, not just reserved
    del block


def test_peak_of_a_block_sees_a_freed_allocation_and_restarts_per_block():
    with PeakMemory() as first:
        allocate_and_free(200)
    assert first.increase_bytes >= 180 * MiB
    assert first.peak_bytes >= resident_bytes() + 150 * MiB  # freed by now, still counted as the peak
    with PeakMemory() as second:
        pass
    assert second.increase_bytes < 50 * MiB  # the high-water mark was reset at entry


def test_sampling_fallback_where_the_peak_cannot_be_reset(monkeypatch):
    monkeypatch.setattr(memory, "reset_peak_resident", lambda: False)
    with PeakMemory() as peak:
        block = torch.ones(100 * MiB // 4)
        time.sleep(0.05)  # the sampler's interval is 5 ms
        del block
    assert peak.increase_bytes >= 80 * MiB


def test_peak_and_faults_of_another_process():
    code = "import sys; b = bytearray(150 * 2**20); del b; print('ready', flush=True); sys.stdin.readline()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert peak_resident_bytes(child.pid) >= 150 * MiB > resident_bytes(child.pid)
        assert minor_faults(child.pid) > (150 * MiB // 4096) // 2  # zeroing the bytearray touched its pages
    finally:
        child.communicate("\n", timeout=60)


def test_minor_faults_count_first_touches():
    before = minor_faults()
    allocate_and_free(64)
    assert minor_faults() - before > (64 * MiB // 4096) // 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_uses_the_allocator():
    with PeakMemory("cuda") as peak:
        block = torch.ones(64 * MiB // 4, device="cuda")
        del block
    assert 64 * MiB <= peak.increase_bytes < 80 * MiB
