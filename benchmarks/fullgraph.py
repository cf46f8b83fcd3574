"""Full-graph training end to end: gnndist (one process, and P parts per communication strategy)
against single-process PyG and DGL on the same graph, in the same run, epochs interleaved.

``gnndist bench fullgraph --out DIR [--quick] [--devices cpu cuda] [--models gcn sage] [--parts 1 2 4]
[--strategies sync stale sampled quantized cached] [--epochs N] [--dgl-python PATH]`` takes the
graph from the dataset registry and writes it as an ``.npz`` that every contender reads. Each device
of ``--devices`` (default: cpu) is a section of the report, and every ratio compares rows of the
same device. Every single-process contender is its own child process (so its peak memory is its
own, read by this process from the kernel's high-water mark; on CUDA also the allocator's peak),
driven one epoch per request (:mod:`.child`):

- gnndist P=1: :class:`~gnndist.train.single.SingleProcessTrainer` (:mod:`.gnndist_child`), in a process with
  a worker's heap settings (:func:`gnndist.memory.worker_malloc_env`; P > 1 workers have them too);
- PyG: plain ``GCNConv``/``SAGEConv`` code on ``edge_index`` and on a ``torch.sparse`` CSR ``adj_t``
  (this environment, with PyG's own ``F.dropout``; :mod:`.peers`);
- DGL 2.1: ``GraphConv``/``SAGEConv`` in the DGL environment (torch 2.2.1), whose python is named by
  ``--dgl-python`` or ``GNNDIST_DGL_PYTHON`` (else DGL is skipped, and the report says why); CPU
  only (that environment has no CUDA).

On CUDA every contender's model and data live on the GPU and the device is synchronised before each
clock read; gnndist P > 1 shares the one GPU between its P workers (``gpus_per_worker = 1/P``, gloo)
and is reported as its ratio to P=1 on the same GPU. The CPU-time breakdown and the dropout timing
are CPU-section measurements.

gnndist P > 1 runs on a private local Ray: one :class:`~gnndist.runtime.WorkerGroup` per P (a METIS
partition per P, one logical CPU and ``--worker-threads`` torch threads per worker), one trainer per
(model, strategy). A DGL epoch of the same model follows every distributed epoch, as DGL's epochs
alternate with gnndist P=1's in the single-process round-robin, so both sections run beside the same
neighbour; ratios divide this run's medians directly (:func:`~gnndist.benchmarks.fullgraph_report.ratios`). Every model is 2 layers, ``in-hidden-classes``
(128-128-16 on ``sbm``), dropout 0.5 on every layer's input, Adam (lr 0.01, weight decay 5e-4),
cross-entropy on the training nodes; GCN adds self loops and normalises symmetrically.

Reported per row: median epoch time after warm-up (forward + backward + optimizer step; for P > 1 the
slowest worker's step), the ratio to DGL, to PyG-CSR and to gnndist P=1, halo and gradient bytes per epoch (mean over
epochs, all workers), peak resident memory and, on CUDA, peak GPU memory (per process; for P > 1 the largest worker and the sum),
test accuracy after the fixed number of epochs. Plus where gnndist's time goes at P=1 (one epoch under
``torch.profiler``) and ``F.dropout`` against gnndist's dropout. Writes ``fullgraph.json`` and
``fullgraph.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python, peer_command
from gnndist.benchmarks.fullgraph_report import Row, label, markdown, ratios, targets
from gnndist.benchmarks.peers import write_graph
from gnndist.benchmarks.report import write_report
from gnndist.memory import minor_faults, peak_cuda_bytes, peak_resident_bytes, reset_peak_cuda, reset_peak_resident, worker_malloc_env

GRAPHS = {  # dataset-registry options of the benchmark graphs (all ``sbm``)
    "sbm": dict(num_nodes=200_000, avg_degree=20.7, num_classes=16, feature_dim=128, seed=0),
    "sbm-small": dict(num_nodes=3_000, avg_degree=10, num_classes=4, feature_dim=16, seed=0),  # --quick and smoke tests
}
MODELS = ("gcn", "sage")
STRATEGIES = ("sync", "stale", "sampled", "quantized", "cached")
PYG_VARIANTS = ("edge_index", "csr")


@dataclass(frozen=True)
class FullGraphBenchConfig:
    """What one benchmark run measures.

    Attributes:
        out: directory for ``fullgraph.json`` and ``fullgraph.md``.
        devices: ``cpu`` and/or ``cuda[:N]``, one section each (CUDA availability is checked at the CLI).
        graph: a key of ``GRAPHS``.
        models: ``gcn`` and/or ``sage``.
        parts: gnndist part counts; 1 is the single-process trainer, P > 1 one Ray worker per part.
        strategies: communication strategies measured for every P > 1.
        epochs: training epochs of every contender; accuracy is taken after the last.
        warmup: first epochs left out of the median epoch time.
        hidden: hidden width (the model is ``features-hidden-classes``).
        dropout, lr, weight_decay, seed: training settings shared by every contender.
        aggregation: gnndist aggregation backend; None takes, on CPU, ``gnndist_csr`` where it builds, else
            ``csr_spmm``, and on CUDA ``auto`` (the measured CUDA ranking).
        partitioner: partitioner for P > 1.
        threads: torch threads of every single-process contender (default: all cores).
        worker_threads: torch threads of each Ray worker.
        pyg_variants: ``edge_index`` and/or ``csr`` (empty: no PyG).
        dgl: the DGL environment (:func:`~gnndist.benchmarks.child.find_dgl_python`); its python None skips DGL.
        profile: profile one extra gnndist P=1 epoch on the CPU for the time breakdown.
        timeout_s: bound on one epoch (or setup) of any contender.
    """

    out: Path
    devices: tuple[str, ...] = ("cpu",)
    graph: str = "sbm"
    models: tuple[str, ...] = MODELS
    parts: tuple[int, ...] = (1, 2, 4)
    strategies: tuple[str, ...] = STRATEGIES
    epochs: int = 10
    warmup: int = 2
    hidden: int = 128
    dropout: float = 0.5
    lr: float = 0.01
    weight_decay: float = 5e-4
    seed: int = 0
    aggregation: str | None = None
    partitioner: str = "metis"
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    worker_threads: int = 1
    pyg_variants: tuple[str, ...] = PYG_VARIANTS
    dgl: DGLPython = NO_DGL
    profile: bool = True
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.graph not in GRAPHS:
            raise ValueError(f"Unknown benchmark graph {self.graph!r}; available: {', '.join(GRAPHS)}")
        for name, values, allowed in (("models", self.models, MODELS), ("pyg_variants", self.pyg_variants, PYG_VARIANTS)):
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                raise ValueError(f"Unknown {name} {unknown}; expected some of {list(allowed)}")
        if not self.models:
            raise ValueError("Expected at least one model (got none)")
        if not self.devices or len(set(self.devices)) != len(self.devices):
            raise ValueError(f"Expected one or more distinct devices (got {list(self.devices)})")
        for device in self.devices:
            if not _is_device(device):
                raise ValueError(f"Unknown device {device!r}; expected cpu, cuda or cuda:N")
        if any(p < 1 for p in self.parts):
            raise ValueError(f"Expected every part count >= 1 (got {list(self.parts)})")
        if not 0 <= self.warmup < self.epochs:
            raise ValueError(f"Expected 0 <= warmup < epochs (got warmup={self.warmup}, epochs={self.epochs})")


def _is_device(name: str) -> bool:
    try:
        return torch.device(name).type in ("cpu", "cuda")
    except RuntimeError:
        return False


# ------------------------------------------------------------------------------ the contenders
@dataclass(frozen=True)
class ContenderSpec:
    """One single-process contender: which library and model, on which graph file, with which settings."""

    library: str  # "gnndist" | "pyg" | "dgl"
    variant: str  # gnndist: the aggregation backend; pyg: "edge_index" | "csr"; dgl: "gspmm"
    model: str
    npz: str
    hidden: int
    dropout: float
    lr: float
    weight_decay: float
    seed: int
    threads: int
    device: str

    @property
    def label(self) -> str:
        return {"gnndist": "gnndist P=1", "pyg": f"PyG {self.variant}", "dgl": "DGL"}[self.library]


class Contender:
    """A contender in its own child process: one epoch per request, its memory read from outside."""

    def __init__(self, spec: ContenderSpec, dgl_python: Path | None, timeout_s: float):
        if spec.library == "gnndist":
            command = [sys.executable, "-m", "gnndist.benchmarks.gnndist_child", json.dumps(asdict(spec))]
        else:
            command = peer_command(dgl_python if spec.library == "dgl" else sys.executable, "fullgraph", asdict(spec))
        # gnndist P=1 gets a worker's heap settings, so that it and P > 1 differ only in distribution; peers run as their users run them
        env = worker_malloc_env(release=False) if spec.library == "gnndist" else None
        self.child = ChildProcess(command, f"{spec.label} ({spec.model})", timeout_s, threads=spec.threads, env=env)
        self.info = self.child.info

    def epoch(self, epoch: int) -> dict[str, float]:
        """One training epoch: its wall and CPU seconds, loss and minor page faults."""
        faults = minor_faults(self.child.process.pid)
        answer = self.child.request("epoch", epoch=epoch)
        return {**answer, "minor_faults": minor_faults(self.child.process.pid) - faults}

    def request(self, op: str, **fields: Any) -> dict:
        return self.child.request(op, **fields)

    def peak_rss_bytes(self) -> int:
        return peak_resident_bytes(self.child.process.pid)

    def peak_cuda_bytes(self) -> int | None:
        """The child's peak GPU memory (None on the CPU)."""
        return self.child.request("cuda_peak")["bytes"]

    def close(self) -> None:
        self.child.close()


