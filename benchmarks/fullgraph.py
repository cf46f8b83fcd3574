"""Full-graph training end to end: gnndist (one process, and P parts per communication strategy)
against single-process PyG and DGL on the same graph, in the same run, epochs interleaved.

``python -m gnndist.benchmarks.fullgraph --out DIR [--quick] [--models gcn sage] [--parts 1 2 4]
[--strategies sync stale sampled quantized cached] [--epochs N]`` builds the graph once and writes it
as an ``.npz`` that every contender reads. Every single-process contender is its own child process
(so its peak memory is its own), driven one epoch per request over stdin:

- gnndist P=1: :class:`~gnndist.train.single.SingleProcessTrainer` (this environment);
- PyG: plain ``GCNConv``/``SAGEConv`` code on ``edge_index`` and on a ``torch.sparse`` CSR ``adj_t``
  (this environment, with PyG's own ``F.dropout``);
- DGL 2.1: ``GraphConv``/``SAGEConv`` in the compat environment (``.venv-compat``, torch 2.2.1).

gnndist P > 1 runs on a private local Ray: one :class:`~gnndist.runtime.WorkerGroup` per P (a METIS
partition per P, one logical CPU and ``--worker-threads`` torch threads per worker), one trainer per
(model, strategy). A DGL epoch of the same model follows every distributed epoch, so each row's
ratio to DGL is measured under the same load. Every model is 2 layers, ``in-hidden-classes``
(128-128-16 on ``sbm``), dropout 0.5 on every layer's input, Adam (lr 0.01, weight decay 5e-4),
cross-entropy on the training nodes; GCN adds self loops and normalises symmetrically.

Reported per row: median epoch time after warm-up (forward + backward + optimizer step; for P > 1 the
slowest worker's step), the ratio to DGL and to PyG-CSR, halo and gradient bytes per epoch (mean over
epochs, all workers), peak resident memory (per process; for P > 1 the largest worker and the sum),
test accuracy after the fixed number of epochs. Plus where gnndist's time goes at P=1 (one epoch under
``torch.profiler``) and ``F.dropout`` against gnndist's dropout. Writes ``fullgraph.json`` and
``fullgraph.md``.

This module is also the child process (``--child SPEC``), so its top level imports only what both
environments have (torch, numpy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from gnndist.benchmarks.sampling import _dgl_unavailable

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DGL_PYTHON = REPO / ".venv-compat" / "bin" / "python"
GRAPHS = {
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
        graph: a key of ``GRAPHS``.
        models: ``gcn`` and/or ``sage``.
        parts: gnndist part counts; 1 is the single-process trainer, P > 1 one Ray worker per part.
        strategies: communication strategies measured for every P > 1.
        epochs: training epochs of every contender; accuracy is taken after the last.
        warmup: first epochs left out of the median epoch time.
        hidden: hidden width (the model is ``features-hidden-classes``).
        dropout, lr, weight_decay, seed: training settings shared by every contender.
        aggregation: gnndist aggregation backend; None takes ``gnndist_csr`` where it builds, else ``csr_spmm``.
        partitioner: partitioner for P > 1.
        threads: torch threads of every single-process contender (default: all cores).
        worker_threads: torch threads of each Ray worker.
        pyg_variants: ``edge_index`` and/or ``csr`` (empty: no PyG).
        dgl_python: interpreter of the DGL compat environment; None skips DGL.
        profile: profile one extra gnndist P=1 epoch for the time breakdown.
        timeout_s: bound on one epoch (or setup) of any contender.
    """

    out: Path
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
    dgl_python: Path | None = DEFAULT_DGL_PYTHON
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
        if any(p < 1 for p in self.parts):
            raise ValueError(f"Expected every part count >= 1 (got {list(self.parts)})")
        if not 0 <= self.warmup < self.epochs:
            raise ValueError(f"Expected 0 <= warmup < epochs (got warmup={self.warmup}, epochs={self.epochs})")


