"""Aggregation benchmark harness: suites of graphs, correctness against the reference, timing, reports.

Every (graph, feature width, reducer, abstraction) is first checked forward and backward against
``gnndist.aggregation.reference``; only what agrees is timed (warm-up, repeated runs, median and
quartiles; CUDA events on GPU). Results carry bytes moved (the model ``itemsize*F*(E + N_out) +
8E + 8N`` per direction, +4E with edge weights), the fraction of the machine's probed bandwidth,
GFLOP/s (2EF per direction) and peak memory. Output: CSV, JSON, Markdown and PNG plots, plus a
``selection.json`` ranking the abstractions per graph class for ``aggregation="auto"``.

Run: ``gnndist bench aggregation --suite quick --out DIR`` or
``python -m gnndist.benchmarks.aggregation --suite quick --out DIR``.
"""
from __future__ import annotations

import csv
import json
import math
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import psutil
import torch

import gnndist
from gnndist.aggregation import REDUCERS, available_aggregations, resolve_aggregation
from gnndist.aggregation.reference import compare_with_reference, reference_aggregate, reference_with_grad, tie_free_features
from gnndist.aggregation.selection import GraphStats, SelectionTable
from gnndist.benchmarks.bandwidth import BandwidthProbe, probe_bandwidth
from gnndist.benchmarks.timing import TimingStats, time_call
from gnndist.block import Block
from gnndist.graph import Graph
from gnndist.memory import PeakMemory

MISSING_PENALTY = 10.0  # an abstraction that could not run a case counts as this many times the fastest


# ----------------------------------------------------------------------------------------- graphs
@dataclass(frozen=True)
class GraphSpec:
    """One benchmark graph, built on demand.

    Attributes:
        name: unique name used by ``--graphs`` and in tables ("sbm-200k").
        family: "uniform", "sbm", "rmat" or "planetoid" (``--graphs`` also accepts a family).
        dataset: ``gnndist.data.load_dataset`` spec (the dataset registry).
        options: loader keyword arguments.
        sweep: the parameters this graph varies in its suite, plotted on an axis ("avg_degree", "rmat_a").
        normalization: "gcn" aggregates over GCN's normalised block (weights + self loops), None plain.
    """

    name: str
    family: str
    dataset: str
    options: tuple[tuple[str, Any], ...] = ()
    sweep: tuple[tuple[str, float], ...] = ()
    normalization: str | None = None

    def build(self, planetoid_root: Path | None) -> Graph:
        """The graph from the dataset registry; Planetoid graphs need ``planetoid_root`` (FileNotFoundError without)."""
        from gnndist.data import load_dataset

        options = dict(self.options)
        if self.dataset.startswith("planetoid:"):
            if planetoid_root is None:
                raise FileNotFoundError(f"no Planetoid folder given for {self.dataset!r} (pass --planetoid-root DIR with the raw ind.* files)")
            if not (Path(planetoid_root) / f"ind.{self.dataset.split(':', 1)[1]}.graph").exists():
                raise FileNotFoundError(f"Planetoid raw files for {self.dataset!r} not found in {planetoid_root} (pass --planetoid-root)")
            options["root"] = str(planetoid_root)
        else:
            options.setdefault("feature_dim", 1)  # the harness makes its own features at every width
        return load_dataset(self.dataset, **options)

    def block(self, graph: Graph) -> Block:
        block = Block.from_graph(graph.with_(x=None) if graph.x is not None else graph)
        return block.gcn_normalized() if self.normalization == "gcn" else block


def _uniform(num_nodes: int, avg_degree: float, name: str | None = None) -> GraphSpec:
    label = name or f"uniform-{_short(num_nodes)}-d{avg_degree:g}"
    return GraphSpec(label, "uniform", "uniform", (("num_nodes", num_nodes), ("avg_degree", avg_degree)), (("avg_degree", avg_degree), ("num_nodes", num_nodes)))


