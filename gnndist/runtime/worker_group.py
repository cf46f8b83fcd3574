"""A group of Ray actors, one per part, in a placement group, joined by a torch.distributed group."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import ray
import torch
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@dataclass(frozen=True)
class WorkerContext:
    """Who a worker is: its rank (= part id), the world size, and its device."""

    rank: int
    world_size: int
    device: str = "cpu"

    @property
    def part_id(self) -> int:
        return self.rank


class Worker:
    """The actor: hosts one stateful object built by ``setup`` and runs its methods on request.

    Trainers stay plain classes (testable without Ray); the actor only hosts them, like Ray Train's
    worker hosts the training function.
    """

    def __init__(self, rank: int, world_size: int, num_threads: int, device: str):
        torch.set_num_threads(num_threads)  # Ray sets OMP_NUM_THREADS=1: choose deliberately
        self.context = WorkerContext(rank, world_size, device)
        self.state: Any = None

    def node(self) -> dict[str, Any]:
        """Where this worker runs: node id, the node's Ray address (127.0.0.1 on an embedded Ray) and pid."""
        import os

        node_id = ray.get_runtime_context().get_node_id()
        address = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), ray.util.get_node_ip_address())
        return {"rank": self.context.rank, "node_id": node_id, "ip": address, "pid": os.getpid()}

    def free_port(self) -> int:
        with socket.socket() as sock:
            sock.bind(("", 0))
            return sock.getsockname()[1]

    def init_process_group(self, address: str, backend: str, timeout_s: float) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        dist.init_process_group(backend, init_method=f"tcp://{address}", rank=self.context.rank, world_size=self.context.world_size, timeout=timedelta(seconds=timeout_s))

    def setup(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Builds the hosted object: ``factory(context, *args, **kwargs)``."""
        self.state = factory(self.context, *args, **kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.state, method)(*args, **kwargs)

    def shutdown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class WorkerGroup:
    """``num_workers`` actors in a SPREAD placement group with fixed resources and ``max_restarts``.

    Args:
        num_workers: actors (= parts).
        cpus_per_worker, gpus_per_worker: resources of each bundle; one GPU each when GPUs exist.
        timeout_s: bound on waiting for the resources; past it, a clear error instead of a hang.
        max_restarts: Ray restarts of a dead actor (recovery rebuilds the process group).
        num_threads: torch threads per worker (default: its CPUs, at least 1).
    """

    def __init__(self, num_workers: int, *, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, timeout_s: float = 60.0, max_restarts: int = 0, num_threads: int | None = None, strategy: str = "SPREAD"):
        if num_workers < 1:
            raise ValueError(f"Expected num_workers >= 1 (got {num_workers})")
        self.num_workers, self.timeout_s = num_workers, timeout_s
        bundle = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        self.placement_group = placement_group([dict(bundle) for _ in range(num_workers)], strategy=strategy)
        if not self.placement_group.wait(timeout_seconds=timeout_s):
            available = ray.available_resources()
            remove_placement_group(self.placement_group)
            raise RuntimeError(
                f"The cluster cannot host {num_workers} workers with {bundle} each within {timeout_s:.0f} s "
                f"(available: {available.get('CPU', 0):g} CPU, {available.get('GPU', 0):g} GPU); "
                "lower partition.parts or cluster.cpus_per_worker/gpus_per_worker, or add nodes"
            )
        threads = num_threads or max(1, int(cpus_per_worker))
        device = "cuda" if gpus_per_worker else "cpu"
        actor = ray.remote(Worker)
        self.workers = [
            actor.options(
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                max_restarts=max_restarts,
                max_task_retries=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=self.placement_group, placement_group_bundle_index=rank),
            ).remote(rank, num_workers, threads, device)
            for rank in range(num_workers)
        ]
        self.backend = "nccl" if gpus_per_worker else "gloo"

    def init_process_group(self) -> float:
        """Joins every worker into one torch.distributed group at rank 0's address; returns seconds taken."""
        start = time.perf_counter()
        info = ray.get(self.workers[0].node.remote(), timeout=self.timeout_s)
        port = ray.get(self.workers[0].free_port.remote(), timeout=self.timeout_s)
        address = f"{info['ip']}:{port}"
        self.get([w.init_process_group.remote(address, self.backend, self.timeout_s) for w in self.workers])
        return time.perf_counter() - start

    def get(self, refs: list, timeout_s: float | None = None) -> list:
        """``ray.get`` bounded by the group's timeout (a hung worker becomes an error, not a hang)."""
        return ray.get(refs, timeout=timeout_s if timeout_s is not None else self.timeout_s)

    def setup(self, factory: Callable[..., Any], per_worker_args: list[tuple] | None = None, **kwargs: Any) -> None:
        """Builds the hosted object on every worker; ``per_worker_args[rank]`` are its positional arguments."""
        args = per_worker_args or [()] * self.num_workers
        self.get([w.setup.remote(factory, *args[rank], **kwargs) for rank, w in enumerate(self.workers)], timeout_s=max(self.timeout_s, 600.0))

    def run(self, method: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> list:
        """Calls ``method`` of the hosted object on every worker and waits for all results."""
        return self.get(self.run_async(method, *args, **kwargs), timeout_s)

    def run_async(self, method: str, *args: Any, **kwargs: Any) -> list:
        """Starts ``method`` on every worker; returns the object refs."""
        return [w.call.remote(method, *args, **kwargs) for w in self.workers]

    def run_one(self, rank: int, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.get([self.workers[rank].call.remote(method, *args, **kwargs)])[0]

    def nodes(self) -> list[dict[str, Any]]:
        return self.get([w.node.remote() for w in self.workers])

    def shutdown(self) -> None:
        """Kills the actors and frees the placement group (no stray processes)."""
        for worker in self.workers:
            ray.kill(worker, no_restart=True)
        remove_placement_group(self.placement_group)