# ------------------------------------------------------------------------------- process memory
def peak_rss_bytes() -> int:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Restarts the peak at the current resident memory (Linux ``clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# ------------------------------------------------------------------------------ the child side
@dataclass(frozen=True)
class ChildSpec:
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

    @property
    def label(self) -> str:
        return {"gnndist": "gnndist P=1", "pyg": f"PyG {self.variant}", "dgl": "DGL"}[self.library]


def _load_arrays(npz: str) -> dict[str, torch.Tensor]:
    with np.load(npz) as data:
        return {key: torch.from_numpy(data[key]) for key in data.files}


def _accuracies(logits: torch.Tensor, y: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, float]:
    predicted = logits.argmax(dim=-1)
    return {f"{split}_acc": float((predicted[mask] == y[mask]).float().mean()) for split, mask in masks.items()}


class PeerRunner:
    """A PyG or DGL model trained the plain way: dropout, conv, ReLU, dropout, conv; Adam; cross-entropy."""

    def __init__(self, spec: ChildSpec, arrays: dict[str, torch.Tensor]):
        self.spec = spec
        indptr, indices, x = arrays["indptr"], arrays["indices"], arrays["x"]
        num_nodes, num_classes = indptr.numel() - 1, int(arrays["y"].max()) + 1
        self.x, self.y = x, arrays["y"]
        self.masks = {split: arrays[f"{split}_mask"] for split in ("train", "val", "test")}
        self.train_index = self.masks["train"].nonzero().flatten()
        self.train_labels = self.y[self.train_index]
        torch.manual_seed(spec.seed)
        if spec.library == "pyg":
            self.version = self._build_pyg(indptr, indices, num_nodes, x.size(1), num_classes)
        else:
            self.version = self._build_dgl(indptr, indices, num_nodes, x.size(1), num_classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)

    def _build_pyg(self, indptr, indices, num_nodes, num_features, num_classes) -> str:
        import torch_geometric
        from torch_geometric.nn import GCNConv, SAGEConv

        if self.spec.variant == "edge_index":
            dst = torch.repeat_interleave(torch.arange(num_nodes), indptr.diff())
            self.graph = torch.stack([indices, dst])
        else:
            self.graph = torch.sparse_csr_tensor(indptr, indices, torch.ones(indices.numel()), size=(num_nodes, num_nodes))
        if self.spec.model == "gcn":
            make = lambda i, o: GCNConv(i, o, cached=True)  # noqa: E731  (normalisation computed once, like gnndist's)
        else:
            make = lambda i, o: SAGEConv(i, o, aggr="mean")  # noqa: E731
        self.model = _TwoLayers(make(num_features, self.spec.hidden), make(self.spec.hidden, num_classes), self.spec.dropout, dgl=False)
        return f"torch_geometric {torch_geometric.__version__}"

    def _build_dgl(self, indptr, indices, num_nodes, num_features, num_classes) -> str:
        import dgl
        from dgl.nn import GraphConv, SAGEConv

        graph = dgl.graph(("csc", (indptr, indices, torch.arange(indices.numel()))), num_nodes=num_nodes)
        if self.spec.model == "gcn":
            graph = dgl.add_self_loop(graph)
            make = lambda i, o: GraphConv(i, o, norm="both")  # noqa: E731
        else:
            make = lambda i, o: SAGEConv(i, o, "mean")  # noqa: E731
        graph.create_formats_()
        self.graph = graph
        self.model = _TwoLayers(make(num_features, self.spec.hidden), make(self.spec.hidden, num_classes), self.spec.dropout, dgl=True)
        return f"dgl {dgl.__version__}"

    def train_epoch(self, epoch: int) -> float:
        torch.manual_seed(self.spec.seed * 1_000_003 + epoch)
        self.model.train()
        self.optimizer.zero_grad()
        logits = self.model(self.x, self.graph)
        loss = F.cross_entropy(logits[self.train_index], self.train_labels)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.model.eval()
        return _accuracies(self.model(self.x, self.graph), self.y, self.masks)


class _TwoLayers(torch.nn.Module):
    def __init__(self, conv1, conv2, dropout: float, dgl: bool):
        super().__init__()
        self.conv1, self.conv2, self.dropout, self.dgl = conv1, conv2, dropout, dgl

    def _conv(self, conv, graph, h):
        return conv(graph, h) if self.dgl else conv(h, graph)

    def forward(self, x, graph):
        h = F.dropout(x, self.dropout, self.training)
        h = self._conv(self.conv1, graph, h).relu()
        h = F.dropout(h, self.dropout, self.training)
        return self._conv(self.conv2, graph, h)


class GnndistRunner:
    """gnndist at P=1: the single-process trainer over the whole graph."""

    def __init__(self, spec: ChildSpec, arrays: dict[str, torch.Tensor]):
        import gnndist
        from gnndist.graph import Graph
        from gnndist.train.fullgraph import ModelSpec
        from gnndist.train.single import SingleProcessTrainer

        self.spec = spec
        graph = Graph(arrays["indptr"], arrays["indices"], x=arrays["x"], y=arrays["y"], train_mask=arrays["train_mask"], val_mask=arrays["val_mask"], test_mask=arrays["test_mask"])
        model_spec = ModelSpec(spec.model, graph.num_features, graph.num_classes, spec.hidden, 2, spec.dropout, spec.variant, spec.lr, spec.weight_decay, spec.seed)
        model, _ = model_spec.build()
        self.trainer = SingleProcessTrainer(graph, model, lr=spec.lr, weight_decay=spec.weight_decay, seed=spec.seed)
        self.version = f"gnndist {gnndist.__version__}"

    def train_epoch(self, epoch: int) -> float:
        return self.trainer.train_epoch(epoch, evaluate=False).loss

    def evaluate(self) -> dict[str, float]:
        train, val, test = self.trainer.evaluate()
        return {"train_acc": train, "val_acc": val, "test_acc": test}

    def breakdown(self, epoch: int) -> dict[str, Any]:
        return profile_breakdown(self.trainer, epoch)

    def dropout_timing(self, repeats: int = 3) -> dict[str, float]:
        return dropout_timing(self.trainer.graph.num_nodes, self.spec.hidden, self.spec.dropout, repeats)


def child_main(spec_json: str) -> None:
    """The child side: build the contender, then answer one JSON request per stdin line."""
    spec = ChildSpec(**json.loads(spec_json))
    torch.set_num_threads(spec.threads)
    arrays = _load_arrays(spec.npz)
    runner = GnndistRunner(spec, arrays) if spec.library == "gnndist" else PeerRunner(spec, arrays)
    del arrays
    _answer({"version": runner.version, "torch": torch.__version__, "threads": torch.get_num_threads(), "rss_after_setup_bytes": _current_rss_bytes()})
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        if op == "epoch":
            faults, start, start_cpu = minor_faults(), time.perf_counter(), time.process_time()
            loss = runner.train_epoch(request["epoch"])
            _answer({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu, "minor_faults": minor_faults() - faults, "loss": loss})
        elif op == "evaluate":
            _answer(runner.evaluate())
        elif op == "memory":
            _answer({"peak_rss_bytes": peak_rss_bytes()})
        elif op == "breakdown":
            _answer(runner.breakdown(request["epoch"]))
        elif op == "dropout":
            _answer(runner.dropout_timing())
        else:
            raise ValueError(f"Unknown request {op!r}")


def _answer(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class Child:
    """A contender in its own process (this environment's python, or DGL's), one epoch per request."""

    def __init__(self, spec: ChildSpec, python: Path, timeout_s: float):
        env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), MKL_NUM_THREADS=str(spec.threads), DGLBACKEND="pytorch")
        command = [str(python), "-m", "gnndist.benchmarks.fullgraph", "--child", json.dumps(asdict(spec))]
        self.spec, self.timeout_s = spec, timeout_s
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        self.info = self._read()

    def _read(self) -> dict:
        # one request, one answer line: nothing is ever left in the pipe's buffer, so select() is exact
        if not select.select([self.process.stdout], [], [], self.timeout_s)[0]:
            self.process.kill()
            raise TimeoutError(f"{self.spec.label} ({self.spec.model}) did not answer within {self.timeout_s:.0f} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.spec.label} ({self.spec.model}) child exited with code {self.process.wait()} (see its stderr above)")
        return json.loads(line)

    def request(self, op: str, **fields: Any) -> dict:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ----------------------------------------------------------------------- where gnndist's time goes