# ------------------------------------------------------------------------ the distributed side
class BenchWorker:
    """Hosted on every Ray worker: a FullGraphWorkerTrainer plus what the benchmark asks of the process."""

    def __init__(self, context, source, model_spec, strategy: str):
        from gnndist.device import worker_device
        from gnndist.train.fullgraph import FullGraphWorkerTrainer

        device = worker_device(context.device)
        reset_peak_resident()
        if device.type == "cuda":  # peak from here: this variant's data, model and training, as a fresh process would have
            reset_peak_cuda(device)
        self.trainer = FullGraphWorkerTrainer(context, source, model_spec, strategy)

    def train_epoch(self, epoch: int, evaluate: bool = False) -> dict[str, Any]:
        return self.trainer.train_epoch(epoch, evaluate)

    def evaluate(self) -> dict[str, float | None]:
        return self.trainer.evaluate().values

    def peak_rss(self) -> int:
        return peak_resident_bytes()

    def peak_cuda(self) -> int | None:
        """Peak GPU memory of this worker's tensors since its trainer was built (None on the CPU)."""
        device = self.trainer.device
        return peak_cuda_bytes(device) if device.type == "cuda" else None

    def release(self) -> None:
        """Drops the trainer, so the next variant's peak memory starts from an empty worker."""
        import gc

        self.trainer = None
        gc.collect()


