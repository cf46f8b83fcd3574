"""Mini-batch training: sampled batches, remote features through a cache from the owners' stores, gradients all-reduced every step.

Pieces, mirroring ``fullgraph.py``: :class:`MiniBatchTrainer` is the single-process reference (the
whole graph in this process); :class:`PartBatches` is one part's data path (sampling on its local
graph, owned features from memory, remote features through a :class:`~gnndist.cache.CachedFeatureStore`
in front of the owners' feature stores, ``gnndist.store``); :class:`MiniBatchWorkerTrainer`
trains one part inside a worker; :func:`start_minibatch` starts the stores and a group of workers.
The settings come from the job config's ``train`` and ``cache`` sections (validated there).
Sampling and fetching of the next batches run in a background thread (:class:`BatchPipeline`) while
the current batch trains.

Steps. Every step covers about ``batch_size`` seeds in total: worker ``r`` with ``n_r`` of the ``N``
training nodes draws batches of ``ceil(batch_size * n_r / N)`` of its own seeds, so all workers run
out at about the same step. Every worker runs ``max_r ceil(n_r / b_r)`` steps; one without seeds
left takes a zero-weight step (zero gradients) so that every all-reduce is matched. The loss is the
sum over a worker's seeds divided by the step's seeds over all workers, so the all-reduced gradient
is the gradient of the mean over the global batch, exactly as in the reference.

Evaluation is full-neighbourhood inference over the whole graph (every layer over all in-edges, as
in full-graph training): the reference runs the model on the whole graph; a worker runs it on its
owned rows and receives its 1-hop halo rows of every layer from their owners (``exchange_halo``),
so distributed accuracy equals single-process accuracy for the same parameters.

Heterogeneous graphs (:class:`HeteroPartBatches`, :class:`HeteroMiniBatchWorkerTrainer`) take the same
path with the part's homogeneous view: the sampler carries every edge's relation and samples per
destination and relation, each batch is split into HeteroBlocks (``gnndist.sampling.hetero``), the stores
serve the view's rows (features zero-padded to the widest type, see
:func:`~gnndist.partition.hetero.minibatch_parts`), and evaluation is the heterogeneous full-graph
trainer's exact halo forward. Steps, loss normalisation and the gradient all-reduce are unchanged.
"""
from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.cache import CachedFeatureStore, CachePolicy, RemoteNodes, resolve_cache
from gnndist.comm import Communicator, ExchangeRoute, exchange_halo
from gnndist.device import placement, to_device, worker_device
from gnndist.graph import Graph
from gnndist.hetero import HeteroSchema
from gnndist.models import ModelSpec
from gnndist.partition import Part, PartitionBook
from gnndist.partition.halo import in_edge_ids
from gnndist.partition.hetero import HeteroPart
from gnndist.sampling import NeighborSampler, SampledBatch, SeedLoader
from gnndist.sampling.hetero import HeteroBatch, check_fanouts, relation_fanouts, split_batch
from gnndist.sampling.local_graph import build_local_graph
from gnndist.seeding import Stream, dropout_seed, stream_seed
from gnndist.store import FeatureStore, LocalFeatureStore, RemoteFeatures, StoreClient, StoreHandle, StoreSet
from gnndist.store.base import copy_rows
from gnndist.tasks import resolve_task
from gnndist.tasks.base import BatchObjective, Evaluation, Task
from gnndist.tasks.node import NodeBatches, NodeTask
from gnndist.train.collective import all_reduce_gradients, infer, infer_typed
from gnndist.train.driver import GroupTrainer
from gnndist.train.fullgraph import PartSource, epoch_metrics
from gnndist.train.metrics import EpochMetrics
from gnndist.train.single import ModelState, evaluate_whole_graph

if TYPE_CHECKING:
    from gnndist.config import CacheConfig, SamplingConfig, TrainConfig

SAMPLER_THREADS = 1  # torch threads of the sampler and the prefetch thread: the rest is left to training


@dataclass(eq=False)
class PreparedBatch:
    """A sampled batch with its input features and the task's target, ready to train on.

    Attributes:
        batch: the sampled blocks (local ids); typed (a HeteroBatch) for a heterogeneous graph.
        x: ``[num_input, F]`` features of ``batch.input_nodes``; per node type its rows' inputs (features,
            or node ids of a featureless type) for a HeteroBatch.
        target: what the task's batch loss scores the seeds' output rows against (node: ``[B]`` labels).
        sample_s, fetch_s: seconds spent sampling and gathering features.
    """

    batch: SampledBatch | HeteroBatch
    x: Tensor | dict[str, Tensor]
    target: Any
    sample_s: float
    fetch_s: float