BREAKDOWN_CATEGORIES = ("aggregation forward", "aggregation backward", "linear forward", "linear backward", "dropout + relu forward", "dropout + relu backward", "loss", "optimizer", "other")


class _Ranged:
    """Calls ``inner`` inside a named profiler range, so the profiler sees the whole call as one."""

    def __init__(self, name: str, inner):
        self.name, self.inner = name, inner

    def __call__(self, *args, **kwargs):
        from torch.profiler import record_function

        with record_function(self.name):
            return self.inner(*args, **kwargs)


def _category(chain: list[str]) -> str | None:
    """The category of a profiler event from its name and its ancestors' names (innermost first)."""
    joined = " | ".join(chain)
    if "Optimizer." in joined:
        return "optimizer"
    if "gnndist.aggregation" in joined:
        return "aggregation forward"
    backward = "autograd::engine::evaluate_function" in joined or "Backward" in joined
    if "gnndist.dropout" in joined and not backward:
        return "dropout + relu forward"
    for name in chain:
        if "Native" in name or "Sparse" in name or "_sparse" in name:
            return "aggregation backward" if backward else "aggregation forward"
        if "Dropout" in name or "Threshold" in name or "Relu" in name or name in ("aten::relu_", "aten::relu", "MulBackward0"):
            return "dropout + relu backward" if backward else "dropout + relu forward"
        if name in ("aten::addmm", "aten::addmm_", "aten::mm", "aten::linear") or name.startswith(("AddmmBackward", "MmBackward", "TBackward")):
            return "linear backward" if backward else "linear forward"
        if "nll_loss" in name or "log_softmax" in name or "cross_entropy" in name or "NllLoss" in name or "LogSoftmax" in name:
            return "loss"
    return None


