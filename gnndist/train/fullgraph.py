"""Full-graph training over parts: per-layer halo exchange, gradients all-reduced every step.

Three pieces: :class:`FullGraphWorkerTrainer` trains one part inside a worker (torch.distributed);
:class:`~gnndist.train.driver.GroupTrainer` drives a :class:`~gnndist.runtime.WorkerGroup` of them;
:class:`LocalFullGraphTrainer` runs every part in one process (``mode=local``). The model is driven layer
by layer (:func:`~gnndist.train.collective.halo_forward`); the communication strategy fills the halo.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.comm import Communicator, ExchangeRoute, exchange_halo, resolve_strategy
from gnndist.device import to_device, worker_device
from gnndist.hetero import HeteroBlock
from gnndist.models import ModelSpec
from gnndist.partition import Part, PartitionBook, load_book, load_part
from gnndist.seeding import dropout_seed
from gnndist.tasks import resolve_task
from gnndist.tasks.base import Evaluation, Task
from gnndist.train.collective import all_reduce_gradients, halo_forward, hetero_halo_forward, infer, infer_typed
from gnndist.train.driver import GroupTrainer
from gnndist.train.metrics import EpochMetrics, SplitCounts, node_loss
from gnndist.train.single import ModelState


@dataclass(frozen=True)
class PartSource:
    """Where a worker finds its part and the partition book: a shared partition directory, or the Ray object store."""

    part_id: int
    directory: str | None = None
    object_ref: Any = None
    book_ref: Any = None

    def load(self) -> Part:
        if self.directory is not None:
            return load_part(Path(self.directory), self.part_id)
        import ray

        return ray.get(self.object_ref)

    def load_book(self) -> PartitionBook:
        """The partition book (where every node lives), which mini-batch workers route store requests by."""
        if self.directory is not None:
            return load_book(Path(self.directory))
        if self.book_ref is None:
            raise ValueError(f"PartSource of part {self.part_id} has neither a directory nor a book_ref to load the partition book from")
        import ray

        return ray.get(self.book_ref)


class FullGraphWorkerTrainer(ModelState):
    """Trains one part: owned rows pull from owned + 1-hop halo rows; the strategy fills the halo.

    Args:
        context: the worker's rank and world size (rank = part id).
        source: where to load the part from.
        model_spec: model and optimizer settings (identical on every worker).
        strategy: communication strategy name; ``strategy_options`` its options.
        task: what is learnt (default: node classification); ``targets`` its targets (``Task.prepare``).
    """

    def __init__(self, context, source: PartSource, model_spec: ModelSpec, strategy: str = "sync", strategy_options: dict | None = None, task: Task | None = None, targets: Any = None):
        self.context = context
        self.part = part = self.load_part(source)
        if part.part_id != context.rank:
            raise ValueError(f"Worker of rank {context.rank} was given part {part.part_id}")
        self.model_spec = model_spec
        self.device = device = worker_device(context.device)
        self.model, self.optimizer = model_spec.build(device)
        self.block, self.x = self.model_inputs(device)
        self.comm = Communicator()
        self.route = ExchangeRoute(to_device(part.send_indices, device), part.send_counts.tolist(), part.recv_counts.tolist())
        self.strategy = resolve_strategy(strategy, **(strategy_options or {}))
        self.strategy.setup(self.route, self.comm, self.block, rank=context.rank, seed=model_spec.seed)
        self.objective = (task or resolve_task()).part(part, source, targets, self.comm, device, model_spec.seed)
        self.grad_bytes = sum(p.numel() * p.element_size() for p in self.model.parameters())

    def load_part(self, source: PartSource) -> Part:
        """This worker's part (the homogeneous layout the exchange plan refers to)."""
        return source.load()

    def model_inputs(self, device: torch.device) -> tuple[Block, Tensor]:
        """The structure the model reads (owned rows pulling from owned + 1-hop halo rows) and its input rows."""
        block = self.part.block().to(device)
        return block, to_device(self.part.x[: block.num_src], device)

    def forward(self, block: Any, exchange) -> Tensor:
        """The model's owned output rows over ``block`` (the strategy's for this epoch), halo rows from ``exchange``."""
        return halo_forward(self.model, self.x, block, exchange)

    def train_epoch(self, epoch: int, evaluate: bool = True) -> dict[str, Any]:
        """One step on the whole part; returns this worker's share of the epoch's metrics."""
        torch.manual_seed(dropout_seed(self.model_spec.seed, epoch, self.context.rank))
        self.comm.stats.reset()
        start, cpu_start = time.perf_counter(), time.process_time()
        block = self.strategy.begin_epoch(epoch)
        self.model.train()
        self.optimizer.zero_grad()
        loss = self.objective.loss(self.model, self.forward(block, self.strategy.exchange), epoch)
        loss.backward()
        halo_bytes, halo_seconds = self.comm.stats.bytes_sent, self.comm.stats.seconds
        (total_loss,) = all_reduce_gradients(self.model, self.comm, [loss]).tolist()
        self.optimizer.step()
        epoch_time = time.perf_counter() - start
        result = {
            "loss": total_loss,
            "epoch_time_s": epoch_time,
            "cpu_s": time.process_time() - cpu_start,  # this process's CPU seconds (every thread), waits excluded
            "comm_time_s": self.comm.stats.seconds,
            "halo_comm_time_s": halo_seconds,
            "bytes_sent": halo_bytes,
            "grad_bytes": self.grad_bytes,
        }
        if evaluate:
            result["evaluation"] = self.evaluate()
        return result

    def evaluate(self) -> Evaluation:
        """The task's metrics of exact-exchange inference on the whole part, reduced over workers."""
        h = infer(self.model, self.x, self.block, lambda layer, h: exchange_halo(h, self.route, self.comm))
        return self.objective.evaluate(self.model, h)

    def state_dict(self) -> dict[str, Any]:
        """Model and optimizer (identical on every rank), this rank's strategy state and RNG states."""
        from gnndist.runtime.checkpoint import rng_state

        return {**super().state_dict(), "strategy": self.strategy.state_dict(), "rng": rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from gnndist.runtime.checkpoint import set_rng_state

        super().load_state_dict(state)
        self.strategy.load_state_dict(state.get("strategy", {}))
        if "rng" in state:
            set_rng_state(state["rng"])


class HeteroFullGraphWorkerTrainer(FullGraphWorkerTrainer):
    """Trains one part of a heterogeneous graph (its source loads a :class:`~gnndist.partition.hetero.HeteroPart`):
    each type's owned rows pull from its owned + halo rows per relation; halo rows travel in the homogeneous
    layout of the view's part, so the exchange, the strategy and the objective are the homogeneous ones."""

    def load_part(self, source: PartSource) -> Part:
        self.hetero = source.load()
        return self.hetero.part

    def model_inputs(self, device: torch.device) -> tuple[HeteroBlock, dict[str, Tensor]]:
        self.hetero = self.hetero.to(device)
        return self.hetero.block(), self.hetero.inputs

    def forward(self, block: Any, exchange) -> Tensor:
        return hetero_halo_forward(self.model, self.hetero, block, exchange)

    def evaluate(self) -> Evaluation:
        """The task's metrics of exact-exchange inference on the whole part, reduced over workers."""
        h = infer_typed(self.model, self.hetero, self.block, lambda layer, h: exchange_halo(h, self.route, self.comm))
        return self.objective.evaluate(self.model, h)


def epoch_metrics(epoch: int, results: list[dict[str, Any]]) -> EpochMetrics:
    """Combines the workers' results of one epoch (loss and evaluation are already global)."""
    first = results[0]
    bytes_per_worker = [r["bytes_sent"] for r in results]
    metrics = EpochMetrics(
        epoch=epoch,
        loss=first["loss"],
        epoch_time_s=max(r["epoch_time_s"] for r in results),
        bytes_sent=sum(bytes_per_worker),
        extra={
            "comm_time_s": max(r["comm_time_s"] for r in results),
            "cpu_s": sum(r["cpu_s"] for r in results),  # every worker's CPU seconds
            "compute_time_s": max(r["epoch_time_s"] - r["comm_time_s"] for r in results),
            "bytes_sent_max_worker": max(bytes_per_worker),
            "grad_bytes": sum(r["grad_bytes"] for r in results),
            **{k: v for k, v in first.items() if k.startswith("sample_") or k.startswith("cache_")},
        },
    )
    if "evaluation" in first:
        first["evaluation"].apply(metrics)
    return metrics


def start_fullgraph(
    group,
    sources: Sequence[PartSource],
    model_spec: ModelSpec,
    strategy: str = "sync",
    strategy_options: dict | None = None,
    task: Task | None = None,
    targets: Any = None,
    worker: type[FullGraphWorkerTrainer] = FullGraphWorkerTrainer,
) -> GroupTrainer:
    """Builds ``worker`` (a :class:`FullGraphWorkerTrainer`, or :class:`HeteroFullGraphWorkerTrainer` for
    heterogeneous parts) on every worker of ``group`` (``sources[rank]`` its part); returns the driver."""
    if len(sources) != group.num_workers:
        raise ValueError(f"Expected one part source per worker ({group.num_workers}), got {len(sources)}")
    group.setup(worker, [(source,) for source in sources], model_spec=model_spec, strategy=strategy, strategy_options=strategy_options, task=task, targets=targets)
    return GroupTrainer(group, epoch_metrics)


class LocalFullGraphTrainer(ModelState):
    """Every part in this process (``mode=local``): the parts' rows are laid side by side and the exchange is a gather.

    Sources are ordered [owned rows of part 0..P-1, halo rows of part 0..P-1]; destinations are all
    owned rows, so the union is one Block and the exchange before a layer is ``h[halo_source]``.
    Communication is counted as the bytes the distributed exchange would move.
    """

    def __init__(self, parts: list[Part], model_spec: ModelSpec, device: torch.device | str = "cpu"):
        parts = sorted(parts, key=lambda p: p.part_id)
        self.model_spec, self.device = model_spec, torch.device(device)
        self.model, self.optimizer = model_spec.build(self.device)
        owned_counts = [p.num_owned for p in parts]
        halo_counts = [p.num_halo_per_hop[0] for p in parts]
        total_owned = sum(owned_counts)
        owned_offsets = torch.tensor([0, *owned_counts]).cumsum(0)
        halo_offsets = total_owned + torch.tensor([0, *halo_counts]).cumsum(0)
        union_position = torch.empty(total_owned, dtype=torch.long)  # global id -> position among owned rows
        indptrs, indices, degrees_owned, degrees_halo, halo_source = [], [], [], [], []
        edge_offset = 0
        for p, part in enumerate(parts):
            union_position[part.owned_global_ids] = owned_offsets[p] + torch.arange(part.num_owned)
        for p, part in enumerate(parts):
            block = part.block()
            local_to_union = torch.cat([owned_offsets[p] + torch.arange(part.num_owned), halo_offsets[p] + torch.arange(halo_counts[p])])
            indptrs.append(block.indptr[1:] + edge_offset if p else block.indptr + edge_offset)
            edge_offset += block.num_edges
            indices.append(local_to_union[block.indices])
            degrees_owned.append(block.src_degree[: part.num_owned])
            degrees_halo.append(block.src_degree[part.num_owned :])
            halo_source.append(union_position[part.global_ids[part.halo_slice(1)]])
        halo_source = torch.cat(halo_source)
        num_src = total_owned + halo_source.numel()
        self.block = Block(torch.cat(indptrs), torch.cat(indices), num_src, torch.cat(degrees_owned + degrees_halo)).to(self.device)
        self.halo_source = to_device(halo_source, self.device)
        self.x = to_device(torch.cat([p.x[: p.num_owned] for p in parts] + [p.x[p.halo_slice(1)] for p in parts]), self.device)
        self.y = to_device(torch.cat([p.y[: p.num_owned] for p in parts]), self.device)
        self.masks = tuple(
            None if getattr(parts[0], name) is None else to_device(torch.cat([getattr(p, name)[: p.num_owned] for p in parts]), self.device) for name in ("train_mask", "val_mask", "test_mask")
        )
        self.bytes_sent = 0

    def _exchange(self, layer: int, h: Tensor) -> Tensor:
        self.bytes_sent += self.halo_source.numel() * h.size(1) * h.element_size() * (2 if self.model.training else 1)
        return h[self.halo_source]

    def train_epoch(self, epoch: int, evaluate: bool = True) -> EpochMetrics:
        torch.manual_seed(dropout_seed(self.model_spec.seed, epoch))
        self.bytes_sent = 0
        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad()
        logits = halo_forward(self.model, self.x, self.block, self._exchange)
        train_mask = self.masks[0]
        loss = node_loss(logits[train_mask], self.y[train_mask])
        loss.backward()
        self.optimizer.step()
        metrics = EpochMetrics(epoch=epoch, loss=loss.item(), epoch_time_s=time.perf_counter() - start, bytes_sent=self.bytes_sent)
        if evaluate:
            with torch.no_grad():
                self.model.eval()
                logits = halo_forward(self.model, self.x, self.block, self._exchange)
            metrics.train_acc, metrics.val_acc, metrics.test_acc = SplitCounts.of(logits, self.y, self.masks).accuracies()
        return metrics
