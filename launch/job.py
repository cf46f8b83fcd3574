"""`gnndist train`: config -> partition (if the mode needs one) -> Ray workers (if it needs them) ->
``mode.start(group, data)`` -> epoch loop with checkpoints and recovery -> run directory."""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from gnndist.config import JobConfig
from gnndist.graph import GraphInfo
from gnndist.launch.rundir import RunDirectory
from gnndist.memory import peak_resident_bytes
from gnndist.modes import resolve_mode
from gnndist.modes.base import JobData, Mode
from gnndist.partition.format import PartitionMeta
from gnndist.plan.report import plan_for_run, plan_rows
from gnndist.registry import TASKS
from gnndist.runtime import WorkerGroup, ray_cluster
from gnndist.runtime.checkpoint import Checkpoint, CheckpointError, CheckpointStore, JobIdentity, collect_states, restore_states
from gnndist.runtime.recovery import EpochClock, RecoveryEvent, run_with_recovery
from gnndist.train.fullgraph import PartSource
from gnndist.train.loop import FitResult, fit
from gnndist.train.metrics import EpochMetrics

if TYPE_CHECKING:
    from gnndist.partition.part import Part
    from gnndist.plan.probe import BatchShape


def versions() -> dict[str, str]:
    import ray
    import torch_geometric

    import gnndist

    return {"gnndist": gnndist.__version__, "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "ray": ray.__version__, "python": platform.python_version()}


def partition_directory(config: JobConfig, data: JobData, run_path: Path) -> Path:
    """The job's partition directory: ``partition.dir``, or a folder keyed by graph, method and options beside
    the run directory ``run_path``."""
    from gnndist.partition import partition_key
    from gnndist.partitioners import resolve_partitioner

    cfg = config.partition
    if cfg.dir:
        return Path(cfg.dir)
    partitioner = resolve_partitioner(cfg.method, **cfg.options)
    key = partition_key(data.info.fingerprint, partitioner.method_name, partitioner.options(), config.train.seed, cfg.parts, cfg.halo_hops)
    return run_path.parent / "partitions" / f"{cfg.method}-p{cfg.parts}-{key}"


def prepare_partition(config: JobConfig, data: JobData, directory: Path, *, force: bool = False, progress: bool = True, tasks: bool = True) -> PartitionMeta:
    """Partitions the job's graph into ``directory`` (:func:`partition_directory`), reusing a matching one;
    prints the quality report and returns the directory's meta (the quality report, with the largest
    partitioning task's peak memory), so nobody reads ``meta.json`` again.

    With ``tasks``, a chunked dataset is partitioned by Ray tasks that read its chunks (Ray must be running):
    the driver holds no more than the assignment vector. Otherwise the graph is loaded and partitioned here.
    """
    from gnndist.partition import partition_graph
    from gnndist.partitioners import resolve_partitioner

    cfg = config.partition
    partitioner = resolve_partitioner(cfg.method, **cfg.options)
    options = dict(seed=config.train.seed, halo_hops=cfg.halo_hops, reuse=not force, force=force, feature_width=config.model.hidden, progress=progress)
    if tasks and data.chunked is not None:
        from gnndist.partition.chunked_pipeline import partition_chunked

        meta, reused = partition_chunked(data.chunked.directory, partitioner, cfg.parts, directory, **options)
    else:  # a heterogeneous graph is partitioned as its homogeneous view (the trainer types the parts again)
        meta, reused = partition_graph(data.graph, partitioner, cfg.parts, directory, **options)
    print(f"Partition {'reused' if reused else 'written'}: {directory}")
    print(meta.quality.table())
    return meta


def aggregation_backends(data: JobData) -> dict[str, str]:
    """The backend every reducer runs on the whole graph on this machine (``auto`` resolved), recorded in
    ``summary.json`` and in the checkpoints' identity. A chunked graph is judged by its sizes and the in-degree
    statistics its ``meta.json`` records (what the choice depends on), so the graph is never loaded. A
    heterogeneous graph's relations are blocks of their own, each with its own choice: one backend per reducer
    when every relation agrees, else ``relation=backend`` for each."""
    from gnndist.aggregation import REDUCERS, GraphStats, auto_choices
    from gnndist.block import Block
    from gnndist.hetero import HeteroGraph, edge_type_name

    spec = data.spec
    if spec.aggregation != "auto":
        return {reduce: spec.aggregation for reduce in REDUCERS}
    table = spec.resolve_aggregation().table
    if data.chunked is None and isinstance(data.graph, HeteroGraph):
        choices = {edge_type_name(edge_type): auto_choices(block, table) for edge_type, block in data.graph.edges.items()}
        per_reduce = {reduce: {relation: chosen[reduce] for relation, chosen in choices.items()} for reduce in REDUCERS}
        return {reduce: next(iter(set(chosen.values()))) if len(set(chosen.values())) == 1 else "; ".join(f"{relation}={backend}" for relation, backend in chosen.items()) for reduce, chosen in per_reduce.items()}
    if data.chunked is None:
        return auto_choices(Block.from_graph(data.graph), table)
    info = data.info
    return auto_choices(GraphStats.of_whole_graph(info.num_nodes, info.num_edges, data.chunked.degree_stats()), table)


def start_ray(config: JobConfig, stack: contextlib.ExitStack) -> None:
    """Connects to Ray (embedded or ``cluster.address``); ``stack`` disconnects."""
    cluster = config.cluster
    stack.enter_context(ray_cluster(cluster.address, num_cpus=max(os.cpu_count() or 1, config.partition.parts * cluster.cpus_per_worker), timeout_s=cluster.timeout_s, runtime_env=cluster.runtime_env))


def start_workers(config: JobConfig, stack: contextlib.ExitStack) -> WorkerGroup:
    """Starts one worker per part on the connected Ray (:func:`start_ray`), joined in a torch.distributed
    group; ``stack`` shuts them down."""
    cluster, workers = config.cluster, config.partition.parts
    threads = config.train.num_threads or max(1, (os.cpu_count() or 1) // workers) if cluster.address is None else config.train.num_threads
    group = WorkerGroup(
        workers,
        cpus_per_worker=cluster.cpus_per_worker,
        gpus_per_worker=cluster.gpus_per_worker,
        timeout_s=cluster.timeout_s,
        num_threads=threads,
        max_restarts=config.checkpoint.max_failures,
        comm_backend=cluster.comm_backend,
        release_memory=cluster.release_memory,
    )
    stack.callback(group.shutdown)
    group.init_process_group()
    return group


def start_trainer(mode: Mode, data: JobData, run_dir: RunDirectory, stack: contextlib.ExitStack, *, force: bool = False, progress: bool = True):
    """Prepares what ``mode`` needs (a partition directory, Ray workers) and starts its trainer; ``stack`` closes it all."""
    config = data.config
    group = None
    if config.task.name not in mode.tasks:
        from gnndist.config import ConfigError

        raise ConfigError(f"task.name={config.task.name!r} is not supported by mode={config.mode!r} (it trains: {', '.join(mode.tasks)})")
    if mode.distributed:  # before partitioning: a chunked graph is partitioned by Ray tasks
        start_ray(config, stack)
    if mode.partitioned:
        data.partition_dir = partition_directory(config, data, run_dir.path)
        data.partition = prepare_partition(config, data, data.partition_dir, force=force, progress=progress, tasks=mode.distributed)
    if mode.distributed:
        group = start_workers(config, stack)
        data.sources = part_sources(data, data.partition_dir, group)
    trainer = mode.start(group, data)
    if hasattr(trainer, "shutdown"):
        stack.callback(trainer.shutdown)
    return trainer


def part_sources(data: JobData, directory: Path, group: WorkerGroup | None = None) -> list[PartSource]:
    """Where each worker loads its part: ``directory`` (``partition.dir``), or the Ray object store (``partition.transport``).

    Through the object store, the parts are loaded by a :class:`PartReader` actor pinned to the driver's node,
    where ``directory`` is: the driver process never holds a part. Under ``auto``, the workers of ``group`` that
    run on the driver's node read ``directory`` themselves (no copy through the object store). A ``ray://``
    driver runs outside the cluster, so there it loads and puts the parts itself.
    """
    import ray

    config = data.config
    setting = config.partition.transport
    remote_driver = (config.cluster.address or "").startswith("ray://")
    transport = resolve_transport(setting, nodes=sum(1 for node in ray.nodes() if node["Alive"]), remote_driver=remote_driver, written_by_tasks=data.chunked is not None)
    parts, path = range(config.partition.parts), str(directory.resolve())
    if transport == "directory":
        print(f"Parts: read by each worker from {directory}")
        return [PartSource(rank, directory=path) for rank in parts]
    from gnndist.partition import load_book, load_part

    book_ref = ray.put(load_book(directory))  # [num_nodes] owners: what the driver may hold
    if remote_driver:
        print("Parts: sent through the Ray object store (put by this ray:// driver)")
        return [PartSource(rank, object_ref=ray.put(load_part(directory, rank)), book_ref=book_ref) for rank in parts]
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    local = {worker["rank"] for worker in group.nodes() if worker["node_id"] == here} if group is not None and setting == "auto" else set()
    refs = {}
    if len(local) < len(parts):
        reader = ray.remote(PartReader).options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()  # 0 CPUs: the workers' placement group may hold them all
        refs = {rank: reader.load.remote(path, rank) for rank in parts if rank not in local}
        reader.__ray_terminate__.remote()  # exits once those loads are done; their objects stay (this driver owns them)
    print("Parts: sent through the Ray object store" + (f" (ranks {sorted(local)}, on the driver's node, read {directory})" if local else ""))
    return [PartSource(rank, object_ref=refs[rank], book_ref=book_ref) if rank in refs else PartSource(rank, directory=path) for rank in parts]


class PartReader:
    """Reads parts into the Ray object store from a process on the partition directory's node, one call per
    part, one part in memory at a time (not a :class:`gnndist.store.local.PartLoader`, which loads one part it
    already knows). One actor for all parts: a task per part started a process per part
    (each importing torch), and a 4-part job's setup on 2 cores took 33-34 s, against 24-25 s with this actor
    and 20-25 s when the driver loaded the parts itself."""

    def load(self, directory: str, part_id: int) -> "Part":
        from gnndist.partition import load_part

        return load_part(directory, part_id)


def resolve_transport(setting: str, *, nodes: int, remote_driver: bool, written_by_tasks: bool) -> str:
    """``partition.transport`` resolved: ``auto`` is ``directory`` on one node, and on several when Ray tasks
    wrote the partition (a chunked graph: ``partition_chunked`` already needs ``partition.dir`` on a filesystem
    every node shares, so each worker reads its own part there rather than through one node's object store);
    else, or for a ``ray://`` driver (outside the cluster), ``object_store``."""
    if setting != "auto":
        return setting
    if remote_driver:
        return "object_store"
    return "directory" if nodes <= 1 or written_by_tasks else "object_store"


def summarize(config: JobConfig, graph: GraphInfo, result: FitResult, run_dir: RunDirectory, setup_time_s: float) -> dict[str, Any]:
    final = result.final
    epoch_times = sorted(m.epoch_time_s for m in result.history)
    return {
        "mode": config.mode,
        "dataset": config.dataset.name,
        "graph": {"num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_features": graph.num_features, "num_classes": graph.num_classes, "fingerprint": graph.fingerprint},
        "model": config.model.name,
        "epochs": len(result.history),
        "final": final.to_dict(),
        "best": {"epoch": result.best_epoch, f"val_{result.headline}": result.best_val, f"test_{result.headline}": result.test_at_best_val},
        "timing": {"setup_s": setup_time_s, "train_s": result.wall_time_s, "median_epoch_s": epoch_times[len(epoch_times) // 2]},
        "run_dir": str(run_dir.path),
        "versions": versions(),
    }


def planned_batches(data: JobData) -> "list[BatchShape] | None":
    """The measured batch shape of every part, for the plan of a mini-batch run on a homogeneous graph this
    process holds anyway (a chunked dataset stays unloaded: its plan uses the frontier model); else None."""
    config = data.config
    if config.mode != "minibatch" or config.plan.calibration is None or data.partition_dir is None or data.chunked is not None or data.task.name != "node":
        return None
    from gnndist.graph import Graph
    from gnndist.partition.format import load_book
    from gnndist.plan.probe import probe_batches
    from gnndist.plan.workload import hop_fanouts

    if not isinstance(data.graph, Graph) or isinstance(config.train.fanouts, dict):
        return None
    node_part = load_book(data.partition_dir).node_part
    return probe_batches(data.graph, node_part, data.partition.num_parts, hop_fanouts(config), config.train.batch_size, replace=config.train.replace, seed=config.train.seed)


def _checkpoint_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    checkpoint = summary.get("checkpoint") or {}
    if checkpoint.get("resumed_from_epoch") is not None:
        rows.append(("resumed from epoch", str(checkpoint["resumed_from_epoch"])))
    recoveries = summary.get("recoveries") or []
    if recoveries:
        lost = sum(event["time_lost_s"] for event in recoveries)
        rows.append(("recoveries", f"{len(recoveries)} ({lost:.1f} s lost: " + ", ".join(f"{e['kind']} rank {e['ranks']} epoch {e['failed_epoch']}" for e in recoveries) + ")"))
    if checkpoint.get("last"):
        rows.append(("last checkpoint", checkpoint["last"]))
    return rows


def _memory_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Peak resident memory of the driver, and of the largest worker and store (every rank's is in summary.json)."""
    memory = summary.get("memory")
    if not memory:
        return []
    gib = lambda n: f"{n / 2**30:.2f} GiB"  # noqa: E731
    parts = [f"driver {gib(memory['driver_peak_bytes'])}"]
    if memory.get("partition_task_peak_bytes"):
        parts.append(f"partition task max {gib(memory['partition_task_peak_bytes'])}")
    for key, name in (("worker_peak_bytes", "workers"), ("store_peak_bytes", "stores")):
        known = [n for n in memory.get(key) or [] if n is not None]
        if known:
            parts.append(f"{name} max {gib(max(known))} (of {len(known)})")
    return [("peak memory", ", ".join(parts))]


def _aggregation_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    aggregation = summary.get("aggregation")
    if not aggregation:
        return []
    chosen = ", ".join(f"{reduce}: {backend}" for reduce, backend in aggregation["backends"].items())
    return [("aggregation", f"{aggregation['name']} ({chosen})")]


def _headline_rows(final: dict[str, Any], headline: str, pct) -> list[tuple[str, str]]:
    """The final epoch's metrics: train/val/test accuracy (node runs), val/test of every link metric."""
    if headline == "acc":
        return [("final train / val / test", f"{pct(final.get('train_acc'))} / {pct(final.get('val_acc'))} / {pct(final.get('test_acc'))}")]
    names = [key.removeprefix("val_") for key in final if key.startswith("val_")]
    return [(f"final val / test {name}", f"{pct(final.get(f'val_{name}'))} / {pct(final.get(f'test_{name}'))}") for name in names]


def format_summary(summary: dict[str, Any]) -> str:
    final, best = summary["final"], summary["best"]
    pct = lambda v: "-" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    headline = "acc" if "val_acc" in best else next(key for key in best if key.startswith("val_")).removeprefix("val_")
    rows = [
        ("mode / model", f"{summary['mode']} / {summary['model']}"),
        ("dataset", f"{summary['dataset']} ({summary['graph']['num_nodes']} nodes, {summary['graph']['num_edges']} edges)"),
        ("epochs", str(summary["epochs"])),
        ("final loss", f"{final['loss']:.4f}"),
        *_headline_rows(final, headline, pct),
        (f"best val{'' if headline == 'acc' else ' ' + headline} (epoch)", f"{pct(best[f'val_{headline}'])} ({best['epoch']})"),
        (f"test{'' if headline == 'acc' else ' ' + headline} at best val", pct(best[f"test_{headline}"])),
        *_aggregation_rows(summary),
        ("median epoch time", f"{summary['timing']['median_epoch_s'] * 1000:.1f} ms"),
        ("total train time", f"{summary['timing']['train_s']:.1f} s"),
        *_checkpoint_rows(summary),
        *_memory_rows(summary),
        *plan_rows(summary),
        ("results", summary["run_dir"]),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _warn(message: object) -> None:
    print(f"gnndist: warning: {message}", file=sys.stderr)


def resume_checkpoint(checkpoints: CheckpointStore, identity: JobIdentity, epochs: int) -> Checkpoint:
    """The newest valid checkpoint of a run to resume (damaged newer ones are reported and skipped)."""
    checkpoint = checkpoints.latest(on_invalid=lambda error: _warn(f"{error}; trying an older checkpoint"))
    if checkpoint is None:
        raise CheckpointError(f"No checkpoint to resume from in {checkpoints.directory}; start the run again with --force")
    checkpoint.check_compatible(identity)
    if checkpoint.epoch > epochs:
        raise ValueError(f"Cannot resume from {checkpoint.path}: it holds {checkpoint.epoch} epochs but train.epochs={epochs}; pass train.epochs={checkpoint.epoch} or more")
    return checkpoint


def train_with_checkpoints(
    config: JobConfig, trainer, run_dir: RunDirectory, checkpoints: CheckpointStore, resume_from: Checkpoint | None, *, progress: bool = True, on_epoch: Callable[[EpochMetrics], None] | None = None
) -> tuple[FitResult, list[RecoveryEvent]]:
    """The epoch loop with checkpoints every ``checkpoint.every`` epochs and at the end, and recovery from
    failed workers (restart, reload the last checkpoint, go on) up to ``checkpoint.max_failures`` times;
    ``on_epoch`` sees every epoch's metrics once they are logged and checkpointed."""
    epochs, every = config.train.epochs, config.checkpoint.every
    result, start_epoch = FitResult(headline=TASKS.get(config.task.name).headline), 0
    if resume_from is not None:
        restore_states(trainer, resume_from.load_states())
        start_epoch = resume_from.epoch
        for metrics in run_dir.truncate_metrics(start_epoch):
            result.record(metrics)
    sinks = []
    if config.output.tensorboard:
        from gnndist.launch.metrics_sinks import TensorBoardSink

        sinks.append(TensorBoardSink(run_dir.path / "tensorboard", start_epoch=start_epoch))
    clock, events = EpochClock(), []

    def epoch_done(metrics) -> None:
        run_dir.log_epoch(metrics)
        for sink in sinks:
            sink(metrics)
        done = metrics.epoch + 1
        if done == epochs or (every and done % every == 0):
            checkpoints.save(done, collect_states(trainer))
        clock.reached(done)
        if on_epoch is not None:
            on_epoch(metrics)

    def train(epoch: int) -> FitResult:
        return fit(trainer, epochs, start_epoch=epoch, eval_every=config.train.eval_every, on_epoch=epoch_done, progress=progress, description=f"{config.mode}:{config.model.name}", result=result)

    def recover(failure) -> int:
        if not hasattr(trainer, "recover"):
            raise failure
        _warn(f"{failure}; restarting workers")
        trainer.recover(failure)
        record_workers(trainer, run_dir, progress=False)
        checkpoint = checkpoints.latest(on_invalid=lambda error: _warn(f"{error}; trying an older checkpoint"))
        if checkpoint is not None:  # else the freshly set-up workers hold the initial state of epoch 0
            restore_states(trainer, checkpoint.load_states())
        epoch = checkpoint.epoch if checkpoint is not None else 0
        result.truncate(epoch)
        run_dir.truncate_metrics(epoch)
        return epoch

    def on_recovery(event: RecoveryEvent) -> None:
        events.append(event)
        run_dir.log_recovery(event.to_dict())
        _warn(event.describe())

    start = time.perf_counter()
    try:
        run_with_recovery(train, recover, start_epoch=start_epoch, max_failures=config.checkpoint.max_failures, clock=clock, on_recovery=on_recovery)
    finally:
        for sink in sinks:
            sink.close()
    result.wall_time_s = time.perf_counter() - start
    return result, events


def record_workers(trainer, run_dir: RunDirectory, *, progress: bool = True) -> list[dict[str, Any]]:
    """Writes where each worker runs (rank, node id, ip, pid) to ``workers.json``; prints it with ``progress``."""
    group = getattr(trainer, "group", None)
    if group is None:
        return []
    workers = group.nodes()
    run_dir.write_workers(workers)
    if progress:
        print("Workers: " + ", ".join(f"rank {w['rank']} on node {w['node_id'][:8]} ({w['ip']}, pid {w['pid']})" for w in workers))
    return workers


def interrupted_message(checkpoints: CheckpointStore, run_dir: RunDirectory) -> str:
    paths = checkpoints.paths()
    if not paths:
        return f"no checkpoint was written; run again with --force (results in {run_dir.path})"
    return f"last checkpoint {paths[-1]}; resume with: gnndist train --resume {run_dir.path}"


def run_job(config: JobConfig, *, force: bool = False, progress: bool = True, resume: bool = False, on_epoch: Callable[[EpochMetrics], None] | None = None) -> dict[str, Any]:
    """Runs a whole job and returns its summary (also written to ``<output.dir>/summary.json``).

    ``on_epoch(metrics)`` runs after every epoch, outside its timing: benchmarks train a peer's epoch there,
    so load on a shared machine hits both alike.

    With ``resume``, training continues from the newest valid checkpoint of ``output.dir`` (the config must
    match the one that wrote it, except for epochs, evaluation, threads, locations and cluster settings).
    On Ctrl-C or SIGTERM the workers and Ray are shut down and KeyboardInterrupt says where to resume.
    The run directory is locked while the job runs; one that fails before its first epoch is removed.
    """
    with RunDirectory(config.output.dir, force=force, resume=resume) as run_dir:
        return _run_in(run_dir, config, force=force, progress=progress, resume=resume, on_epoch=on_epoch)


def _run_in(run_dir: RunDirectory, config: JobConfig, *, force: bool, progress: bool, resume: bool, on_epoch: Callable[[EpochMetrics], None] | None) -> dict[str, Any]:
    start = time.perf_counter()
    config.output.dir = str(run_dir.path)
    if config.train.num_threads is not None:
        torch.set_num_threads(config.train.num_threads)
    mode = resolve_mode(config.mode)
    data = JobData(config)
    aggregation = aggregation_backends(data)
    identity = JobIdentity.of(config, data.info.fingerprint, aggregation)
    checkpoints = CheckpointStore(config.checkpoint.dir or run_dir.path / "checkpoints", identity, keep=config.checkpoint.keep)
    resume_from = resume_checkpoint(checkpoints, identity, config.train.epochs) if resume else None
    if not resume and checkpoints.paths():
        if not force:
            raise FileExistsError(f"Checkpoint folder {checkpoints.directory} already holds checkpoints; pass --force to start over or --resume to continue")
        checkpoints.clear()
    run_dir.write_config(config)
    try:
        with contextlib.ExitStack() as stack:
            trainer = start_trainer(mode, data, run_dir, stack, force=force, progress=progress)
            workers = record_workers(trainer, run_dir)
            setup_time = time.perf_counter() - start
            result, recoveries = train_with_checkpoints(config, trainer, run_dir, checkpoints, resume_from, progress=progress, on_epoch=on_epoch)
            if recoveries:  # restarted workers may run elsewhere now
                workers = record_workers(trainer, run_dir, progress=False)
            memory = {"driver_peak_bytes": peak_resident_bytes(), **(trainer.memory() if hasattr(trainer, "memory") else {})}
            if data.partition is not None:  # the largest Ray task of the partitioning (None when it ran in this process)
                memory["partition_task_peak_bytes"] = data.partition.quality.partition_task_peak_bytes
    except KeyboardInterrupt:
        checkpoints.discard_partial()
        raise KeyboardInterrupt(interrupted_message(checkpoints, run_dir)) from None
    summary = summarize(config, data.info, result, run_dir, setup_time)
    summary["aggregation"] = {"name": config.aggregation.name, "selection": config.aggregation.selection, "backends": aggregation}
    last = checkpoints.paths()
    summary["checkpoint"] = {"dir": str(checkpoints.directory), "last": str(last[-1]) if last else None, "resumed_from_epoch": resume_from.epoch if resume_from else None}
    summary["recoveries"] = [event.to_dict() for event in recoveries]
    summary["workers"] = workers
    summary["memory"] = memory
    summary["plan"] = plan_for_run(config, None if data.partition is None else data.partition.quality, data.info.num_features, data.info.num_classes, planned_batches(data))
    run_dir.write_summary(summary)
    return summary