def _rmat(scale: int, edge_factor: float, a: float, bc: float, name: str | None = None) -> GraphSpec:
    label = name or f"rmat-s{scale}-a{a:g}"
    return GraphSpec(label, "rmat", "rmat", (("scale", scale), ("edge_factor", edge_factor), ("a", a), ("b", bc), ("c", bc)), (("rmat_a", a),))


def _sbm(num_nodes: int, avg_degree: float, name: str | None = None, classes: int = 16) -> GraphSpec:
    label = name or f"sbm-{_short(num_nodes)}"
    return GraphSpec(label, "sbm", "sbm", (("num_nodes", num_nodes), ("avg_degree", avg_degree), ("num_classes", classes)), (("avg_degree", avg_degree),))


def _planetoid(dataset: str, normalization: str | None = None) -> GraphSpec:
    name = dataset + ("-gcn" if normalization else "")
    return GraphSpec(name, "planetoid", f"planetoid:{dataset}", normalization=normalization)


def _short(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


# ----------------------------------------------------------------------------------------- suites
@dataclass(frozen=True)
class Case:
    """A graph with the feature widths and reducers measured on it."""

    graph: GraphSpec
    widths: tuple[int, ...]
    reducers: tuple[str, ...] = REDUCERS


@dataclass(frozen=True)
class Suite:
    """Named list of cases plus default repetitions."""

    name: str
    cases: tuple[Case, ...]
    repeats: int
    warmup: int = 1
    threads: int | None = None  # torch CPU threads unless --threads says otherwise (None: torch's default)
    description: str = ""


# The two reference graphs of the issue: 200k-node / 4.09M-edge SBM and 262k-node / 4.04M-edge RMAT.
SBM_200K = _sbm(200_000, 20.65, "sbm-200k")
RMAT_18 = _rmat(18, 8.22, 0.57, 0.19, "rmat-18")

SUITES: dict[str, Suite] = {
    "quick": Suite(
        "quick",
        (
            Case(_uniform(2_000, 4), (16, 64), ("sum",)),
            Case(_uniform(2_000, 16), (16, 64), ("sum",)),
            Case(_rmat(12, 8, 0.45, 0.22), (16, 64), ("sum",)),
            Case(_rmat(12, 8, 0.57, 0.19), (16, 64)),
            Case(_sbm(10_000, 10), (16, 64)),
            Case(_planetoid("cora"), (16, 64)),
            Case(_planetoid("cora", "gcn"), (16, 64), ("sum",)),
        ),
        repeats=3,
        threads=1,  # a smoke test: one thread keeps it fast and steady on a shared CI machine
        description="small graphs of every family, widths 16 and 64, all reducers, one CPU thread: for CI (< 3 min on 2 cores)",
    ),
    "full": Suite(
        "full",
        (
            Case(SBM_200K, (32, 128)),
            Case(RMAT_18, (32, 128)),
            Case(_sbm(20_000, 20), (16, 32, 64, 128, 256, 512)),
            *(Case(_uniform(100_000, d), (64,), ("sum", "max")) for d in (2, 8, 32, 64)),
            *(Case(_uniform(n, 16), (64,), ("sum",)) for n in (10_000, 100_000, 1_000_000)),
            *(Case(_rmat(16, 8, a, bc), (64,), ("sum", "max")) for a, bc in ((0.25, 0.25), (0.45, 0.22), (0.57, 0.19), (0.7, 0.13))),
            Case(_planetoid("cora"), (16, 128, 512)),
            Case(_planetoid("citeseer"), (16, 128, 512)),
            Case(_planetoid("cora", "gcn"), (16, 128), ("sum",)),
        ),
        repeats=5,
        description="the 4M-edge reference graphs, a width sweep 16-512, degree, size and skew sweeps, real graphs",
    ),
}


def resolve_suite(name: str | Suite) -> Suite:
    """The suite called ``name`` (a Suite is returned as is); unknown names fail with the list of choices."""
    if isinstance(name, Suite):
        return name
    if name not in SUITES:
        raise ValueError(f"Unknown suite {name!r}; available: {', '.join(SUITES)}")
    return SUITES[name]


# ----------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class AggregationBenchConfig:
    """Everything one run of the harness needs (built by the CLI, or directly).

    Attributes:
        suite: "quick", "full", or a :class:`Suite` of one's own.
        out: output directory (created).
        graphs: graph names or families to keep from the suite (None: all).
        widths, reducers: override the suite's feature widths / reducers (None: the suite's).
        abstractions: backend names to measure (None: every registered one).
        devices: "cpu" and/or "cuda" (or "cuda:1").
        repeats, warmup: timed runs and warm-up runs per measurement (None: the suite's).
        threads: torch CPU threads (None: torch's default).
        max_seconds: a measurement stops repeating once it has used this much time (>= 3 runs kept).
        memory_budget_bytes: abstractions that materialise E x F messages are skipped above this (None: 40 % of free RAM).
        planetoid_root: folder with the raw Planetoid files (None: the Planetoid graphs are skipped, saying why).
        probe_mib: buffer size of the bandwidth probe (None: 256 MiB on CPU, 2 GiB on GPU).
        workers: > 1 runs the suite concurrently in that many Ray actors, one per GPU (``devices=("cuda",)``)
            or one per share of the CPU cores; the report has per-device and aggregate numbers.
        scaling: worker counts for the distributed benchmark (graph partitioned over the workers,
            halo exchange + local aggregation per layer), e.g. ``(1, 2, 4)``; None: not run.
        partitioner: partitioner of the distributed benchmark.
        save_selection: also write the ranking to this file (for ``aggregation.selection=FILE``); None: only ``out/selection.json``.
    """

    suite: str | Suite = "quick"
    out: Path = Path("runs/bench-aggregation")
    graphs: tuple[str, ...] | None = None
    widths: tuple[int, ...] | None = None
    reducers: tuple[str, ...] | None = None
    abstractions: tuple[str, ...] | None = None
    devices: tuple[str, ...] = ("cpu",)
    repeats: int | None = None
    warmup: int | None = None
    threads: int | None = None
    max_seconds: float = 20.0
    memory_budget_bytes: int | None = None
    planetoid_root: Path | None = None
    probe_mib: int | None = None
    workers: int = 1
    scaling: tuple[int, ...] | None = None
    partitioner: str = "metis"
    save_selection: Path | None = None

    def validate(self) -> None:
        """Raises ValueError/KeyError naming the bad value and the choices."""
        suite = resolve_suite(self.suite)
        if self.widths is not None:
            bad = [w for w in self.widths if w < 1]
            if bad or not self.widths:
                raise ValueError(f"Expected feature widths >= 1 (got {list(self.widths)})")
        if self.reducers is not None:
            bad = [r for r in self.reducers if r not in REDUCERS]
            if bad or not self.reducers:
                raise ValueError(f"Unknown reducer(s) {bad}; available: {', '.join(REDUCERS)}")
        if self.abstractions is not None:
            bad = [a for a in self.abstractions if a not in available_aggregations()]
            if bad or not self.abstractions:
                raise KeyError(f"Unknown abstraction(s) {bad}; available: {', '.join(available_aggregations())}")
        if self.graphs is not None:
            names = {case.graph.name for case in suite.cases} | {case.graph.family for case in suite.cases}
            bad = [g for g in self.graphs if g not in names]
            if bad or not self.graphs:
                raise ValueError(f"Unknown graph(s) {bad} in suite {suite.name!r}; available: {', '.join(sorted(names))}")
        for name, value in (("repeats", self.repeats), ("threads", self.threads), ("probe_mib", self.probe_mib)):
            if value is not None and value < 1:
                raise ValueError(f"Expected {name} >= 1 (got {value})")
        if self.warmup is not None and self.warmup < 0:
            raise ValueError(f"Expected warmup >= 0 (got {self.warmup})")
        for device in self.devices:
            check_device(device)
        kinds = {torch.device(device).type for device in self.devices}
        if self.workers < 1:
            raise ValueError(f"Expected workers >= 1 (got {self.workers})")
        if (self.workers > 1 or self.scaling) and len(kinds) != 1:
            raise ValueError(f"--workers and --scaling run on one kind of device (got devices {list(self.devices)})")
        counts = [self.workers, *(self.scaling or ())]
        if any(count < 1 for count in counts):
            raise ValueError(f"Expected worker counts >= 1 (got scaling {list(self.scaling or ())})")
        if kinds == {"cuda"} and max(counts) > torch.cuda.device_count():
            raise ValueError(f"{max(counts)} GPU workers asked, but {torch.cuda.device_count()} CUDA device(s) are visible")
        if self.scaling:
            from gnndist.partitioners import available_partitioners

            if self.partitioner not in available_partitioners():
                raise KeyError(f"Unknown partitioner {self.partitioner!r}; available: {', '.join(available_partitioners())}")

    def cases(self) -> list[Case]:
        suite = resolve_suite(self.suite)
        chosen = []
        for case in suite.cases:
            if self.graphs is not None and case.graph.name not in self.graphs and case.graph.family not in self.graphs:
                continue
            chosen.append(replace(case, widths=self.widths or case.widths, reducers=self.reducers or case.reducers))
        return chosen


def benchmarked_abstractions() -> list[str]:
    """Every registered backend except selectors ("auto" delegates to one of the others)."""
    return [name for name in available_aggregations() if not resolve_aggregation(name).selector]


def check_device(device: str) -> torch.device:
    """``device`` as a torch device; asking for CUDA without one fails with what torch sees."""
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {device!r}; expected 'cpu' or 'cuda[:N]' ({error})") from error
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"Unknown device {device!r}; expected 'cpu' or 'cuda[:N]'")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (a CPU-only build)"
            raise ValueError(f"--devices {device} asked, but no CUDA device is visible (torch {torch.__version__}, CUDA {built})")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"--devices {device} asked, but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return parsed


