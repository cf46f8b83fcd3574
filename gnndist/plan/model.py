"""The cost model: one epoch's time, bytes and peak memory per worker, from a workload, a calibration and a cluster.

Pure arithmetic on plain numbers (no torch, no graph), so a plan is cheap, deterministic and testable by
hand. Where the numbers come from: :mod:`gnndist.plan.workload` (a partition's quality report, or a graph
shape and a partitioner model), :mod:`gnndist.plan.calibration` (rates measured on this machine) and the
``Cluster`` the user describes. Every epoch is bulk-synchronous: the slowest worker sets the epoch time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gnndist.models.messages import message_width

if TYPE_CHECKING:
    from gnndist.plan.calibration import Calibration
    from gnndist.plan.probe import BatchShape

FLOAT_BYTES = 4
INDEX_BYTES = 8  # int64 CSR offsets and indices
STRATEGIES = ("sync", "stale", "sampled", "quantized", "cached")
MODES = ("fullgraph", "minibatch")


@dataclass(frozen=True)
class PartLoad:
    """One worker's share of the graph (a row of the partition quality report), and the measured shape of its
    sampled batches when the graph was at hand (:mod:`gnndist.plan.probe`; else the frontier model estimates it)."""

    owned_nodes: int
    owned_edges: int
    halo_nodes: int
    send_rows: int
    train_nodes: int
    batch: "BatchShape | None" = None


@dataclass(frozen=True)
class Workload:
    """What one epoch has to do, without the graph: per-part sizes and the model's shape.

    Attributes:
        mode: ``fullgraph`` or ``minibatch``.
        model: model name (``gcn`` aggregates after its dense layer, every other model before it).
        widths: layer widths ``[features, hidden, ..., classes]`` (``layers + 1`` entries).
        parts: one :class:`PartLoad` per worker.
        num_params: trainable parameters (the gradient all-reduce sends them every step).
        strategy, strategy_options: the full-graph communication strategy (``comm.strategy``).
        edge_cut_fraction: fraction of edges whose ends live on different parts (mini-batch remote rows).
        batch_size, fanouts: mini-batch seeds per step (all workers) and neighbours per hop.
        source: where the sizes came from (``partition``: a quality report; ``shape``: a partitioner model).
    """

    mode: str
    model: str
    widths: list[int]
    parts: list[PartLoad]
    num_params: int
    strategy: str = "sync"
    strategy_options: dict[str, Any] = field(default_factory=dict)
    edge_cut_fraction: float = 0.0
    batch_size: int = 1024
    fanouts: list[int] = field(default_factory=lambda: [10, 5])
    source: str = "partition"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Unknown mode {self.mode!r} for a plan; expected one of {', '.join(MODES)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"Unknown comm.strategy {self.strategy!r}; the planner knows {', '.join(STRATEGIES)}")
        if len(self.widths) < 2:
            raise ValueError(f"Expected widths [features, ..., classes] with at least 2 entries (got {self.widths})")
        if not self.parts:
            raise ValueError("Expected at least one part (got none)")

    @property
    def num_parts(self) -> int:
        return len(self.parts)

    @property
    def layers(self) -> int:
        return len(self.widths) - 1


@dataclass(frozen=True)
class Cluster:
    """Where the workers run.

    Attributes:
        same_machine: every worker on this one machine (they share ``machine_cores`` cores and talk over
            loopback at the calibrated rate); else one machine per worker on a ``network_gbps`` network.
        network_gbps: link rate between machines in Gbit/s (ignored with ``same_machine``).
        cores_per_worker: cores (torch threads) each worker computes with.
        machine_cores: cores of the machine the workers share (``same_machine`` only).
        latency_s: cost of one message (added once per peer per collective).
    """

    same_machine: bool
    cores_per_worker: float
    machine_cores: int = 1
    network_gbps: float | None = None
    latency_s: float = 50e-6

    def __post_init__(self) -> None:
        if self.cores_per_worker <= 0:
            raise ValueError(f"Expected cores per worker > 0 (got {self.cores_per_worker})")
        if not self.same_machine and (self.network_gbps is None or self.network_gbps <= 0):
            raise ValueError(f"Expected --network-gbps > 0 for workers on separate machines (got {self.network_gbps})")
        if self.latency_s < 0:
            raise ValueError(f"Expected a message latency >= 0 (got {self.latency_s})")

    def effective_cores(self, num_workers: int) -> float:
        """Cores one worker really gets: on one machine, workers beyond its cores time-share them."""
        if self.same_machine:
            return min(self.cores_per_worker, self.machine_cores / num_workers)
        return self.cores_per_worker

    def bytes_per_s(self, calibration: "Calibration") -> float:
        return calibration.loopback_bytes_per_s if self.same_machine else self.network_gbps * 1e9 / 8

    def describe(self) -> str:
        where = "same machine (loopback)" if self.same_machine else f"{self.network_gbps:g} Gb/s network"
        return f"{where}, {self.cores_per_worker:g} cores per worker"


@dataclass(frozen=True)
class Prediction:
    """One epoch, predicted. Bytes are summed over workers like the run's metrics (``bytes_sent``)."""

    num_parts: int
    mode: str
    strategy: str
    epoch_s: float
    compute_s: float
    comm_s: float
    halo_bytes: int
    grad_bytes: int
    peak_worker_bytes: int
    slowest_rank: int
    steps: int
    memory: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compute_seconds(flops_rows: float, agg_elements: float, calibration: "Calibration", cores: float) -> float:
    """Forward seconds of ``flops_rows`` dense FLOPs and ``agg_elements`` aggregated edge x width elements on ``cores``."""
    single = flops_rows / calibration.matmul_flops_per_s + agg_elements * calibration.aggregation_s_per_element
    return single / calibration.speedup(cores)


