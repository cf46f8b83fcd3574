"""How gnndist's actor processes (training workers, feature stores) start: the environment variables Ray
starts their worker process with (an actor's ``runtime_env``, merged with the job's).

Two things are only settable there, before the process runs any code:

- glibc's heap settings (:func:`gnndist.memory.worker_malloc_env`), read when the process starts;
- the process's CPU priority. Ray's core worker renices the thread that runs tasks and actors to
  ``RAY_worker_niceness`` (15 by default), so that background tasks yield to the node's other processes. For
  a training worker that is the critical path, and it leaves the prefetch thread (``train.prefetch_nice``,
  clamped at 19) only 4 steps below training instead of 19: where workers share cores, sampling then took
  CPU from training steps. Our actors run at :data:`ACTOR_NICENESS` instead. Measured on a 200k-node ``sbm``
  (``gnndist bench minibatch``: GraphSAGE [10, 5], batch 1024, 1 thread, 2 cores; Ray's 15 and this,
  alternated twice): 2 workers 44.9k / 44.9k -> 48.9k / 48.8k seeds/s, 4 workers 30.5k / 30.7k -> 33.6k /
  34.6k; one worker (no peer to share cores with) and full-graph epochs unchanged within noise.
  Raising priority needs no privilege here: the process starts at the raylet's niceness (0) and Ray only
  renices it after reading this variable.
"""
from __future__ import annotations

from gnndist.memory import worker_malloc_env

__all__ = ["ACTOR_NICENESS", "actor_env"]

ACTOR_NICENESS = 0


def actor_env(release_memory: bool) -> dict[str, str]:
    """``runtime_env["env_vars"]`` of a gnndist actor: its heap settings (``release_memory``: hand freed blocks
    back to the OS) and its niceness."""
    return {**worker_malloc_env(release_memory), "RAY_worker_niceness": str(ACTOR_NICENESS)}