# ----------------------------------------------------------------------------------------- measuring
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
            _fail(row, error)
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
                    _fail(contender.row, error)
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
            _fail(row, error)
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


def _fail(row: Measurement, error: BaseException) -> None:
    message = str(error).splitlines()[0] if str(error) else ""
    row.status, row.reason = "error", f"{type(error).__name__}: {message}"[:300]


def _derive(row: Measurement, forward_bytes: int, backward_bytes: int) -> Measurement:
    flops = 2 * row.num_edges * row.width
    row.fwd_gbps = forward_bytes / row.fwd_median_s / 1e9
    row.fwd_bwd_gbps = (forward_bytes + backward_bytes) / row.fwd_bwd_median_s / 1e9
    row.fwd_gflops = flops / row.fwd_median_s / 1e9
    row.fwd_bwd_gflops = 2 * flops / row.fwd_bwd_median_s / 1e9
    return row


def _attach_fractions(report: DeviceReport) -> None:
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


# ----------------------------------------------------------------------------------------- several devices
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


def _aggregate(rows: Sequence[Measurement]) -> list[dict]:
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
                    _fail(row, error)
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


# ----------------------------------------------------------------------------------------- ranking
def rank_abstractions(rows: Sequence[Measurement], key: Callable[[Measurement], str], metric: str = "fwd_bwd_median_s") -> dict[tuple[str, str, str], list[tuple[str, float]]]:
    """Ranks abstractions per (device, group, reduce) by geometric-mean slowdown against the fastest of each case.

    A case is one (graph, width); an abstraction that did not run a case (skipped, mismatch, error)
    counts as ``MISSING_PENALTY`` times the fastest there. Returns ``[(name, slowdown), ...]`` fastest first.
    """
    cases: dict[tuple[str, str, str], dict[tuple[str, int], dict[str, float]]] = {}
    names: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        group = (row.device, key(row), row.reduce)
        names.setdefault(group, set()).add(row.abstraction)
        if row.status == "ok" and getattr(row, metric) is not None:
            cases.setdefault(group, {}).setdefault((row.graph, row.width), {})[row.abstraction] = getattr(row, metric)
    ranking = {}
    for group, per_case in cases.items():
        scores = {}
        for name in names[group]:
            ran = [times for times in per_case.values() if name in times]
            if not ran:
                continue
            logs = [math.log(times[name] / min(times.values())) if name in times else math.log(MISSING_PENALTY) for times in per_case.values()]
            scores[name] = math.exp(sum(logs) / len(logs))
        ranking[group] = sorted(scores.items(), key=lambda item: item[1])
    return ranking