def layer_costs(model: str, widths: list[int], dst_rows: list[int], src_rows: list[int], edges: list[int], transformed_rows: list[int] | None = None) -> tuple[float, float]:
    """Forward dense FLOPs and aggregated elements of every layer, summed.

    ``dst_rows[i]``, ``src_rows[i]``, ``edges[i]``: the destinations, sources and edges layer ``i`` runs on;
    ``transformed_rows[i]``: the rows its row-wise half maps (default: the sources; full-graph training maps
    owned rows only after layer 0). A layer whose row-wise half narrows the rows
    (:func:`~gnndist.models.messages.message_width`) maps them first and aggregates at the output width;
    otherwise it aggregates at the input width, then maps the destinations (GCN once; SAGE-like models twice:
    neighbours and root).
    """
    flops = elements = 0.0
    maps = 1 if model == "gcn" else 2
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        if message_width(model, w_in, w_out) < w_in:
            flops += 2.0 * maps * (src_rows if transformed_rows is None else transformed_rows)[i] * w_in * w_out
            elements += edges[i] * w_out
        else:
            flops += 2.0 * maps * dst_rows[i] * w_in * w_out
            elements += edges[i] * w_in
    return flops, elements


def halo_bytes_per_epoch(workload: Workload) -> int:
    """Boundary bytes of one full-graph epoch, all workers: halo rows x message width x 4 for every layer but the
    first (whose halo input features are stored with the part), forward rows and backward gradients, scaled by the strategy."""
    halo = sum(part.halo_nodes for part in workload.parts)
    widths = exchanged_widths(workload)
    exact = 2 * halo * FLOAT_BYTES * sum(widths)
    return int(exact * strategy_byte_factor(workload.strategy, workload.strategy_options, widths))


def exchanged_widths(workload: Workload) -> list[int]:
    """Width of the rows exchanged before each of layers 1 .. L-1 (the row-wise half's columns a halo row needs)."""
    return [message_width(workload.model, w_in, w_out) for w_in, w_out in zip(workload.widths[1:-1], workload.widths[2:])]


def strategy_byte_factor(strategy: str, options: dict[str, Any], widths: list[int]) -> float:
    """Bytes sent relative to ``sync``: ``sampled`` keeps a fraction ``p`` of boundary rows, ``quantized``
    sends ``bits`` per value plus an fp16 scale per row; ``stale`` sends as much as ``sync`` (overlapped);
    ``cached`` depends on how fast rows change and is planned as ``sync`` (an upper bound)."""
    if strategy == "sampled":
        return float(options.get("p", 0.1))
    if strategy == "quantized":
        bits = int(options.get("bits", 8))
        mean_width = sum(widths) / len(widths) if widths else 1
        return bits / 32 + 2 / (FLOAT_BYTES * mean_width)
    return 1.0


def allreduce_bytes_per_worker(num_params: int, num_parts: int) -> float:
    """Bytes one worker sends in a ring all-reduce of the fp32 gradients: ``params x 4 x 2 (P-1) / P``."""
    return num_params * FLOAT_BYTES * 2 * (num_parts - 1) / num_parts


def predict(workload: Workload, calibration: "Calibration", cluster: Cluster) -> Prediction:
    """One epoch of ``workload`` on ``cluster`` with the rates of ``calibration``."""
    if workload.mode == "fullgraph":
        return _fullgraph(workload, calibration, cluster)
    return _minibatch(workload, calibration, cluster)


def _comm_seconds(bytes_sent: float, messages: int, rate: float, cluster: Cluster) -> float:
    return bytes_sent / rate + messages * cluster.latency_s


