"""Recovery: the recovery loop (restart, reload, go on; give up, stop on recurrence) and worker-group errors
that are clear and immediate. Killed and hung workers in whole runs: tests/faults/."""
import time

import pytest

from gnndist.runtime import WorkerGroup
from gnndist.runtime.recovery import EpochClock, run_with_recovery
from gnndist.runtime.worker_group import WorkerFailure


def test_more_workers_than_the_cluster_has_fail_at_once(ray_session):
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"cannot host 8 workers .* need 8 CPU, the cluster has 4"):
        WorkerGroup(8, cpus_per_worker=1, timeout_s=60)
    with pytest.raises(RuntimeError, match=r"cannot host 2 workers .* need 2 GPU, the cluster has 0"):
        WorkerGroup(2, cpus_per_worker=1, gpus_per_worker=1, timeout_s=60)
    assert time.perf_counter() - start < 5


def test_busy_cluster_is_a_clear_error_after_the_timeout(ray_session):
    holder = WorkerGroup(3, cpus_per_worker=1, timeout_s=30)  # 3 of the session's 4 CPUs taken
    try:
        start = time.perf_counter()
        with pytest.raises(RuntimeError, match=r"cannot host 2 workers .* within 2 s"):
            WorkerGroup(2, cpus_per_worker=1, timeout_s=2)
        assert time.perf_counter() - start < 10
    finally:
        holder.shutdown()


# --- the recovery loop, without Ray -----------------------------------------------------------------


def test_recovery_loop_resumes_at_the_checkpoint_and_reports_time_lost():
    clock, calls, events = EpochClock(), [], []

    def train(epoch):
        calls.append(epoch)
        for done in range(epoch + 1, 10):
            if len(calls) == 1 and done == 7:
                raise WorkerFailure("died", [1], "train_epoch", "ActorDiedError: killed")
            clock.reached(done)
        return "done"

    assert run_with_recovery(train, lambda failure: 5, start_epoch=0, max_failures=1, clock=clock, on_recovery=events.append) == "done"
    assert calls == [0, 5]
    [event] = events
    assert (event.kind, event.ranks, event.failed_epoch, event.resumed_epoch) == ("died", [1], 6, 5)
    assert event.time_lost_s >= event.recovery_s >= 0


def test_recovery_loop_gives_up_after_max_failures():
    clock = EpochClock()

    def train(epoch):
        clock.reached(clock.current_epoch + 1)  # each failure one epoch further: none recurs identically
        raise WorkerFailure("hung", [0], "train_epoch", "no answer")

    with pytest.raises(RuntimeError, match=r"Giving up after 2 recovered failure\(s\).*\[0\] hung"):
        run_with_recovery(train, lambda failure: clock.current_epoch, start_epoch=0, max_failures=2, clock=clock)


def test_a_failure_that_recurs_identically_stops_instead_of_looping():
    trained = []

    def train(epoch):
        trained.append(epoch)
        raise WorkerFailure("hung", [1], "train_epoch", "no answer from rank(s) [1] within 60 s")

    with pytest.raises(RuntimeError, match=r"recurred identically after a recovery, at the same point \(epoch 0\).*\[1\] hung"):
        run_with_recovery(train, lambda failure: 0, start_epoch=0, max_failures=5, clock=EpochClock())
    assert trained == [0, 0]  # one recovery, then the same failure: stop


def test_a_worker_exception_is_never_retried():
    from gnndist.runtime.failures import RankError, WorkerError

    trained = []

    def train(epoch):
        trained.append(epoch)
        raise WorkerError(RankError(0, "IndexError", "Target -1 is out of bounds.", "Traceback ..."), "train_epoch")

    with pytest.raises(WorkerError, match=r"worker rank 0 raised IndexError during 'train_epoch': Target -1 is out of bounds."):
        run_with_recovery(train, lambda failure: 0, start_epoch=0, max_failures=3, clock=EpochClock())
    assert trained == [0]


def test_failure_during_recovery_counts_and_is_retried():
    recoveries, trained = [], []

    def train(epoch):
        trained.append(epoch)
        if len(trained) == 1:
            raise WorkerFailure("hung", [1], "train_epoch", "no answer")
        return "ok"

    def recover(failure):
        recoveries.append(failure.kind)
        if len(recoveries) == 1:
            raise WorkerFailure("died", [0], "setup", "killed while restarting")
        return 0

    assert run_with_recovery(train, recover, start_epoch=0, max_failures=2, clock=EpochClock()) == "ok"
    assert recoveries == ["hung", "died"] and trained == [0, 0]
    with pytest.raises(RuntimeError, match="Giving up after 1"):
        recoveries.clear(), trained.clear()
        run_with_recovery(train, recover, start_epoch=0, max_failures=1, clock=EpochClock())