def selection_table(rows: Sequence[Measurement]) -> SelectionTable:
    """The measured ranking per device, graph class and reducer, as ``aggregation="auto"`` reads it."""
    rankings: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (device, graph_class, reduce), ranked in rank_abstractions(rows, lambda row: row.graph_class).items():
        rankings.setdefault(torch.device(device).type, {}).setdefault(graph_class, {})[reduce] = [name for name, _ in ranked]
    return SelectionTable(rankings)


# ----------------------------------------------------------------------------------------- output
@dataclass
class BenchResult:
    """What a run wrote and found."""

    out: Path
    files: dict[str, Path]
    reports: list[DeviceReport]
    problems: list[Measurement]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def run_benchmark(config: AggregationBenchConfig, log: Callable[[str], None] = print) -> BenchResult:
    """Validates ``config``, measures every device, writes CSV/JSON/Markdown/plots/selection into ``config.out``."""
    config.validate()
    started = time.perf_counter()
    if config.workers > 1:
        reports = run_concurrent(config, log)
    else:
        reports = [run_device(config, device, log) for device in config.devices]
    for report in reports:
        _attach_fractions(report)
    scaling = run_scaling(config, log) if config.scaling else []
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for report in reports for row in report.measurements]
    table = selection_table(rows)
    environment = _environment(config, reports)
    files = {
        "csv": _write_csv(rows, out / "results.csv"),
        "json": _write_json(rows, reports, environment, table, scaling, out / "results.json"),
        "markdown": _write_markdown(rows, reports, environment, scaling, out / "results.md"),
        "selection": table.save(out / "selection.json", suite=environment["suite"], environment=environment),
    }
    from gnndist.benchmarks.plots import write_plots, write_scaling_plot

    for name, path in write_plots(rows, reports, out).items():
        files[f"plot:{name}"] = path
    if scaling:
        files["plot:scaling"] = write_scaling_plot(scaling, out / "scaling.png")
    if config.save_selection is not None:
        files["saved_selection"] = table.save(config.save_selection, suite=environment["suite"], environment=environment)
    problems = [row for row in rows if row.status in ("mismatch", "error")] + [row for row in scaling if row.status != "ok"]
    return BenchResult(out, files, reports, problems, time.perf_counter() - started)


