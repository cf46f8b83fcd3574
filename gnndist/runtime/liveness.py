"""Waiting for one call on every worker: liveness instead of a deadline, and the first cause wins.

A call may run as long as it needs (a large graph on few cores has epochs of minutes); a worker is
*hung* only when it stops answering heartbeats, which it serves on a thread of its own while the call
runs, for longer than ``silence_s``. Heartbeats start only once a call has run for a probe interval, so
short calls cost nothing extra.

When a rank fails, the first real cause decides what the job does: a Python exception
(:class:`WorkerError`: stop), a death (:class:`WorkerFailure` ``died``: recover) or a hang. Collective
failures that peers raise because of it are consequences: they are kept for the log, and waited past
for up to ``consequence_grace_s``, in which the real cause (a death takes Ray ~2 s to report) arrives.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import ray

from gnndist.runtime.failures import RankError, WorkerError, WorkerFailure, is_collective_failure, one_line

PROBE_INTERVAL_S = 1.0  # how often pending ranks are probed (at most a quarter of the silence bound)
CONSEQUENCE_GRACE_S = 10.0  # how long collective failures wait for their cause to be reported


def wait_for_all(
    refs: Sequence[Any],
    workers: Sequence[Any],
    *,
    silence_s: float,
    method: str,
    ranks: Sequence[int] | None = None,
    consequence_grace_s: float = CONSEQUENCE_GRACE_S,
) -> list:
    """Results of one call per worker (``refs[i]`` runs on ``workers[ranks[i]]``), in order.

    Args:
        refs: the calls' object refs.
        workers: every worker's actor handle (by rank); each serves ``heartbeat()`` concurrently with calls.
        silence_s: a pending worker silent (no heartbeat answered) this long is hung.
        method: the call, for messages.
        ranks: the rank of each ref (default: ``0..len(refs)-1``).
        consequence_grace_s: how long to wait for a cause once a peer's collective failed.

    Raises:
        WorkerError: a rank raised an exception (the first one; the peers' consequences attached).
        WorkerFailure: a rank died (``died``), went silent (``hung``), stayed away from a collective that
            failed on its peers (``hung``), or collectives failed everywhere with no other cause (``lost``).
    """
    ranks = list(range(len(refs))) if ranks is None else list(ranks)
    rank_of = dict(zip(refs, ranks, strict=True))
    pending = list(refs)
    results: dict[int, Any] = {}
    errors: list[RankError] = []
    consequences: list[RankError] = []
    died: dict[int, BaseException] = {}
    start = time.monotonic()
    last_seen = dict.fromkeys(ranks, start)
    probes: dict[int, Any] = {}
    consequence_at: float | None = None
    interval = min(PROBE_INTERVAL_S, silence_s / 4)
    while pending:
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=interval)
        for ref in ready:
            rank = rank_of[ref]
            try:
                results[rank] = ray.get(ref)
            except ray.exceptions.RayActorError as error:
                died[rank] = error
            except ray.exceptions.RayTaskError as error:
                failure = RankError.from_ray(rank, error)
                (consequences if is_collective_failure(getattr(error, "cause", None) or error) else errors).append(failure)
        if errors:
            raise WorkerError(errors[0], method, consequences + errors[1:])
        if died:
            raise WorkerFailure("died", list(died), method, one_line(died[min(died)]))
        if not pending:
            break
        now = time.monotonic()
        waiting = [rank_of[ref] for ref in pending]
        _probe(workers, waiting, probes, last_seen, died, now)
        if died:
            raise WorkerFailure("died", list(died), method, one_line(died[min(died)]))
        hung = [rank for rank in waiting if now - last_seen[rank] > silence_s]
        if hung:
            raise WorkerFailure("hung", hung, method, f"no answer from rank(s) {hung} within {silence_s:g} s (cluster.timeout_s)")
        if consequences:
            consequence_at = consequence_at or now
            if now - consequence_at > consequence_grace_s:
                raise WorkerFailure("hung", waiting, method, f"rank(s) {waiting} stayed away from a collective that failed on {consequences[0].describe()}")
    if consequences:
        raise WorkerFailure("lost", [error.rank for error in consequences], method, consequences[0].describe())
    return [results[rank] for rank in ranks]


def _probe(workers: Sequence[Any], waiting: list[int], probes: dict[int, Any], last_seen: dict[int, float], died: dict[int, BaseException], now: float) -> None:
    """Collects answered heartbeats (a rank that answered is alive now) and sends one to each waiting rank without one in flight."""
    if probes:
        answered, _ = ray.wait(list(probes.values()), num_returns=len(probes), timeout=0)
        answered = set(answered)
        for rank, probe in list(probes.items()):
            if probe not in answered:
                continue
            del probes[rank]
            try:
                ray.get(probe)
                last_seen[rank] = now
            except ray.exceptions.ActorUnavailableError:  # restarting or unreachable for now: no answer
                pass
            except ray.exceptions.RayActorError as error:
                died[rank] = error
    for rank in waiting:
        if rank not in probes:
            probes[rank] = workers[rank].heartbeat.remote()