def _fullgraph(workload: Workload, calibration: "Calibration", cluster: Cluster) -> Prediction:
    P, L = workload.num_parts, workload.layers
    cores = cluster.effective_cores(P)
    rate = cluster.bytes_per_s(calibration)
    halo_total = halo_bytes_per_epoch(workload)
    halo_all = sum(part.halo_nodes for part in workload.parts) or 1
    grad_bytes = allreduce_bytes_per_worker(workload.num_params, P)
    exchanges = 2 * (L - 1) if P > 1 else 0  # all-to-alls per epoch: forward rows and backward gradients of layers 1 .. L-1
    worst = None
    for rank, part in enumerate(workload.parts):
        n_src = part.owned_nodes + part.halo_nodes
        flops, elements = layer_costs(workload.model, workload.widths, [part.owned_nodes] * L, [n_src] * L, [part.owned_edges] * L, [n_src] + [part.owned_nodes] * (L - 1))
        compute = compute_seconds(flops, elements, calibration, cores) * calibration.train_factor + calibration.step_overhead_s
        # a worker sends its rows and receives its halo: the larger of the two is on its link
        share = max(part.halo_nodes, part.send_rows) / halo_all
        halo_s = _comm_seconds(halo_total * share, exchanges * (P - 1), rate, cluster) if P > 1 else 0.0
        grad_s = _comm_seconds(grad_bytes, 2 * (P - 1), rate, cluster) if P > 1 else 0.0
        halo_visible = max(0.0, halo_s - compute) if workload.strategy == "stale" else halo_s  # PipeGCN hides it behind compute
        epoch = compute + halo_visible + grad_s
        if worst is None or epoch > worst[0]:
            worst = (epoch, compute, halo_visible + grad_s, rank)
    memory = [_fullgraph_memory(workload, part, calibration) for part in workload.parts]
    peak_rank = max(range(P), key=lambda r: memory[r]["total"])
    return Prediction(P, "fullgraph", workload.strategy, worst[0], worst[1], worst[2], halo_total, int(grad_bytes * P) if P > 1 else 0,
                      memory[peak_rank]["total"], worst[3], 1, memory[peak_rank])


def _fullgraph_memory(workload: Workload, part: PartLoad, calibration: "Calibration") -> dict[str, int]:
    """Resident bytes of one full-graph worker at its peak (during backward)."""
    n_src = part.owned_nodes + part.halo_nodes
    hidden = workload.widths[1:-1]
    features = n_src * workload.widths[0] * FLOAT_BYTES
    csr = (part.owned_nodes + 1 + part.owned_edges) * INDEX_BYTES * calibration.structure_copies
    # what autograd keeps per layer: the layer's input rows (owned + halo) and its output, scaled by the calibrated factor;
    # backward then holds gradients of about the same size beside them
    activations = 2 * sum(n_src * (w_in + w_out) for w_in, w_out in zip(workload.widths[:-1], workload.widths[1:])) * FLOAT_BYTES * calibration.activation_factor
    exchange = 2 * max(part.halo_nodes, part.send_rows) * max(exchanged_widths(workload), default=0) * FLOAT_BYTES
    if workload.strategy == "stale":
        exchange *= 2 * len(hidden)  # rows and gradients of every layer kept between epochs
    params = workload.num_params * FLOAT_BYTES * 4  # parameters, gradients, Adam's two moments
    # the part's file is checked in blocks and read tensor by tensor into the tensors above: no second copy of it
    parts = {"runtime": calibration.runtime_bytes, "features": features, "structure": csr, "activations": activations, "exchange": exchange, "parameters": params}
    parts = {key: int(value) for key, value in parts.items()}
    parts["total"] = sum(parts.values())
    return parts


def expected_distinct(draws: float, population: float) -> float:
    """Expected distinct items among ``draws`` uniform draws from ``population`` (sampled neighbours repeat)."""
    if population <= 0:
        return 0.0
    return population * -math.expm1(-draws / population)


def minibatch_layers(workload: Workload, part: PartLoad, seeds: int) -> tuple[list[int], list[int], list[int]]:
    """Destinations, sources and edges of each layer of one sampled batch, in forward order.

    The part's measured batch shape, scaled to ``seeds``, when it has one. Else a model: hop ``k`` draws
    ``min(fanout, mean degree)`` in-neighbours of each frontier node; the new sources are the distinct draws
    among all nodes (:func:`expected_distinct`), so frontiers saturate on small graphs.
    """
    if part.batch is not None:
        return part.batch.layers(seeds)
    total_nodes = sum(p.owned_nodes for p in workload.parts)
    degree = sum(p.owned_edges for p in workload.parts) / max(total_nodes, 1)
    dst, src, edges = [], [], []
    frontier = float(seeds)
    for fanout in workload.fanouts:  # hop order, from the seeds outwards; the seeds' layer is the last block
        draws = frontier * (degree if fanout == -1 else min(fanout, degree))
        sources = min(total_nodes, frontier + expected_distinct(draws, total_nodes))
        dst.append(int(frontier))
        src.append(int(sources))
        edges.append(int(draws))
        frontier = sources
    return dst[::-1], src[::-1], edges[::-1]