def _default_aggregation(device: str) -> str:
    """gnndist's aggregation backend on ``device`` when none is asked for: on CUDA ``auto`` (its measured
    CUDA ranking), on the CPU ``gnndist_csr`` where the native kernel builds, else ``csr_spmm``."""
    from gnndist.aggregation.native_kernel import native_status

    if torch.device(device).type == "cuda":
        return "auto"
    return "gnndist_csr" if native_status()[0] else "csr_spmm"


class Run:
    """State of one benchmark run: the config, the rows, and the live DGL reference children."""

    def __init__(self, config: FullGraphBenchConfig, npz: Path, aggregation: dict[str, str]):
        self.config, self.npz, self.aggregation, self.dgl_python = config, npz, aggregation, config.dgl.python
        self.rows: list[Row] = []
        self.dgl: dict[str, Contender] = {}  # DGL reference processes of the distributed section, by model
        self.dgl_epoch: dict[str, int] = {}
        self.breakdown: dict[str, Any] = {}
        self.dropout: dict[str, Any] | None = None

    def contender(self, library: str, variant: str, model: str, device: str = "cpu") -> Contender:
        c = self.config
        spec = ContenderSpec(library, variant, model, str(self.npz), c.hidden, c.dropout, c.lr, c.weight_decay, c.seed, c.threads, device)
        return Contender(spec, self.dgl_python, c.timeout_s)

    def log(self, row: Row) -> None:
        s = row.summary(self.config.warmup)
        accuracy = row.accuracies.get("test_acc")
        dgl = statistics.median(row.reference_dgl_s[self.config.warmup :] or row.reference_dgl_s) if row.reference_dgl_s else None
        ratio = f"  {s['median_epoch_s'] / dgl:.2f}x DGL" if dgl else ""
        print(f"[{row.device} {row.model}] {label(row):28s} {s['median_epoch_s']:8.3f} s/epoch{ratio}  test {accuracy if accuracy is None else round(accuracy, 4)}", flush=True)

    # ---------------------------------------------------------------- single-process contenders
    def single_process(self, model: str, device: str) -> None:
        """gnndist P=1, PyG and DGL (CPU only) of ``model`` on ``device``, each in its own process, epochs round-robin."""
        c = self.config
        children: list[tuple[Row, Contender]] = []
        try:
            aggregation = self.aggregation[device]
            if 1 in c.parts:
                children.append((Row(model, "gnndist", aggregation, 1, "-", device=device), self.contender("gnndist", aggregation, model, device)))
            for variant in c.pyg_variants:
                children.append((Row(model, "PyG", variant, 1, "-", device=device), self.contender("pyg", variant, model, device)))
            if self.with_dgl(device):
                children.append((Row(model, "DGL", "gspmm", 1, "-", device=device), self.contender("dgl", "gspmm", model)))
            for row, child in children:
                row.info = child.info
            for epoch in range(c.epochs if children else 0):  # --parts without 1, no PyG, no DGL: nothing to run here
                shift = epoch % len(children)  # rotate who goes first, so no contender always follows the same one
                for row, child in children[shift:] + children[:shift]:
                    answer = child.epoch(epoch)
                    row.epoch_s.append(answer["seconds"])
                    row.cpu_s.append(answer["cpu_seconds"])
                    row.minor_faults.append(answer["minor_faults"])
                    row.losses.append(answer["loss"])
            for row, child in children:
                row.accuracies = child.request("evaluate")
                row.peak_rss_bytes = row.peak_rss_sum_bytes = child.peak_rss_bytes()
                row.peak_cuda_bytes = row.peak_cuda_sum_bytes = child.peak_cuda_bytes()
                self.rows.append(row)
                self.log(row)
            gnndist = next((child for row, child in children if row.system == "gnndist"), None)
            if gnndist is not None and c.profile and device == "cpu":
                self.breakdown[model] = gnndist.request("breakdown", epoch=c.epochs)
                if self.dropout is None:
                    self.dropout = gnndist.request("dropout")
        finally:
            for _, child in children:
                child.close()

    def with_dgl(self, device: str) -> bool:
        """Whether DGL runs beside gnndist on ``device``: on the CPU when its environment was found (it has no CUDA)."""
        return self.dgl_python is not None and device == "cpu"

    def dgl_reference_epoch(self, model: str, device: str) -> float | None:
        """One DGL epoch of ``model`` in a process kept for the distributed section (timing only:
        DGL's accuracy and memory come from the single-process section)."""
        if not self.with_dgl(device):
            return None
        if model not in self.dgl:
            self.dgl[model] = self.contender("dgl", "gspmm", model)
            self.dgl_epoch[model] = 0
        self.dgl_epoch[model] += 1
        return self.dgl[model].epoch(self.dgl_epoch[model])["seconds"]

    # ---------------------------------------------------------------------- distributed gnndist
    def distributed(self, graph, work_dir: Path, device: str) -> None:
        """Every P > 1 x model x strategy on one Ray worker group per P; on CUDA the P workers share the one GPU."""
        from gnndist.models import ModelSpec
        from gnndist.partition import partition_graph
        from gnndist.runtime import WorkerGroup, ray_cluster
        from gnndist.train.driver import GroupTrainer
        from gnndist.train.fullgraph import PartSource, epoch_metrics

        c = self.config
        parts_list = [p for p in c.parts if p > 1]
        if not parts_list or not c.strategies:
            return
        on_gpu = torch.device(device).type == "cuda"
        with ray_cluster(None, num_cpus=max(parts_list), num_gpus=1 if on_gpu else 0, object_store_bytes=1 << 30, timeout_s=c.timeout_s):
            for parts in parts_list:
                directory = work_dir / f"parts-{parts}"
                if not directory.exists():  # a second device section reuses the partition
                    partition_graph(graph, c.partitioner, parts, directory, seed=c.seed, feature_width=c.hidden, force=True)
                group = WorkerGroup(
                    parts, cpus_per_worker=1, gpus_per_worker=1 / parts if on_gpu else 0.0, comm_backend="gloo", timeout_s=c.timeout_s, num_threads=c.worker_threads
                )
                try:
                    group.init_process_group()
                    sources = [(PartSource(rank, directory=str(directory)),) for rank in range(parts)]
                    for model in c.models:
                        spec = ModelSpec(
                            name=model, num_features=graph.num_features, num_classes=graph.num_classes, hidden=c.hidden, layers=2, dropout=c.dropout,
                            aggregation=self.aggregation[device], lr=c.lr, weight_decay=c.weight_decay, seed=c.seed,
                        )
                        for strategy in c.strategies:
                            group.setup(BenchWorker, sources, model_spec=spec, strategy=strategy)
                            info = {"worker_threads": c.worker_threads, "partitioner": c.partitioner, "gpus_per_worker": 1 / parts if on_gpu else 0.0, "comm_backend": group.backend}
                            row = Row(model, "gnndist", self.aggregation[device], parts, strategy, device=device, info=info)
                            trainer = GroupTrainer(group, epoch_metrics)
                            for epoch in range(c.epochs):
                                metrics = trainer.train_epoch(epoch, evaluate=False)
                                row.epoch_s.append(metrics.epoch_time_s)
                                row.cpu_s.append(metrics.extra["cpu_s"])
                                row.losses.append(metrics.loss)
                                row.halo_bytes.append(metrics.bytes_sent)
                                row.grad_bytes.append(int(metrics.extra.get("grad_bytes", 0)))
                                row.comm_s.append(metrics.extra.get("comm_time_s", 0.0))
                                reference = self.dgl_reference_epoch(model, device)
                                if reference is not None:
                                    row.reference_dgl_s.append(reference)
                            row.accuracies = group.run("evaluate")[0]
                            peaks = group.run("peak_rss")
                            row.peak_rss_bytes, row.peak_rss_sum_bytes = max(peaks), sum(peaks)
                            if on_gpu:
                                peaks = group.run("peak_cuda")
                                row.peak_cuda_bytes, row.peak_cuda_sum_bytes = max(peaks), sum(peaks)
                            self.rows.append(row)
                            self.log(row)
                            group.run("release")
                finally:
                    group.shutdown()


