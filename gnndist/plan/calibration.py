"""Calibration: the rates of this machine the cost model multiplies by, measured once and kept in a JSON file.

``measure`` times, with ``torch.utils.benchmark`` (the library's blocked auto-range, which also pins the thread
count), on a generated ``sbm`` graph of 100k nodes: the aggregation backend the job would use, a dense
matmul, a whole training step of the job's model (the factor from the primitives' forward to a real
forward + backward + Adam step), a step on freshly sampled mini-batches (each pays its blocks' preparation),
a step on a tiny graph (the fixed per-step cost), the neighbour sampler,
the step again on all cores (how well threads scale), the tensors autograd saves for backward,
loopback socket throughput and the resident memory of a fresh worker process. It takes about 10-20 s.

A calibration file is reused only for what it was measured for: the ``key`` (machine, torch version, model,
aggregation) must match, else the error names the file, the key and both values. There is no default file:
the caller names it, prints it and records it.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

FORMAT = "gnndist-plan-calibration"
VERSION = 1
GRAPH_NODES, GRAPH_DEGREE, GRAPH_FEATURES, GRAPH_CLASSES = 100_000, 10, 128, 16  # features (51 MB) beyond the caches, like real runs
MIN_RUN_S = 0.15
CHILD_TIMEOUT_S = 600.0  # the measuring process (measure_with_worker_heap): about 20 s on a quiet machine


class CalibrationError(ValueError):
    """A calibration file that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Calibration:
    """Rates of one machine for one model and aggregation backend (one thread unless said otherwise).

    Attributes:
        key: what the rates are valid for: ``machine`` (hostname, processor, cores), ``torch``, ``model``,
            ``hidden``, ``layers``, ``aggregation``.
        aggregation_s_per_element: seconds per aggregated edge x feature element.
        matmul_flops_per_s: dense FLOP rate.
        train_factor: a full-graph training step's time over the primitives' forward time (backward, activations, Adam, loss).
        minibatch_factor: the same for a step on a freshly sampled mini-batch (its blocks are new: their preparation counts).
        step_overhead_s: fixed cost of one training step (Python, launching kernels).
        sample_s_per_edge: neighbour sampler seconds per sampled edge.
        parallel_efficiency: how much each extra thread adds (1 = linear) on ``calibrated_cores`` cores.
        calibrated_cores: the cores the multi-thread step ran on.
        loopback_bytes_per_s: socket throughput between two processes of this machine.
        copy_bytes_per_s: rate of gathering feature rows by index (a batch's input rows).
        activation_factor: bytes autograd keeps per layer over ``rows x (in + out width) x 4``.
        structure_copies: CSR copies a trainer keeps (1: no transposed copy).
        runtime_bytes: resident memory of a fresh worker process (Python, torch, PyG, Ray, gnndist).
        seconds: how long measuring took.
    """

    key: dict[str, Any]
    aggregation_s_per_element: float
    matmul_flops_per_s: float
    train_factor: float
    minibatch_factor: float
    step_overhead_s: float
    sample_s_per_edge: float
    parallel_efficiency: float
    calibrated_cores: int
    loopback_bytes_per_s: float
    copy_bytes_per_s: float
    activation_factor: float
    structure_copies: int
    runtime_bytes: int
    seconds: float

    def speedup(self, cores: float) -> float:
        """Speed on ``cores`` relative to one core: a fraction of a core time-shares it, extra cores add
        ``parallel_efficiency`` each (Amdahl-like, extrapolated linearly beyond the calibrated cores)."""
        if cores <= 1:
            return cores
        return 1 + (cores - 1) * self.parallel_efficiency

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str) -> "Calibration":
        """Checks the format, version and every field (present, numeric, positive where a rate)."""
        if values.get("format") != FORMAT:
            raise CalibrationError(f"{source}: key 'format' is {values.get('format')!r}, expected {FORMAT!r} (not a gnndist calibration file)")
        if values.get("version") != VERSION:
            raise CalibrationError(f"{source}: key 'version' is {values.get('version')!r}, expected {VERSION}; measure a new calibration")
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in values]
        if missing:
            raise CalibrationError(f"{source}: key {missing[0]!r} is missing")
        if not isinstance(values["key"], dict):
            raise CalibrationError(f"{source}: key 'key' must be a mapping (got {values['key']!r})")
        for name in names[1:]:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and name.endswith("_per_s")):
                raise CalibrationError(f"{source}: key {name!r} must be a positive number (got {value!r})")
        return cls(**{name: values[name] for name in names})

    def check_key(self, expected: dict[str, Any], source: str) -> None:
        """Raises unless this calibration was measured for ``expected`` (the same machine, torch, model, aggregation)."""
        for name, value in expected.items():
            if self.key.get(name) != value:
                raise CalibrationError(
                    f"{source}: key 'key.{name}' is {self.key.get(name)!r} but this plan needs {value!r}; "
                    "measure a new calibration (give another --calibration FILE, or delete this one)"
                )