def overlapped_step(compute: float, loader: float, cores: float) -> float:
    """Seconds of a step whose next batch a prefetch thread prepares (``loader`` s of one core) during training.

    The prefetch thread runs below training's priority, and training's threads fill the worker's ``cores``
    while they compute: the loader's core-seconds come on top (``compute + loader / cores``), and a step is
    never shorter than the loader itself. On one core or less the two take turns.
    """
    return max(loader, compute + loader / cores) if cores >= 2 else compute + loader


def _minibatch(workload: Workload, calibration: "Calibration", cluster: Cluster) -> Prediction:
    P = workload.num_parts
    cores = cluster.effective_cores(P)
    rate = cluster.bytes_per_s(calibration)
    train_total = sum(part.train_nodes for part in workload.parts)
    steps = max(1, math.ceil(train_total / workload.batch_size))
    grad_bytes = allreduce_bytes_per_worker(workload.num_params, P)
    row_bytes = workload.widths[0] * FLOAT_BYTES
    worst, remote_total = None, 0.0
    for rank, part in enumerate(workload.parts):
        seeds = max(1, math.ceil(part.train_nodes / steps))
        dst, src, edges = minibatch_layers(workload, part, seeds)
        flops, elements = layer_costs(workload.model, workload.widths, dst, src, edges)
        compute = compute_seconds(flops, elements, calibration, cores) * calibration.minibatch_factor + calibration.step_overhead_s
        sample = sum(edges) * calibration.sample_s_per_edge / calibration.speedup(min(cores, 1.0))  # the sampler runs on one thread
        # input rows owned elsewhere: counted in the measured batches, else a sampled neighbour crosses the cut
        # with the graph's edge-cut probability
        if P == 1:
            remote_rows = 0.0
        elif part.batch is not None:
            remote_rows = part.batch.remote_rows(seeds)
        else:
            remote_rows = (src[0] - seeds) * workload.edge_cut_fraction
        # on one machine remote rows are read in place from the stores' shared memory (cache.shared_memory, the
        # default): the gather below covers them; across machines they cross the network
        fetch = _comm_seconds(remote_rows * row_bytes, P - 1, rate, cluster) if P > 1 and not cluster.same_machine else 0.0
        sync = _comm_seconds(grad_bytes, 2 * (P - 1), rate, cluster) if P > 1 else 0.0
        gather = src[0] * row_bytes / calibration.copy_bytes_per_s / min(cores, 1.0)
        loader = sample + fetch + gather
        step = overlapped_step(compute, loader, cores)
        epoch = steps * (step + sync)
        remote_total += remote_rows * row_bytes * steps
        if worst is None or epoch > worst[0]:
            worst = (epoch, steps * compute, steps * (fetch + sync), rank)
    memory = [_minibatch_memory(workload, part, calibration) for part in workload.parts]
    peak_rank = max(range(P), key=lambda r: memory[r]["total"])
    return Prediction(P, "minibatch", "-", worst[0], worst[1], worst[2], int(remote_total), int(grad_bytes * P * steps) if P > 1 else 0,
                      memory[peak_rank]["total"], worst[3], steps, memory[peak_rank])


def _minibatch_memory(workload: Workload, part: PartLoad, calibration: "Calibration") -> dict[str, int]:
    """Resident bytes of one mini-batch worker: its owned rows and structure, the batches in flight, the model."""
    features = (part.owned_nodes + part.halo_nodes) * workload.widths[0] * FLOAT_BYTES  # the part holds its halo rows too
    csr = (part.owned_nodes + part.halo_nodes + 1 + part.owned_edges) * INDEX_BYTES * calibration.structure_copies
    seeds = max(1, workload.batch_size // workload.num_parts)
    dst, src, edges = minibatch_layers(workload, part, seeds)
    batch = src[0] * workload.widths[0] * FLOAT_BYTES + sum(edges) * INDEX_BYTES * 2
    activations = 2 * sum(s * (w_in + w_out) for s, w_in, w_out in zip(src, workload.widths[:-1], workload.widths[1:])) * FLOAT_BYTES * calibration.activation_factor  # kept + their gradients
    params = workload.num_params * FLOAT_BYTES * 4
    # 3 batches in flight (training, prefetched, being sampled); the part's file streams into the tensors above (one copy)
    parts = {"runtime": calibration.runtime_bytes, "features": features, "structure": csr, "activations": activations, "exchange": batch * 3, "parameters": params}
    parts = {key: int(value) for key, value in parts.items()}
    parts["total"] = sum(parts.values())
    return parts