# ------------------------------------------------------------------------------------- reporting


# ------------------------------------------------------------------------------------- the run
def run_benchmark(config: FullGraphBenchConfig) -> dict[str, Any]:
    """Runs every contender of ``config``; writes ``fullgraph.json`` and ``fullgraph.md`` into ``config.out``."""
    from gnndist.data import load_dataset
    from gnndist.device import device_name

    config.out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    graph = load_dataset("sbm", **GRAPHS[config.graph])
    aggregation = {device: config.aggregation or _default_aggregation(device) for device in config.devices}
    with tempfile.TemporaryDirectory(prefix="gnndist-fullgraph-") as tmp:
        npz = Path(tmp) / "graph.npz"
        write_graph(graph, npz)
        run = Run(config, npz, aggregation)
        try:
            for device in config.devices:
                if device != "cpu":
                    print(f"[{device}] {device_name(device)}; DGL skipped on {device} (the DGL environment has no CUDA)", flush=True)
                for model in config.models:
                    run.single_process(model, device)
                run.distributed(graph, Path(tmp), device)
        finally:
            for child in run.dgl.values():
                child.close()
    row_ratios = ratios(run.rows, config.warmup)
    rows = []
    for index, row in enumerate(run.rows):
        record = {"label": label(row), **asdict(row), **row.summary(config.warmup), **row_ratios[index]}
        rows.append(record)
    dgl_info = next((r["info"] for r in rows if r["system"] == "DGL"), None)
    result = {
        "graph": {"name": config.graph, "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_features": graph.num_features, "num_classes": graph.num_classes, "num_train": int(graph.train_mask.sum()), **GRAPHS[config.graph]},
        "config": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items() if k != "dgl"}, "dgl_python": str(config.dgl.python) if config.dgl.python else None},
        "aggregation": aggregation,
        "devices": {device: device_name(device) for device in config.devices},
        "environment": {
            "torch": torch.__version__,
            "threads": config.threads,
            "worker_threads": config.worker_threads,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
            "note": "the cores are shared with other work (the load average above), so absolute times are inflated and noisy; compare the ratios measured in this run.",
            "dgl": dgl_info or config.dgl.note,
            "dgl_on_cuda": "skipped: the DGL environment has no CUDA" if any(d != "cpu" for d in config.devices) else None,
        },
        "rows": rows,
        "breakdown": run.breakdown,
        "dropout": run.dropout,
    }
    result["targets"] = targets(rows)
    table = markdown(result)
    write_report(config.out, "fullgraph", result, table)
    print(table)
    return result


