"""Measuring aggregation backends on one device: correctness against the reference first, then time and memory.

Every (graph, feature width, reducer, abstraction) is checked forward and backward against
``gnndist.aggregation.reference``; only what agrees is timed (warm-up, repeated runs interleaved
over the backends, median and quartiles; CUDA events on GPU). Rows carry bytes moved (the model
``itemsize*F*(E + N_out) + 8E + 8N`` per direction, +4E with edge weights), GFLOP/s (2EF per
direction) and peak memory (:class:`gnndist.memory.PeakMemory`).
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import psutil
import torch

from gnndist.aggregation import resolve_aggregation
from gnndist.aggregation.reference import compare_with_reference, reference_with_grad, tie_free_features
from gnndist.aggregation.selection import GraphStats
from gnndist.benchmarks.aggregation_grid import AggregationBenchConfig, GraphSpec, benchmarked_abstractions, check_device, resolve_suite
from gnndist.benchmarks.bandwidth import BandwidthProbe, probe_bandwidth
from gnndist.benchmarks.timing import TimingStats, time_call
from gnndist.block import Block
from gnndist.graph import Graph
from gnndist.memory import PeakMemory


@dataclass
class Measurement:
    """One row of the results: a (device, graph, width, reducer, abstraction) and what happened."""

    device: str
    graph: str
    family: str
    graph_class: str
    num_src: int
    num_dst: int
    num_edges: int
    avg_degree: float
    degree_cv: float
    weighted: bool
    sweep: str
    width: int
    reduce: str
    abstraction: str
    backend: str
    data_organization: str
    propagation: str
    status: str  # "ok" | "skipped" | "mismatch" | "error"
    reason: str = ""
    prepare_s: float | None = None
    fwd_median_s: float | None = None
    fwd_p25_s: float | None = None
    fwd_p75_s: float | None = None
    fwd_bwd_median_s: float | None = None
    fwd_bwd_p25_s: float | None = None
    fwd_bwd_p75_s: float | None = None
    runs: int | None = None
    fwd_gbps: float | None = None
    fwd_bwd_gbps: float | None = None
    fwd_fraction_of_copy: float | None = None
    fwd_bwd_fraction_of_copy: float | None = None
    fwd_fraction_of_gather: float | None = None
    fwd_gflops: float | None = None
    fwd_bwd_gflops: float | None = None
    peak_memory_bytes: int | None = None
    forward_error: float | None = None
    backward_error: float | None = None


def model_bytes(num_edges: int, num_out: int, width: int, itemsize: int, weighted: bool) -> int:
    """Bytes one aggregation direction must move: gathered rows, written rows, indices, offsets (+ weights)."""
    return itemsize * width * (num_edges + num_out) + 8 * num_edges + 8 * (num_out + 1) + (4 * num_edges if weighted else 0)


@dataclass
class DeviceReport:
    """Everything measured on one device."""

    device: str
    device_name: str
    threads: int
    bandwidth: BandwidthProbe
    measurements: list[Measurement] = field(default_factory=list)
    native_kernel: dict = field(default_factory=dict)
    seconds: float = 0.0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _native_kernel_info() -> dict:
    from gnndist.aggregation.native_kernel import load_native_library

    try:
        library = load_native_library()
    except RuntimeError as error:
        return {"available": False, "reason": str(error)}
    return {"available": True, "path": str(library.path), "compile_seconds": round(library.compile_seconds, 3), "flags": list(library.flags)}


def run_device(config: AggregationBenchConfig, device_name: str, log: Callable[[str], None] = print) -> DeviceReport:
    """Runs the configured suite on one device: probe, then every case, checked then timed."""
    threads = config.threads or resolve_suite(config.suite).threads
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_device(config, device_name, log)
    finally:
        torch.set_num_threads(previous)


def _run_device(config: AggregationBenchConfig, device_name: str, log: Callable[[str], None]) -> DeviceReport:
    device = check_device(device_name)
    suite = resolve_suite(config.suite)
    repeats = config.repeats or suite.repeats
    warmup = suite.warmup if config.warmup is None else config.warmup
    budget = config.memory_budget_bytes or int(0.4 * psutil.virtual_memory().available)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = config.memory_budget_bytes or int(0.4 * free)
    names = list(config.abstractions or benchmarked_abstractions())
    started = time.perf_counter()
    probe = probe_bandwidth(device, copy_mib=config.probe_mib)
    log(f"[{device}] bandwidth probe: copy {probe.copy_gbps:.1f} GB/s, random {probe.row_bytes}-byte row gather {probe.gather_gbps:.1f} GB/s")
    report = DeviceReport(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        threads=torch.get_num_threads(),
        bandwidth=probe,
        native_kernel=_native_kernel_info() if "gnndist_csr" in names else {},
    )
    cases = config.cases()
    graphs: dict[tuple, Graph] = {}  # kept while a later case (e.g. cora and cora-gcn) still needs it
    for index, case in enumerate(cases):
        spec = case.graph
        key = (spec.dataset, spec.options)
        try:
            if key not in graphs:
                graphs[key] = spec.build(config.planetoid_root)
            graph = graphs[key]
        except (FileNotFoundError, ValueError) as error:
            log(f"[{device}] {spec.name}: skipped ({error})")
            for width in case.widths:
                for reduce in case.reducers:
                    for name in names:
                        report.measurements.append(_row(device, spec, None, None, width, reduce, resolve_aggregation(name), "skipped", str(error)))
            continue
        if not any((later.graph.dataset, later.graph.options) == key for later in cases[index + 1 :]):
            del graphs[key]
        block = spec.block(graph).to(device)
        stats = GraphStats.of(block)
        log(f"[{device}] {spec.name}: {stats.num_dst} nodes, {stats.num_edges} edges, avg degree {stats.avg_degree:.1f}, class {stats.graph_class}")
        for width in case.widths:
            generator = torch.Generator().manual_seed(width)
            x = tie_free_features(block.num_src, width, generator).to(device)
            grad_out = torch.randn(block.num_dst, width, generator=generator).to(device)
            for reduce in case.reducers:
                expected = reference_with_grad(block, x, reduce, grad_out)
                backends = [resolve_aggregation(name) for name in names]
                rows = _measure_case(backends, spec, block, stats, x, grad_out, reduce, expected, device, repeats, warmup, config.max_seconds, budget)
                del expected
                for row in rows:
                    log(_progress_line(row))
                report.measurements.extend(rows)
    report.seconds = time.perf_counter() - started
    return report


def _row(device, spec: GraphSpec, block: Block | None, stats: GraphStats | None, width: int, reduce: str, aggregation, status: str, reason: str = "") -> Measurement:
    return Measurement(
        device=str(device),
        graph=spec.name,
        family=spec.family,
        graph_class=stats.graph_class if stats else "",
        num_src=stats.num_src if stats else 0,
        num_dst=stats.num_dst if stats else 0,
        num_edges=stats.num_edges if stats else 0,
        avg_degree=round(stats.avg_degree, 3) if stats else 0.0,
        degree_cv=round(stats.degree_cv, 3) if stats else 0.0,
        weighted=bool(block is not None and block.edge_weight is not None),
        sweep=json.dumps(dict(spec.sweep)) if spec.sweep else "",
        width=width,
        reduce=reduce,
        abstraction=aggregation.name,
        backend=aggregation.backend,
        data_organization=aggregation.data_organization,
        propagation=aggregation.propagation,
        status=status,
        reason=reason,
    )


@dataclass
class _Contender:
    """A backend that passed the correctness check, with its timing callables and the runs so far."""

    row: Measurement
    forward: Callable[[], Any]
    forward_backward: Callable[[], Any]
    times: dict[str, list[float]] = field(default_factory=lambda: {"fwd": [], "fwd_bwd": []})


def _measure_case(backends, spec, block, stats, x, grad_out, reduce, expected, device, repeats, warmup, max_seconds, budget) -> list[Measurement]:
    """Checks every backend on one (graph, width, reducer), then times those that agree, interleaved.

    Runs go round-robin over the backends (all forward rounds, then all forward + backward rounds),
    so load from other processes on a shared machine falls on every backend alike. A backend stops
    repeating once it has spent ``max_seconds`` in a phase and has 3 runs.
    """
    rows: list[Measurement] = []
    contenders: list[_Contender] = []
    for aggregation in backends:
        row = _row(device, spec, block, stats, x.size(1), reduce, aggregation, "ok")
        rows.append(row)
        reason = aggregation.supports(block, reduce)
        if reason is None and aggregation.materializes_messages:
            needed = 2 * block.num_edges * x.size(1) * x.element_size()
            if needed > budget:
                reason = f"would materialise {needed / 2**30:.1f} GiB of edge messages (memory budget {budget / 2**30:.1f} GiB)"
        if reason is not None:
            row.status, row.reason = "skipped", reason
            continue
        try:
            start = time.perf_counter()
            state = aggregation.prepare(block, reduce)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            row.prepare_s = time.perf_counter() - start
            agreement = compare_with_reference(lambda features, a=aggregation, s=state: a.run(s, features), x, grad_out, expected)
        except (RuntimeError, ValueError, TypeError, NotImplementedError, MemoryError) as error:
            fail_row(row, error)
            continue
        row.forward_error, row.backward_error = agreement.forward_error, agreement.backward_error
        if not agreement.ok:
            row.status, row.reason = "mismatch", agreement.describe()
            continue
        contenders.append(_Contender(row, *_timed_calls(aggregation, state, x, grad_out)))

    for phase in ("fwd", "fwd_bwd"):
        spent = {id(c): 0.0 for c in contenders}
        for round_index in range(warmup + repeats):
            for contender in contenders:
                runs = contender.times[phase]
                if contender.row.status != "ok" or (spent[id(contender)] > max_seconds and len(runs) >= min(3, repeats)):
                    continue
                fn = contender.forward if phase == "fwd" else contender.forward_backward
                try:
                    seconds = time_call(fn, device, repeats=1, warmup=0)[0]
                except (RuntimeError, ValueError, MemoryError) as error:
                    fail_row(contender.row, error)
                    continue
                if round_index >= warmup:
                    runs.append(seconds)
                    spent[id(contender)] += seconds

    weighted = block.edge_weight is not None
    forward_bytes = model_bytes(block.num_edges, block.num_dst, x.size(1), x.element_size(), weighted)
    backward_bytes = model_bytes(block.num_edges, block.num_src, x.size(1), x.element_size(), weighted)
    for contender in contenders:
        row = contender.row
        if row.status != "ok":
            continue
        try:
            with PeakMemory(device) as memory:
                contender.forward_backward()
            row.peak_memory_bytes = memory.increase_bytes
        except (RuntimeError, MemoryError) as error:
            fail_row(row, error)
            continue
        fwd, fwd_bwd = TimingStats.of(contender.times["fwd"]), TimingStats.of(contender.times["fwd_bwd"])
        row.fwd_median_s, row.fwd_p25_s, row.fwd_p75_s = fwd.median, fwd.p25, fwd.p75
        row.fwd_bwd_median_s, row.fwd_bwd_p25_s, row.fwd_bwd_p75_s = fwd_bwd.median, fwd_bwd.p25, fwd_bwd.p75
        row.runs = min(fwd.runs, fwd_bwd.runs)
        _derive(row, forward_bytes, backward_bytes)
    return rows


def _timed_calls(aggregation, state, x, grad_out) -> tuple[Callable[[], Any], Callable[[], Any]]:
    def forward() -> None:
        with torch.no_grad():
            aggregation.run(state, x)

    x_grad = x.detach().clone().requires_grad_(True)

    def forward_backward() -> None:
        x_grad.grad = None
        aggregation.run(state, x_grad).backward(grad_out)

    return forward, forward_backward


def fail_row(row: Measurement, error: BaseException) -> None:
    message = str(error).splitlines()[0] if str(error) else ""
    row.status, row.reason = "error", f"{type(error).__name__}: {message}"[:300]


def _derive(row: Measurement, forward_bytes: int, backward_bytes: int) -> Measurement:
    flops = 2 * row.num_edges * row.width
    row.fwd_gbps = forward_bytes / row.fwd_median_s / 1e9
    row.fwd_bwd_gbps = (forward_bytes + backward_bytes) / row.fwd_bwd_median_s / 1e9
    row.fwd_gflops = flops / row.fwd_median_s / 1e9
    row.fwd_bwd_gflops = 2 * flops / row.fwd_bwd_median_s / 1e9
    return row


def attach_fractions(report: DeviceReport) -> None:
    for row in report.measurements:
        if row.status == "ok":
            row.fwd_fraction_of_copy = row.fwd_gbps / report.bandwidth.copy_gbps
            row.fwd_bwd_fraction_of_copy = row.fwd_bwd_gbps / report.bandwidth.copy_gbps
            row.fwd_fraction_of_gather = row.fwd_gbps / report.bandwidth.gather_gbps


def _progress_line(row: Measurement) -> str:
    head = f"  {row.graph} F={row.width} {row.reduce:<4} {row.abstraction:<18}"
    if row.status != "ok":
        return f"{head} {row.status}: {row.reason}"
    return f"{head} fwd {row.fwd_median_s * 1e3:9.2f} ms  fwd+bwd {row.fwd_bwd_median_s * 1e3:9.2f} ms  {row.fwd_gbps:6.1f} GB/s"