class BatchPipeline:
    """Prepares batches ahead of training: a background thread fills a queue of ``depth`` batches.

    Sampling and feature fetching are torch operations and Ray calls that release the GIL, so they
    run while the training thread computes. The thread uses ``threads`` torch threads (a per-thread
    setting), leaving the rest to training. Batches come out in order; an error in the thread is
    raised in the consumer. ``depth == 0`` prepares each batch on demand in the caller's thread.

    The thread runs at a lower CPU priority (``nice``, Linux): the training step is the critical path, and
    where workers share cores it gets them first while preparing uses their slack. With 2 workers on 2 cores
    (200k ``sbm``, [10, 5], seven runs each) they trained at a median 0.97x one worker's throughput at the same
    priority and 1.03x at nice 19: fewer steps wait at the gradient all-reduce for a peer whose core its own
    prefetch thread holds (``benchmarks/README.md``).

    Args:
        prepare: ``prepare(seeds) -> PreparedBatch``.
        depth: batches prepared ahead (>= 0).
        threads: torch intra-op threads of the background thread (None: torch's default there).
        nice: how much lower the background thread's priority is (0-19, Linux; ignored elsewhere).
    """

    _DONE = object()

    def __init__(self, prepare: Callable[[Tensor], PreparedBatch], depth: int, threads: int | None = 1, nice: int = 0):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValueError(f"Expected a prefetch depth >= 0 (got {depth!r})")
        if isinstance(nice, bool) or not isinstance(nice, int) or not 0 <= nice <= 19:
            raise ValueError(f"Expected a prefetch nice value in [0, 19] (got {nice!r})")
        self.prepare = prepare
        self.depth = depth
        self.threads = threads
        self.nice = nice

    def __call__(self, seed_batches: Iterable[Tensor]) -> Iterator[PreparedBatch]:
        if self.depth == 0:
            return (self.prepare(seeds) for seeds in seed_batches)
        return self._prefetched(iter(seed_batches))

    def _prefetched(self, seed_batches: Iterator[Tensor]) -> Iterator[PreparedBatch]:
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def put(item: Any) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            if self.threads is not None:
                torch.set_num_threads(self.threads)
            if self.nice and sys.platform == "linux":  # a thread is a task there: this lowers this thread only
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + self.nice)
            try:
                for seeds in seed_batches:
                    if stop.is_set():
                        return
                    put(self.prepare(seeds))
            except BaseException as error:  # handed to the consumer, which raises it
                put(error)
                return
            put(self._DONE)

        worker = threading.Thread(target=produce, name="gnndist-prefetch", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is self._DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            worker.join()


@dataclass
class StepTimes:
    """Seconds of one epoch: sampling and fetching (in the prefetch thread, overlapped with training),
    waiting for batches, computing (forward, backward, optimizer) and synchronising gradients."""

    sample_s: float = 0.0
    fetch_s: float = 0.0
    wait_s: float = 0.0
    compute_s: float = 0.0
    sync_s: float = 0.0


def global_step_seeds(train_counts: Sequence[int], batch_sizes: Sequence[int]) -> list[int]:
    """Seeds of every step over all workers: worker ``r`` contributes ``min(b_r, n_r - s * b_r)`` at step ``s``."""
    steps = max((math.ceil(n / b) for n, b in zip(train_counts, batch_sizes) if n), default=0)
    return [sum(max(0, min(b, n - step * b)) for n, b in zip(train_counts, batch_sizes) if n) for step in range(steps)]


def worker_batch_sizes(batch_size: int, train_counts: Sequence[int]) -> list[int]:
    """Each worker's share ``ceil(batch_size * n_r / N)`` of a step's seeds (0 for a worker without training nodes)."""
    total = sum(train_counts)
    return [-(-batch_size * n // total) for n in train_counts]


def run_steps(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, objective: BatchObjective, batches: Iterator[PreparedBatch], step_seeds: Sequence[int], comm: Communicator | None
) -> tuple[float, int, StepTimes]:
    """Trains one epoch of ``len(step_seeds)`` steps; returns ``(mean step loss, local seeds, times)``.

    Step ``s`` divides the summed loss of this worker's seeds (the task's items: nodes, edges) by
    ``step_seeds[s]`` (the seeds of all workers), so the all-reduced gradient is that of the global
    batch's mean loss. A worker without a batch for step ``s`` contributes zero gradients. ``comm`` None:
    a single process, nothing reduced.
    """
    times = StepTimes()
    total_loss, local_seeds = torch.zeros((), dtype=torch.float64, device=next(model.parameters()).device), 0  # read once, at the end: no host sync per step
    for global_seeds in step_seeds:
        start = time.perf_counter()
        prepared = next(batches, None)
        fetched = time.perf_counter()
        times.wait_s += fetched - start
        optimizer.zero_grad()
        if prepared is not None:
            times.sample_s += prepared.sample_s
            times.fetch_s += prepared.fetch_s
            loss_sum, seeds = objective.loss(model, model(prepared.x, prepared.batch.blocks), prepared.target)
            (loss_sum / global_seeds).backward()
            local_seeds += seeds
            step_loss = loss_sum.detach()
        else:
            step_loss = torch.zeros((), device=next(model.parameters()).device)
        computed = time.perf_counter()
        times.compute_s += computed - fetched
        if comm is not None:
            (step_loss,) = all_reduce_gradients(model, comm, [step_loss], count_bytes=True)
        synced = time.perf_counter()
        times.sync_s += synced - computed
        optimizer.step()
        times.compute_s += time.perf_counter() - synced
        total_loss += step_loss.double() / global_seeds
    if next(batches, None) is not None:
        raise RuntimeError("The seed loader yielded more batches than the epoch has steps")
    return total_loss.item() / max(len(step_seeds), 1), local_seeds, times


def _time_fields(times: StepTimes) -> dict[str, float]:
    return {"sample_s": times.sample_s, "fetch_s": times.fetch_s, "wait_s": times.wait_s, "compute_s": times.compute_s, "sync_s": times.sync_s}


class MiniBatchTrainer(ModelState):
    """Single-process mini-batch training on the whole graph: the reference a one-worker run reproduces exactly.

    Args:
        graph: validated Graph with features, labels and training nodes.
        model_spec: model and optimizer settings.
        train: the ``train`` section: batch size, fanouts, replace, prefetch.
    """

    def __init__(self, graph: Graph, model_spec: ModelSpec, train: "TrainConfig"):
        if graph.x is None or graph.y is None:
            raise ValueError("Training needs node features 'x' and labels 'y'")
        if graph.train_mask is None or not bool(graph.train_mask.any()):
            raise ValueError("The graph has no training nodes ('train_mask' is missing or all False)")
        check_fanouts(train.fanouts, model_spec.layers)
        self.graph, self.model_spec, self.train = graph, model_spec, train
        train_ids = graph.train_mask.nonzero().flatten()
        if train.batch_size > train_ids.numel():
            raise ValueError(f"Expected 'batch_size' in [1, {train_ids.numel()}] (the training nodes) (got {train.batch_size})")
        self.model, self.optimizer = model_spec.build()
        self.sampler = NeighborSampler.from_graph(graph, list(train.fanouts), replace=train.replace, seed=stream_seed(model_spec.seed, 0, Stream.SAMPLER), num_threads=SAMPLER_THREADS)
        self.objective = NodeBatches(train_ids, graph.y)
        self.loader = SeedLoader(train_ids, train.batch_size, seed=stream_seed(model_spec.seed, 0, Stream.LOADER))
        self.step_seeds = global_step_seeds([train_ids.numel()], [train.batch_size])
        self.pipeline = BatchPipeline(self._prepare, train.prefetch, SAMPLER_THREADS, train.prefetch_nice)
        self.block = Block.from_graph(graph)

    def _prepare(self, seeds: Tensor) -> PreparedBatch:
        start = time.perf_counter()
        batch = self.sampler.sample(seeds)
        sampled = time.perf_counter()
        x = self.graph.x.index_select(0, batch.input_nodes)
        return PreparedBatch(batch, x, self.objective.seed_nodes(seeds)[1], sampled - start, time.perf_counter() - sampled)

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        torch.manual_seed(dropout_seed(self.model_spec.seed, epoch))
        self.sampler.set_epoch(epoch)
        start, start_cpu = time.perf_counter(), time.process_time()
        self.model.train()
        loss, seeds, times = run_steps(self.model, self.optimizer, self.objective, self.pipeline(self.loader.batches(epoch)), self.step_seeds, None)
        epoch_time = time.perf_counter() - start
        extra = {"seeds": seeds, "steps": len(self.step_seeds), "seeds_per_s": seeds / epoch_time, "cpu_s": time.process_time() - start_cpu, **_time_fields(times)}
        metrics = EpochMetrics(epoch=epoch, loss=loss, epoch_time_s=epoch_time, extra=extra)
        if evaluate:
            start = time.perf_counter()
            metrics.train_acc, metrics.val_acc, metrics.test_acc = self.evaluate()
            metrics.extra["eval_time_s"] = time.perf_counter() - start
        return metrics

    def evaluate(self) -> tuple[float | None, float | None, float | None]:
        """Full-neighbourhood accuracy on train/val/test (model in eval mode)."""
        graph = self.graph
        return evaluate_whole_graph(self.model, graph.x, self.block, graph.y, (graph.train_mask, graph.val_mask, graph.test_mask))


class PartBatches:
    """One part's mini-batch data path: seeds, sampling, and features of owned and remote input nodes.

    A composition: seeds come from the task's items (the part's owned training nodes, or the training
    edges whose destination it owns, ``objective``); sampling runs on the part's
    :class:`~gnndist.sampling.local_graph.LocalGraph` (extended through the owners' graph stores at
    start-up until the sampler never leaves it); owned feature rows come from memory, remote rows
    from a :class:`~gnndist.cache.CachedFeatureStore` in front of the owners' feature stores
    (:class:`~gnndist.store.RemoteFeatures`, which finds each remote node's owner and local id in the
    partition book). The halo feature copies a part may hold on disk are dropped, so every remote
    row is counted as remote traffic.

    Args:
        part: the part.
        stores: one store handle per part (``gnndist.store``: ``start_stores`` or ``local_stores``);
            may be None only when the part has no remote nodes (a single part).
        book: the partition book (``PartSource.load_book()``); may be None when ``stores`` is.
        fanouts, replace, sampler_threads: sampling settings.
        batch_size: this part's seeds per step (ignored when it has no training nodes).
        seed, rank: fix the sampler, the seed loader and pre-sampling (rank 0 = the reference's streams).
        cache: a policy name or instance; ``cache_capacity``, ``cache_options`` build a named one.
        device: where batches are trained (what :meth:`prepare` returns lives there).
        sampling_device, cache_device: ``auto``, ``cpu`` or ``cuda``: where the sampler's graph and the
            feature rows (owned and cached) live (see :func:`gnndist.device.placement`).
        objective: the task's mini-batch objective (default: node classification of the part's training
            nodes); ``extra_hops`` rings its seeds need beyond the sampler's hops.
        shared_memory: read the rows of stores on this node in place (``cache.shared_memory``).
        shared_memory_mb: MiB of their pages kept mapped between reads (``cache.shared_memory_mb``; None: all).
    """

    def __init__(
        self,
        part: Part,
        stores: Sequence[StoreHandle] | None,
        *,
        book: PartitionBook | None,
        fanouts: Sequence[int],
        batch_size: int,
        seed: int,
        rank: int,
        cache: str | CachePolicy = "none",
        cache_capacity: float = 0.2,
        cache_options: dict | None = None,
        replace: bool = False,
        sampler_threads: int | None = 1,
        device: torch.device | str = "cpu",
        sampling_device: str = "auto",
        cache_device: str = "auto",
        objective: BatchObjective | None = None,
        extra_hops: int = 0,
        shared_memory: bool = True,
        shared_memory_mb: float | None = None,
    ):
        if part.x is None:
            raise ValueError(f"Part {part.part_id} has no node features 'x' or labels 'y'")
        self.part_id = part.part_id
        self.fanouts = list(fanouts)
        self.seed, self.rank, self.replace, self.sampler_threads = seed, rank, replace, sampler_threads
        self.client = StoreClient(stores, mapped=shared_memory, mapped_budget_bytes=float("inf") if shared_memory_mb is None else shared_memory_mb * 2**20) if stores else None
        self.local = build_local_graph(part, len(self.fanouts) + extra_hops, self.client, book)
        self.num_owned = part.num_owned
        self.device = device = torch.device(device)
        local_bytes = sum(t.numel() * t.element_size() for t in (self.local.indptr, self.local.indices, self.local.in_degree))
        self.sampling_device = placement(sampling_device, device, local_bytes, key="sampling.device")
        x_owned = part.x[: part.num_owned].contiguous()
        self.feature_device = placement(cache_device, device, x_owned.numel() * x_owned.element_size(), key="cache.device")
        self.x_owned = to_device(x_owned, self.feature_device)
        self.objective = objective if objective is not None else NodeTask().minibatch(part, book, None, device, seed, rank)
        self.objective.attach(self.local)
        items = self.objective.items
        self.loader = SeedLoader(items, batch_size, seed=stream_seed(seed, rank, Stream.LOADER)) if items.numel() else None
        self.sampler = self._sampler(Stream.SAMPLER)
        policy = resolve_cache(cache, capacity=cache_capacity, **(cache_options or {})) if isinstance(cache, str) else cache
        remote_rows = self._remote_rows(book)
        self.cache = CachedFeatureStore(remote_rows, policy, RemoteNodes(self.local.in_degree[self.num_owned :], self.count_remote_accesses), device=self.feature_device)
        if self.client is not None:
            self.client.stats.reset()

    def _remote_rows(self, book: PartitionBook | None) -> FeatureStore:
        """The feature store of the remote nodes (row ``i`` = local node ``num_owned + i``): their owners' rows."""
        width, dtype = self.x_owned.size(1), self.x_owned.dtype
        if self.local.num_remote == 0:
            return LocalFeatureStore(torch.empty(0, width, dtype=dtype, device=self.feature_device), name=f"part {self.part_id}'s remote nodes (none)")
        if self.client is None or book is None:
            raise ValueError(f"Part {self.part_id} has {self.local.num_remote} remote nodes: their features come from the stores, pass them and the partition book")
        remote = RemoteFeatures(self.client, *book.to_local(self.local.global_ids[self.num_owned :]))
        if (remote.info.width, remote.info.dtype) != (width, dtype):
            raise ValueError(f"Stores serve {remote.info.width}-wide {remote.info.dtype} rows but part {self.part_id} has {width}-wide {dtype} rows")
        return remote

    def _sampler(self, stream: int, device: torch.device | None = None, **typed: Any) -> NeighborSampler:
        """A sampler over the local graph (``typed``: ``edge_type``, ``num_edge_types`` of a typed sampler)."""
        local = self.local
        return NeighborSampler(
            local.indptr,
            local.indices,
            self.fanouts,
            replace=self.replace,
            seed=stream_seed(self.seed, self.rank, stream),
            device=device or self.sampling_device,
            src_degree=local.in_degree,
            edge_weight=local.edge_weight,
            num_threads=self.sampler_threads,
            **typed,
        )

    def batches(self, epoch: int) -> Iterator[Tensor]:
        """This part's batches of items of ``epoch`` (none without training items); restarts the sampler's and the objective's streams."""
        self.sampler.set_epoch(epoch)
        self.objective.set_epoch(epoch)
        return self.loader.batches(epoch) if self.loader is not None else iter(())

    def prepare(self, items: Tensor) -> PreparedBatch:
        """Samples the blocks of the seed nodes of ``items`` and gathers their input features and the batch's
        target, all on ``device`` (host-to-GPU copies are pinned and asynchronous: in the prefetch thread
        they overlap the training of the batch before)."""
        start = time.perf_counter()
        seeds, target = self.objective.seed_nodes(items)
        batch = self.sampler.sample(seeds)
        sampled = time.perf_counter()
        x = to_device(self.features(batch.input_nodes), self.device)
        if batch.seeds.device != self.device:
            batch = batch.to(self.device)
        return PreparedBatch(batch, x, target, sampled - start, time.perf_counter() - sampled)

    def features(self, nodes: Tensor) -> Tensor:
        """``[n, F]`` feature rows of local ids ``nodes``: owned from memory, remote through the cache (on ``feature_device``),
        each row copied once, straight into its place in the batch."""
        nodes = to_device(nodes, self.feature_device)
        is_remote = nodes >= self.num_owned
        remote_positions = is_remote.nonzero().squeeze(1)
        if remote_positions.numel() == 0:
            return self.x_owned.index_select(0, nodes)
        out = torch.empty(nodes.numel(), self.x_owned.size(1), dtype=self.x_owned.dtype, device=self.feature_device)
        owned_positions = (~is_remote).nonzero().squeeze(1)
        copy_rows(self.x_owned, nodes.index_select(0, owned_positions), out, owned_positions)
        self.cache.gather_into(nodes.index_select(0, remote_positions) - self.num_owned, out, remote_positions)
        return out

    def count_remote_accesses(self, epochs: int) -> Tensor:
        """``[num_remote]`` expected number of batches each remote node is an input node of, over ``epochs`` pre-sampled epochs.

        GNNLab's pre-sampling, with its noise reduced: the batches' frontiers are sampled (with a
        sampler of its own seed, so the training batches stay the same), and every in-neighbour ``u``
        of a frontier node ``v`` adds the probability of being drawn, ``min(1, fanout / deg(v))``
        (``1 - (1 - 1/deg(v))**fanout`` with replacement), combined per batch as
        ``1 - prod(1 - p)``. Averaging out the last random choice instead of counting its outcome
        ranks the nodes near the cut-off much better (on rmat: +3 points of hit rate at one epoch).
        """
        counts = torch.zeros(self.local.num_remote, dtype=torch.float64)
        if self.loader is None or self.local.num_remote == 0:
            return counts
        local = self.local
        degree = local.indptr.diff()
        sampler = self._sampler(Stream.PRESAMPLE, torch.device("cpu"))  # an estimate, computed once on the host
        for epoch in range(epochs):
            sampler.set_epoch(epoch)
            self.objective.set_epoch(epoch)  # training sets it again: its batches stay the same
            for items in self.loader.batches(epoch):
                batch = sampler.sample(self.objective.seed_nodes(items)[0])
                log_missed = torch.zeros(local.num_local, dtype=torch.float64)  # log P(node not drawn in this batch)
                for block, fanout in zip(batch.blocks, reversed(self.fanouts)):
                    frontier = batch.input_nodes[: block.num_dst]
                    frontier_degree = degree.index_select(0, frontier)
                    drawn = _draw_probability(frontier_degree, fanout, self.replace)
                    edges = in_edge_ids(local.indptr, frontier)
                    missed = torch.log1p(-torch.repeat_interleave(drawn, frontier_degree).clamp_(max=1 - 1e-12))
                    log_missed.index_add_(0, local.indices.index_select(0, edges), missed)
                counts -= torch.expm1(log_missed[self.num_owned :])
        return counts

    @property
    def remote_bytes(self) -> int:
        """Feature bytes received from the stores since the last reset of the client's counters."""
        return self.client.stats.bytes_received if self.client is not None else 0

    def reset_stats(self) -> None:
        self.cache.stats.reset()
        if self.client is not None:
            self.client.stats.reset()


class HeteroPartBatches(PartBatches):
    """One typed part's mini-batch data path: :class:`PartBatches` on the part's homogeneous view, typed.

    The sampler carries the relation of every local edge (the part holds enough halo rings that the local
    graph is the part's own CSR, whose relations the driver computed) and samples up to each hop's fanout per
    destination and relation; every batch is split into one HeteroBlock per layer. A type's layer-0 input
    is its feature rows (the padded rows the stores and the cache serve, cut to the type's width) or, for a
    featureless type, its type-local node ids (computed here, nothing fetched).

    Args:
        hetero: the typed part (:func:`~gnndist.partition.hetero.minibatch_parts`).
        stores: as :class:`PartBatches`.
        schema: the graph's types, widths and relations.
        fanouts: per hop a fanout per relation (:func:`~gnndist.sampling.hetero.relation_fanouts`).
        **options: the other :class:`PartBatches` settings.
    """

    def __init__(self, hetero: HeteroPart, stores: Sequence[StoreHandle] | None, *, schema: HeteroSchema, fanouts: Sequence[tuple[int, ...]], **options: Any):
        hops = len(fanouts) + options.get("extra_hops", 0)
        if hetero.part.halo_hops < hops:
            raise ValueError(f"Part {hetero.part.part_id} holds {hetero.part.halo_hops} halo ring(s) but typed sampling of {hops} hops needs as many (build it with minibatch_parts(..., halo_hops={hops}))")
        self.hetero, self.schema = hetero, schema
        super().__init__(hetero.part, stores, fanouts=fanouts, **options)
        node_type = hetero.node_type_of(self.local.global_ids)
        starts = torch.tensor(list(hetero.offsets.values()))
        self.node_type = node_type.to(self.sampling_device)
        self.type_local_id = (self.local.global_ids - starts[node_type]).to(self.sampling_device)

    def _sampler(self, stream: int, device: torch.device | None = None, **typed: Any) -> NeighborSampler:
        edge_type = self.hetero.edge_type[: self.local.indices.numel()]
        return super()._sampler(stream, device, edge_type=edge_type, num_edge_types=len(self.schema.edge_types))

    def count_remote_accesses(self, epochs: int) -> Tensor:
        """Not yet for typed parts: the estimate assumes one fanout per hop and destination (``presample`` refuses them)."""
        raise ValueError(f"Part {self.part_id}: cache policy 'presample' is not yet supported for heterogeneous graphs (use none, degree or lru)")

    def prepare(self, items: Tensor) -> PreparedBatch:
        """Samples the typed blocks of the seed nodes of ``items`` and gathers every type's input rows, on ``device``."""
        start = time.perf_counter()
        seeds, target = self.objective.seed_nodes(items)
        sampled_batch = self.sampler.sample(seeds)
        batch = split_batch(sampled_batch, self.node_type.index_select(0, sampled_batch.input_nodes), self.schema.node_types, self.schema.edge_types)
        sampled = time.perf_counter()
        x = {t: to_device(rows, self.device) for t, rows in self.inputs(batch).items()}
        if batch.seeds.device != self.device:
            batch = batch.to(self.device)
        return PreparedBatch(batch, x, target, sampled - start, time.perf_counter() - sampled)

    def inputs(self, batch: HeteroBatch) -> dict[str, Tensor]:
        """Every type's layer-0 input rows: features of featured types (one gather for all of them), node ids of the others."""
        widths = self.schema.num_features
        featured = [t for t in self.schema.node_types if widths[t]]
        positions = torch.cat([batch.rows[t] for t in featured]) if featured else batch.rows[self.schema.target][:0]
        rows = self.features(batch.input_nodes.index_select(0, positions))
        out, start = {}, 0
        for node_type in self.schema.node_types:
            count = batch.rows[node_type].numel()
            if widths[node_type]:
                out[node_type], start = rows[start : start + count, : widths[node_type]], start + count
            else:
                out[node_type] = self.type_local_id.index_select(0, batch.input_nodes.index_select(0, batch.rows[node_type]))
        return out


def _draw_probability(degree: Tensor, fanout: int, replace: bool) -> Tensor:
    """Probability that one given in-neighbour of a node of in-degree ``degree`` is drawn by the sampler."""
    degree = degree.clamp(min=1).to(torch.float64)
    if fanout == -1:
        return torch.ones_like(degree)
    if replace:
        return -torch.expm1(fanout * torch.log1p(-1.0 / degree))
    return (fanout / degree).clamp_(max=1.0)


class MiniBatchWorkerTrainer(ModelState):
    """Trains one part inside a worker: batches of its training items (owned training nodes, or training edges
    whose destination it owns), gradients all-reduced every step.

    Args:
        context: the worker's rank and world size (rank = part id).
        source: where to load the part from.
        model_spec: model and optimizer settings (identical on every worker).
        train, cache: the ``train`` (batches, fanouts, prefetch) and ``cache`` sections (identical on every worker).
        stores: one store handle per part, in part order (see :func:`~gnndist.store.start_stores`).
        task: what is learnt (default: node classification); ``targets`` its targets (``Task.prepare``).
    """

    def __init__(
        self,
        context,
        source: PartSource,
        model_spec: ModelSpec,
        train: "TrainConfig",
        cache: "CacheConfig",
        stores: Sequence[Any],
        sampling: "SamplingConfig | None" = None,
        task: Task | None = None,
        targets: Any = None,
    ):
        self.context = context
        self.device = device = worker_device(context.device)
        part = self.load_part(source)
        if part.part_id != context.rank:
            raise ValueError(f"Worker of rank {context.rank} was given part {part.part_id}")
        if len(stores) != context.world_size:
            raise ValueError(f"Expected one store per part ({context.world_size}), got {len(stores)}")
        check_fanouts(train.fanouts, model_spec.layers)
        self.model_spec = model_spec
        self.comm = Communicator()
        task = task or resolve_task()
        book = source.load_book()
        objective = task.minibatch(part, book, targets, device, model_spec.seed, context.rank)
        num_train, name = objective.items.numel(), objective.items_name
        counts = torch.zeros(context.world_size, dtype=torch.float64, device=device)
        counts[context.rank] = num_train
        self.train_counts = [int(c) for c in self.comm.all_reduce_sum(counts).tolist()]
        total = sum(self.train_counts)
        if total == 0:
            raise ValueError(f"No part has {name}" + (" ('train_mask' is empty everywhere)" if task.needs_labels else ""))
        if train.batch_size > total:
            raise ValueError(f"Expected 'batch_size' in [1, {total}] (the {name} of all parts) (got {train.batch_size})")
        if num_train == 0:
            warnings.warn(f"Part {part.part_id} has no {name}: its worker takes zero-weight steps (and still serves its features)", UserWarning, stacklevel=2)
        self.batch_sizes = worker_batch_sizes(train.batch_size, self.train_counts)
        self.step_seeds = global_step_seeds(self.train_counts, self.batch_sizes)
        self.data = self.part_batches(
            part,
            stores,
            train.fanouts,
            book=book,
            batch_size=max(self.batch_sizes[context.rank], 1),
            seed=model_spec.seed,
            rank=context.rank,
            cache=cache.policy,
            cache_capacity=cache.capacity,
            cache_options=cache.options,
            replace=train.replace,
            sampler_threads=SAMPLER_THREADS,
            device=device,
            sampling_device=(sampling.device if sampling is not None else "auto"),
            cache_device=cache.device,
            shared_memory=cache.shared_memory,
            shared_memory_mb=cache.shared_memory_mb,
            objective=objective,
            extra_hops=task.extra_hops,
        )
        self.model, self.optimizer = model_spec.build(device)
        self.pipeline = BatchPipeline(self.data.prepare, train.prefetch, SAMPLER_THREADS, train.prefetch_nice)
        self.route = ExchangeRoute(to_device(part.send_indices, device), part.send_counts.tolist(), part.recv_counts.tolist())
        self.setup_evaluation(part)
        self.evaluation = task.part(part, source, targets, self.comm, device, model_spec.seed)
        self.setup_bytes = {"structure_bytes": self.data.local.structure_bytes, "cache_fill_bytes": self.data.cache.fill_bytes}

    def load_part(self, source: PartSource) -> Part:
        """This worker's part (the homogeneous layout the stores, the exchange and the objective refer to)."""
        return source.load()

    def part_batches(self, part: Part, stores: Sequence[Any], fanouts: Sequence[int], **options: Any) -> PartBatches:
        """The part's mini-batch data path (``options``: the other :class:`PartBatches` settings)."""
        return PartBatches(part, stores, fanouts=fanouts, **options)

    def setup_evaluation(self, part: Part) -> None:
        """What :meth:`evaluate` reads: owned rows pulling from owned + ring-1 rows, and their input rows."""
        self.eval_block = self.data.local.owned_block().to(self.device)
        # evaluation's input rows, owned then ring 1, as the part holds them (a view of its file): features do not
        # change, so these halo copies equal what the owners would send, without the exchange's buffers and copy
        self.eval_x = part.x[: self.eval_block.num_src]

    def train_epoch(self, epoch: int, evaluate: bool = True) -> dict[str, Any]:
        """One epoch of steps; returns this worker's share of the epoch's metrics (loss and accuracies are global)."""
        torch.manual_seed(dropout_seed(self.model_spec.seed, epoch, self.context.rank))
        self.comm.stats.reset()
        self.data.reset_stats()
        start, start_cpu = time.perf_counter(), time.process_time()
        self.model.train()
        loss, seeds, times = run_steps(self.model, self.optimizer, self.data.objective, self.pipeline(self.data.batches(epoch)), self.step_seeds, self.comm)
        epoch_time, cpu_time = time.perf_counter() - start, time.process_time() - start_cpu
        cache = self.data.cache.stats
        grad_bytes = self.comm.stats.bytes_sent  # run_steps counts the all-reduced bytes
        result: dict[str, Any] = {
            "loss": loss,
            "epoch_time_s": epoch_time,
            "comm_time_s": times.sync_s,
            "bytes_sent": self.data.remote_bytes,
            "grad_bytes": grad_bytes,
            "seeds": seeds,
            "steps": len(self.step_seeds),
            "cpu_s": cpu_time,
            "cache_hits": cache.hits,
            "cache_misses": cache.misses,
            "remote_requests": self.data.client.stats.requests if self.data.client is not None else 0,
            **_time_fields(times),
            **self.setup_bytes,
        }
        if evaluate:
            start = time.perf_counter()
            self.comm.stats.reset()
            result["evaluation"] = self.evaluate()
            result["eval_time_s"] = time.perf_counter() - start
            result["eval_bytes"] = self.comm.stats.bytes_sent
        return result

    @torch.no_grad()
    def evaluate(self) -> Evaluation:
        """The task's metrics of full-neighbourhood inference on the owned rows (the input's halo rows from the
        part, every later layer's from their owners); reduced over workers."""
        exchange = lambda layer, h: exchange_halo(h, self.route, self.comm)  # noqa: E731
        return self.evaluation.evaluate(self.model, infer(self.model, to_device(self.eval_x, self.device), self.eval_block, exchange))


class HeteroMiniBatchWorkerTrainer(MiniBatchWorkerTrainer):
    """Trains one part of a heterogeneous graph (its source loads a :class:`~gnndist.partition.hetero.HeteroPart`
    of :func:`~gnndist.partition.hetero.minibatch_parts`): typed batches (:class:`HeteroPartBatches`), the
    homogeneous steps and all-reduce, and the heterogeneous full-graph trainer's exact evaluation."""

    def load_part(self, source: PartSource) -> Part:
        self.hetero = source.load()
        return self.hetero.part

    def part_batches(self, part: Part, stores: Sequence[Any], fanouts: Any, **options: Any) -> PartBatches:
        schema = self.model_spec.schema
        return HeteroPartBatches(self.hetero, stores, schema=schema, fanouts=relation_fanouts(fanouts, schema.edge_types, self.model_spec.layers), **options)

    def setup_evaluation(self, part: Part) -> None:
        """The typed part's rows, relations and layer-0 inputs (owned + ring 1) on the worker's device."""
        self.typed = self.hetero.to(self.device)
        self.eval_block = self.typed.block()

    def evaluate(self) -> Evaluation:
        """The task's metrics of exact-exchange inference on the whole part, reduced over workers."""
        h = infer_typed(self.model, self.typed, self.eval_block, lambda layer, h: exchange_halo(h, self.route, self.comm))
        return self.evaluation.evaluate(self.model, h)


@dataclass(frozen=True)
class ViewPartLoader:
    """Loads the homogeneous part of a typed part's source: what a store serves (its padded feature rows, its in-edges)."""

    source: PartSource

    def load(self) -> Part:
        return self.source.load().part


def minibatch_epoch_metrics(epoch: int, results: list[dict[str, Any]]) -> EpochMetrics:
    """Combines the workers' results of one epoch: sums of seeds, cache counters and bytes; the slowest worker's times."""
    metrics = epoch_metrics(epoch, results)
    total = lambda key: sum(r.get(key, 0) for r in results)  # noqa: E731
    slowest = lambda key: max(r.get(key, 0.0) for r in results)  # noqa: E731
    hits, misses = total("cache_hits"), total("cache_misses")
    metrics.extra.update(
        seeds=total("seeds"),
        steps=results[0]["steps"],
        seeds_per_s=total("seeds") / metrics.epoch_time_s,
        cache_hits=hits,
        cache_misses=misses,
        cache_hit_rate=hits / (hits + misses) if hits + misses else None,
        remote_bytes=total("bytes_sent"),
        remote_requests=total("remote_requests"),
        structure_bytes=total("structure_bytes"),
        cache_fill_bytes=total("cache_fill_bytes"),
        **{key: slowest(key) for key in ("sample_s", "fetch_s", "wait_s", "compute_s", "sync_s")},
    )
    if "eval_time_s" in results[0]:
        metrics.extra.update(eval_time_s=slowest("eval_time_s"), eval_bytes=total("eval_bytes"))
    return metrics


def start_minibatch(
    group,
    sources: Sequence[PartSource],
    model_spec: ModelSpec,
    train: "TrainConfig",
    cache: "CacheConfig",
    *,
    stores: Sequence[Any] | None = None,
    sampling: "SamplingConfig | None" = None,
    task: Task | None = None,
    targets: Any = None,
    worker: type[MiniBatchWorkerTrainer] = MiniBatchWorkerTrainer,
) -> GroupTrainer:
    """Starts one store per part (unless ``stores`` are given, e.g. shared between runs) and ``worker`` (a
    :class:`MiniBatchWorkerTrainer`, or :class:`HeteroMiniBatchWorkerTrainer` for typed parts, whose stores
    serve the parts' homogeneous rows) on every worker; returns the driver, which stops the stores it started
    when shut down."""
    check_fanouts(train.fanouts, model_spec.layers)
    if len(sources) != group.num_workers:
        raise ValueError(f"Expected one part source per worker ({group.num_workers}), got {len(sources)}")
    if stores is not None:
        group.setup(worker, [(source,) for source in sources], model_spec=model_spec, train=train, cache=cache, stores=list(stores), sampling=sampling, task=task, targets=targets)
        return GroupTrainer(group, minibatch_epoch_metrics)
    store_sources = [ViewPartLoader(source) for source in sources] if issubclass(worker, HeteroMiniBatchWorkerTrainer) else sources
    started = StoreSet(store_sources, placement_group=group.placement_group, timeout_s=max(group.timeout_s, 600.0))
    try:
        group.setup(worker, [(source,) for source in sources], model_spec=model_spec, train=train, cache=cache, stores=started.handles, sampling=sampling, task=task, targets=targets)
    except BaseException:
        started.stop()
        raise
    return GroupTrainer(group, minibatch_epoch_metrics, stores=started)