def profile_breakdown(trainer, epoch: int) -> dict[str, Any]:
    """One training epoch of ``trainer`` (a SingleProcessTrainer) under ``torch.profiler``, by category.

    Self CPU time of every operator goes to the category of the nearest enclosing range that has one
    (aggregation: the backend call and its autograd node; linear: matmuls; dropout + ReLU; loss;
    optimizer; other: indexing, bias adds, the autograd engine). The profiler slows small operators,
    so read the shares, and the total only as an upper bound.
    """
    from torch.profiler import ProfilerActivity, profile

    import gnndist.train.models as models_module

    model = trainer.model
    # name the model's aggregation and dropout calls for the profiler during this one epoch
    originals = model.aggregation, models_module.dropout, models_module.relu_dropout
    model.aggregation = _Ranged("gnndist.aggregation", originals[0])
    models_module.dropout, models_module.relu_dropout = _Ranged("gnndist.dropout", originals[1]), _Ranged("gnndist.dropout", originals[2])
    try:
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.train_epoch(epoch, evaluate=False)
        wall = time.perf_counter() - start
    finally:
        model.aggregation, models_module.dropout, models_module.relu_dropout = originals
    seconds = dict.fromkeys(BREAKDOWN_CATEGORIES, 0.0)
    for event in prof.events():
        chain, parent = [], event
        while parent is not None:
            chain.append(parent.name)
            parent = parent.cpu_parent
        seconds[_category(chain) or "other"] += event.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    return {"profiled_epoch_s": wall, "seconds": seconds, "share": {k: v / total if total else 0.0 for k, v in seconds.items()}}


def dropout_timing(num_rows: int, width: int, p: float, repeats: int = 3) -> dict[str, float]:
    """Median seconds of torch's ``F.dropout`` and gnndist's dropout on a ``[num_rows, width]`` tensor,
    forward alone and ReLU + dropout forward + backward (what a hidden layer pays)."""
    from gnndist.train.dropout import dropout, relu_dropout

    x = torch.randn(num_rows, width)

    def median_of(fn) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def with_backward(fn):
        def run():
            h = x.clone().requires_grad_()
            fn(h).backward(x)

        return run

    return {
        "rows": num_rows,
        "width": width,
        "torch_dropout_forward_s": median_of(lambda: F.dropout(x, p, True)),
        "gnndist_dropout_forward_s": median_of(lambda: dropout(x, p, True)),
        "torch_relu_dropout_train_s": median_of(with_backward(lambda h: F.dropout(F.relu(h), p, True))),
        "gnndist_relu_dropout_train_s": median_of(with_backward(lambda h: relu_dropout(h, p, True))),
    }


# ------------------------------------------------------------------------ the distributed side
class BenchWorker:
    """Hosted on every Ray worker: a FullGraphWorkerTrainer plus what the benchmark asks of the process."""

    def __init__(self, context, source, model_spec, strategy: str):
        from gnndist.train.fullgraph import FullGraphWorkerTrainer

        reset_peak_rss()
        self.trainer = FullGraphWorkerTrainer(context, source, model_spec, strategy)

    def train_epoch(self, epoch: int, evaluate: bool = False) -> dict[str, Any]:
        return self.trainer.train_epoch(epoch, evaluate)

    def evaluate(self) -> dict[str, float | None]:
        train, val, test = self.trainer.evaluate_counts().accuracies()
        return {"train_acc": train, "val_acc": val, "test_acc": test}

    def peak_rss(self) -> int:
        return peak_rss_bytes()

    def release(self) -> None:
        """Drops the trainer, so the next variant's peak memory starts from an empty worker."""
        import gc

        self.trainer = None
        gc.collect()


