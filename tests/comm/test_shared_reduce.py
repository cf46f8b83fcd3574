"""The same-machine all-reduce through shared memory, on real Ray workers in a real gloo group: exact sums in
rank order, the same bits on every rank, buffers that grow and alternate under skew, nothing left in
/dev/shm, and gloo's own all-reduce when a rank cannot map the buffer; the futex barrier across processes, and
a dead peer failing the waiting ranks within a liveness check."""
import hashlib
import os
import random
import tempfile
import time
from pathlib import Path

import pytest
import torch

from gnndist.comm import Communicator
from gnndist.comm.shared_reduce import FAILURE, LIVENESS_S, MIN_SLOT_BYTES, SHM_DIR, SharedReduce, _native_barrier
from gnndist.testing import joined_group

WORLD = 3
# (dtype, numel) per call: small, a second dtype, integers, then one that outgrows the first buffer
CALLS = [(torch.float32, 1000), (torch.float64, 77), (torch.int64, 5), (torch.float32, MIN_SLOT_BYTES // 4 + 1000), (torch.float32, 3)]


def value(rank: int, call: int, dtype: torch.dtype, numel: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1000 * call + rank)
    if dtype.is_floating_point:
        return torch.randn(numel, generator=generator, dtype=dtype)
    return torch.randint(-1000, 1000, (numel,), generator=generator, dtype=dtype)


class Reducer:
    """A hosted communicator: sums seeded tensors, sleeping at random first so ranks drift apart."""

    def __init__(self, context):
        self.rank = context.rank
        self.comm = Communicator()
        self.random = random.Random(self.rank)

    def sums(self, rounds: int) -> list[tuple[str, bool]]:
        out = []
        for call in range(rounds * len(CALLS)):
            dtype, numel = CALLS[call % len(CALLS)]
            time.sleep(self.random.random() * 0.004 if self.rank == 1 else 0.0)
            tensor = value(self.rank, call, dtype, numel)
            self.comm.all_reduce_sum(tensor)
            expected = value(0, call, dtype, numel).clone()
            for rank in range(1, WORLD):
                expected += value(rank, call, dtype, numel)
            out.append((hashlib.sha256(tensor.numpy().tobytes()).hexdigest(), torch.equal(tensor, expected)))
        return out

    def shared(self) -> dict:
        shared = self.comm._shared
        return {"open": shared is not None, "slot_bytes": shared.slot_bytes if shared else 0, "failed": self.comm._shared_failed, "futex": bool(shared and shared.barrier)}

    def open_in(self, directories: dict[int, str]) -> bool:
        """Opens a reducer with each rank looking in its own directory: a rank that sees no file refuses for all."""
        return SharedReduce.open(None, 64, Path(directories[self.rank])) is not None

    def subgroup_sum(self) -> tuple[bool, bool]:
        """Ranks 1 and 2 sum in their own group (its first rank is global rank 1): through shared memory too."""
        import torch.distributed as dist

        group = dist.new_group([1, 2])  # every rank takes part in creating it
        if self.rank == 0:
            return True, True
        comm = Communicator(group=group)
        tensor = torch.full((10,), float(self.rank))
        comm.all_reduce_sum(tensor)
        return torch.equal(tensor, torch.full((10,), 3.0)), comm._shared is not None

    def non_contiguous(self) -> bool:
        tensor = torch.arange(12.0).view(3, 4).t() * (self.rank + 1)  # a transposed view
        self.comm.all_reduce_sum(tensor)
        return torch.equal(tensor, torch.arange(12.0).view(3, 4).t() * sum(range(1, WORLD + 1)))


@pytest.fixture(scope="module")
def group(ray_session):
    with joined_group(WORLD, num_threads=1) as group:
        group.setup(Reducer)
        yield group


def shm_files() -> set[str]:
    return {path.name for path in SHM_DIR.glob("gnndist-reduce-*")}


@pytest.mark.skipif(not SHM_DIR.is_dir(), reason="no /dev/shm")
def test_sums_are_exact_in_rank_order_and_the_same_bits_everywhere(group):
    before = shm_files()
    results = group.run("sums", 4)
    assert all(ok for rank in results for _, ok in rank), "a sum differs from the rank-order sum"
    assert results[0] == results[1] == results[2], "ranks hold different bits"
    states = group.run("shared")
    assert all(state["open"] and not state["failed"] for state in states)
    assert all(state["futex"] == (_native_barrier() is not None) for state in states), "the ranks did not meet at the shared barrier"
    assert {state["slot_bytes"] for state in states} == {-(-(CALLS[3][1] * 4) // 64) * 64}  # grew once, for the large call
    assert shm_files() <= before, "a reducer's file was left in /dev/shm"
    assert group.run("non_contiguous") == [True] * WORLD
    assert group.run("subgroup_sum") == [(True, True)] * WORLD


def test_a_rank_that_cannot_see_the_buffer_makes_every_rank_keep_gloo(group):
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as other:
        assert group.run("open_in", {0: first, 1: first, 2: other}) == [False] * WORLD
        assert os.listdir(first) == [] and os.listdir(other) == []  # rank 0 removed its file; rank 2 created none
        assert group.run("open_in", {0: first, 1: first, 2: first}) == [True] * WORLD
        assert os.listdir(first) == []


class Quitter:
    """Rank 1 leaves the group (its process exits) once the shared buffer is open; rank 0 then waits at the barrier."""

    def __init__(self, context):
        self.rank = context.rank
        self.comm = Communicator()

    def sum_then_quit(self) -> dict:
        self.comm.all_reduce_sum(torch.ones(4))  # opens the shared buffer on both ranks
        if self.rank == 1:
            time.sleep(0.3)
            os._exit(0)
        start = time.monotonic()
        try:
            self.comm.all_reduce_sum(torch.ones(4))
        except RuntimeError as error:
            from gnndist.runtime.failures import is_collective_failure

            return {"seconds": time.monotonic() - start, "error": str(error), "collective": is_collective_failure(error), "shared_barrier": self.comm._shared.barrier is not None}
        return {"error": None}


@pytest.mark.skipif(not SHM_DIR.is_dir() or _native_barrier() is None, reason="no /dev/shm or no native futex barrier")
def test_a_peer_that_dies_fails_the_shared_barrier_within_a_liveness_check(ray_session):
    """A rank waiting for a dead peer raises a collective failure (recovery's cue) within a few liveness periods,
    not after the group's timeout."""
    import ray

    with joined_group(2, num_threads=1, cpus_per_worker=0.5) as pair:  # beside the module's group of 3 on 4 CPUs
        pair.setup(Quitter)
        refs = pair.run_async("sum_then_quit")
        result = ray.get(refs[0], timeout=60)
    assert result["shared_barrier"], "the shared-memory barrier was not used"
    assert result["error"] is not None and FAILURE in result["error"] and "rank 1" in result["error"], result
    assert result["collective"], "the error is not recognised as a consequence of a peer's failure"
    assert result["seconds"] < 0.3 + 20 * LIVENESS_S, result


@pytest.mark.skipif(_native_barrier() is None, reason="no native futex barrier")
def test_the_native_barrier_holds_every_process_until_all_arrive(tmp_path):
    """Forked processes step through rounds: each writes its round into its slot, meets the others at the barrier,
    and must then see every slot at that round (nobody passed early); a lone arrival times out and says so."""
    barrier, parties, rounds = _native_barrier(), 4, 200
    path = tmp_path / "barrier"
    path.write_bytes(bytes(64))
    shared = torch.from_file(str(path), shared=True, size=64, dtype=torch.uint8)
    words, slots = shared[:8].view(torch.int32), shared[8 : 8 + 4 * parties].view(torch.int32)

    def step_through(me: int) -> bool:
        for round_ in range(1, rounds + 1):
            slots[me] = round_
            generation = barrier.barrier_arrive(words, parties)
            if generation >= 0 and not barrier.barrier_wait(words, generation, 30.0):
                return False
            if int(slots.min()) < round_:
                return False
            generation = barrier.barrier_arrive(words, parties)  # everyone has read before anyone writes again
            if generation >= 0 and not barrier.barrier_wait(words, generation, 30.0):
                return False
        return True

    children = []
    for me in range(1, parties):
        pid = os.fork()
        if pid == 0:  # the child never returns into pytest, whatever happens
            code = 1
            try:
                code = 0 if step_through(me) else 1
            finally:
                os._exit(code)
        children.append(pid)
    ok = step_through(0)
    statuses = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    assert ok and statuses == [0] * (parties - 1)
    assert words.tolist() == [0, 2 * rounds]  # count back at 0, one generation per barrier
    generation = barrier.barrier_arrive(words, 2)  # the other party never comes
    start = time.monotonic()
    assert generation >= 0 and not barrier.barrier_wait(words, generation, 0.05)
    assert time.monotonic() - start >= 0.05
