"""The aggregation benchmark on several workers: the suite on every device at once, and the
partitioned benchmark (halo exchange + local aggregation per layer) over 1..N Ray workers.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import psutil
import torch

from gnndist.aggregation import resolve_aggregation
from gnndist.aggregation.reference import reference_aggregate, tie_free_features
from gnndist.benchmarks.aggregation_grid import AggregationBenchConfig, resolve_suite
from gnndist.benchmarks.aggregation_measure import DeviceReport, Measurement, fail_row, run_device
from gnndist.block import Block


def _worker_resources(config: AggregationBenchConfig, count: int) -> tuple[str, float, int]:
    """``(device type, CPUs per worker, torch threads per worker)`` for ``count`` concurrent workers."""
    kind = torch.device(config.devices[0]).type
    cores = psutil.cpu_count(logical=True) or 1
    cpus = max(1, cores // count)
    return kind, float(cpus), config.threads or cpus


class _SuiteWorker:
    """Hosted by a Ray worker: runs the whole suite on its own device (a GPU, or its share of the cores)."""

    def __init__(self, context, config: AggregationBenchConfig):
        self.context, self.config = context, config

    def run(self) -> DeviceReport:
        kind = "cuda" if self.context.device == "cuda" else "cpu"
        label = f"{kind}:{self.context.rank}"  # Ray gives each GPU worker its own device, which it sees as cuda:0
        report = run_device(replace(self.config, workers=1, scaling=None), kind, log=lambda line: print(f"[{label}] {line}", flush=True))
        report.device = label
        for row in report.measurements:
            row.device = label
        return report


def run_concurrent(config: AggregationBenchConfig, log: Callable[[str], None] = print) -> list[DeviceReport]:
    """Runs the suite in ``config.workers`` Ray actors at once (one per GPU, or per share of the CPU cores)."""
    from gnndist.runtime import WorkerGroup, ray_cluster

    kind, cpus, threads = _worker_resources(config, config.workers)
    log(f"starting {config.workers} {kind} workers ({cpus:g} CPUs, {threads} threads each)")
    with ray_cluster(num_cpus=max(cpus * config.workers, 1), num_gpus=config.workers if kind == "cuda" else None):
        group = WorkerGroup(config.workers, cpus_per_worker=cpus, gpus_per_worker=1.0 if kind == "cuda" else 0.0, num_threads=threads, timeout_s=120.0)
        try:
            group.setup(_SuiteWorker, [(config,)] * config.workers)
            return group.run("run", timeout_s=24 * 3600.0)
        finally:
            group.shutdown()


def aggregate_devices(rows: Sequence[Measurement]) -> list[dict]:
    """Per (graph, width, reducer, abstraction) timed on every device: per-device times and summed GB/s."""
    devices = list(dict.fromkeys(row.device for row in rows))
    groups: dict[tuple, list[Measurement]] = {}
    for row in rows:
        if row.status == "ok":
            groups.setdefault((row.graph, row.width, row.reduce, row.abstraction), []).append(row)
    entries = []
    for (graph, width, reduce, abstraction), members in groups.items():
        if len(members) != len(devices):
            continue
        entries.append({
            "graph": graph, "width": width, "reduce": reduce, "abstraction": abstraction,
            "devices": [row.device for row in members],
            "fwd_ms_per_device": [row.fwd_median_s * 1e3 for row in members],
            "aggregate_fwd_gbps": sum(row.fwd_gbps for row in members),
            "aggregate_fwd_bwd_gbps": sum(row.fwd_bwd_gbps for row in members),
        })
    return entries


@dataclass
class ScalingRow:
    """One (graph, width, worker count) of the distributed benchmark: the slowest worker's median times per layer."""

    graph: str
    width: int
    reduce: str
    abstraction: str
    workers: int
    partitioner: str
    device: str
    status: str
    reason: str = ""
    halo_rows: int = 0
    bytes_per_layer: int = 0
    fwd_s: float | None = None
    fwd_bwd_s: float | None = None
    exchange_s: float | None = None
    aggregate_s: float | None = None
    speedup_fwd: float | None = None
    speedup_fwd_bwd: float | None = None
    forward_error: float | None = None