# ------------------------------------------------------------------------------------- the driver
@dataclass
class Row:
    """One contender's measurements."""

    model: str
    system: str  # "gnndist" | "PyG" | "DGL"
    variant: str  # aggregation backend, PyG input, or "gspmm"
    parts: int
    strategy: str  # "-" for single-process contenders
    epoch_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    minor_faults: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    halo_bytes: list[int] = field(default_factory=list)
    grad_bytes: list[int] = field(default_factory=list)
    comm_s: list[float] = field(default_factory=list)
    reference_dgl_s: list[float] = field(default_factory=list)  # DGL epochs interleaved with this row's
    peak_rss_bytes: int | None = None
    peak_rss_sum_bytes: int | None = None
    accuracies: dict[str, float | None] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def median(self, values: list[float], warmup: int) -> float | None:
        timed = values[warmup:] or values
        return statistics.median(timed) if timed else None

    def summary(self, warmup: int) -> dict[str, Any]:
        mean = lambda values: statistics.fmean(values) if values else 0.0  # noqa: E731
        return {
            "median_epoch_s": self.median(self.epoch_s, warmup),
            "median_cpu_s": self.median(self.cpu_s, warmup),
            "median_minor_faults": self.median(self.minor_faults, warmup),
            "median_comm_s": self.median(self.comm_s, warmup),
            "halo_bytes_per_epoch": mean(self.halo_bytes),
            "grad_bytes_per_epoch": mean(self.grad_bytes),
            "final_loss": self.losses[-1] if self.losses else None,
        }


def _label(row: Row) -> str:
    if row.system == "gnndist":
        return f"gnndist P={row.parts}" + (f" {row.strategy}" if row.parts > 1 else "")
    return f"{row.system} {row.variant}" if row.system == "PyG" else row.system


def _default_aggregation() -> str:
    from gnndist.aggregation.native_kernel import native_status

    return "gnndist_csr" if native_status()[0] else "csr_spmm"


def _write_npz(graph, path: Path) -> None:
    np.savez(
        path,
        indptr=graph.indptr.numpy(),
        indices=graph.indices.numpy(),
        x=graph.x.numpy(),
        y=graph.y.numpy(),
        train_mask=graph.train_mask.numpy(),
        val_mask=graph.val_mask.numpy(),
        test_mask=graph.test_mask.numpy(),
    )


