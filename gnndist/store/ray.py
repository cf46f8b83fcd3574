"""The Ray store backend: one :class:`~gnndist.store.local.StoreServer` actor per part, beside its worker.

Actors take no CPU (``num_cpus=0``), so they always fit, and run in their worker's placement-group
bundle, on its node. Answers are numpy arrays, which Ray's object store hands over without a copy
on one node. A :class:`RayHandle` is picklable, so the driver starts the stores and passes the
handles to the workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from gnndist.partition import Part
from gnndist.store.base import StoreHandle, StoreInfo, check_part_order
from gnndist.store.local import PartLoader, StoreServer


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

    def close(self) -> None:
        import ray

        ray.kill(self.actor, no_restart=True)


def start_stores(sources: Sequence[Part | PartLoader], *, placement_group: Any = None, timeout_s: float = 600.0) -> list[RayHandle]:
    """Starts one :class:`StoreServer` actor per part (``sources[p]`` is part ``p``) and waits until they are loaded.

    Args:
        sources: the parts or their loaders, in part order.
        placement_group: the workers' placement group; store ``p`` then runs in bundle ``p``, on its
            worker's node. Stores take no CPU, so they always fit.
        timeout_s: bound on loading.

    Returns:
        The handles, in part order (stop them with :func:`stop_stores`).
    """
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    actor_class = ray.remote(StoreServer)
    actors = []
    for part_id, source in enumerate(sources):
        options: dict[str, Any] = dict(num_cpus=0, max_concurrency=max(2, len(sources)))
        if placement_group is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(placement_group=placement_group, placement_group_bundle_index=part_id)
        actors.append(actor_class.options(**options).remote(source))
    try:
        infos = ray.get([actor.ready.remote() for actor in actors], timeout=timeout_s)
        check_part_order([info.part_id for info in infos])
    except BaseException:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        raise
    return [RayHandle(actor, info) for actor, info in zip(actors, infos)]


def stop_stores(stores: Sequence[StoreHandle]) -> None:
    """Closes every handle: Ray stores are killed, in-process ones have nothing to release."""
    for store in stores:
        store.close()