class _ScalingWorker:
    """Hosted by a Ray worker: one part; times halo exchange + local aggregation, forward and backward."""

    def __init__(self, context, part, x_local: torch.Tensor, abstraction: str, reduce: str, repeats: int, warmup: int):
        from gnndist.comm.exchange import Communicator, ExchangeRoute

        self.device = torch.device("cuda" if context.device == "cuda" else "cpu")
        self.block = part.block().to(self.device)
        self.route = ExchangeRoute(part.send_indices.to(self.device), part.send_counts.tolist(), part.recv_counts.tolist())
        self.comm = Communicator()
        self.x_local = x_local.to(self.device)
        self.num_owned = part.num_owned
        self.aggregation = resolve_aggregation(abstraction)
        self.state = self.aggregation.prepare(self.block, reduce)
        self.reduce, self.repeats, self.warmup = reduce, repeats, warmup
        generator = torch.Generator().manual_seed(context.rank)
        self.grad_out = torch.randn(self.block.num_dst, x_local.size(1), generator=generator).to(self.device)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _layer(self, backward: bool) -> tuple[float, float, float]:
        """One layer: ``(exchange s, aggregation s, total s)``; total includes backward when asked."""
        import torch.distributed as dist

        from gnndist.comm.exchange import exchange_halo

        x_owned = self.x_local[: self.num_owned].detach().requires_grad_(backward)
        dist.barrier()
        start = time.perf_counter()
        with torch.set_grad_enabled(backward):
            halo = exchange_halo(x_owned, self.route, self.comm)
            features = torch.cat([x_owned, halo])
            self._sync()
            exchanged = time.perf_counter()
            out = self.aggregation.run(self.state, features)
            self._sync()
            aggregated = time.perf_counter()
            if backward:
                out.backward(self.grad_out)
                self._sync()
        return exchanged - start, aggregated - exchanged, time.perf_counter() - start

    def run(self) -> dict:
        from gnndist.comm.exchange import exchange_halo

        with torch.no_grad():
            halo = exchange_halo(self.x_local[: self.num_owned], self.route, self.comm)
            halo_ok = torch.equal(halo, self.x_local[self.num_owned : self.num_owned + halo.size(0)])
            expected = reference_aggregate(self.block, self.x_local[: self.block.num_src], self.reduce)
            out = self.aggregation.run(self.state, torch.cat([self.x_local[: self.num_owned], halo]))
            error = ((out.double() - expected).abs().max() / expected.abs().max().clamp(min=1e-30)).item() if expected.numel() else 0.0
        results = {"forward": [], "forward_backward": []}
        for phase, backward in (("forward", False), ("forward_backward", True)):
            for index in range(self.warmup + self.repeats):
                timing = self._layer(backward)
                if index >= self.warmup:
                    results[phase].append(timing)
        forward, both = results["forward"], results["forward_backward"]
        return {
            "halo_ok": halo_ok,
            "forward_error": error if halo_ok else float("inf"),
            "halo_rows": self.route.num_recv,
            "bytes_per_layer": sum(self.route.send_counts) * self.x_local.size(1) * self.x_local.element_size(),
            "exchange_s": statistics.median(t[0] for t in forward),
            "aggregate_s": statistics.median(t[1] for t in forward),
            "fwd_s": statistics.median(t[2] for t in forward),
            "fwd_bwd_s": statistics.median(t[2] for t in both),
        }


def run_scaling(config: AggregationBenchConfig, log: Callable[[str], None] = print) -> list[ScalingRow]:
    """The distributed benchmark: for every suite graph (first width, sum) and worker count in ``config.scaling``,
    partition the graph, give each Ray worker one part, and time one layer: halo exchange + local aggregation."""
    from gnndist.aggregation.selection import select_backend
    from gnndist.partition.part import build_parts
    from gnndist.partitioners import resolve_partitioner
    from gnndist.runtime import WorkerGroup, ray_cluster

    kind = torch.device(config.devices[0]).type
    suite = resolve_suite(config.suite)
    repeats = config.repeats or suite.repeats
    warmup = suite.warmup if config.warmup is None else config.warmup
    rows: list[ScalingRow] = []
    most = max(config.scaling)
    with ray_cluster(num_cpus=max(float(most), float(psutil.cpu_count(logical=True) or 1)), num_gpus=most if kind == "cuda" else None):
        for case in config.cases():
            spec, width, reduce = case.graph, case.widths[0], "sum"
            try:
                graph = spec.build(config.planetoid_root)
            except (FileNotFoundError, ValueError) as error:
                rows.append(ScalingRow(spec.name, width, reduce, "", 0, config.partitioner, kind, "skipped", str(error)))
                continue
            graph = graph.with_(x=None)
            abstraction = config.abstractions[0] if config.abstractions else select_backend(Block.from_graph(graph), reduce, kind)
            x = tie_free_features(graph.num_nodes, width, torch.Generator().manual_seed(width))
            baseline = None
            for count in sorted(config.scaling):
                row = ScalingRow(spec.name, width, reduce, abstraction, count, config.partitioner, kind, "ok")
                rows.append(row)
                _, cpus, threads = _worker_resources(config, count)
                try:
                    node_part = torch.zeros(graph.num_nodes, dtype=torch.long) if count == 1 else resolve_partitioner(config.partitioner).partition(graph, count).node_part
                    parts = build_parts(graph, node_part)
                    group = WorkerGroup(count, cpus_per_worker=min(cpus, float(psutil.cpu_count(logical=True) or 1)), gpus_per_worker=1.0 if kind == "cuda" else 0.0, num_threads=threads, timeout_s=300.0)
                    try:
                        group.init_process_group()
                        group.setup(_ScalingWorker, [(part, x[part.global_ids], abstraction, reduce, repeats, warmup) for part in parts])
                        results = group.run("run", timeout_s=3600.0)
                    finally:
                        group.shutdown()
                except Exception as error:  # a failed worker count is reported in the table; the others still run
                    fail_row(row, error)
                    log(f"  {spec.name} F={width} {count} workers: {row.reason}")
                    continue
                row.halo_rows = sum(r["halo_rows"] for r in results)
                row.bytes_per_layer = sum(r["bytes_per_layer"] for r in results)
                row.forward_error = max(r["forward_error"] for r in results)
                for name in ("exchange_s", "aggregate_s", "fwd_s", "fwd_bwd_s"):
                    setattr(row, name, max(r[name] for r in results))
                if row.forward_error > 1e-4:
                    row.status, row.reason = "mismatch", f"distributed output differs from the single-process aggregation (error {row.forward_error:.2e})"
                baseline = baseline or row
                row.speedup_fwd, row.speedup_fwd_bwd = baseline.fwd_s / row.fwd_s, baseline.fwd_bwd_s / row.fwd_bwd_s
                log(f"  {spec.name} F={width} {abstraction} {count} workers: fwd {row.fwd_s * 1e3:.1f} ms (exchange {row.exchange_s * 1e3:.1f} ms), fwd+bwd {row.fwd_bwd_s * 1e3:.1f} ms, speedup {row.speedup_fwd_bwd:.2f}")
    return rows
