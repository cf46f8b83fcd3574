"""Recovery from failed workers: restart them, rebuild the process group, reload the last checkpoint, go on.

:func:`run_with_recovery` runs training from an epoch; when a :class:`WorkerFailure` escapes (a worker
died, hung or lost its connection), it asks ``recover`` to bring the workers back and returns the epoch to
resume at (that of the last valid checkpoint), then trains again from there, up to ``max_failures`` times.
Each recovery is reported as a :class:`RecoveryEvent` with its cause and the wall time lost. Anything else
(a :class:`~gnndist.runtime.failures.WorkerError`: a worker raised) is not retried, and neither is a
failure that recurs identically (same kind, ranks and call, with no epoch gained since the last one).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TypeVar

from gnndist.runtime.failures import WorkerFailure

Result = TypeVar("Result")


@dataclass
class RecoveryEvent:
    """One recovery.

    Attributes:
        failure: 1 for the first failure of the run, 2 for the second, ...
        kind: ``died``, ``hung`` or ``lost``; ranks: the workers concerned; cause: what Ray reported.
        failed_epoch: the epoch in progress when the failure was detected.
        resumed_epoch: the epoch training resumed at (epochs completed in the checkpoint reloaded).
        detected_at: UNIX time the failure was detected.
        recovery_s: from detection until the workers were ready again (restart, process group, setup, load).
        time_lost_s: from reaching ``resumed_epoch`` the first time until ready again: the redone epochs,
            the partial epoch, detection and recovery.
    """

    failure: int
    kind: str
    ranks: list[int]
    cause: str
    failed_epoch: int
    resumed_epoch: int
    detected_at: float
    recovery_s: float
    time_lost_s: float

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"recovery {self.failure}: worker(s) {self.ranks} {self.kind} in epoch {self.failed_epoch} ({self.cause}); "
            f"resumed at epoch {self.resumed_epoch} after {self.recovery_s:.1f} s, {self.time_lost_s:.1f} s lost"
        )


@dataclass
class EpochClock:
    """When each epoch count was reached in this process (to measure the time a recovery loses)."""

    reached_at: dict[int, float] = field(default_factory=dict)
    current_epoch: int = 0

    def reached(self, epochs_done: int) -> None:
        self.reached_at[epochs_done] = time.monotonic()
        self.current_epoch = epochs_done


def run_with_recovery(
    train: Callable[[int], Result],
    recover: Callable[[WorkerFailure], int],
    *,
    start_epoch: int,
    max_failures: int,
    clock: EpochClock,
    on_recovery: Callable[[RecoveryEvent], None] | None = None,
) -> Result:
    """``train(start_epoch)``, recovering from worker failures up to ``max_failures`` times.

    Args:
        train: trains from the given epoch to the end; ``clock.reached`` must be called after each epoch.
        recover: brings the workers back after a failure and loads the last checkpoint; returns its epoch.
            A failure during recovery counts as a further failure and recovery is tried again.
        start_epoch: the first epoch to train.
        max_failures: failures to recover from; the next one is raised.
        clock: epoch progress, shared with ``train``.
        on_recovery: called with each completed recovery.

    Raises:
        RuntimeError: from the failure past ``max_failures``, or one that recurred identically, naming it.
    """
    clock.reached(start_epoch)
    failures, epoch, previous = 0, start_epoch, None
    while True:
        try:
            return train(epoch)
        except WorkerFailure as failure:
            failed_epoch = clock.current_epoch
            while True:
                failures += 1
                signature = (failure.kind, failure.ranks, failure.method, clock.current_epoch)
                if signature == previous:
                    raise RuntimeError(f"Stopping: the failure recurred identically after a recovery, at the same point (epoch {clock.current_epoch}), so recovering again would loop: {failure}") from failure
                previous = signature
                if failures > max_failures:
                    raise RuntimeError(f"Giving up after {max_failures} recovered failure(s) (checkpoint.max_failures): {failure}") from failure
                detected, detected_at = time.monotonic(), time.time()
                try:
                    epoch = recover(failure)
                    break
                except WorkerFailure as again:
                    failure = again
            ready = time.monotonic()
            event = RecoveryEvent(failures, failure.kind, failure.ranks, failure.cause, failed_epoch, epoch, detected_at, ready - detected, ready - clock.reached_at.get(epoch, detected))
            clock.reached(epoch)
            if on_recovery is not None:
                on_recovery(event)
