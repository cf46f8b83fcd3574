"""The aggregation benchmark's grid: graphs (from the dataset registry), suites of cases, and the run's config.

A suite is a list of cases, each a graph with the feature widths and reducers measured on it; the
config picks a suite, narrows it (``--graphs``, ``--widths``, ...) and says where and how to measure.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gnndist.aggregation import REDUCERS, available_aggregations, resolve_aggregation
from gnndist.block import Block
from gnndist.graph import Graph


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
