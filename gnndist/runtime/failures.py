"""What went wrong in a worker, in two classes: failures the job recovers from, errors that stop it.

A Python exception raised inside a worker is a bug or bad input: retrying it would fail the same way,
so it is a :class:`WorkerError` and the job stops at once. Only a process death or a hang is a
:class:`WorkerFailure`, which recovery handles by restarting workers. When one rank fails, its peers
fail too, inside the collective they were waiting in (a timeout, "Connection reset by peer"): those
are *consequences*, recognized by :func:`is_collective_failure`, and never reported as the cause.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Messages of collective failures that a peer's failure causes (gloo and NCCL raise plain RuntimeErrors).
COLLECTIVE_FAILURE_MARKERS = (
    "third_party/gloo/",
    "Connection reset by peer",
    "Connection closed by peer",
    "Broken pipe",
    "Timed out waiting",
    "NCCL",
    "ProcessGroup",
    "Shared-memory all-reduce failed",  # gnndist.comm.shared_reduce.FAILURE: a peer died or never came
)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because a peer failed (a consequence, not a cause).

    Besides gloo/NCCL errors this covers a call to another actor (a store) that died: the death is
    the cause, reported where it happened.
    """
    import ray
    import torch.distributed as dist

    if isinstance(error, ray.exceptions.RayActorError) or isinstance(error, getattr(dist, "DistError", ())):
        return True
    return isinstance(error, RuntimeError) and any(marker in str(error) for marker in COLLECTIVE_FAILURE_MARKERS)


class WorkerFailure(RuntimeError):
    """Workers died or hung during a call; the job can recover by restarting them (see ``WorkerGroup.recover``).

    Attributes:
        kind: ``"died"`` (the process exited or was killed), ``"hung"`` (silent longer than the liveness
            timeout, or absent from a collective that failed on its peers) or ``"lost"`` (collectives
            failed on every rank with no other cause: a lost connection between workers).
        ranks: the ranks that died, hung or lost their connection.
        method: the call that failed.
        cause: what Ray reported, in one line.
    """

    def __init__(self, kind: str, ranks: list[int], method: str, cause: str):
        self.kind, self.ranks, self.method, self.cause = kind, sorted(ranks), method, cause
        super().__init__(f"worker(s) {self.ranks} {kind} during {method!r}: {cause}")


@dataclass(frozen=True)
class RankError:
    """An exception one rank raised: its type, message and the worker's traceback."""

    rank: int
    error_type: str
    message: str
    traceback: str

    @classmethod
    def from_ray(cls, rank: int, error: BaseException) -> "RankError":
        """From the ``RayTaskError`` Ray raises for a call that raised (or any other exception)."""
        cause = getattr(error, "cause", None) or error
        text = str(cause).strip()
        trace = ANSI_ESCAPE.sub("", getattr(error, "traceback_str", None) or str(error))  # Ray colours the header line
        return cls(rank, type(cause).__name__, text.splitlines()[0] if text else "", trace)

    def describe(self) -> str:
        return f"rank {self.rank}: {self.error_type}: {self.message}"[:400]


class WorkerError(RuntimeError):
    """A worker raised an exception (a bug or bad input): the job stops, nothing is retried.

    The message (one line, for the console) names the rank, the call and the original exception; the
    worker's traceback and the errors its peers raised because of it (collective failures, never shown
    as the cause) are attached as exception notes, which tracebacks and the run's ``error.log`` show.

    Attributes:
        rank, method: where it was raised.
        error_type, message: the original exception's type name and first line.
        traceback: the worker's traceback, as text.
        consequences: what peers raised because of it.
    """

    def __init__(self, first: RankError, method: str, consequences: list[RankError] | None = None):
        self.rank, self.method, self.error_type, self.message, self.traceback = first.rank, method, first.error_type, first.message, first.traceback
        self.consequences = list(consequences or [])
        super().__init__(f"worker rank {self.rank} raised {self.error_type} during {method!r}: {self.message}")
        self.add_note(f"traceback of rank {self.rank}:\n{self.traceback.rstrip()}")
        for error in self.consequences:
            self.add_note(f"consequence on {error.describe()}")
