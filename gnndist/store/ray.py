"""The Ray store backend: one :class:`~gnndist.store.local.StoreServer` actor per part, beside its worker.

Actors take no CPU (``num_cpus=0``), so they always fit, and run in their worker's placement-group
bundle, on its node. Answers are numpy arrays, which Ray's object store hands over without a copy
on one node; a store's feature rows live in the object store, so a client on its node reads them in place
(:meth:`RayHandle.mapped_rows`). A :class:`RayHandle` is picklable, so the driver starts the stores and passes the
handles to the workers.

A store that dies is restarted by Ray (its constructor reloads the part from its source), and a request
in flight is sent again once after the restart (``max_task_retries=1``): requests are reads, so the retried
one answers the same and training goes on unchanged. A store that cannot come back (its restarts used up,
its node lost) is replaced by :meth:`StoreSet.revive` when the job recovers its workers.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gnndist.partition import Part
from gnndist.store.base import StoreHandle, StoreInfo, check_part_order
from gnndist.store.local import PartLoader, StoreServer

STORE_MAX_RESTARTS = 3
"""Ray restarts of a dead store actor before it is left dead (then the job's recovery replaces it)."""


@dataclass(frozen=True)
class RayPending:
    """An actor call's answer; :meth:`result` waits for it."""

    ref: Any

    def result(self) -> Any:
        import ray

        return ray.get(self.ref)


class RayHandle(StoreHandle):
    """The Ray backend: submits requests to a :class:`StoreServer` actor.

    Args:
        actor: the actor's handle.
        info: what it serves.
    """

    def __init__(self, actor: Any, info: StoreInfo):
        super().__init__(info)
        self.actor = actor

    def _submit(self, method: str, local_ids: np.ndarray) -> RayPending:
        return RayPending(getattr(self.actor, method).remote(local_ids))

    def mapped_rows(self, timeout_s: float = 600.0) -> np.ndarray | None:
        """The store's rows mapped from Ray's object store when the store runs on this process's node (a
        zero-copy, read-only view of the one copy on the node); None on another node."""
        import ray

        shared = ray.get(self.actor.shared_rows.remote(), timeout=timeout_s)
        if shared is None or shared[0] != ray.get_runtime_context().get_node_id():
            return None
        return ray.get(shared[1][0], timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Kills the store and waits (up to ``timeout_s``) until it is gone: ``ray.kill`` only asks, and a
        request sent meanwhile could still be answered (retried requests make that window wider)."""
        import ray

        ray.kill(self.actor, no_restart=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                ray.get(self.actor.ready.options(max_task_retries=0).remote(), timeout=max(0.1, deadline - time.monotonic()))  # no retry (and its log line)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                return
            time.sleep(0.05)


def start_stores(sources: Sequence[Part | PartLoader], *, placement_group: Any = None, timeout_s: float = 600.0, max_restarts: int = STORE_MAX_RESTARTS) -> list[RayHandle]:
    """Starts one :class:`StoreServer` actor per part (``sources[p]`` is part ``p``) and waits until they are loaded.

    Args:
        sources: the parts or their loaders, in part order.
        placement_group: the workers' placement group; store ``p`` then runs in bundle ``p``, on its
            worker's node. Stores take no CPU, so they always fit.
        timeout_s: bound on loading.
        max_restarts: Ray restarts of each store after its process dies.

    Returns:
        The handles, in part order (stop them with :func:`stop_stores`).
    """
    import ray

    actors = [_start_store(part_id, source, len(sources), placement_group, max_restarts) for part_id, source in enumerate(sources)]
    try:
        infos = ray.get([actor.ready.remote() for actor in actors], timeout=timeout_s)
        check_part_order([info.part_id for info in infos])
    except BaseException:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        raise
    return [RayHandle(actor, info) for actor, info in zip(actors, infos)]


class StoreSet:
    """The Ray stores one job started, one per part: replaced when one stays dead, stopped with the job.

    Args:
        sources: the parts or their loaders, in part order (a replacement store loads from here again).
        placement_group: the workers' placement group (store ``p`` runs in bundle ``p``).
        timeout_s: bound on loading a store and on a store's answer when checking it is alive.
    """

    def __init__(self, sources: Sequence[Part | PartLoader], *, placement_group: Any = None, timeout_s: float = 600.0):
        self.sources, self.placement_group, self.timeout_s = list(sources), placement_group, timeout_s
        self.handles = start_stores(self.sources, placement_group=placement_group, timeout_s=timeout_s)

    def revive(self) -> bool:
        """Replaces every store that does not answer within ``timeout_s``; returns whether any was replaced."""
        import ray

        replaced = False
        for part_id, store in enumerate(self.handles):
            try:
                ray.get(store.actor.ready.remote(), timeout=self.timeout_s)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                ray.kill(store.actor, no_restart=True)
                actor = _start_store(part_id, self.sources[part_id], len(self.sources), self.placement_group, STORE_MAX_RESTARTS)
                self.handles[part_id] = RayHandle(actor, ray.get(actor.ready.remote(), timeout=self.timeout_s))
                replaced = True
        return replaced

    def peak_bytes(self) -> list[int | None]:
        """Each store process's peak resident memory (None for a store that does not answer)."""
        return [None if info is None else info["peak_bytes"] for info in self._processes()]

    def cpu_seconds(self) -> float:
        """CPU seconds the store processes have used so far, summed (a store that does not answer counts 0)."""
        return sum(info["cpu_s"] for info in self._processes() if info is not None)

    def _processes(self) -> list[dict[str, Any] | None]:
        """Every store's :meth:`StoreServer.process` answer (None for a store that does not answer)."""
        import ray

        answers: list[dict[str, Any] | None] = []
        for store in self.handles:
            try:
                answers.append(ray.get(store.actor.process.remote(), timeout=self.timeout_s))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                answers.append(None)
        return answers

    def stop(self) -> None:
        stop_stores(self.handles)


def _start_store(part_id: int, source: Part | PartLoader, num_parts: int, placement_group: Any, max_restarts: int) -> Any:
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from gnndist.runtime.process import actor_env

    options: dict[str, Any] = dict(num_cpus=0, max_concurrency=max(2, num_parts), max_restarts=max_restarts, max_task_retries=1)
    options["runtime_env"] = {"env_vars": actor_env(release_memory=True)}  # answers are built and freed all the time; a fetch waits on them
    if placement_group is not None:
        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(placement_group=placement_group, placement_group_bundle_index=part_id)
    return ray.remote(StoreServer).options(**options).remote(source, own_process=True)


def stop_stores(stores: Sequence[StoreHandle]) -> None:
    """Closes every handle: Ray stores are killed, in-process ones have nothing to release."""
    for store in stores:
        store.close()