class Run:
    """State of one benchmark run: the config, the rows, and the live DGL reference children."""

    def __init__(self, config: FullGraphBenchConfig, npz: Path, aggregation: str, dgl_python: Path | None):
        self.config, self.npz, self.aggregation, self.dgl_python = config, npz, aggregation, dgl_python
        self.rows: list[Row] = []
        self.dgl: dict[str, Child] = {}  # DGL reference processes of the distributed section, by model
        self.dgl_epoch: dict[str, int] = {}
        self.breakdown: dict[str, Any] = {}
        self.dropout: dict[str, Any] | None = None

    def spec(self, library: str, variant: str, model: str) -> ChildSpec:
        c = self.config
        return ChildSpec(library, variant, model, str(self.npz), c.hidden, c.dropout, c.lr, c.weight_decay, c.seed, c.threads)

    def log(self, row: Row) -> None:
        s = row.summary(self.config.warmup)
        accuracy = row.accuracies.get("test_acc")
        dgl = statistics.median(row.reference_dgl_s[self.config.warmup :] or row.reference_dgl_s) if row.reference_dgl_s else None
        ratio = f"  {s['median_epoch_s'] / dgl:.2f}x DGL" if dgl else ""
        print(f"[{row.model}] {_label(row):28s} {s['median_epoch_s']:8.3f} s/epoch{ratio}  test {accuracy if accuracy is None else round(accuracy, 4)}", flush=True)

    # ---------------------------------------------------------------- single-process contenders
    def single_process(self, model: str) -> None:
        """gnndist P=1, PyG and DGL of ``model``, each in its own process, epochs round-robin."""
        c = self.config
        children: list[tuple[Row, Child]] = []
        try:
            if 1 in c.parts:
                children.append((Row(model, "gnndist", self.aggregation, 1, "-"), Child(self.spec("gnndist", self.aggregation, model), Path(sys.executable), c.timeout_s)))
            for variant in c.pyg_variants:
                children.append((Row(model, "PyG", variant, 1, "-"), Child(self.spec("pyg", variant, model), Path(sys.executable), c.timeout_s)))
            if self.dgl_python is not None:
                children.append((Row(model, "DGL", "gspmm", 1, "-"), Child(self.spec("dgl", "gspmm", model), self.dgl_python, c.timeout_s)))
            for row, child in children:
                row.info = child.info
            for epoch in range(c.epochs):
                shift = epoch % len(children)  # rotate who goes first, so no contender always follows the same one
                for row, child in children[shift:] + children[:shift]:
                    answer = child.request("epoch", epoch=epoch)
                    row.epoch_s.append(answer["seconds"])
                    row.cpu_s.append(answer["cpu_seconds"])
                    row.minor_faults.append(answer["minor_faults"])
                    row.losses.append(answer["loss"])
            for row, child in children:
                row.accuracies = child.request("evaluate")
                row.peak_rss_bytes = row.peak_rss_sum_bytes = child.request("memory")["peak_rss_bytes"]
                self.rows.append(row)
                self.log(row)
            gnndist = next((child for row, child in children if row.system == "gnndist"), None)
            if gnndist is not None and c.profile:
                self.breakdown[model] = gnndist.request("breakdown", epoch=c.epochs)
                if self.dropout is None:
                    self.dropout = gnndist.request("dropout")
        finally:
            for _, child in children:
                child.close()

    def dgl_reference_epoch(self, model: str) -> float | None:
        """One DGL epoch of ``model`` in a process kept for the distributed section (timing only:
        DGL's accuracy and memory come from the single-process section)."""
        if self.dgl_python is None:
            return None
        if model not in self.dgl:
            self.dgl[model] = Child(self.spec("dgl", "gspmm", model), self.dgl_python, self.config.timeout_s)
            self.dgl_epoch[model] = 0
        self.dgl_epoch[model] += 1
        return self.dgl[model].request("epoch", epoch=self.dgl_epoch[model])["seconds"]

    # ---------------------------------------------------------------------- distributed gnndist
    def distributed(self, graph, work_dir: Path) -> None:
        """Every P > 1 x model x strategy on one Ray worker group per P."""
        from gnndist.partition import partition_graph
        from gnndist.runtime import WorkerGroup, ray_cluster
        from gnndist.train.fullgraph import DistributedFullGraphTrainer, ModelSpec, PartSource

        c = self.config
        parts_list = [p for p in c.parts if p > 1]
        if not parts_list or not c.strategies:
            return
        with ray_cluster(None, num_cpus=max(parts_list), object_store_bytes=1 << 30, timeout_s=c.timeout_s):
            for parts in parts_list:
                directory = work_dir / f"parts-{parts}"
                partition_graph(graph, c.partitioner, parts, directory, seed=c.seed, feature_width=c.hidden, force=True)
                group = WorkerGroup(parts, cpus_per_worker=1, timeout_s=c.timeout_s, num_threads=c.worker_threads)
                try:
                    group.init_process_group()
                    sources = [(PartSource(rank, directory=str(directory)),) for rank in range(parts)]
                    for model in c.models:
                        spec = ModelSpec(model, graph.num_features, graph.num_classes, c.hidden, 2, c.dropout, self.aggregation, c.lr, c.weight_decay, c.seed)
                        for strategy in c.strategies:
                            group.setup(BenchWorker, sources, model_spec=spec, strategy=strategy)
                            row = Row(model, "gnndist", self.aggregation, parts, strategy, info={"worker_threads": c.worker_threads, "partitioner": c.partitioner})
                            trainer = DistributedFullGraphTrainer(group)
                            for epoch in range(c.epochs):
                                metrics = trainer.train_epoch(epoch, evaluate=False)
                                row.epoch_s.append(metrics.epoch_time_s)
                                row.losses.append(metrics.loss)
                                row.halo_bytes.append(metrics.bytes_sent)
                                row.grad_bytes.append(int(metrics.extra.get("grad_bytes", 0)))
                                row.comm_s.append(metrics.extra.get("comm_time_s", 0.0))
                                reference = self.dgl_reference_epoch(model)
                                if reference is not None:
                                    row.reference_dgl_s.append(reference)
                            row.accuracies = group.run("evaluate")[0]
                            peaks = group.run("peak_rss")
                            row.peak_rss_bytes, row.peak_rss_sum_bytes = max(peaks), sum(peaks)
                            self.rows.append(row)
                            self.log(row)
                            group.run("release")
                finally:
                    group.shutdown()


# ------------------------------------------------------------------------------------- reporting
def _ratios(rows: list[Row], warmup: int) -> dict[int, dict[str, float | None]]:
    """Per row (by index): epoch-time ratio to DGL and to PyG-CSR, measured in this run.

    Single-process rows divide by the DGL / PyG-CSR epochs of the same round-robin. Distributed rows
    divide by the DGL epochs interleaved with their own; their PyG-CSR ratio goes through DGL
    (``row / DGL_interleaved * DGL_single / PyG-CSR_single``) so that load drift between sections
    cancels, or divides directly when DGL is absent.
    """
    median = lambda values: statistics.median(values[warmup:] or values) if values else None  # noqa: E731
    result: dict[int, dict[str, float | None]] = {}
    for index, row in enumerate(rows):
        peers = {(r.system, r.variant): median(r.epoch_s) for r in rows if r.model == row.model and r.parts == 1 and r.system != "gnndist"}
        dgl_single, pyg_csr = peers.get(("DGL", "gspmm")), peers.get(("PyG", "csr"))
        own = median(row.epoch_s)
        if row.parts == 1:
            vs_dgl = own / dgl_single if dgl_single else None
            vs_pyg = own / pyg_csr if pyg_csr else None
        else:
            dgl_local = median(row.reference_dgl_s)
            vs_dgl = own / dgl_local if dgl_local else None
            if vs_dgl is not None and dgl_single and pyg_csr:
                vs_pyg = vs_dgl * dgl_single / pyg_csr
            else:
                vs_pyg = own / pyg_csr if pyg_csr else None
        result[index] = {"ratio_vs_dgl": vs_dgl, "ratio_vs_pyg_csr": vs_pyg}
    return result