def calibration_key(model: str, hidden: int, layers: int, aggregation: str, release_memory: bool = False) -> dict[str, Any]:
    """What a calibration is valid for: this machine and torch, the model, the aggregation backend, and the
    workers' heap (``cluster.release_memory``: releasing freed blocks costs a step 1.5-1.7x the CPU seconds,
    see :func:`gnndist.memory.worker_malloc_env`, so each setting has its own rates)."""
    import torch

    machine = {"host": platform.node(), "processor": platform.machine(), "cores": os.cpu_count() or 1}
    return {"machine": machine, "torch": torch.__version__, "model": model, "hidden": hidden, "layers": layers, "aggregation": aggregation, "release_memory": release_memory}


def load_calibration(path: Path, expected: dict[str, Any] | None = None) -> Calibration:
    """Reads a calibration file; ``expected`` (a :func:`calibration_key`) must match its key."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"Calibration file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CalibrationError(f"{path}: not valid JSON (truncated or corrupted?): {error}") from None
    if not isinstance(values, dict):
        raise CalibrationError(f"{path}: expected a JSON object (got {type(values).__name__})")
    calibration = Calibration.from_dict(values, str(path))
    if expected is not None:
        calibration.check_key(expected, str(path))
    return calibration


def save_calibration(calibration: Calibration, path: Path) -> None:
    """Writes atomically (a reader never sees half a file)."""
    from gnndist.io import write_json

    write_json(Path(path), calibration.to_dict())


def load_or_measure(path: Path, key: dict[str, Any], *, log=print) -> Calibration:
    """The calibration in ``path`` if there is one (its key must match ``key``), else measured and written there."""
    path = Path(path)
    if path.exists():
        log(f"calibration: {path} (reused)")
        return load_calibration(path, key)
    log(f"calibration: measuring this machine for {key['model']} / {key['aggregation']} (about 20 s) ...")
    calibration = measure_with_worker_heap(key)
    save_calibration(calibration, path)
    log(f"calibration: {path} (written, {calibration.seconds:.1f} s)")
    return calibration


def measure_with_worker_heap(key: dict[str, Any], timeout_s: float = CHILD_TIMEOUT_S) -> Calibration:
    """:func:`measure` in a child process started with a worker's heap settings (``worker_malloc_env`` of the key's ``release_memory``).

    How glibc's heap treats a step's freed tensors changes the rates a step reaches, and it is set when a process
    starts; workers keep their heap, the calling process (a CLI) has glibc's defaults. Measured in the calling
    process, the calibration put a one-worker full-graph epoch 34-40 % above what the worker took.
    """
    import tempfile

    from gnndist.memory import worker_malloc_env

    with tempfile.TemporaryDirectory(prefix="gnndist-calibration-") as folder:
        path = Path(folder) / "calibration.json"
        code = "import json, sys; from gnndist.plan.calibration import measure, save_calibration; save_calibration(measure(json.loads(sys.argv[1])), sys.argv[2])"
        try:
            done = subprocess.run([sys.executable, "-c", code, json.dumps(key), str(path)], env={**os.environ, **worker_malloc_env(release=key["release_memory"])}, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"calibration: the measuring process took over {timeout_s:.0f} s (is the machine overloaded?)") from None
        if done.returncode != 0:
            raise RuntimeError(f"calibration: the measuring process failed (exit {done.returncode}; its error is printed above)")
        return load_calibration(path, key)


def _median_s(fn, threads: int = 1) -> float:
    from torch.utils.benchmark import Timer

    return Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(min_run_time=MIN_RUN_S).median


def measure(key: dict[str, Any]) -> Calibration:
    """Measures every rate of :class:`Calibration` for ``key`` (see the module docstring)."""
    import torch

    from gnndist.block import Block
    from gnndist.data import load_dataset
    from gnndist.models import ModelSpec
    from gnndist.plan.model import layer_costs
    from gnndist.sampling import NeighborSampler

    start = time.perf_counter()
    previous_threads = torch.get_num_threads()
    cores = key["machine"]["cores"]
    graph = load_dataset("sbm", num_nodes=GRAPH_NODES, avg_degree=GRAPH_DEGREE, feature_dim=GRAPH_FEATURES, num_classes=GRAPH_CLASSES, seed=0)
    block = Block.from_graph(graph)
    x, y = graph.x.float(), graph.y
    spec = ModelSpec(name=key["model"], num_features=GRAPH_FEATURES, num_classes=GRAPH_CLASSES, hidden=key["hidden"], layers=key["layers"], aggregation=key["aggregation"])
    aggregate = spec.resolve_aggregation()
    reduce = "sum" if key["model"] == "gcn" else "mean"
    torch.set_num_threads(1)
    try:
        agg_s = _median_s(lambda: aggregate(block, x, reduce))
        aggregation_s_per_element = agg_s / (block.num_edges * GRAPH_FEATURES)
        a, b = torch.randn(GRAPH_NODES, GRAPH_FEATURES), torch.randn(GRAPH_FEATURES, key["hidden"])
        matmul_flops_per_s = 2.0 * GRAPH_NODES * GRAPH_FEATURES * key["hidden"] / _median_s(lambda: a @ b)
        model, optimizer = spec.build("cpu")

        def step(inputs=x, labels=y, blk=block) -> None:
            model.train()
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(inputs, blk), labels).backward()
            optimizer.step()

        step_s = _median_s(step)
        widths = [GRAPH_FEATURES] + [key["hidden"]] * (key["layers"] - 1) + [GRAPH_CLASSES]
        L = key["layers"]
        flops, elements = layer_costs(key["model"], widths, [GRAPH_NODES] * L, [GRAPH_NODES] * L, [block.num_edges] * L)
        forward_s = flops / matmul_flops_per_s + elements * aggregation_s_per_element
        tiny = load_dataset("sbm", num_nodes=64, avg_degree=4, feature_dim=GRAPH_FEATURES, num_classes=GRAPH_CLASSES, seed=0)
        tiny_block, tiny_x, tiny_y = Block.from_graph(tiny), tiny.x.float(), tiny.y
        step_overhead_s = _median_s(lambda: step(tiny_x, tiny_y, tiny_block))
        train_factor = max(step_s - step_overhead_s, 1e-9) / forward_s
        sampler = NeighborSampler(graph.indptr, graph.indices, [10] + [5] * (L - 1), seed=0)
        seeds = torch.randperm(GRAPH_NODES, generator=torch.Generator().manual_seed(0))[:1024]
        batch = sampler.sample(seeds)
        sampled_edges = sum(b.num_edges for b in batch.blocks)
        sample_s = _median_s(lambda: sampler.sample(seeds))
        sample_s_per_edge = sample_s / sampled_edges

        def batch_step() -> None:  # a new batch every call: its blocks' preparation counts, as in training
            fresh = sampler.sample(seeds)
            step(x[fresh.input_nodes], y[fresh.seeds], fresh.blocks)

        batch_s = _median_s(batch_step) - sample_s
        flops, elements = layer_costs(key["model"], widths, [b.num_dst for b in batch.blocks], [b.num_src for b in batch.blocks], [b.num_edges for b in batch.blocks])
        minibatch_factor = max(batch_s - step_overhead_s, 1e-9) / (flops / matmul_flops_per_s + elements * aggregation_s_per_element)
        parallel_efficiency = 1.0
        if cores > 1:
            torch.set_num_threads(cores)
            step_all_s = _median_s(step, threads=cores)
            parallel_efficiency = min(1.0, max(0.0, (step_s / step_all_s - 1) / (cores - 1)))
        torch.set_num_threads(1)
        runtime = subprocess.Popen([sys.executable, "-c", WORKER_IMPORTS], stdout=subprocess.PIPE, text=True)  # runs while the rest is measured
        kept = sum(GRAPH_NODES * (w_in + w_out) for w_in, w_out in zip(widths[:-1], widths[1:])) * 4
        activation_factor = saved_bytes(lambda: torch.nn.functional.cross_entropy(model(x, block), y)) / kept
        rows = torch.randint(GRAPH_NODES, (GRAPH_NODES * 4,), generator=torch.Generator().manual_seed(0))
        gathered = torch.empty(rows.numel(), GRAPH_FEATURES)
        copy_bytes_per_s = gathered.numel() * 4 / _median_s(lambda: torch.index_select(x, 0, rows, out=gathered))
    finally:
        torch.set_num_threads(previous_threads)
    return Calibration(
        key=key,
        aggregation_s_per_element=aggregation_s_per_element,
        matmul_flops_per_s=matmul_flops_per_s,
        train_factor=train_factor,
        minibatch_factor=minibatch_factor,
        step_overhead_s=step_overhead_s,
        sample_s_per_edge=sample_s_per_edge,
        parallel_efficiency=parallel_efficiency,
        calibrated_cores=cores,
        loopback_bytes_per_s=loopback_bytes_per_s(),
        copy_bytes_per_s=copy_bytes_per_s,
        activation_factor=activation_factor,
        structure_copies=1,
        runtime_bytes=int(runtime.communicate(timeout=120)[0].strip().splitlines()[-1]),
        seconds=time.perf_counter() - start,
    )


def loopback_bytes_per_s(total: int = 256 << 20, chunk: int = 1 << 20) -> float:
    """Throughput of a local socket pair (what gloo's TCP transport runs on between workers of one machine)."""
    sender, receiver = socket.socketpair()
    payload = b"\0" * chunk

    def send() -> None:
        for _ in range(total // chunk):
            sender.sendall(payload)

    thread = threading.Thread(target=send, daemon=True)
    start = time.perf_counter()
    thread.start()
    received, buffer = 0, bytearray(chunk)
    while received < total:
        received += receiver.recv_into(buffer)
    seconds = time.perf_counter() - start
    thread.join()
    sender.close()
    receiver.close()
    return total / seconds


# Measured in a child process so that the caller's own data does not count. A GCN or GraphSAGE worker imports
# no PyG (gnndist.models.weights); GAT and GIN add PyG's ~180 MiB, which this does not count. A worker's first
# optimizer step imports torch._dynamo (81 MiB here, torch 2.13), so the child takes one Adam step too.
WORKER_IMPORTS = (
    "import ray, torch, gnndist.models.gnn, gnndist.train.fullgraph, gnndist.train.minibatch, psutil\n"
    "layer = torch.nn.Linear(4, 4); optimizer = torch.optim.Adam(layer.parameters())\n"
    "layer(torch.ones(2, 4)).sum().backward(); optimizer.step()\n"
    "print(psutil.Process().memory_info().rss)"
)




def saved_bytes(forward) -> int:
    """Bytes of the tensors autograd saves for backward while ``forward()`` runs (each storage once)."""
    import torch

    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values())
