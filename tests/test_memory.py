"""gnndist.memory: the peak of a block sees a freed allocation, restarts per block, and reads other processes;
shared pages read in place are unmapped past a budget without losing their data, private memory never."""
from __future__ import annotations

import mmap
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from gnndist import memory
from gnndist.memory import PeakMemory, SharedPages, minor_faults, peak_resident_bytes, resident_bytes, shared_resident_bytes, worker_malloc_env

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


KEPT_AFTER_FREEING = """
import torch
from gnndist.memory import resident_bytes
large = torch.ones(16 << 18)
del large  # a 16 MiB block freed: glibc's defaults now serve blocks up to 16 MiB from the heap
start = resident_bytes()
blocks = [torch.ones(1 << 20) for _ in range(50)]  # 50 x 4 MiB, touched
del blocks[::2]  # holes between live blocks: the heap cannot shrink past them
print((resident_bytes() - start) >> 20)
"""


def kept_mib(env: dict[str, str]) -> int:
    return int(subprocess.run([sys.executable, "-c", KEPT_AFTER_FREEING], env={**os.environ, **env}, check=True, capture_output=True, text=True).stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_freed_blocks_go_back_to_the_system_in_release_mode_only():
    """A part-sized block freed in a store (or a release-mode worker) is unmapped; the workers' default heap keeps it."""
    assert kept_mib({}) >= 180  # glibc's defaults: 25 live blocks and the 25 freed ones the heap keeps
    assert kept_mib(worker_malloc_env(release=False)) >= 180  # the workers' kept heap, likewise
    assert 80 <= kept_mib(worker_malloc_env(release=True)) <= 120  # the 25 live blocks only


@pytest.mark.skipif(shared_resident_bytes() is None or memory.MADV_DONTNEED is None, reason="needs /proc/self/status RssShmem and madvise")
def test_shared_pages_past_the_budget_are_unmapped_and_keep_their_data():
    shared = mmap.mmap(-1, 64 * MiB)  # anonymous MAP_SHARED: shmem pages, like Ray's object store
    rows = np.frombuffer(shared, dtype=np.float32).reshape(-1, 128)
    private = np.arange(rows.size, dtype=np.float32).reshape(rows.shape)
    lazy, eager = SharedPages([rows], 16 * MiB), SharedPages([rows, private], 0)  # budgets count from here
    rows[:] = private
    assert lazy.releasable == 1 and eager.releasable == 1  # the private array is never released
    assert SharedPages([rows], float("inf")).releasable == 0
    touched = shared_resident_bytes()
    assert lazy.check() and lazy.releases == 1
    assert shared_resident_bytes() <= touched - 60 * MiB  # unmapped from this process
    assert np.array_equal(rows, private)  # still there: read back from the shared memory
    assert lazy.check() and lazy.releases == 2  # that read mapped 64 MiB again: past the budget
    assert float(rows[:100].sum()) == float(private[:100].sum())
    assert not lazy.check()  # 50 KiB: within it
    assert eager.check()  # a budget of 0 releases after any read
    del rows
    shared.close()