def _targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's performance targets, per model, against what this run measured."""
    targets = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by_label = {r["label"]: r for r in rows if r["model"] == model}
        dgl = by_label.get("DGL")
        for label, limit, what in (("gnndist P=1", 1.0, "epoch time <= 1.0x DGL"), ("gnndist P=2 sync", 1.2, "epoch time <= 1.2x DGL"), ("gnndist P=2 stale", 1.1, "epoch time <= 1.1x DGL")):
            row = by_label.get(label)
            if row is not None and row["ratio_vs_dgl"] is not None:
                targets.append({"model": model, "target": f"{label}: {what}", "measured": f"{row['ratio_vs_dgl']:.2f}x", "met": row["ratio_vs_dgl"] <= limit})
        row = by_label.get("gnndist P=1")
        if row is not None and dgl is not None:
            ratio = row["peak_rss_bytes"] / dgl["peak_rss_bytes"]
            targets.append({"model": model, "target": "gnndist P=1: peak memory <= DGL's", "measured": f"{row['peak_rss_bytes'] / 2**30:.2f} GiB vs {dgl['peak_rss_bytes'] / 2**30:.2f} GiB ({ratio:.2f}x)", "met": ratio <= 1.0})
    return targets


def _fmt(value: float | None, pattern: str, missing: str = "n/a") -> str:
    return missing if value is None else pattern.format(value)