def _environment(config: AggregationBenchConfig, reports: Sequence[DeviceReport]) -> dict:
    return {
        "gnndist": gnndist.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": psutil.cpu_count(logical=True),
        "suite": resolve_suite(config.suite).name,
        "devices": [{"device": r.device, "name": r.device_name, "threads": r.threads, "seconds": round(r.seconds, 1), "native_kernel": r.native_kernel} for r in reports],
        "bandwidth": {r.device: r.bandwidth.as_dict() for r in reports},
    }


def _write_csv(rows: Sequence[Measurement], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(Measurement)])
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    return path


def _write_json(rows, reports, environment, table: SelectionTable, scaling, path: Path) -> Path:
    fastest = {f"{d}|{g}|{r}": ranked for (d, g, r), ranked in rank_abstractions(rows, lambda row: row.family).items()}
    data = {
        "environment": environment,
        "fastest_per_family": fastest,
        "selection": table.rankings,
        "native_vs_dgl": _native_vs_dgl(rows),
        "concurrent": _aggregate(rows) if len(reports) > 1 else [],
        "scaling": [asdict(row) for row in scaling],
        "results": [asdict(row) for row in rows],
    }
    path.write_text(json.dumps(data, indent=1))
    return path


def _native_vs_dgl(rows: Sequence[Measurement]) -> list[dict]:
    """gnndist_csr time / dgl_gspmm time for every case where both ran (same process, same inputs)."""
    by_case: dict[tuple, dict[str, Measurement]] = {}
    for row in rows:
        if row.status == "ok" and row.abstraction in ("gnndist_csr", "dgl_gspmm"):
            by_case.setdefault((row.device, row.graph, row.width, row.reduce), {})[row.abstraction] = row
    ratios = []
    for (device, graph, width, reduce), pair in by_case.items():
        if len(pair) == 2:
            ours, dgl = pair["gnndist_csr"], pair["dgl_gspmm"]
            ratios.append({
                "device": device, "graph": graph, "width": width, "reduce": reduce,
                "fwd_ratio": ours.fwd_median_s / dgl.fwd_median_s,
                "fwd_bwd_ratio": ours.fwd_bwd_median_s / dgl.fwd_bwd_median_s,
            })
    return ratios


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value * 1e3:.3g}" if value < 1 else f"{value * 1e3:.0f}"


