"""A group of Ray actors, one per part, in a placement group, joined by a torch.distributed group."""
from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator

import ray
import torch
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from gnndist.device import comm_backend as resolve_backend
from gnndist.runtime.failures import WorkerError, WorkerFailure, one_line
from gnndist.runtime.liveness import wait_for_all
from gnndist.runtime.process import actor_env

__all__ = ["COLLECTIVE_TIMEOUT_S", "Worker", "WorkerContext", "WorkerError", "WorkerFailure", "WorkerGroup"]


STARTUP_TIMEOUT_S = 600.0  # bound on starting actors and building the hosted objects (imports, part loading)
# Bound on one collective (gloo/NCCL process-group timeout). Liveness is watched by heartbeats, so this only
# has to catch what heartbeats cannot (a rank alive but never joining a collective); it must exceed the
# longest compute one rank does while its peers wait in the collective that follows (minutes on a large
# graph with few cores), hence far above the liveness timeout.
COLLECTIVE_TIMEOUT_S = 1800.0


@dataclass
class _SetupCall:
    """The last ``setup`` call, replayed on every worker after a restart."""

    factory: Callable[..., Any]
    per_worker_args: list[tuple]
    kwargs: dict[str, Any] = field(default_factory=dict)


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
    worker hosts the training function. Calls run one at a time; ``heartbeat`` runs in a concurrency
    group of its own, so it answers while a call runs.
    """

    def __init__(self, rank: int, world_size: int, num_threads: int, device: str):
        torch.set_num_threads(num_threads)  # Ray sets OMP_NUM_THREADS=1: choose deliberately
        self.context = WorkerContext(rank, world_size, device)
        self.state: Any = None
        self._store: Any = None  # the process group's rendezvous store (rank 0 serves it)

    @ray.method(concurrency_group="liveness")
    def heartbeat(self) -> int:
        """Answers while a call runs (its own thread): the driver's evidence that this process is alive."""
        return self.context.rank

    def node(self) -> dict[str, Any]:
        """Where this worker runs: node id, the node's Ray address (127.0.0.1 on an embedded Ray) and pid."""
        node_id = ray.get_runtime_context().get_node_id()
        address = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), ray.util.get_node_ip_address())
        return {"rank": self.context.rank, "node_id": node_id, "ip": address, "pid": os.getpid()}

    def peak_bytes(self) -> int:
        """This process's peak resident memory (its GPU's peak allocation is in the trainer's metrics)."""
        from gnndist.memory import peak_resident_bytes

        return peak_resident_bytes()

    def open_rendezvous(self, timeout_s: float) -> tuple[str, int]:
        """Rank 0: starts the group's rendezvous store on this node's Ray address only; returns ``(host, port)``.

        torch's ``tcp://`` rendezvous listens on every interface; a socket bound here and handed to
        ``TCPStore`` keeps it on the address the node's Ray uses (loopback on an embedded Ray).
        """
        import torch.distributed as dist

        host = self.node()["ip"]
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.bind((host, 0))
        sock.listen()
        port = sock.getsockname()[1]
        self._store = dist.TCPStore(host, port, self.context.world_size, is_master=True, timeout=timedelta(seconds=timeout_s), wait_for_workers=False, master_listen_fd=sock.detach())
        return host, port

    def init_process_group(self, host: str, port: int, backend: str, timeout_s: float) -> None:
        """Joins the group whose store rank 0 opened at ``host:port`` (on a loopback rendezvous, gloo too
        listens on the loopback interface only)."""
        import torch.distributed as dist

        from gnndist.runtime.cluster import is_loopback

        if dist.is_initialized():
            dist.destroy_process_group()
        if self.context.rank != 0:
            self._store = dist.TCPStore(host, port, self.context.world_size, is_master=False, timeout=timedelta(seconds=timeout_s))
        if backend == "nccl":  # NCCL binds a communicator to the current device: the worker's own GPU
            from gnndist.device import worker_device

            torch.cuda.set_device(worker_device(self.context.device))
        if backend == "gloo" and is_loopback(host) and "GLOO_SOCKET_IFNAME" not in os.environ:
            os.environ["GLOO_SOCKET_IFNAME"] = _loopback_interface()  # this worker process's torch bootstrap: gloo's device
        dist.init_process_group(backend, store=self._store, rank=self.context.rank, world_size=self.context.world_size, timeout=timedelta(seconds=timeout_s))

    def setup(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Builds the hosted object: ``factory(context, *args, **kwargs)``."""
        self.state = None
        with self._out_of_memory_explained():
            self.state = factory(self.context, *args, **kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._out_of_memory_explained():
            return getattr(self.state, method)(*args, **kwargs)

    @contextlib.contextmanager
    def _out_of_memory_explained(self) -> Iterator[None]:
        """A CUDA out-of-memory error leaves as a RuntimeError naming the rank, the part's size and what to
        change (an exception in a worker stops the job: the same part would run out again)."""
        try:
            yield
        except torch.cuda.OutOfMemoryError as error:
            from gnndist.device import out_of_memory_message

            block = getattr(self.state, "block", None)
            rows, edges = (block.num_src, block.num_edges) if block is not None else (None, None)
            raise RuntimeError(out_of_memory_message(error, rank=self.context.rank, rows=rows, edges=edges)) from error

    def shutdown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


class WorkerGroup:
    """``num_workers`` actors in a SPREAD placement group with fixed resources and ``max_restarts``.

    Args:
        num_workers: actors (= parts).
        cpus_per_worker, gpus_per_worker: resources of each bundle; one GPU each when GPUs exist.
        timeout_s: liveness bound: a worker silent this long during a call is hung (calls themselves may
            run as long as they need); also the bound on waiting for the resources.
        max_restarts: Ray restarts of a dead actor (recovery rebuilds the process group).
        comm_backend: ``auto`` (NCCL when every worker has a whole GPU, else gloo), ``nccl`` or ``gloo``.
        num_threads: torch threads per worker (default: its CPUs, at least 1).
        collective_timeout_s: the process group's bound on one collective (default: the larger of
            ``timeout_s`` and :data:`COLLECTIVE_TIMEOUT_S`).
        release_memory: workers return freed memory to the OS (``cluster.release_memory``): lower peak RSS,
            more CPU per step; otherwise their heap keeps it (:func:`gnndist.memory.worker_malloc_env`). Workers run at
            :data:`gnndist.runtime.process.ACTOR_NICENESS`, not Ray's 15.
    """

    def __init__(
        self,
        num_workers: int,
        *,
        cpus_per_worker: float = 1.0,
        gpus_per_worker: float = 0.0,
        timeout_s: float = 60.0,
        max_restarts: int = 0,
        num_threads: int | None = None,
        comm_backend: str = "auto",
        strategy: str = "SPREAD",
        collective_timeout_s: float | None = None,
        release_memory: bool = False,
    ):
        if num_workers < 1:
            raise ValueError(f"Expected num_workers >= 1 (got {num_workers})")
        self.num_workers, self.timeout_s = num_workers, timeout_s
        self.collective_timeout_s = collective_timeout_s if collective_timeout_s is not None else max(timeout_s, COLLECTIVE_TIMEOUT_S)
        bundle = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        _check_capacity(num_workers, bundle)
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
        actor = ray.remote(concurrency_groups={"liveness": 1})(Worker)
        self.workers = [
            actor.options(
                num_cpus=cpus_per_worker,
                num_gpus=gpus_per_worker,
                max_restarts=max_restarts,
                max_task_retries=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=self.placement_group, placement_group_bundle_index=rank),
                runtime_env={"env_vars": actor_env(release_memory)},  # merged with the job's runtime_env
            ).remote(rank, num_workers, threads, device)
            for rank in range(num_workers)
        ]
        self.backend = resolve_backend(comm_backend, gpus_per_worker)
        self._setup_call: _SetupCall | None = None

    def init_process_group(self) -> float:
        """Joins every worker into one torch.distributed group at rank 0's address; returns seconds taken.

        Called again after a restart, it destroys the old group and rendezvouses on a new port.
        """
        start = time.perf_counter()
        startup = max(self.timeout_s, STARTUP_TIMEOUT_S)
        host, port = self.get([self.workers[0].open_rendezvous.remote(self.collective_timeout_s)], startup, method="open_rendezvous", ranks=[0])[0]
        self.get([w.init_process_group.remote(host, port, self.backend, self.collective_timeout_s) for w in self.workers], startup, method="init_process_group")
        return time.perf_counter() - start

    def get(self, refs: list, timeout_s: float | None = None, *, method: str = "call", ranks: list[int] | None = None) -> list:
        """Results of one call per worker (``refs[i]`` on rank ``ranks[i]``, default ``i``), in order.

        The calls may run as long as they need while their workers answer heartbeats; ``timeout_s``
        (default: the group's) bounds a worker's silence.

        Raises:
            WorkerError: a worker raised an exception (the first; its peers' consequent collective
                failures are attached): a bug or bad input, not to be retried.
            WorkerFailure: a worker died (``kind="died"``), went silent (``"hung"``) or lost its
                connection to the others (``"lost"``): recovery restarts workers.
        """
        silence_s = timeout_s if timeout_s is not None else self.timeout_s
        return wait_for_all(refs, self.workers, silence_s=silence_s, method=method, ranks=ranks)

    def setup(self, factory: Callable[..., Any], per_worker_args: list[tuple] | None = None, **kwargs: Any) -> None:
        """Builds the hosted object on every worker; ``per_worker_args[rank]`` are its positional arguments.

        The call is remembered: :meth:`recover` replays it on every worker.
        """
        self._setup_call = _SetupCall(factory, list(per_worker_args or [()] * self.num_workers), kwargs)
        self._replay_setup()

    def update_setup(self, **kwargs: Any) -> None:
        """Changes keyword arguments of the remembered ``setup`` (e.g. replaced store handles) for the next replay."""
        if self._setup_call is None:
            raise RuntimeError("update_setup before setup")
        self._setup_call = _SetupCall(self._setup_call.factory, self._setup_call.per_worker_args, {**self._setup_call.kwargs, **kwargs})

    def _replay_setup(self) -> None:
        call = self._setup_call
        refs = [w.setup.remote(call.factory, *call.per_worker_args[rank], **call.kwargs) for rank, w in enumerate(self.workers)]
        self.get(refs, max(self.timeout_s, STARTUP_TIMEOUT_S), method="setup")

    def recover(self, failure: WorkerFailure) -> float:
        """Brings the group back after ``failure``; returns seconds taken.

        Hung workers are killed (Ray restarts them, as it restarts dead ones, up to ``max_restarts``),
        and so is any other worker still inside the failed call after ``timeout_s`` (waiting in a
        collective that will not end); once every worker answers, the process group is rebuilt on a
        new port and the last ``setup`` is replayed on every worker, so all of them hold fresh objects;
        the caller reloads a checkpoint.
        """
        start = time.perf_counter()
        if failure.kind == "hung":
            for rank in failure.ranks:
                ray.kill(self.workers[rank], no_restart=False)
        others = {rank: self.workers[rank].node.remote() for rank in range(self.num_workers) if rank not in failure.ranks}
        answered, _ = ray.wait(list(others.values()), num_returns=len(others), timeout=self.timeout_s) if others else ([], [])
        for rank, ref in others.items():
            if ref not in answered:
                ray.kill(self.workers[rank], no_restart=False)
        self.wait_alive()
        self.init_process_group()
        if self._setup_call is not None:
            self._replay_setup()
        return time.perf_counter() - start

    def wait_alive(self, timeout_s: float | None = None) -> None:
        """Waits until every worker answers (restarted actors re-run their constructor first)."""
        timeout_s = timeout_s or max(self.timeout_s, STARTUP_TIMEOUT_S)
        deadline = time.monotonic() + timeout_s
        for rank, worker in enumerate(self.workers):
            while True:
                try:
                    ray.get(worker.node.remote(), timeout=max(1.0, deadline - time.monotonic()))
                    break
                except ray.exceptions.ActorUnavailableError:  # restarting: ask again
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
                except ray.exceptions.RayActorError as error:
                    raise RuntimeError(f"Worker rank {rank} could not be restarted ({one_line(error)}); its restarts (max_restarts) may be used up") from None
                except ray.exceptions.GetTimeoutError:
                    raise RuntimeError(f"Worker rank {rank} did not come back within {timeout_s:g} s after a restart") from None

    def run(self, method: str, *args: Any, timeout_s: float | None = None, **kwargs: Any) -> list:
        """Calls ``method`` of the hosted object on every worker and waits for all results."""
        return self.get(self.run_async(method, *args, **kwargs), timeout_s, method=method)

    def run_each(self, method: str, per_worker_args: list[tuple], timeout_s: float | None = None) -> list:
        """Calls ``method(*per_worker_args[rank])`` on every worker and waits for all results."""
        refs = [w.call.remote(method, *per_worker_args[rank]) for rank, w in enumerate(self.workers)]
        return self.get(refs, timeout_s, method=method)

    def run_async(self, method: str, *args: Any, **kwargs: Any) -> list:
        """Starts ``method`` on every worker; returns the object refs."""
        return [w.call.remote(method, *args, **kwargs) for w in self.workers]

    def run_one(self, rank: int, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.get([self.workers[rank].call.remote(method, *args, **kwargs)], method=method, ranks=[rank])[0]

    def peak_bytes(self) -> list[int]:
        """Each worker process's peak resident memory, by rank."""
        return self.get([w.peak_bytes.remote() for w in self.workers], method="peak_bytes")

    def nodes(self) -> list[dict[str, Any]]:
        """Per rank: ``rank``, ``node_id``, ``ip`` and ``pid`` of the worker process."""
        return self.get([w.node.remote() for w in self.workers], method="node")

    def shutdown(self) -> None:
        """Kills the actors and frees the placement group (no stray processes)."""
        for worker in self.workers:
            ray.kill(worker, no_restart=True)
        remove_placement_group(self.placement_group)


def _check_capacity(num_workers: int, bundle: dict[str, float]) -> None:
    """Fails at once when the whole cluster has fewer resources than the workers need (no wait, no hang)."""
    total = ray.cluster_resources()
    for resource, per_worker in bundle.items():
        needed, have = per_worker * num_workers, total.get(resource, 0.0)
        if needed > have:
            raise RuntimeError(
                f"The cluster cannot host {num_workers} workers with {bundle} each: they need {needed:g} {resource}, "
                f"the cluster has {have:g} in all; lower partition.parts or cluster.cpus_per_worker/gpus_per_worker, or add nodes"
            )


def _loopback_interface() -> str:
    """The name of the network interface that carries 127.0.0.1 (``lo`` on Linux, ``lo0`` on macOS)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(address.family == socket.AF_INET and address.address == "127.0.0.1" for address in addresses):
            return name
    raise RuntimeError("No network interface carries 127.0.0.1; cannot keep gloo on loopback")
