"""``gnndist plan [JOB.yaml] [section.key=value ...] --parts 2 4 8 --network-gbps 10 25 100 --calibration FILE``.

Predicts, without training, each configuration's epoch time, bytes per epoch and peak memory per worker
(:mod:`gnndist.plan`), for every P, strategy, partitioner and network asked for; prints a table and
writes JSON. The grammar of ``gnndist train``: a job YAML and ``section.key=value`` overrides.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

DEFAULT_GBPS = (10.0, 25.0, 100.0)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "plan",
        help="predict epoch time, bytes and memory per worker for several P, strategies and networks, without training",
        description="Predict a job's epoch time, bytes per epoch and peak memory per worker from a calibration of this machine "
        "and each partition's quality report (or a graph shape), without training. Takes the job grammar of gnndist train.",
    )
    parser.add_argument("arguments", nargs="*", metavar="JOB.yaml | section.key=value", help="an optional job YAML and section.key=value overrides")
    parser.add_argument("--parts", nargs="+", type=int, metavar="P", help="worker counts to plan (default: partition.parts)")
    parser.add_argument("--network-gbps", nargs="+", type=float, metavar="GBPS", help=f"network rates between machines, one machine per worker (default: {' '.join(f'{g:g}' for g in DEFAULT_GBPS)})")
    parser.add_argument("--same-machine", action="store_true", help="plan every worker on this machine instead (they share its cores and talk over loopback)")
    parser.add_argument("--cores-per-worker", type=float, help="cores each worker computes with (default: train.num_threads, else cluster.cpus_per_worker; with --same-machine: the machine's cores shared out)")
    parser.add_argument("--parallel-efficiency", type=float, metavar="E", help="gain of each extra core in [0, 1] on the planned machines (default: the calibrated one, measured on this machine's cores)")
    parser.add_argument("--latency-us", type=float, default=50.0, help="cost of one message in microseconds (default: 50)")
    parser.add_argument("--strategies", nargs="+", metavar="S", help="full-graph strategies to plan (default: comm.strategy)")
    parser.add_argument("--modes", nargs="+", metavar="MODE", help="fullgraph and/or minibatch (default: mode)")
    parser.add_argument("--partitioners", nargs="+", metavar="NAME", help="partitioners to evaluate (default: partition.method)")
    parser.add_argument("--shape", help="plan from a graph shape, without loading a graph: nodes=N,edges=E,features=F,classes=C[,train=T][,halo=H][,cut=X]")
    parser.add_argument("--calibration", required=True, metavar="FILE", help="calibration file: reused if it exists, else measured (about 20 s) and written; 'default' = a file under ~/.cache/gnndist/plan")
    parser.add_argument("--out", type=Path, help="JSON file to write the plan to")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    return parser


def default_calibration_path(key: dict[str, Any]) -> Path:
    """``--calibration default``: one file per model, aggregation and worker heap (``-release``) under the user's cache folder."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    heap = "-release" if key["release_memory"] else ""
    return cache / "gnndist" / "plan" / f"calibration-{key['model']}-h{key['hidden']}-l{key['layers']}-{key['aggregation']}{heap}.json"


def check_options(args: argparse.Namespace, config) -> tuple[list[int], list[str], list[str], list[str]]:
    """Parts, modes, strategies and partitioners to plan; a bad value is an error naming the option."""
    from gnndist.partitioners import available_partitioners
    from gnndist.plan.model import MODES, STRATEGIES

    parts = args.parts or [config.partition.parts]
    for value in parts:
        if value < 1:
            raise ValueError(f"--parts: expected every P >= 1 (got {value})")
    for value in args.network_gbps or []:
        if value <= 0:
            raise ValueError(f"--network-gbps: expected every rate > 0 (got {value:g})")
    if args.cores_per_worker is not None and args.cores_per_worker <= 0:
        raise ValueError(f"--cores-per-worker: expected > 0 (got {args.cores_per_worker:g})")
    if args.parallel_efficiency is not None and not 0 <= args.parallel_efficiency <= 1:
        raise ValueError(f"--parallel-efficiency: expected a value in [0, 1] (got {args.parallel_efficiency:g})")
    if args.latency_us < 0:
        raise ValueError(f"--latency-us: expected >= 0 (got {args.latency_us:g})")
    modes = args.modes or [config.mode]
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"--modes: unknown mode {mode!r}; the planner plans {', '.join(MODES)}")
    strategies = args.strategies or [config.comm.strategy]
    for strategy in strategies:
        if strategy not in STRATEGIES:
            raise ValueError(f"--strategies: unknown strategy {strategy!r}; accepted: {', '.join(STRATEGIES)}")
    partitioners = args.partitioners or [config.partition.method]
    for name in partitioners:
        if name not in available_partitioners():
            raise ValueError(f"--partitioners: unknown partitioner {name!r}; available: {', '.join(available_partitioners())}")
    return parts, modes, strategies, partitioners


