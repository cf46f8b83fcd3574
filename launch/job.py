"""`gnndist train`: config -> dataset -> trainer for the mode -> epoch loop -> run directory."""
from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

from gnndist.config import JobConfig
from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.train.loop import FitResult, fit
from gnndist.comm import resolve_strategy
from gnndist.partition import load_part
from gnndist.runtime import WorkerGroup, ray_cluster
from gnndist.train.fullgraph import DistributedFullGraphTrainer, FullGraphWorkerTrainer, LocalFullGraphTrainer, ModelSpec, PartSource
from gnndist.train.single import SingleProcessTrainer
from gnndist.launch.rundir import RunDirectory


def versions() -> dict[str, str]:
    import ray
    import torch_geometric

    import gnndist

    return {"gnndist": gnndist.__version__, "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "ray": ray.__version__, "python": platform.python_version()}


def model_spec(config: JobConfig, graph: Graph) -> ModelSpec:
    """The model/optimizer settings every worker builds identically."""
    if graph.x is None or graph.y is None:
        raise ValueError(f"Dataset {config.dataset.name!r} has no node features 'x' or labels 'y': nothing to train on")
    model, train = config.model, config.train
    return ModelSpec(model.name, graph.num_features, graph.num_classes, model.hidden, model.layers, model.dropout, config.aggregation, train.lr, train.weight_decay, train.seed, model.options())


def prepare_partition(config: JobConfig, graph: Graph, run_dir: RunDirectory, *, force: bool = False, progress: bool = True) -> Path:
    """Partitions ``graph`` into ``partition.dir`` (default: a folder keyed by graph, method and options,
    beside the run directory), reusing a matching directory; prints the quality report."""
    from gnndist.partition import partition_graph, partition_key
    from gnndist.partitioners import resolve_partitioner

    cfg = config.partition
    partitioner = resolve_partitioner(cfg.method, **cfg.options)
    directory = Path(cfg.dir) if cfg.dir else run_dir.path.parent / "partitions" / f"{cfg.method}-p{cfg.parts}-{partition_key(graph.fingerprint(), partitioner.method_name, partitioner.options(), config.train.seed, cfg.parts, cfg.halo_hops)}"
    meta, reused = partition_graph(graph, partitioner, cfg.parts, directory, seed=config.train.seed, halo_hops=cfg.halo_hops, reuse=not force, force=force, feature_width=config.model.hidden, progress=progress)
    print(f"Partition {'reused' if reused else 'written'}: {directory}")
    print(meta.quality.table())
    return directory


def make_trainer(config: JobConfig, graph: Graph, run_dir: RunDirectory, stack: contextlib.ExitStack, *, force: bool = False, progress: bool = True):
    """The epoch trainer for ``config.mode``; resources it starts (Ray, workers) are closed by ``stack``."""
    spec = model_spec(config, graph)
    if config.mode == "single":
        model, _ = spec.build()
        return SingleProcessTrainer(graph, model, lr=spec.lr, weight_decay=spec.weight_decay, seed=spec.seed)
    if config.mode == "minibatch":
        raise NotImplementedError("mode='minibatch' is not available in this version; use mode=single or mode=fullgraph")
    strategy = resolve_strategy(config.comm.strategy, **config.comm.options)  # fails early on bad names/options
    directory = prepare_partition(config, graph, run_dir, force=force, progress=progress)
    if strategy.in_process:
        return LocalFullGraphTrainer([load_part(directory, i) for i in range(config.partition.parts)], spec)
    cluster = config.cluster
    workers = config.partition.parts
    stack.enter_context(ray_cluster(cluster.address, num_cpus=max(os.cpu_count() or 1, workers * cluster.cpus_per_worker), timeout_s=cluster.timeout_s))
    threads = config.train.num_threads or max(1, (os.cpu_count() or 1) // workers) if cluster.address is None else config.train.num_threads
    group = WorkerGroup(workers, cpus_per_worker=cluster.cpus_per_worker, gpus_per_worker=cluster.gpus_per_worker, timeout_s=cluster.timeout_s, num_threads=threads)
    stack.callback(group.shutdown)
    group.init_process_group()
    sources = [(PartSource(rank, directory=str(directory.resolve())),) for rank in range(workers)]
    group.setup(FullGraphWorkerTrainer, sources, model_spec=spec, strategy=config.comm.strategy, strategy_options=config.comm.options)
    return DistributedFullGraphTrainer(group)


def summarize(config: JobConfig, graph: Graph, result: FitResult, run_dir: RunDirectory, setup_time_s: float) -> dict[str, Any]:
    final = result.final
    epoch_times = sorted(m.epoch_time_s for m in result.history)
    return {
        "mode": config.mode,
        "dataset": config.dataset.name,
        "graph": {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_features": graph.num_features, "num_classes": graph.num_classes, "fingerprint": graph.fingerprint()},
        "model": config.model.name,
        "epochs": len(result.history),
        "final": final.to_dict(),
        "best": {"epoch": result.best_epoch, "val_acc": result.best_val_acc, "test_acc": result.test_acc_at_best_val},
        "timing": {"setup_s": setup_time_s, "train_s": result.wall_time_s, "median_epoch_s": epoch_times[len(epoch_times) // 2]},
        "run_dir": str(run_dir.path),
        "versions": versions(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    final, best = summary["final"], summary["best"]
    pct = lambda v: "-" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    rows = [
        ("mode / model", f"{summary['mode']} / {summary['model']}"),
        ("dataset", f"{summary['dataset']} ({summary['graph']['num_nodes']} nodes, {summary['graph']['num_edges']} edges)"),
        ("epochs", str(summary["epochs"])),
        ("final loss", f"{final['loss']:.4f}"),
        ("final train / val / test", f"{pct(final.get('train_acc'))} / {pct(final.get('val_acc'))} / {pct(final.get('test_acc'))}"),
        ("best val (epoch)", f"{pct(best['val_acc'])} ({best['epoch']})"),
        ("test at best val", pct(best["test_acc"])),
        ("median epoch time", f"{summary['timing']['median_epoch_s'] * 1000:.1f} ms"),
        ("total train time", f"{summary['timing']['train_s']:.1f} s"),
        ("results", summary["run_dir"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def run_job(config: JobConfig, *, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Runs a whole job and returns its summary (also written to ``<output.dir>/summary.json``)."""
    start = time.perf_counter()
    run_dir = RunDirectory(config.output.dir, force=force)
    config.output.dir = str(run_dir.path)
    run_dir.write_config(config)
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    graph = load_dataset(config.dataset.name, **config.dataset.options())
    with contextlib.ExitStack() as stack:
        trainer = make_trainer(config, graph, run_dir, stack, force=force, progress=progress)
        setup_time = time.perf_counter() - start
        result = fit(trainer, config.train.epochs, eval_every=config.train.eval_every, on_epoch=run_dir.log_epoch, progress=progress, description=f"{config.mode}:{config.model.name}")
    summary = summarize(config, graph, result, run_dir, setup_time)
    run_dir.write_summary(summary)
    return summary
