"""Liveness and failure classes on a real worker group (real Ray actors, real gloo): a long call is not a
hang, an exception stops the job at once with the rank, the call and the message, and the first real
cause wins over the collective failures it causes in peers."""
import os
import signal
import time

import pytest
import torch

from gnndist.runtime import WorkerGroup
from gnndist.runtime.failures import WorkerError, WorkerFailure
from gnndist.runtime.liveness import wait_for_all


class Collective:
    """A hosted object whose ranks compute (sleep) or raise, then meet in an all-reduce."""

    def __init__(self, context):
        self.rank = context.rank

    def step(self, seconds: dict, raises: dict | None = None) -> float:
        time.sleep(seconds.get(self.rank, 0.0))
        if raises and self.rank in raises:
            kind, message = raises[self.rank]
            raise {"IndexError": IndexError, "ValueError": ValueError, "RuntimeError": RuntimeError}[kind](message)
        import torch.distributed as dist

        value = torch.ones(1)
        dist.all_reduce(value)
        return float(value)

    def pid(self) -> int:
        return os.getpid()

    def malloc_env(self) -> dict:
        return {key: value for key, value in os.environ.items() if key.startswith("MALLOC_")}

    def niceness(self) -> int:
        return os.getpriority(os.PRIO_PROCESS, 0)  # this thread's: the one Ray runs the actor's calls on


def start_group(timeout_s: float, **kwargs) -> WorkerGroup:
    group = WorkerGroup(2, cpus_per_worker=1, timeout_s=timeout_s, num_threads=1, **kwargs)
    group.init_process_group()
    group.setup(Collective)
    return group


@pytest.fixture
def group(ray_session):
    group = start_group(timeout_s=2)
    yield group
    group.shutdown()


def test_a_call_longer_than_the_timeout_is_not_a_hang(group):
    """Rank 1 computes three times the liveness timeout while rank 0 waits in the all-reduce: both finish."""
    start = time.perf_counter()
    assert group.run("step", {1: 6.0}) == [2.0, 2.0]
    assert time.perf_counter() - start >= 6.0
    assert group.collective_timeout_s >= 1800  # the collective waits for the slow rank, not cluster.timeout_s


def test_an_exception_stops_at_once_with_rank_call_and_message(ray_session):
    group = start_group(timeout_s=30)
    try:
        start = time.perf_counter()
        with pytest.raises(WorkerError) as info:
            group.run("step", {}, {1: ("IndexError", "Target -1 is out of bounds.")})
        elapsed = time.perf_counter() - start
    finally:
        group.shutdown()
    error = info.value
    assert str(error) == "worker rank 1 raised IndexError during 'step': Target -1 is out of bounds."
    assert (error.rank, error.method, error.error_type) == (1, "step", "IndexError")
    assert "ray::Worker.call()" in error.traceback and ", in step" in error.traceback and "\x1b" not in error.traceback
    assert any(note.startswith("traceback of rank 1:") and "IndexError: Target -1" in note for note in error.__notes__)
    assert elapsed < 10, f"took {elapsed:.1f} s: the peer's collective was waited for"  # not the 30 s liveness bound, no retry


def test_the_first_cause_wins_over_the_collective_timeouts_it_causes(ray_session):
    """Rank 0's collective times out (2 s) before rank 1 raises its real error (3 s): rank 1's error is shown."""
    group = start_group(timeout_s=30, collective_timeout_s=2)
    try:
        with pytest.raises(WorkerError) as info:
            group.run("step", {1: 3.0}, {1: ("ValueError", "Checksum mismatch for /data/part-00001/part.safetensors")})
    finally:
        group.shutdown()
    error = info.value
    assert str(error) == "worker rank 1 raised ValueError during 'step': Checksum mismatch for /data/part-00001/part.safetensors"
    [consequence] = error.consequences
    assert consequence.rank == 0 and "Timed out waiting" in consequence.message  # kept for the log, not shown as the cause
    assert any(note.startswith("consequence on rank 0: RuntimeError") for note in error.__notes__)


def test_a_silent_worker_is_hung_after_the_timeout(group):
    pid = group.run_one(1, "pid")
    refs = group.run_async("step", {0: 30.0, 1: 30.0})
    os.kill(pid, signal.SIGSTOP)
    start = time.perf_counter()
    try:
        with pytest.raises(WorkerFailure) as info:
            group.get(refs, method="step")
    finally:
        os.kill(pid, signal.SIGKILL)
    elapsed = time.perf_counter() - start
    assert (info.value.kind, info.value.ranks) == ("hung", [1]) and "within 2 s (cluster.timeout_s)" in info.value.cause
    assert elapsed < 2 + 3


def test_collective_failures_alone_are_a_lost_connection_or_a_rank_that_stayed_away(group):
    reset = ("RuntimeError", "[third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")
    with pytest.raises(WorkerFailure) as info:
        group.run("step", {}, {0: reset, 1: reset})
    assert (info.value.kind, info.value.ranks) == ("lost", [0, 1]) and "Connection reset by peer" in info.value.cause
    refs = group.run_async("step", {1: 8.0}, {0: reset})
    start = time.perf_counter()
    with pytest.raises(WorkerFailure) as info:
        wait_for_all(refs, group.workers, silence_s=2, method="step", consequence_grace_s=1)
    assert (info.value.kind, info.value.ranks) == ("hung", [1]) and "stayed away from a collective that failed on rank 0" in info.value.cause
    assert time.perf_counter() - start < 6


@pytest.mark.parametrize("release_memory", [False, True])
def test_workers_start_with_the_heap_settings_and_priority_asked_for(ray_session, release_memory):
    """glibc reads its malloc settings when a process starts: each worker process must have been started
    with them (they are not the driver's). Ray renices the thread running an actor's calls to 15 unless the
    process starts with another niceness: workers train at ACTOR_NICENESS."""
    from gnndist.memory import worker_malloc_env
    from gnndist.runtime.process import ACTOR_NICENESS

    group = WorkerGroup(2, cpus_per_worker=1, timeout_s=30, num_threads=1, release_memory=release_memory)
    try:
        group.setup(Collective)
        assert group.run("malloc_env") == [worker_malloc_env(release_memory)] * 2
        assert group.run("niceness") == [ACTOR_NICENESS] * 2
    finally:
        group.shutdown()
    assert worker_malloc_env(True) == {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    assert worker_malloc_env(False)["MALLOC_ARENA_MAX"] == "1"