QUICK = dict(graph="sbm-small", models=("gcn",), parts=(1, 2), strategies=("sync", "stale"), epochs=2, warmup=1, hidden=16)  # and no DGL unless --dgl-python
# --devices with only GPUs: a GPU epoch of sbm takes milliseconds, so more epochs cost little, while every
# process, Ray and worker group started costs seconds; P in {1, 2} and sync keep the run near 3 minutes
# on one H100/H200 (benchmarks/gpu_check.sh gives it 4).
GPU_ONLY = dict(parts=(1, 2), strategies=("sync",), epochs=20, warmup=3, profile=False)


def resolve_devices(requested: Sequence[str], parser: argparse.ArgumentParser) -> tuple[str, ...]:
    """``--devices`` as torch device names (``auto`` resolved); CUDA asked for where there is none ends the
    run with a message naming the flag (argparse's exit code 2, no traceback)."""
    from gnndist.device import resolve_device

    try:
        return tuple(dict.fromkeys(str(resolve_device(name, key="--devices")) for name in requested))
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.fullgraph", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory for fullgraph.json and fullgraph.md")
    parser.add_argument("--quick", action="store_true", help=f"a few thousand nodes, 2 epochs, P in {{1, 2}}, sync and stale, GCN, no DGL ({QUICK})")
    parser.add_argument(
        "--devices", nargs="+", default=["cpu"], metavar="DEV",
        help=f"cpu, cuda[:N] and/or auto, one report section each (default: cpu); GPUs only, without --quick: {GPU_ONLY}; DGL runs on the CPU only",
    )
    parser.add_argument("--graph", choices=sorted(GRAPHS), help="benchmark graph (default: sbm; --quick: sbm-small)")
    parser.add_argument("--models", nargs="+", choices=MODELS)
    parser.add_argument("--parts", nargs="+", type=int, help="gnndist part counts; 1 = single process (default: 1 2 4)")
    parser.add_argument("--strategies", nargs="+", help=f"communication strategies for P > 1 (default: {' '.join(STRATEGIES)})")
    parser.add_argument("--epochs", type=int, help="epochs per contender (default: 10)")
    parser.add_argument("--warmup", type=int, help="epochs left out of the median (default: 2)")
    parser.add_argument("--hidden", type=int, help="hidden width (default: 128)")
    parser.add_argument("--aggregation", help="gnndist aggregation backend (default: gnndist_csr where it builds, else csr_spmm)")
    parser.add_argument("--partitioner", help="partitioner for P > 1 (default: metis)")
    parser.add_argument("--threads", type=int, help="torch threads of each single-process contender (default: all cores)")
    parser.add_argument("--worker-threads", type=int, help="torch threads of each Ray worker (default: 1)")
    parser.add_argument("--pyg", nargs="*", choices=PYG_VARIANTS, help="PyG inputs to measure (default: edge_index csr; none: skip PyG)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="skip DGL")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled P=1 epoch and the dropout timing")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required")
    devices = resolve_devices(args.devices, parser)
    options: dict[str, Any] = dict(QUICK) if args.quick else dict(GPU_ONLY) if "cpu" not in devices else {}
    options["devices"] = devices
    for name in ("graph", "epochs", "warmup", "hidden", "aggregation", "partitioner", "threads", "worker_threads"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    for name in ("models", "parts", "strategies"):
        if getattr(args, name) is not None:
            options[name] = tuple(getattr(args, name))
    if args.pyg is not None:
        options["pyg_variants"] = tuple(args.pyg)
    options["dgl"] = find_dgl_python(args.dgl_python, disabled=args.no_dgl or (args.quick and args.dgl_python is None))
    if args.no_profile:
        options["profile"] = False
    if "epochs" in options and "warmup" not in options:
        options["warmup"] = min(FullGraphBenchConfig.warmup, options["epochs"] - 1)
    try:
        config = FullGraphBenchConfig(args.out, **options)
    except ValueError as error:
        parser.error(str(error))
    run_benchmark(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