def markdown(result: dict[str, Any]) -> str:
    """The benchmark's Markdown report: the table, the targets, the P=1 breakdown, dropout timings."""
    g, env, cfg = result["graph"], result["environment"], result["config"]
    lines = [
        f"# Full-graph training: graph {g['name']} ({g['num_nodes']:,} nodes, {g['num_edges']:,} edges, {g['num_features']} features, {g['num_classes']} classes)",
        "",
        f"Model {g['num_features']}-{cfg['hidden']}-{g['num_classes']} (2 layers, dropout {cfg['dropout']}), Adam lr {cfg['lr']}, {cfg['epochs']} epochs per contender; "
        f"epoch time = median of epochs {cfg['warmup']}..{cfg['epochs'] - 1} (forward + backward + Adam step; P > 1: the slowest worker). "
        f"Single-process contenders: {env['threads']} torch threads each, epochs round-robin; P > 1: Ray workers with {env['worker_threads']} thread(s) each, "
        f"{cfg['partitioner']} partition, a DGL epoch after every distributed epoch. gnndist aggregation: {result['aggregation']}.",
        "",
        f"Machine: {env['cpus']} CPUs ({env['machine']}), load average {', '.join(f'{v:.1f}' for v in env['load_average_start'])} at start and "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_end'])} at the end; {env['note']} torch {env['torch']}; DGL: {env['dgl']}.",
        "",
        "| model | contender | epoch s | of which comm s | vs DGL | vs PyG CSR | halo MB / epoch | grad KB / epoch | peak RSS GiB (max worker / all) | test acc |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        peak = f"{row['peak_rss_bytes'] / 2**30:.2f}"
        if row["parts"] > 1:
            peak += f" / {row['peak_rss_sum_bytes'] / 2**30:.2f}"
        lines.append(
            f"| {row['model']} | {row['label']} | {_fmt(row['median_epoch_s'], '{:.3f}')} | {_fmt(row['median_comm_s'], '{:.3f}', '-')} | {_fmt(row['ratio_vs_dgl'], '{:.2f}x')} | {_fmt(row['ratio_vs_pyg_csr'], '{:.2f}x')} | "
            f"{row['halo_bytes_per_epoch'] / 1e6:.1f} | {row['grad_bytes_per_epoch'] / 1e3:.0f} | {peak} | {_fmt(row['accuracies'].get('test_acc'), '{:.4f}')} |"
        )
    if result["targets"]:
        lines += ["", "## Targets", "", "| model | target | measured | met |", "|---|---|---|---|"]
        lines += [f"| {t['model']} | {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    if result["breakdown"]:
        models = list(result["breakdown"])
        lines += ["", "## Where gnndist's time goes at P=1 (one epoch under torch.profiler, self CPU time)", ""]
        lines += ["| category | " + " | ".join(f"{m} s | {m} %" for m in models) + " |", "|---|" + "---:|---:|" * len(models)]
        for category in BREAKDOWN_CATEGORIES:
            cells = [f"{result['breakdown'][m]['seconds'][category]:.3f} | {100 * result['breakdown'][m]['share'][category]:.1f}" for m in models]
            lines.append(f"| {category} | " + " | ".join(cells) + " |")
        lines.append("| profiled epoch (wall, with profiler overhead) | " + " | ".join(f"{result['breakdown'][m]['profiled_epoch_s']:.3f} | " for m in models) + " |")
    if result["dropout"]:
        d = result["dropout"]
        lines += [
            "",
            f"## Dropout on a {d['rows']:,} x {d['width']} tensor (torch {env['torch']}, median of 3)",
            "",
            "| | torch F.dropout | gnndist |",
            "|---|---:|---:|",
            f"| forward | {d['torch_dropout_forward_s'] * 1e3:.0f} ms | {d['gnndist_dropout_forward_s'] * 1e3:.0f} ms |",
            f"| ReLU + dropout, forward + backward | {d['torch_relu_dropout_train_s'] * 1e3:.0f} ms | {d['gnndist_relu_dropout_train_s'] * 1e3:.0f} ms |",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- the run
def run_benchmark(config: FullGraphBenchConfig) -> dict[str, Any]:
    """Runs every contender of ``config``; writes ``fullgraph.json`` and ``fullgraph.md`` into ``config.out``."""
    from gnndist.data import load_dataset

    config.out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    graph = load_dataset("sbm", **GRAPHS[config.graph])
    aggregation = config.aggregation or _default_aggregation()
    dgl_note = _dgl_unavailable(config.dgl_python)
    dgl_python = config.dgl_python if dgl_note is None else None
    with tempfile.TemporaryDirectory(prefix="gnndist-fullgraph-") as tmp:
        npz = Path(tmp) / "graph.npz"
        _write_npz(graph, npz)
        run = Run(config, npz, aggregation, dgl_python)
        try:
            for model in config.models:
                run.single_process(model)
            run.distributed(graph, Path(tmp))
        finally:
            for child in run.dgl.values():
                child.close()
    ratios = _ratios(run.rows, config.warmup)
    rows = []
    for index, row in enumerate(run.rows):
        record = {"label": _label(row), **asdict(row), **row.summary(config.warmup), **ratios[index]}
        rows.append(record)
    dgl_info = next((r["info"] for r in rows if r["system"] == "DGL"), None)
    result = {
        "graph": {"name": config.graph, "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_features": graph.num_features, "num_classes": graph.num_classes, "num_train": int(graph.train_mask.sum()), **GRAPHS[config.graph]},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "aggregation": aggregation,
        "environment": {
            "torch": torch.__version__,
            "threads": config.threads,
            "worker_threads": config.worker_threads,
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
            "note": "the cores are shared with other work (the load average above), so absolute times are inflated and noisy; compare the ratios measured in this run.",
            "dgl": dgl_info or dgl_note,
        },
        "rows": rows,
        "breakdown": run.breakdown,
        "dropout": run.dropout,
    }
    result["targets"] = _targets(rows)
    table = markdown(result)
    (config.out / "fullgraph.json").write_text(json.dumps(result, indent=2))
    (config.out / "fullgraph.md").write_text(table)
    print(table)
    return result


QUICK = dict(graph="sbm-small", models=("gcn",), parts=(1, 2), strategies=("sync", "stale"), epochs=2, warmup=1, hidden=16, dgl_python=None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.fullgraph", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory for fullgraph.json and fullgraph.md")
    parser.add_argument("--quick", action="store_true", help=f"a few thousand nodes, 2 epochs, P in {{1, 2}}, sync and stale, GCN, no DGL ({QUICK})")
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
    parser.add_argument("--dgl-python", type=Path, help="python of the DGL compat environment (default: .venv-compat)")
    parser.add_argument("--no-dgl", action="store_true", help="skip DGL")
    parser.add_argument("--no-profile", action="store_true", help="skip the profiled P=1 epoch and the dropout timing")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    if args.out is None:
        parser.error("--out is required")
    options: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("graph", "epochs", "warmup", "hidden", "aggregation", "partitioner", "threads", "worker_threads"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    for name in ("models", "parts", "strategies"):
        if getattr(args, name) is not None:
            options[name] = tuple(getattr(args, name))
    if args.pyg is not None:
        options["pyg_variants"] = tuple(args.pyg)
    if args.no_dgl:
        options["dgl_python"] = None
    elif args.dgl_python is not None:
        options["dgl_python"] = args.dgl_python
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
