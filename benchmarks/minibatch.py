"""Mini-batch training end to end: gnndist (1, 2, 4 workers, every cache policy) against DGL 2.1 single-process.

``python -m gnndist.benchmarks.minibatch --out DIR [--quick]`` measures, on the same graph and in the
same run, for every fanout setting:

- sampling throughput (seeds/s over whole epochs): sampling only, and sampling + ``x[input_nodes]``,
  gnndist's sampler in this process against DGL's ``NeighborSampler`` + ``DataLoader``;
- training throughput (seeds/s, median over the timed epochs; evaluation excluded): gnndist's
  mini-batch trainer on Ray with 1, 2 and 4 workers (metis parts; with remote nodes, every cache
  policy) against DGL's single-process loop (``NeighborSampler`` + ``DataLoader`` + ``SAGEConv``),
  with gnndist's time split (sample / fetch in the prefetch thread, wait / compute / sync in the
  training thread), cache hit rate and remote bytes;
- test accuracy after a fixed number of epochs (full-neighbourhood inference on both sides).

Both sides train the same model from the same initial parameters: GraphSAGE (mean), 2 layers,
hidden 128, dropout on every layer's input (gnndist's ``sage``; DGL's ``SAGEConv`` stacked the same
way, given gnndist's initial weights), Adam, the same batch size.
DGL runs in the compat environment (``.venv-compat``, torch 2.2.1) as a child process fed through
stdin, with the graph in an ``.npz``; one DGL training epoch runs after every gnndist epoch, so that
load on a shared machine hits both alike, and every ratio compares epochs of the same run. Writes
``minibatch.json`` and ``minibatch.md``.

This module is also the DGL child (``--dgl-child NPZ``), so its top level imports only what both
environments have (torch, numpy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from gnndist.benchmarks.sampling import DEFAULT_DGL_PYTHON, GRAPHS, REPO, _dgl_unavailable

QUICK_GRAPH = dict(num_nodes=20_000, avg_degree=20, num_classes=16, feature_dim=128, seed=0)


def _epoch_times(start: float, start_cpu: float) -> dict[str, float]:
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - start_cpu}


# ---------------------------------------------------------------------------------------------- DGL side
def dgl_child(npz: str, batch_size: int, hidden: int, dropout: float, lr: float, weight_decay: float, threads: int | None) -> None:
    """The DGL side: loads the graph, then answers one JSON request per line (see ``DGLChild``)."""
    import dgl
    import dgl.nn as dglnn
    import torch.nn.functional as F

    if threads is not None:
        torch.set_num_threads(threads)
    data = np.load(npz)
    indptr, indices = torch.from_numpy(data["indptr"]), torch.from_numpy(data["indices"])
    graph = dgl.graph(("csc", (indptr, indices, torch.arange(indices.numel()))), num_nodes=indptr.numel() - 1)
    graph.ndata["feat"] = torch.from_numpy(data["x"])
    graph.ndata["label"] = torch.from_numpy(data["y"])
    train_ids, test_ids = torch.from_numpy(data["train_ids"]), torch.from_numpy(data["test_ids"])
    graph.create_formats_()
    num_classes = int(graph.ndata["label"].max()) + 1

    class SAGE(torch.nn.Module):
        """gnndist's ``sage`` in DGL: dropout on every layer's input, mean SAGEConv, ReLU between layers."""

        def __init__(self, layers: int):
            super().__init__()
            widths = [graph.ndata["feat"].size(1)] + [hidden] * (layers - 1) + [num_classes]
            self.convs = torch.nn.ModuleList(dglnn.SAGEConv(widths[i], widths[i + 1], "mean") for i in range(layers))

        def forward(self, blocks, x):
            h = x
            for i, conv in enumerate(self.convs):
                h = F.dropout(h, dropout, self.training)
                h = conv(blocks[i] if isinstance(blocks, list) else blocks, h)
                if i < len(self.convs) - 1:
                    h = F.relu(h)
            return h

    models: dict[tuple, tuple] = {}
    print(json.dumps({"dgl": dgl.__version__, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        fanouts = tuple(request["fanouts"])
        layer_fanouts = list(reversed(fanouts))  # DGL lists fanouts per layer, input layer first
        op = request["op"]
        torch.manual_seed(request.get("epoch", 0))
        dgl.seed(request.get("epoch", 0))
        if op in ("sample", "gather"):
            feats = ["feat"] if op == "gather" else None
            loader = dgl.dataloading.DataLoader(graph, train_ids, dgl.dataloading.NeighborSampler(layer_fanouts, prefetch_node_feats=feats), batch_size=batch_size, shuffle=True, drop_last=False)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _, _, blocks in loader:
                if feats:
                    blocks[0].srcdata["feat"]
            print(json.dumps(_epoch_times(start, start_cpu)), flush=True)
        elif op == "reset":
            torch.manual_seed(0)
            model = SAGE(len(fanouts))
            with torch.no_grad():  # gnndist's initial parameters: PyG lin_l (neighbours, with bias) and lin_r (root)
                for i, conv in enumerate(model.convs):
                    if f"conv{i}_neigh_weight" in data.files and data[f"conv{i}_neigh_weight"].shape == tuple(conv.fc_neigh.weight.shape):
                        conv.fc_neigh.weight.copy_(torch.from_numpy(data[f"conv{i}_neigh_weight"]))
                        conv.fc_self.weight.copy_(torch.from_numpy(data[f"conv{i}_self_weight"]))
                        conv.fc_self.bias.copy_(torch.from_numpy(data[f"conv{i}_bias"]))
            models[fanouts] = (model, torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay))
            print(json.dumps({"parameters": sum(p.numel() for p in model.parameters())}), flush=True)
        elif op == "train":
            model, optimizer = models[fanouts]
            sampler = dgl.dataloading.NeighborSampler(layer_fanouts, prefetch_node_feats=["feat"], prefetch_labels=["label"])
            loader = dgl.dataloading.DataLoader(graph, train_ids, sampler, batch_size=batch_size, shuffle=True, drop_last=False)
            model.train()
            start, start_cpu = time.perf_counter(), time.process_time()
            total = 0.0
            steps = 0
            for _, _, blocks in loader:
                logits = model(blocks, blocks[0].srcdata["feat"])
                loss = F.cross_entropy(logits, blocks[-1].dstdata["label"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss)
                steps += 1
            print(json.dumps({**_epoch_times(start, start_cpu), "loss": total / steps}), flush=True)
        elif op == "evaluate":
            model, _ = models[fanouts]
            model.eval()
            with torch.no_grad():
                logits = model(graph, graph.ndata["feat"])
            accuracy = float((logits[test_ids].argmax(1) == graph.ndata["label"][test_ids]).float().mean())
            print(json.dumps({"test_acc": accuracy}), flush=True)
        else:
            print(json.dumps({"error": f"unknown op {op!r}"}), flush=True)


class DGLChild:
    """A DGL process in the compat environment answering ``{"op", "fanouts", "epoch"}`` requests one by one."""

    def __init__(self, python: Path, npz: Path, options: dict[str, Any]):
        env = dict(os.environ, DGLBACKEND="pytorch")
        if options["threads"] is not None:
            env["OMP_NUM_THREADS"] = str(options["threads"])
        command = [str(python), "-m", "gnndist.benchmarks.minibatch", "--dgl-child", str(npz)]
        for key in ("batch_size", "hidden", "dropout", "lr", "weight_decay", "threads"):
            if options[key] is not None:
                command += [f"--{key.replace('_', '-')}", str(options[key])]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"DGL child exited with code {self.process.wait()} (see its stderr above)")
        return json.loads(line)

    def ask(self, op: str, fanouts: Sequence[int], epoch: int = 0) -> dict:
        self.process.stdin.write(json.dumps({"op": op, "fanouts": list(fanouts), "epoch": epoch}) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


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


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


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
    threads: int | None = 1,
    dgl_python: Path | None = DEFAULT_DGL_PYTHON,
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
        threads: torch threads of every process (gnndist workers, the DGL child, this process).
        dgl_python: interpreter of the DGL compat environment; None or not ready skips DGL.
    """
    from gnndist.benchmarks.sampling import load_graph
    from gnndist.data import load_dataset
    from gnndist.partition import partition_graph
    from gnndist.runtime import WorkerGroup, ray_cluster
    from gnndist.sampling import NeighborSampler, SeedLoader
    from gnndist.store import start_stores, stop_stores
    from gnndist.train.fullgraph import ModelSpec, PartSource
    from gnndist.train.minibatch import DistributedMiniBatchTrainer, MiniBatchOptions

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
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    dgl_note = _dgl_unavailable(dgl_python)
    with tempfile.TemporaryDirectory(prefix="gnndist-minibatch-") as tmp:
        tmp = Path(tmp)
        dgl = None
        if dgl_note is None:
            npz = tmp / "graph.npz"
            model, _ = ModelSpec(**spec_args).build()
            initial = {}
            for i, conv in enumerate(model.convs):
                initial.update({f"conv{i}_neigh_weight": conv.lin_l.weight, f"conv{i}_self_weight": conv.lin_r.weight, f"conv{i}_bias": conv.lin_l.bias})
            initial = {name: value.detach().numpy() for name, value in initial.items()}
            np.savez(npz, indptr=graph.indptr.numpy(), indices=graph.indices.numpy(), x=graph.x.numpy(), y=graph.y.numpy(), train_ids=train_ids.numpy(), test_ids=graph.test_mask.nonzero().flatten().numpy(), **initial)
            dgl = DGLChild(dgl_python, npz, dict(batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, threads=threads))
        dgl_train_s: dict[tuple, list[float]] = {tuple(f): [] for f in fanout_settings}
        dgl_train_cpu_s: dict[tuple, list[float]] = {tuple(f): [] for f in fanout_settings}
        try:
            # sampling throughput and DGL's accuracy protocol, per fanout setting
            dgl_rows = {}
            for fanouts in map(tuple, fanout_settings):
                sampler = NeighborSampler.from_graph(graph, list(fanouts), seed=0, num_threads=1)
                loader = SeedLoader(train_ids, batch_size, seed=0)
                sampling = {"gnndist": {}, "dgl": {}}
                for mode in ("sample", "gather"):
                    ours, theirs = [], []
                    for epoch in range(sampling_repeats + 1):
                        times = gnndist_sampling_epoch(sampler, loader, graph.x, mode, epoch)
                        if epoch:
                            ours.append(times["seconds"])
                        if dgl is not None:
                            times = dgl.ask(mode, fanouts, epoch)
                            if epoch:
                                theirs.append(times["seconds"])
                    sampling["gnndist"][mode] = num_train / _median(ours)
                    if dgl is not None:
                        sampling["dgl"][mode] = num_train / _median(theirs)
                    print(f"fanouts={list(fanouts)} {mode}: gnndist {sampling['gnndist'][mode] / 1e3:.1f}k seeds/s" + (f", DGL {sampling['dgl'][mode] / 1e3:.1f}k" if dgl is not None else ""), flush=True)
                row = {"system": "dgl", "fanouts": list(fanouts), "workers": 1, "cache": "-", "sample_seeds_per_s": sampling["dgl"].get("sample"), "gather_seeds_per_s": sampling["dgl"].get("gather")}
                if dgl is not None:
                    dgl.ask("reset", fanouts)
                    losses = []
                    for epoch in range(epochs):
                        answer = dgl.ask("train", fanouts, epoch)
                        losses.append(answer["loss"])
                        if epoch:
                            dgl_train_s[fanouts].append(answer["seconds"])
                            dgl_train_cpu_s[fanouts].append(answer["cpu_seconds"])
                    row.update(test_acc=dgl.ask("evaluate", fanouts)["test_acc"], losses=losses)
                    print(f"fanouts={list(fanouts)} DGL: {num_train / _median(dgl_train_s[fanouts]) / 1e3:.1f}k seeds/s, test acc {row['test_acc']:.4f}", flush=True)
                dgl_rows[fanouts] = row
                rows.append(dict(row, sampling_gnndist=sampling["gnndist"]))

            # gnndist on Ray: one group and one set of stores per worker count
            with ray_cluster(None, num_cpus=max(os.cpu_count() or 1, max(workers)), object_store_bytes=1024**3):
                for num_workers in workers:
                    directory = tmp / f"parts-{num_workers}"
                    method = "metis" if num_workers > 1 else "random"
                    partition_graph(graph, method, num_workers, directory, seed=0, halo_hops=1)
                    group = WorkerGroup(num_workers, cpus_per_worker=min(1.0, (os.cpu_count() or 1) / num_workers), timeout_s=900, num_threads=threads or 1)
                    try:
                        group.init_process_group()
                        sources = [PartSource(rank, directory=str(directory)) for rank in range(num_workers)]
                        stores = start_stores(sources, placement_group=group.placement_group)
                        try:
                            for fanouts in map(tuple, fanout_settings):
                                for policy in policies if num_workers > 1 else ("none",):
                                    options = MiniBatchOptions(batch_size=batch_size, fanouts=fanouts, prefetch=prefetch, cache=policy, cache_capacity=cache_capacity)
                                    setup_start = time.perf_counter()
                                    trainer = DistributedMiniBatchTrainer.start(group, sources, ModelSpec(**spec_args), options, stores=stores)
                                    setup_s = time.perf_counter() - setup_start
                                    history = []
                                    for epoch in range(epochs):
                                        history.append(trainer.train_epoch(epoch, evaluate=epoch == epochs - 1))
                                        if dgl is not None and epoch:
                                            answer = dgl.ask("train", fanouts, epochs + len(dgl_train_s[fanouts]))
                                            dgl_train_s[fanouts].append(answer["seconds"])
                                            dgl_train_cpu_s[fanouts].append(answer["cpu_seconds"])
                                    row = _gnndist_row(fanouts, num_workers, policy, history, setup_s, num_train)
                                    rows.append(row)
                                    print(_progress(row), flush=True)
                        finally:
                            stop_stores(stores)
                    finally:
                        group.shutdown()
        finally:
            if dgl is not None:
                dgl.close()
    for row in rows:
        if row["system"] == "dgl" and dgl_train_s[tuple(row["fanouts"])]:
            seconds = dgl_train_s[tuple(row["fanouts"])]
            cpu_seconds = dgl_train_cpu_s[tuple(row["fanouts"])]
            row.update(epoch_s=_median(seconds), train_seeds_per_s=num_train / _median(seconds), train_seeds_per_cpu_s=num_train / _median(cpu_seconds), timed_epochs=len(seconds))
    result = {
        "graph": {"name": "sbm", "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_train": num_train, **graph_options},
        "settings": dict(quick=quick, batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, epochs=epochs, sampling_repeats=sampling_repeats, cache_capacity=cache_capacity, prefetch=prefetch, threads=threads),
        "environment": {
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "machine": platform.machine(),
            "dgl": dgl.info if dgl is not None else dgl_note,
            "wall_s": time.perf_counter() - started,
        },
        "rows": rows,
    }
    table = _markdown(result)
    (out_dir / "minibatch.json").write_text(json.dumps(result, indent=2))
    (out_dir / "minibatch.md").write_text(table)
    print(table)
    return result