def run(args: argparse.Namespace) -> int:
    from gnndist.config import load_config
    from gnndist.io import write_json
    from gnndist.launch.cli import split_overrides
    from gnndist.plan import Cluster, calibration_key, load_or_measure, predict
    from gnndist.plan.report import PlanRow, plan_table
    from gnndist.plan.workload import GraphShape

    files, overrides = split_overrides(args.arguments)
    if len(files) > 1:
        raise ValueError(f"Expected at most one job YAML file, got {', '.join(files)} (overrides have the form section.key=value)")
    config = load_config(files[0] if files else None, overrides)
    parts, modes, strategies, partitioners = check_options(args, config)
    shape = GraphShape.parse(args.shape) if args.shape is not None else None
    if args.out is not None and args.out.exists() and not args.force:
        raise FileExistsError(f"--out {args.out} already exists; pass --force to replace it")
    key = calibration_key(config.model.name, config.model.hidden, config.model.layers, config.aggregation.name, config.cluster.release_memory)
    path = default_calibration_path(key) if args.calibration == "default" else Path(args.calibration)
    calibration = load_or_measure(path, key, log=lambda line: print(line, flush=True))
    if args.parallel_efficiency is not None:
        calibration = dataclasses.replace(calibration, parallel_efficiency=args.parallel_efficiency)
        print(f"parallel efficiency: {args.parallel_efficiency:g} per extra core (assumed, not calibrated)")
    machine_cores = os.cpu_count() or 1

    def clusters(num_parts: int) -> list[Cluster]:
        latency = args.latency_us * 1e-6
        if args.same_machine:
            cores = args.cores_per_worker or config.train.num_threads or max(1, machine_cores // num_parts)
            return [Cluster(same_machine=True, cores_per_worker=cores, machine_cores=machine_cores, latency_s=latency)]
        cores = args.cores_per_worker or config.train.num_threads or config.cluster.cpus_per_worker
        return [Cluster(same_machine=False, cores_per_worker=cores, network_gbps=gbps, latency_s=latency) for gbps in args.network_gbps or DEFAULT_GBPS]

    rows, sources = [], []
    for partitioner, num_parts, workloads, source in _workloads(config, shape, parts, partitioners, modes, strategies):
        sources.append({"partitioner": partitioner, "parts": num_parts, **source})
        for workload in workloads:
            for cluster in clusters(num_parts):
                rows.append(PlanRow(partitioner, cluster.describe(), predict(workload, calibration, cluster)))
    print(plan_table(rows))
    print(f"calibration: {path}")
    if args.out is not None:
        options = {"parts": parts, "modes": modes, "strategies": strategies, "partitioners": partitioners, "network_gbps": args.network_gbps or list(DEFAULT_GBPS),
                   "same_machine": args.same_machine, "cores_per_worker": args.cores_per_worker, "parallel_efficiency": args.parallel_efficiency, "latency_us": args.latency_us}
        plan = {"config": config.model_dump(mode="json"), "options": options, "calibration": str(path), "calibration_values": calibration.to_dict()}
        write_json(args.out, {**plan, "shape": args.shape, "sources": sources, "rows": [row.to_dict() for row in rows]})
        print(f"wrote {args.out}")
    return 0


def _workloads(config, shape, parts: list[int], partitioners: list[str], modes: list[str], strategies: list[str]):
    """Yields (partitioner, P, workloads, where the sizes came from): a partition of the loaded graph per
    partitioner and P, or a shape with a partitioner model measured on a proxy."""
    from gnndist.plan.probe import probe_batches
    from gnndist.plan.workload import CutModel, count_parameters, from_quality, from_shape, hop_fanouts

    combos = [(mode, strategy) for mode in modes for strategy in (strategies if mode == "fullgraph" else ["sync"])]
    options = config.comm.options
    if shape is not None:
        params = count_parameters(config, shape.features, shape.classes)
        for partitioner in partitioners:
            for num_parts in parts:
                cut = None
                if num_parts > 1 and (shape.halo is None or shape.cut is None):
                    cut = CutModel.measure(partitioner, config.partition.options, num_parts, shape.edges / shape.nodes, seed=config.train.seed)
                workloads = [from_shape(config, shape, num_parts, cut, mode=mode, strategy=strategy, strategy_options=options, num_params=params) for mode, strategy in combos]
                source = {"shape": shape.__dict__, "partitioner_model": None if cut is None else cut.__dict__}
                yield partitioner, num_parts, workloads, source
        return
    from gnndist.data import load_dataset
    from gnndist.partition.quality import QualityReport
    from gnndist.partitioners import resolve_partitioner

    graph = load_dataset(config.dataset.name, **config.dataset.options())
    features, classes = graph.num_features, graph.num_classes
    params = count_parameters(config, features, classes)
    for partitioner in partitioners:
        for num_parts in parts:
            result = resolve_partitioner(partitioner, **(config.partition.options if partitioner == config.partition.method else {})).partition(graph, num_parts, seed=config.train.seed)
            quality = QualityReport.compute(graph, result, feature_width=config.model.hidden)
            batches = probe_batches(graph, result.node_part, num_parts, hop_fanouts(config), config.train.batch_size, replace=config.train.replace, seed=config.train.seed) if "minibatch" in modes else None
            workloads = [from_quality(config, quality, features, classes, mode=mode, strategy=strategy, strategy_options=options, num_params=params, batches=batches) for mode, strategy in combos]
            yield partitioner, num_parts, workloads, {"quality": quality.to_dict()}
