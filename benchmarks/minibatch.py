"""Mini-batch training end to end: gnndist (1, 2, 4 workers, every cache policy) against DGL 2.1 and PyG single-process.

``python -m gnndist.benchmarks.minibatch --out DIR [--quick] [--devices cpu cuda]`` measures, on the
same graph and in the same run, for every device (default: cpu; one section each) and fanout setting:

- sampling throughput (seeds/s over whole epochs): sampling only, and sampling + ``x[input_nodes]``,
  gnndist's sampler in this process against DGL's ``NeighborSampler`` + ``DataLoader``;
- training throughput (seeds/s, median over the timed epochs; evaluation excluded): gnndist's
  mini-batch trainer on Ray with 1, 2 and 4 workers (metis parts; with remote nodes, every cache
  policy) against DGL's single-process loop (``NeighborSampler`` + ``DataLoader`` + ``SAGEConv``),
  with gnndist's time split (sample / fetch in the prefetch thread, wait / compute / sync in the
  training thread), cache hit rate and remote bytes;
- training throughput of PyG's ``SAGEConv`` stack fed by gnndist's sampler on the same device
  (:class:`PyGMiniBatch`: the same samples, so the ratio is the training loop's), and of gnndist's
  workers relative to its one worker (on a GPU the workers share it: ``gpus_per_worker = 1/workers``,
  sampling and cache on the GPU);
- test accuracy after a fixed number of epochs (full-neighbourhood inference on both sides).

Sampling throughput and DGL are measured in the CPU section only (DGL's environment has no CUDA).

Both sides train the same model from the same initial parameters: GraphSAGE (mean), 2 layers,
hidden 128, dropout on every layer's input (gnndist's ``sage``; DGL's ``SAGEConv`` stacked the same
way, given gnndist's initial weights), Adam, the same batch size.
DGL runs in its own environment (torch 2.2.1; ``--dgl-python`` or ``GNNDIST_DGL_PYTHON``, else it is
skipped) as a child process (:mod:`.peers`), with the graph in an ``.npz``; one DGL training epoch
runs after every gnndist epoch, so that load on a shared machine hits both alike, and every ratio
compares epochs of the same run. Writes ``minibatch.json`` and ``minibatch.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python, peer_command
from gnndist.benchmarks.peers import PyGSAGE, block_edge_index, sage_weights, write_graph
from gnndist.benchmarks.report import write_report
from gnndist.benchmarks.sampling import GRAPHS
from gnndist.benchmarks.timing import run_timed
from gnndist.config import TrainConfig

QUICK_GRAPH = dict(num_nodes=20_000, avg_degree=20, num_classes=16, feature_dim=128, seed=0)

PREFETCH_NICE = TrainConfig.model_fields["prefetch_nice"].default  # the default of train.prefetch_nice


def _epoch_times(start: float, start_cpu: float) -> dict[str, float]:
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu}


# ---------------------------------------------------------------------------------------------- gnndist side
def gnndist_sampling_epoch(sampler, loader, x: torch.Tensor, mode: str, epoch: int) -> dict[str, float]:
    """One epoch of gnndist's sampler in this process (and ``x[input_nodes]`` with mode 'gather')."""
    sampler.set_epoch(epoch)
    start, start_cpu = time.perf_counter(), time.process_time()
    for seeds in loader.batches(epoch):
        batch = sampler.sample(seeds)
        if mode == "gather":
            x.index_select(0, batch.input_nodes)
    return _epoch_times(start, start_cpu)