def _write_markdown(rows: Sequence[Measurement], reports: Sequence[DeviceReport], environment: dict, scaling, path: Path) -> Path:
    lines = [f"# Aggregation benchmark: suite `{environment['suite']}`", ""]
    lines.append(f"torch {environment['torch']}, gnndist {environment['gnndist']}, {environment['platform']}, {environment['cpu_count']} CPUs.")
    lines.append("")
    lines.append("| device | name | threads | copy GB/s | row gather GB/s | native kernel | run time |")
    lines.append("|---|---|---|---|---|---|---|")
    for report in reports:
        native = report.native_kernel
        kernel = "" if not native else (f"compiled in {native['compile_seconds']:.1f} s" if native.get("compile_seconds") else "cached build") if native.get("available") else f"unavailable: {native.get('reason', '')[:80]}"
        lines.append(f"| {report.device} | {report.device_name} | {report.threads} | {report.bandwidth.copy_gbps:.1f} | {report.bandwidth.gather_gbps:.1f} | {kernel} | {report.seconds:.0f} s |")
    lines += ["", "Times are medians per call (forward, and forward + backward w.r.t. x); GB/s by the byte model "
              "`itemsize*F*(E + N_out) + 8E + 8N (+4E weights)` per direction; % copy = GB/s over the probed copy bandwidth.", ""]

    lines += ["## Fastest abstraction per graph class (forward + backward)", "", "| device | graph class | reduce | ranking (geometric-mean slowdown vs the fastest per case) |", "|---|---|---|---|"]
    for (device, group, reduce), ranked in sorted(rank_abstractions(rows, lambda row: row.graph_class).items()):
        lines.append(f"| {device} | {group} | {reduce} | " + ", ".join(f"**{n}**" if i == 0 else f"{n} ({s:.2f}x)" for i, (n, s) in enumerate(ranked[:5])) + " |")
    lines += ["", "## Fastest abstraction per graph family (forward + backward)", "", "| device | family | reduce | fastest | runner-up |", "|---|---|---|---|---|"]
    for (device, group, reduce), ranked in sorted(rank_abstractions(rows, lambda row: row.family).items()):
        runner = f"{ranked[1][0]} ({ranked[1][1]:.2f}x)" if len(ranked) > 1 else ""
        lines.append(f"| {device} | {group} | {reduce} | **{ranked[0][0]}** | {runner} |")
    ratios = _native_vs_dgl(rows)
    if ratios:
        lines += ["", "## gnndist_csr / dgl_gspmm (same run, same inputs; <= 1 means gnndist is at least as fast)", "", "| device | graph | F | reduce | forward | forward + backward |", "|---|---|---|---|---|---|"]
        for ratio in ratios:
            lines.append(f"| {ratio['device']} | {ratio['graph']} | {ratio['width']} | {ratio['reduce']} | {ratio['fwd_ratio']:.2f} | {ratio['fwd_bwd_ratio']:.2f} |")

    if len(reports) > 1:
        lines += ["", f"## Concurrent run: {len(reports)} devices at once (per device, and aggregate = sum over devices)", "",
                  "| graph | F | reduce | abstraction | fwd ms per device | aggregate fwd GB/s | aggregate fwd+bwd GB/s |", "|---|---|---|---|---|---|---|"]
        for entry in _aggregate(rows):
            per_device = ", ".join(f"{ms:.3g}" for ms in entry["fwd_ms_per_device"])
            lines.append(f"| {entry['graph']} | {entry['width']} | {entry['reduce']} | {entry['abstraction']} | {per_device} | {entry['aggregate_fwd_gbps']:.1f} | {entry['aggregate_fwd_bwd_gbps']:.1f} |")
    if scaling:
        lines += ["", "## Distributed aggregation: graph partitioned over the workers, halo exchange + local aggregation (one layer)", "",
                  "| graph | F | abstraction | workers | partitioner | halo rows | MB sent per layer | fwd ms | fwd+bwd ms | exchange ms | aggregate ms | speedup fwd+bwd | status |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in scaling:
            if row.status == "ok":
                lines.append(f"| {row.graph} | {row.width} | {row.abstraction} | {row.workers} | {row.partitioner} | {row.halo_rows} | {row.bytes_per_layer / 1e6:.1f} "
                             f"| {_ms(row.fwd_s)} | {_ms(row.fwd_bwd_s)} | {_ms(row.exchange_s)} | {_ms(row.aggregate_s)} | {row.speedup_fwd_bwd:.2f} | ok |")
            else:
                lines.append(f"| {row.graph} | {row.width} | {row.abstraction} | {row.workers} | {row.partitioner} | | | | | | | | {row.status}: {row.reason} |")
    lines += ["", "## Results", ""]
    graphs = list(dict.fromkeys((row.device, row.graph) for row in rows))
    for device, graph in graphs:
        group = [row for row in rows if row.device == device and row.graph == graph]
        first = group[0]
        lines.append(f"### {graph} on {device}: {first.num_dst} nodes, {first.num_edges} edges, avg degree {first.avg_degree:.1f}, degree CV {first.degree_cv:.2f}, class {first.graph_class}{', weighted' if first.weighted else ''}")
        lines += ["", "| F | reduce | abstraction | layout / propagation | fwd ms (IQR) | fwd+bwd ms (IQR) | fwd GB/s | % copy | % gather | fwd GFLOP/s | peak MB | status |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in sorted(group, key=lambda r: (r.width, REDUCERS.index(r.reduce), r.fwd_bwd_median_s if r.fwd_bwd_median_s is not None else math.inf)):
            if row.status == "ok":
                lines.append(
                    f"| {row.width} | {row.reduce} | {row.abstraction} | {row.data_organization} / {row.propagation} "
                    f"| {_ms(row.fwd_median_s)} ({_ms(row.fwd_p25_s)}-{_ms(row.fwd_p75_s)}) | {_ms(row.fwd_bwd_median_s)} ({_ms(row.fwd_bwd_p25_s)}-{_ms(row.fwd_bwd_p75_s)}) "
                    f"| {row.fwd_gbps:.1f} | {100 * row.fwd_fraction_of_copy:.0f} | {100 * row.fwd_fraction_of_gather:.0f} | {row.fwd_gflops:.1f} "
                    f"| {row.peak_memory_bytes / 2**20:.0f} | ok |"
                )
            elif row.status != "skipped":
                lines.append(f"| {row.width} | {row.reduce} | {row.abstraction} | {row.data_organization} / {row.propagation} | | | | | | | | **{row.status}**: {row.reason} |")
        lines.append("")
    skipped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.status == "skipped":
            skipped.setdefault((row.abstraction, row.reason), []).append(f"{row.graph} F={row.width} {row.reduce}")
    if skipped:
        lines += ["## Skipped (not a failure: the reason says why)", "", "| abstraction | reason | cases |", "|---|---|---|"]
        for (name, reason), cases in sorted(skipped.items()):
            shown = ", ".join(dict.fromkeys(cases[:4])) + (f" and {len(cases) - 4} more" if len(cases) > 4 else "")
            lines.append(f"| {name} | {reason} | {shown} |")
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gnndist.benchmarks.aggregation [flags]``: the same flags as ``gnndist bench aggregation``."""
    from gnndist.launch.bench_cmd import main as bench_main

    return bench_main(["aggregation", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