def _gnndist_row(fanouts: tuple, workers: int, policy: str, history: list, setup_s: float, num_train: int) -> dict[str, Any]:
    timed = history[1:] or history
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
        f"# Mini-batch training: gnndist vs DGL, graph sbm ({graph['num_nodes']:,} nodes, {graph['num_edges']:,} edges, {graph['feature_dim']}-d, {graph['num_classes']} classes, {graph['num_train']:,} training seeds)",
        "",
        f"GraphSAGE 2 layers, hidden {settings['hidden']}, dropout {settings['dropout']}, batch {settings['batch_size']}, Adam lr {settings['lr']}; "
        f"{settings['epochs']} epochs per configuration (the first is warm-up; medians of the rest), test accuracy after the last. "
        f"torch {env['torch']} (gnndist), DGL: {env['dgl']}; {settings['threads']} torch thread(s) per process, gnndist prefetch depth {settings['prefetch']}, "
        f"cache capacity {settings['cache_capacity']} of the remote nodes. {env['cpus']} CPUs shared with other users: load average "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_before'])} before, {', '.join(f'{v:.1f}' for v in env['load_average_after'])} after; run took {env['wall_s'] / 60:.1f} min.",
        "",
        "Sampling columns: seeds/s of the sampler alone (gnndist in-process) and with `x[input_nodes]`. Training: whole epochs "
        "(sample, fetch, forward, backward, Adam; evaluation excluded); seeds per CPU-second counts the CPU time of the training processes "
        "(all workers' threads; not the stores), which depends much less on the load of a shared machine than wall time. Time split per epoch "
        "of the slowest worker: sample and fetch run in the prefetch thread, overlapped with training; wait is what training waited for batches. "
        "Ratios are to DGL's epochs of the same run (one DGL epoch after every timed gnndist epoch).",
        "",
        "| fanouts | system | workers | cache | sampling seeds/s (vs DGL) | sampling + gather seeds/s (vs DGL) | training seeds/s | vs DGL | training seeds/CPU-s (vs DGL) | s/epoch | sample / fetch / wait / compute / sync s | cache hit | remote MiB/epoch | test acc |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    dgl_rows = {tuple(r["fanouts"]): r for r in result["rows"] if r["system"] == "dgl"}
    for row in result["rows"]:
        fanouts = tuple(row["fanouts"])
        dgl_row = dgl_rows.get(fanouts, {})
        dgl_train = dgl_row.get("train_seeds_per_s")
        acc = "-" if row.get("test_acc") is None else f"{100 * row['test_acc']:.2f} %"
        if row["system"] == "dgl":
            lines.append(f"| {list(fanouts)} | DGL 2.1 | 1 | - | {kilo(row['sample_seeds_per_s'])} | {kilo(row['gather_seeds_per_s'])} | {kilo(dgl_train)} | 1.00x | {kilo(row.get('train_seeds_per_cpu_s'))} | {row.get('epoch_s', 0):.2f} | - | - | - | {acc} |")
            sampling = row["sampling_gnndist"]
            ratio = lambda mode: "" if not row.get(f"{mode}_seeds_per_s") else f" ({sampling[mode] / row[f'{mode}_seeds_per_s']:.2f}x)"  # noqa: E731
            lines.append(f"| {list(fanouts)} | gnndist sampler | 1 | - | {kilo(sampling['sample'])}{ratio('sample')} | {kilo(sampling['gather'])}{ratio('gather')} | - | - | - | - | - | - | - | - |")
            continue
        split = " / ".join(f"{v:.2f}" for v in row["split_s"].values())
        hit = "-" if row["cache_hit_rate"] is None else f"{100 * row['cache_hit_rate']:.1f} %"
        ratio = f"{row['train_seeds_per_s'] / dgl_train:.2f}x" if dgl_train else "-"
        dgl_cpu = dgl_row.get("train_seeds_per_cpu_s")
        cpu = kilo(row["train_seeds_per_cpu_s"]) + (f" ({row['train_seeds_per_cpu_s'] / dgl_cpu:.2f}x)" if dgl_cpu else "")
        lines.append(
            f"| {list(fanouts)} | gnndist | {row['workers']} | {row['cache']} | - | - | {kilo(row['train_seeds_per_s'])} | {ratio} | {cpu} | {row['epoch_s']:.2f} | {split} | {hit} | {row['remote_bytes_per_epoch'] / 2**20:.1f} | {acc} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.minibatch", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory for minibatch.json and minibatch.md")
    parser.add_argument("--quick", action="store_true", help="a 20k-node graph, 2 epochs, 1 sampling repeat")
    parser.add_argument("--fanouts", nargs="+", default=["10,5", "15,10"], help="fanout settings in hop order, e.g. 10,5 15,10")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2, 4])
    parser.add_argument("--policies", nargs="+", default=["none", "degree", "presample", "lru"])
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sampling-repeats", type=int, default=3)
    parser.add_argument("--cache-capacity", type=float, default=0.2)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process, both libraries (0: the libraries' defaults)")
    parser.add_argument("--dgl-python", type=Path, default=DEFAULT_DGL_PYTHON, help="python of the DGL compat environment")
    parser.add_argument("--no-dgl", action="store_true", help="measure gnndist only")
    parser.add_argument("--dgl-child", metavar="NPZ", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = args.threads or None
    if args.dgl_child:
        dgl_child(args.dgl_child, args.batch_size, args.hidden, args.dropout, args.lr, args.weight_decay, threads)
        return 0
    if args.out is None:
        parser.error("--out is required")
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
        threads=threads,
        dgl_python=None if args.no_dgl else args.dgl_python,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