class PyGMiniBatch:
    """PyG's ``SAGEConv`` stack (:class:`~gnndist.benchmarks.peers.PyGSAGE`) fed by gnndist's sampler, in
    this process on ``device``: the same samples (same sampler, seed and seed order), gnndist's initial
    weights and the same optimizer, so the ratio to gnndist's one worker on the same device isolates
    what gnndist's training loop adds or saves around the same model.

    Args:
        graph: the whole graph (features, labels, masks).
        fanouts: per hop, in hop order.
        spec_args: gnndist's ``ModelSpec`` arguments (``sage``): widths, dropout, optimizer, seed.
        batch_size: seeds per batch.
        device: where sampling, features and the model live.
    """

    def __init__(self, graph, fanouts: Sequence[int], spec_args: dict[str, Any], batch_size: int, device: str):
        from gnndist.models import ModelSpec
        from gnndist.sampling import NeighborSampler, SeedLoader

        self.device = torch.device(device)
        self.sampler = NeighborSampler.from_graph(graph, list(fanouts), seed=0, device=self.device, num_threads=1)
        self.loader = SeedLoader(graph.train_mask.nonzero().flatten(), batch_size, seed=0)
        self.x, self.y, self.test_mask = graph.x.to(self.device), graph.y.to(self.device), graph.test_mask.to(self.device)
        self.full_edge_index = block_edge_index(graph.indptr.to(self.device), graph.indices.to(self.device))
        spec = ModelSpec(**spec_args)
        reference, _ = spec.build()
        self.model = PyGSAGE([spec.num_features] + [spec.hidden] * (spec.layers - 1) + [spec.num_classes], spec.dropout)
        for mine, theirs in zip(self.model.convs, reference.convs):  # both PyG SAGEConv: the same parameter names
            mine.load_state_dict(theirs.state_dict())
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)

    def _epoch(self, epoch: int) -> torch.Tensor:
        self.sampler.set_epoch(epoch)
        self.model.train()
        total, steps = torch.zeros((), device=self.device), 0
        for seeds in self.loader.batches(epoch):
            batch = self.sampler.sample(seeds)
            hops = [(block_edge_index(block.indptr, block.indices), block.num_dst) for block in batch.blocks]
            logits = self.model(self.x.index_select(0, batch.input_nodes), hops)
            loss = torch.nn.functional.cross_entropy(logits, self.y.index_select(0, batch.seeds))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
            steps += 1
        return total / max(steps, 1)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch over the training seeds (sample, gather, forward, backward, Adam): wall and CPU seconds, mean loss."""
        loss, seconds, cpu_seconds = run_timed(lambda: self._epoch(epoch), self.device)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "loss": float(loss)}

    @torch.no_grad()
    def test_accuracy(self) -> float:
        """Test accuracy with full neighbourhoods (the whole graph as every layer's block)."""
        self.model.eval()
        hops = [(self.full_edge_index, self.x.size(0))] * len(self.model.convs)
        predicted = self.model(self.x, hops).argmax(1)
        return float((predicted[self.test_mask] == self.y[self.test_mask]).float().mean())


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def run_gnndist(
    graph,
    directory: Path,
    num_workers: int,
    fanout_settings: Sequence[Sequence[int]],
    policies: Sequence[str],
    spec_args: dict[str, Any],
    *,
    batch_size: int,
    prefetch: int,
    prefetch_nice: int = PREFETCH_NICE,
    lr: float,
    weight_decay: float,
    epochs: int,
    cache_capacity: float,
    threads: int | None,
    device: str = "cpu",
    after_epoch: Callable[[tuple, int], None] | None = None,
    task=None,
    targets: Any = None,
    shared_memory: bool = True,
) -> dict[str, Any]:
    """gnndist's mini-batch trainer on the running Ray: ``num_workers`` workers, one part and one store each.

    Partitions ``graph`` into ``directory`` (METIS; random for one worker) unless it exists (a second
    device reuses it; ``partition_s`` is then 0), then trains one model per (fanouts, cache policy) for
    ``epochs`` epochs, calling ``after_epoch(fanouts, epoch)`` after each. On a GPU ``device`` the
    workers share it (sampling and cache there). ``task`` (a ``gnndist.tasks`` task; default node
    classification) and its ``targets`` (``task.prepare``: ``graph`` is then the prepared graph) choose
    what is learnt; a row's "seeds" are the task's training items (nodes, or edges for ``link``).

    Returns:
        ``rows`` (one per run, see :func:`_gnndist_row`; with the stores' CPU seconds per epoch),
        ``partition_s``, and the peak resident bytes of every ``worker`` and ``store`` process.
    """
    import ray

    from gnndist.config import CacheConfig, SamplingConfig
    from gnndist.models import ModelSpec
    from gnndist.partition import partition_graph
    from gnndist.runtime import WorkerGroup
    from gnndist.store import start_stores, stop_stores
    from gnndist.train.fullgraph import PartSource
    from gnndist.train.minibatch import start_minibatch

    on_gpu = device != "cpu"
    start = time.perf_counter()
    if not Path(directory).exists():
        partition_graph(graph, "metis" if num_workers > 1 else "random", num_workers, directory, seed=0, halo_hops=1)
    partition_s = time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    sampling_config = SamplingConfig(device="cuda") if on_gpu else None  # CPU: the default
    group = WorkerGroup(
        num_workers, cpus_per_worker=min(1.0, (os.cpu_count() or 1) / num_workers), gpus_per_worker=1 / num_workers if on_gpu else 0.0,
        timeout_s=900, num_threads=threads or 1,
    )  # comm_backend auto: NCCL for one worker with a whole GPU, gloo for workers sharing it
    try:
        group.init_process_group()
        sources = [PartSource(rank, directory=str(directory)) for rank in range(num_workers)]
        stores = start_stores(sources, placement_group=group.placement_group)
        try:
            store_pids = [info["pid"] for info in ray.get([store.actor.process.remote() for store in stores], timeout=120)]
            for fanouts in map(tuple, fanout_settings):
                for policy in policies:
                    train = TrainConfig(batch_size=batch_size, fanouts=list(fanouts), prefetch=prefetch, prefetch_nice=prefetch_nice, lr=lr, weight_decay=weight_decay, seed=0)
                    setup_start = time.perf_counter()
                    cache = CacheConfig(policy=policy, capacity=cache_capacity, shared_memory=shared_memory, **({"device": "cuda"} if on_gpu else {}))
                    trainer = start_minibatch(group, sources, ModelSpec(**spec_args), train, cache, stores=stores, sampling=sampling_config, task=task, targets=targets)
                    setup_s = time.perf_counter() - setup_start
                    history, store_cpu_s = [], []
                    for epoch in range(epochs):
                        before = _cpu_seconds(store_pids)
                        history.append(trainer.train_epoch(epoch, evaluate=epoch == epochs - 1))
                        store_cpu_s.append(_cpu_seconds(store_pids) - before)
                        if after_epoch is not None:
                            after_epoch(fanouts, epoch)
                    row = dict(
                        _gnndist_row(fanouts, num_workers, policy, history, setup_s), device=device, gpus_per_worker=1 / num_workers if on_gpu else 0.0,
                        comm_backend=group.backend, store_cpu_s=_median(store_cpu_s[1:] or store_cpu_s),
                    )
                    rows.append(row)
            peaks = {"worker": group.peak_bytes(), "store": [info["peak_bytes"] for info in ray.get([store.actor.process.remote() for store in stores], timeout=120)]}
        finally:
            stop_stores(stores)
    finally:
        group.shutdown()
    return {"rows": rows, "partition_s": partition_s, "peak_bytes": peaks}


def _cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of processes ``pids`` (all threads) so far."""
    import psutil

    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def run_benchmark(
    out_dir: Path,
    *,
    quick: bool = False,
    fanout_settings: Sequence[Sequence[int]] = ((10, 5), (15, 10)),
    workers: Sequence[int] = (1, 2, 4),
    policies: Sequence[str] = ("none", "degree", "presample", "lru"),
    batch_size: int = 1024,
    hidden: int = 128,
    dropout: float = 0.0,
    lr: float = 0.003,
    weight_decay: float = 0.0,
    epochs: int = 3,
    sampling_repeats: int = 3,
    cache_capacity: float = 0.2,
    prefetch: int = 2,
    prefetch_nice: int = PREFETCH_NICE,
    threads: int | None = 1,
    dgl: DGLPython = NO_DGL,
    devices: Sequence[str] = ("cpu",),
    pyg: bool = True,
    timeout_s: float = 1800.0,
    shared_memory: bool = True,
) -> dict[str, Any]:
    """Runs every measurement; writes ``minibatch.json`` and ``minibatch.md`` to ``out_dir``.

    Args:
        out_dir: output folder.
        quick: a 20k-node graph, 2 epochs and 1 sampling repeat (a smoke run).
        fanout_settings: fanouts in hop order, one list per setting.
        workers: gnndist worker counts (one part each, metis).
        policies: cache policies for runs with remote nodes (a single worker has none: ``none`` only).
        batch_size, hidden, dropout, lr, weight_decay: training settings of both sides.
        epochs: training epochs per configuration; the first is warm-up, the rest are timed, accuracy after the last.
        sampling_repeats: timed sampling epochs per (library, fanouts, mode) after one warm-up.
        cache_capacity: fraction of remote nodes cached (``<= 1``) or bytes.
        prefetch: gnndist's prefetch depth.
        prefetch_nice: how much lower the priority of gnndist's prefetch thread is (``train.prefetch_nice``).
        threads: torch threads of every process (gnndist workers, the DGL child, this process).
        dgl: the DGL environment (:func:`~gnndist.benchmarks.child.find_dgl_python`); its python None skips DGL.
            DGL and the sampling throughput run in the ``cpu`` section only (DGL's environment has no CUDA).
        devices: torch device names, one section each: on ``cuda`` every gnndist worker trains on the one
            GPU (``gpus_per_worker = 1/workers``; sampling and cache on the GPU) and PyG on it in this process.
        pyg: also train :class:`PyGMiniBatch` on every device and fanout setting.
        timeout_s: bound on one DGL request (an epoch, or the setup).
        shared_memory: workers read the stores' rows in place (``cache.shared_memory``); False: every remote
            row is a request to its store (the behaviour before, for a comparison).
    """
    from gnndist.benchmarks.sampling import load_graph
    from gnndist.data import load_dataset
    from gnndist.device import device_name
    from gnndist.models import ModelSpec
    from gnndist.runtime import ray_cluster
    from gnndist.sampling import NeighborSampler, SeedLoader

    if threads is not None:
        torch.set_num_threads(threads)
    if quick:
        epochs, sampling_repeats = min(epochs, 2), 1
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    graph_options = QUICK_GRAPH if quick else GRAPHS["sbm"]
    graph = load_dataset("sbm", **QUICK_GRAPH) if quick else load_graph("sbm")
    train_ids = graph.train_mask.nonzero().flatten()
    num_train = train_ids.numel()
    spec_args = dict(name="sage", num_features=graph.num_features, num_classes=graph.num_classes, hidden=hidden, layers=2, dropout=dropout, aggregation="gnndist_csr", lr=lr, weight_decay=weight_decay, seed=0)
    on_cpu = "cpu" in devices
    aggregation = {device: "gnndist_csr" if device == "cpu" else "auto" for device in devices}  # auto: the measured CUDA ranking
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gnndist-minibatch-") as tmp:
        tmp = Path(tmp)
        child = None
        if dgl.python is not None and on_cpu:
            npz = tmp / "graph.npz"
            model, _ = ModelSpec(**spec_args).build()
            write_graph(graph, npz, **sage_weights(model.convs))
            spec = dict(npz=str(npz), batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, threads=threads)
            child = ChildProcess(peer_command(dgl.python, "dgl_minibatch", spec), "DGL mini-batch", timeout_s, threads)
        dgl_train_s: dict[tuple, list[float]] = {tuple(f): [] for f in fanout_settings}
        dgl_train_cpu_s: dict[tuple, list[float]] = {tuple(f): [] for f in fanout_settings}
        pyg_peers: dict[tuple, PyGMiniBatch] = {}  # by (device, fanouts)
        pyg_epochs: dict[tuple, list[dict[str, float]]] = {}
        try:
            # sampling throughput and DGL's accuracy protocol, per fanout setting (CPU)
            dgl_rows = {}
            for fanouts in map(tuple, fanout_settings if on_cpu else ()):
                sampler = NeighborSampler.from_graph(graph, list(fanouts), seed=0, num_threads=1)
                loader = SeedLoader(train_ids, batch_size, seed=0)
                sampling = {"gnndist": {}, "dgl": {}}
                for mode in ("sample", "gather"):
                    ours, theirs = [], []
                    for epoch in range(sampling_repeats + 1):
                        times = gnndist_sampling_epoch(sampler, loader, graph.x, mode, epoch)
                        if epoch:
                            ours.append(times["seconds"])
                        if child is not None:
                            times = child.request(mode, fanouts=list(fanouts), epoch=epoch)
                            if epoch:
                                theirs.append(times["seconds"])
                    sampling["gnndist"][mode] = num_train / _median(ours)
                    if child is not None:
                        sampling["dgl"][mode] = num_train / _median(theirs)
                    print(f"fanouts={list(fanouts)} {mode}: gnndist {sampling['gnndist'][mode] / 1e3:.1f}k seeds/s" + (f", DGL {sampling['dgl'][mode] / 1e3:.1f}k" if child is not None else ""), flush=True)
                row = {"system": "dgl", "device": "cpu", "fanouts": list(fanouts), "workers": 1, "cache": "-", "sample_seeds_per_s": sampling["dgl"].get("sample"), "gather_seeds_per_s": sampling["dgl"].get("gather")}
                if child is not None:
                    child.request("reset", fanouts=list(fanouts))
                    losses = []
                    for epoch in range(epochs):
                        answer = child.request("train", fanouts=list(fanouts), epoch=epoch)
                        losses.append(answer["loss"])
                        if epoch:
                            dgl_train_s[fanouts].append(answer["seconds"])
                            dgl_train_cpu_s[fanouts].append(answer["cpu_seconds"])
                    row.update(test_acc=child.request("evaluate", fanouts=list(fanouts))["test_acc"], losses=losses)
                    print(f"fanouts={list(fanouts)} DGL: {num_train / _median(dgl_train_s[fanouts]) / 1e3:.1f}k seeds/s, test acc {row['test_acc']:.4f}", flush=True)
                dgl_rows[fanouts] = row
                rows.append(dict(row, sampling_gnndist=sampling["gnndist"]))

            # PyG fed by gnndist's sampler, per device and fanout setting: the first epoch is warm-up
            for device in devices if pyg else ():
                for fanouts in map(tuple, fanout_settings):
                    peer = pyg_peers[device, fanouts] = PyGMiniBatch(graph, fanouts, {**spec_args, "aggregation": aggregation[device]}, batch_size, device)
                    pyg_epochs[device, fanouts] = [peer.train_epoch(epoch) for epoch in range(epochs)]
                    print(f"fanouts={list(fanouts)} PyG on {device}: {num_train / _median([e['seconds'] for e in pyg_epochs[device, fanouts][1:]]) / 1e3:.1f}k seeds/s", flush=True)

            # gnndist on Ray: per device, one group and one set of stores per worker count
            for device in devices:
                on_gpu = device != "cpu"

                def peer_epochs(fanouts: tuple, epoch: int, device: str = device, on_gpu: bool = on_gpu) -> None:  # peers' epochs under the same load as gnndist's
                    if not epoch:
                        return
                    if child is not None and not on_gpu:
                        answer = child.request("train", fanouts=list(fanouts), epoch=epochs + len(dgl_train_s[fanouts]))
                        dgl_train_s[fanouts].append(answer["seconds"])
                        dgl_train_cpu_s[fanouts].append(answer["cpu_seconds"])
                    if (device, fanouts) in pyg_peers:
                        pyg_epochs[device, fanouts].append(pyg_peers[device, fanouts].train_epoch(len(pyg_epochs[device, fanouts])))

                with ray_cluster(None, num_cpus=max(os.cpu_count() or 1, max(workers)), num_gpus=1 if on_gpu else 0, object_store_bytes=1024**3):
                    for num_workers in workers:
                        run = run_gnndist(
                            graph, tmp / f"parts-{num_workers}", num_workers, fanout_settings, policies if num_workers > 1 else ("none",), {**spec_args, "aggregation": aggregation[device]},
                            batch_size=batch_size, prefetch=prefetch, prefetch_nice=prefetch_nice, lr=lr, weight_decay=weight_decay, epochs=epochs, cache_capacity=cache_capacity,
                            threads=threads, device=device, after_epoch=peer_epochs, shared_memory=shared_memory,
                        )
                        for row in run["rows"]:
                            rows.append(row)
                            print(_progress(row), flush=True)
            for (device, fanouts), peer in pyg_peers.items():
                timed = pyg_epochs[device, fanouts][1:]
                seconds = _median([e["seconds"] for e in timed])
                rows.append({
                    "system": "pyg", "device": device, "fanouts": list(fanouts), "workers": 1, "cache": "-", "epoch_s": seconds, "train_seeds_per_s": num_train / seconds,
                    "train_seeds_per_cpu_s": num_train / _median([e["cpu_seconds"] for e in timed]), "timed_epochs": len(timed), "test_acc": peer.test_accuracy(),
                    "losses": [e["loss"] for e in pyg_epochs[device, fanouts]],
                })
        finally:
            if child is not None:
                child.close()
    for row in rows:
        if row["system"] == "dgl" and dgl_train_s[tuple(row["fanouts"])]:
            seconds = dgl_train_s[tuple(row["fanouts"])]
            cpu_seconds = dgl_train_cpu_s[tuple(row["fanouts"])]
            row.update(epoch_s=_median(seconds), train_seeds_per_s=num_train / _median(seconds), train_seeds_per_cpu_s=num_train / _median(cpu_seconds), timed_epochs=len(seconds))
    rows.sort(key=lambda row: list(devices).index(row["device"]))  # one section per device, in --devices order
    _add_ratios(rows)
    result = {
        "graph": {"name": "sbm", "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_train": num_train, **graph_options},
        "settings": dict(
            quick=quick, batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, epochs=epochs,
            sampling_repeats=sampling_repeats, cache_capacity=cache_capacity, prefetch=prefetch, prefetch_nice=prefetch_nice, threads=threads, shared_memory=shared_memory,
        ),
        "environment": {
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "machine": platform.machine(),
            "devices": {device: device_name(device) for device in devices},
            "dgl": child.info if child is not None else dgl.note,
            "wall_s": time.perf_counter() - started,
        },
        "rows": rows,
        "targets": _targets(rows),
    }
    table = _markdown(result)
    write_report(out_dir, "minibatch", result, table)
    print(table)
    return result


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Adds to every gnndist row its training throughput relative to PyG (``ratio_vs_pyg``) and to gnndist's
    one worker without cache (``ratio_vs_1_worker``), both of the same device and fanouts in this run."""
    def throughput(system: str, device: str, fanouts: list[int], workers: int = 1) -> float | None:
        found = [r["train_seeds_per_s"] for r in rows if (r["system"], r["device"], r["fanouts"], r["workers"]) == (system, device, fanouts, workers) and r.get("cache") in ("-", "none")]
        return found[0] if found else None

    for row in rows:
        if row["system"] == "gnndist":
            pyg, single = throughput("pyg", row["device"], row["fanouts"]), throughput("gnndist", row["device"], row["fanouts"])
            row["ratio_vs_pyg"] = row["train_seeds_per_s"] / pyg if pyg else None
            row["ratio_vs_1_worker"] = row["train_seeds_per_s"] / single if single else None


def _targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's GPU target against this run: one gnndist worker on a GPU trains >= 1.5x the seeds/s of
    PyG fed by the same sampler on the same GPU."""
    return [
        {"device": r["device"], "fanouts": r["fanouts"], "target": "gnndist 1 worker: training seeds/s >= 1.5x PyG (same sampler, same GPU)", "measured": f"{r['ratio_vs_pyg']:.2f}x", "met": r["ratio_vs_pyg"] >= 1.5}
        for r in rows
        if r["system"] == "gnndist" and r["device"] != "cpu" and r["workers"] == 1 and r.get("ratio_vs_pyg") is not None
    ]


def _gnndist_row(fanouts: tuple, workers: int, policy: str, history: list, setup_s: float) -> dict[str, Any]:
    timed = history[1:] or history
    num_train = history[-1].extra["seeds"]  # the task's training items of one epoch, over all workers
    pick = lambda key: _median([m.extra[key] for m in timed])  # noqa: E731
    epoch_s = _median([m.epoch_time_s for m in timed])
    last = history[-1]
    return {
        "system": "gnndist",
        "fanouts": list(fanouts),
        "workers": workers,
        "cache": policy,
        "epoch_s": epoch_s,
        "train_seeds_per_s": num_train / epoch_s,
        "train_seeds_per_cpu_s": num_train / pick("cpu_s"),
        "timed_epochs": len(timed),
        "split_s": {key: pick(key) for key in ("sample_s", "fetch_s", "wait_s", "compute_s", "sync_s")},
        "cache_hit_rate": last.extra.get("cache_hit_rate"),
        "remote_bytes_per_epoch": pick("remote_bytes"),
        "structure_bytes": last.extra["structure_bytes"],
        "cache_fill_bytes": last.extra["cache_fill_bytes"],
        "setup_s": setup_s,
        "test_acc": last.test_acc,
        "test_metrics": {key: value for key, value in last.extra.items() if key.startswith("test_")},
        "losses": [m.loss for m in history],
    }


def _progress(row: dict[str, Any]) -> str:
    split = " ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in row["split_s"].items())
    hit = "-" if row["cache_hit_rate"] is None else f"{100 * row['cache_hit_rate']:.1f} %"
    return (
        f"fanouts={row['fanouts']} gnndist {row['workers']} worker(s) cache={row['cache']}: {row['train_seeds_per_s'] / 1e3:.1f}k seeds/s "
        f"({row['epoch_s']:.2f} s/epoch: {split}), hit {hit}, remote {row['remote_bytes_per_epoch'] / 2**20:.1f} MiB/epoch, test acc {row['test_acc']:.4f}, setup {row['setup_s']:.1f} s"
    )


def _markdown(result: dict[str, Any]) -> str:
    env, settings, graph = result["environment"], result["settings"], result["graph"]
    kilo = lambda v: "-" if v is None else f"{v / 1e3:,.1f}k"  # noqa: E731
    lines = [
        f"# Mini-batch training: gnndist vs DGL and PyG, graph sbm ({graph['num_nodes']:,} nodes, {graph['num_edges']:,} edges, {graph['feature_dim']}-d, {graph['num_classes']} classes, {graph['num_train']:,} training seeds)",
        "",
        f"GraphSAGE 2 layers, hidden {settings['hidden']}, dropout {settings['dropout']}, batch {settings['batch_size']}, Adam lr {settings['lr']}; "
        f"{settings['epochs']} epochs per configuration (the first is warm-up; medians of the rest), test accuracy after the last. "
        f"torch {env['torch']} (gnndist), DGL: {env['dgl']}; {settings['threads']} torch thread(s) per process, gnndist prefetch depth {settings['prefetch']} (nice {settings.get('prefetch_nice', 0)}), "
        f"cache capacity {settings['cache_capacity']} of the remote nodes. {env['cpus']} CPUs shared with other users: load average "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_before'])} before, {', '.join(f'{v:.1f}' for v in env['load_average_after'])} after; run took {env['wall_s'] / 60:.1f} min.",
        "",
        "Sampling columns: seeds/s of the sampler alone (gnndist in-process) and with `x[input_nodes]`. Training: whole epochs "
        "(sample, fetch, forward, backward, Adam; evaluation excluded); seeds per CPU-second counts the CPU time of the training processes "
        "(all workers' threads; not the stores), which depends much less on the load of a shared machine than wall time. Time split per epoch "
        "of the slowest worker: sample and fetch run in the prefetch thread, overlapped with training; wait is what training waited for batches. "
        "Ratios are to DGL's epochs of the same run (one DGL epoch after every timed gnndist epoch; CPU only: DGL's environment has no CUDA) "
        "and to PyG (`SAGEConv` on gnndist's sampled blocks as `edge_index` per hop, the same sampler and device, in the benchmark's process; "
        "one PyG epoch after every timed gnndist epoch, so its test accuracy comes after more epochs); vs 1 worker: to gnndist's one worker on the same device. "
        f"On a GPU the workers share it (gpus_per_worker = 1/workers; sampling and cache on the GPU). Devices: {', '.join(f'{d} ({n})' for d, n in env['devices'].items())}.",
        "",
        "| device | fanouts | system | workers | cache | sampling seeds/s (vs DGL) | sampling + gather seeds/s (vs DGL) | training seeds/s | vs DGL | vs PyG | vs 1 worker "
        "| training seeds/CPU-s (vs DGL) | s/epoch | sample / fetch / wait / compute / sync s | cache hit | remote MiB/epoch | test acc |",
        "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    dgl_rows = {tuple(r["fanouts"]): r for r in result["rows"] if r["system"] == "dgl"}
    ratio = lambda value: "-" if value is None else f"{value:.2f}x"  # noqa: E731
    for row in result["rows"]:
        device = row["device"]
        fanouts = tuple(row["fanouts"])
        dgl_row = dgl_rows.get(fanouts, {})
        dgl_train = dgl_row.get("train_seeds_per_s")
        acc = "-" if row.get("test_acc") is None else f"{100 * row['test_acc']:.2f} %"
        if row["system"] == "dgl":
            lines.append(
                f"| {device} | {list(fanouts)} | DGL 2.1 | 1 | - | {kilo(row['sample_seeds_per_s'])} | {kilo(row['gather_seeds_per_s'])} | {kilo(dgl_train)} | 1.00x | - | - "
                f"| {kilo(row.get('train_seeds_per_cpu_s'))} | {row.get('epoch_s', 0):.2f} | - | - | - | {acc} |"
            )
            sampling = row["sampling_gnndist"]
            sampled = {mode: f" ({sampling[mode] / row[f'{mode}_seeds_per_s']:.2f}x)" if row.get(f"{mode}_seeds_per_s") else "" for mode in ("sample", "gather")}
            lines.append(
                f"| {device} | {list(fanouts)} | gnndist sampler | 1 | - | {kilo(sampling['sample'])}{sampled['sample']} | {kilo(sampling['gather'])}{sampled['gather']} | - | - | - | - | - | - | - | - | - | - |"
            )
            continue
        if row["system"] == "pyg":
            vs_dgl = ratio(row["train_seeds_per_s"] / dgl_train) if dgl_train and device == "cpu" else "-"
            lines.append(
                f"| {device} | {list(fanouts)} | PyG on gnndist's sampler | 1 | - | - | - | {kilo(row['train_seeds_per_s'])} | {vs_dgl} | 1.00x | - "
                f"| {kilo(row['train_seeds_per_cpu_s'])} | {row['epoch_s']:.2f} | - | - | - | {acc} |"
            )
            continue
        split = " / ".join(f"{v:.2f}" for v in row["split_s"].values())
        hit = "-" if row["cache_hit_rate"] is None else f"{100 * row['cache_hit_rate']:.1f} %"
        on_cpu = device == "cpu"
        vs_dgl = ratio(row["train_seeds_per_s"] / dgl_train) if dgl_train and on_cpu else "-"
        dgl_cpu = dgl_row.get("train_seeds_per_cpu_s") if on_cpu else None
        cpu = kilo(row["train_seeds_per_cpu_s"]) + (f" ({row['train_seeds_per_cpu_s'] / dgl_cpu:.2f}x)" if dgl_cpu else "")
        lines.append(
            f"| {device} | {list(fanouts)} | gnndist | {row['workers']} | {row['cache']} | - | - | {kilo(row['train_seeds_per_s'])} | {vs_dgl} | {ratio(row.get('ratio_vs_pyg'))} | "
            f"{ratio(row.get('ratio_vs_1_worker'))} | {cpu} | {row['epoch_s']:.2f} | {split} | {hit} | {row['remote_bytes_per_epoch'] / 2**20:.1f} | {acc} |"
        )
    if result["targets"]:
        lines += ["", "## Targets", "", "| device | fanouts | target | measured | met |", "|---|---|---|---|---|"]
        lines += [f"| {t['device']} | {t['fanouts']} | {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]]
    return "\n".join(lines) + "\n"


# --devices with only GPUs: the setting (SAGE [15, 10], batch 1024) on one and two workers sharing the
# GPU; a GPU epoch of sbm takes about a second, the Ray workers and stores cost more, so this stays near two
# minutes on one H100/H200 (benchmarks/gpu_check.sh gives it 2.5).
GPU_ONLY = dict(fanouts=["15,10"], workers=[1, 2], policies=["none"], epochs=4)
CPU_DEFAULTS = dict(fanouts=["10,5", "15,10"], workers=[1, 2, 4], policies=["none", "degree", "presample", "lru"], epochs=3)


def main(argv: Sequence[str] | None = None) -> int:
    from gnndist.benchmarks.fullgraph import resolve_devices

    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.minibatch", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory for minibatch.json and minibatch.md")
    parser.add_argument("--quick", action="store_true", help="a 20k-node graph, 2 epochs, 1 sampling repeat")
    parser.add_argument(
        "--devices", nargs="+", default=["cpu"], metavar="DEV",
        help=f"cpu, cuda[:N] and/or auto, one report section each (default: cpu); defaults with GPUs only: {GPU_ONLY}; DGL and sampling throughput run on the CPU only",
    )
    parser.add_argument("--fanouts", nargs="+", help=f"fanout settings in hop order, e.g. 10,5 15,10 (default: {' '.join(CPU_DEFAULTS['fanouts'])})")
    parser.add_argument("--workers", nargs="+", type=int, help=f"gnndist worker counts (default: {CPU_DEFAULTS['workers']})")
    parser.add_argument("--policies", nargs="+", help=f"cache policies for runs with remote nodes (default: {CPU_DEFAULTS['policies']})")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, help="epochs per configuration, the first untimed (default: 3)")
    parser.add_argument("--sampling-repeats", type=int, default=3)
    parser.add_argument("--cache-capacity", type=float, default=0.2)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--prefetch-nice", type=int, default=PREFETCH_NICE, help="how much lower gnndist's prefetch thread's priority is (train.prefetch_nice; 0: as training), for a before/after comparison")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process, both libraries (0: the libraries' defaults)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="skip DGL")
    parser.add_argument("--no-pyg", action="store_true", help="skip PyG on gnndist's sampler")
    parser.add_argument("--no-shared-memory", action="store_true", help="every remote row is a request to its store (cache.shared_memory=false), for a before/after comparison")
    args = parser.parse_args(argv)
    threads = args.threads or None
    if args.out is None:
        parser.error("--out is required")
    devices = resolve_devices(args.devices, parser)
    defaults = GPU_ONLY if "cpu" not in devices else CPU_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    run_benchmark(
        args.out,
        quick=args.quick,
        fanout_settings=[[int(v) for v in setting.split(",")] for setting in args.fanouts],
        workers=args.workers,
        policies=args.policies,
        batch_size=args.batch_size,
        hidden=args.hidden,
        dropout=args.dropout,
        lr=args.lr,
        weight_decay=args.weight_decay,
        epochs=args.epochs,
        sampling_repeats=args.sampling_repeats,
        cache_capacity=args.cache_capacity,
        prefetch=args.prefetch,
        prefetch_nice=args.prefetch_nice,
        threads=threads,
        dgl=find_dgl_python(args.dgl_python, disabled=args.no_dgl or "cpu" not in devices),
        devices=devices,
        pyg=not args.no_pyg,
        shared_memory=not args.no_shared_memory,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
