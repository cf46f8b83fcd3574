"""DistDGL head to head: DGL's own distributed mini-batch training against gnndist's, same graph, same settings.

``gnndist bench distdgl --out DIR [--quick] [--nodes N] [--epochs E] [--dgl-python PATH]`` takes an
``sbm`` graph from the dataset registry, writes it as an ``.npz``, and trains GraphSAGE (mean, 2
layers, the same initial weights) with 2 parts on both sides:

- DistDGL 2.1 in the DGL environment (:mod:`.distdgl_peer`): ``dgl.distributed.partition_graph``
  (METIS, 2 parts), one ``DistGraphServer`` and one trainer per part as local processes on
  127.0.0.1 (``DistGraph`` + ``DistNodeDataLoader`` + DDP over gloo), DGL's example loop;
- gnndist on a private local Ray (:func:`.minibatch.run_gnndist`): METIS, 2 parts, one worker and
  one store per part, the chosen cache policy.

Same fanouts, batch size, epochs, torch threads per process. The batch size is the seeds of one
optimizer step over both trainers (gnndist's meaning), so each DistDGL trainer's loader takes half of
it and both systems take the same number of Adam steps per epoch. Reported per system: seeds/s (median
over the epochs after the first), seeds per CPU-second (trainers plus the processes serving them:
DistDGL's servers, gnndist's stores), test accuracy after the last epoch (full neighbourhoods on the
whole graph), peak RSS of every process, partitioning time. Writes ``distdgl.json`` and
``distdgl.md``. Without a DGL environment (``--dgl-python`` / ``GNNDIST_DGL_PYTHON``) DistDGL is
skipped and the report says why.
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
from typing import Any, Sequence

import numpy as np

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python

DEFAULT_GRAPH = dict(num_nodes=50_000, avg_degree=20, num_classes=16, feature_dim=128, seed=0)
QUICK_GRAPH = dict(num_nodes=4_000, avg_degree=10, num_classes=4, feature_dim=16, seed=0)
NUM_PARTS = 2


def peer_command(python: Path | str, spec: dict[str, Any]) -> list[str]:
    """The command line of DistDGL's driver (:mod:`.distdgl_peer`, started by file path in the DGL
    environment, in a private mount namespace with its own ``/dev/shm``: see :func:`.distdgl_peer.isolated`)."""
    import json

    from gnndist.benchmarks.distdgl_peer import isolated

    return isolated([str(python), str(Path(__file__).with_name("distdgl_peer.py")), "driver", json.dumps(spec)])


def run_benchmark(
    out_dir: Path,
    *,
    quick: bool = False,
    num_nodes: int | None = None,
    fanouts: Sequence[int] = (10, 5),
    batch_size: int = 1024,
    hidden: int = 128,
    dropout: float = 0.0,
    lr: float = 0.003,
    epochs: int = 2,
    threads: int = 1,
    cache: str = "degree",
    cache_capacity: float = 0.2,
    prefetch: int = 2,
    dgl: DGLPython = NO_DGL,
    timeout_s: float = 1800.0,
    log=print,
) -> dict[str, Any]:
    """Runs DistDGL (when ``dgl.python`` is set) and gnndist; writes ``distdgl.json`` and ``distdgl.md`` to ``out_dir``.

    Args:
        out_dir: output folder.
        quick: a 4k-node graph and batch 256 (a smoke run).
        num_nodes: nodes of the ``sbm`` graph (default 50k; ``quick``: 4k).
        fanouts: fanouts in hop order (the seeds' neighbours first).
        batch_size, hidden, dropout, lr: training settings of both sides (Adam, no weight decay).
        epochs: training epochs; the first is warm-up when there are more, accuracy after the last.
        threads: torch threads of every trainer, server, worker and store.
        cache: gnndist's cache policy for remote feature rows; cache_capacity its size (fraction of remote nodes).
        prefetch: gnndist's prefetch depth.
        dgl: the DGL environment; its python None skips DistDGL (the report says why).
        timeout_s: bound on DistDGL's partitioning and on its training run.
    """
    import torch

    from gnndist.benchmarks.distdgl_peer import check_isolation
    from gnndist.benchmarks.minibatch import run_gnndist
    from gnndist.benchmarks.peers import sage_weights, write_graph
    from gnndist.benchmarks.report import write_report
    from gnndist.data import load_dataset
    from gnndist.memory import peak_resident_bytes
    from gnndist.models import ModelSpec
    from gnndist.runtime import ray_cluster

    torch.set_num_threads(threads)
    graph_options = dict(QUICK_GRAPH if quick else DEFAULT_GRAPH)
    if num_nodes is not None:
        graph_options["num_nodes"] = num_nodes
    if quick:
        batch_size = min(batch_size, 256)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()
    graph = load_dataset("sbm", **graph_options)
    num_train = int(graph.train_mask.sum())
    spec_args = dict(name="sage", num_features=graph.num_features, num_classes=graph.num_classes, hidden=hidden, layers=len(fanouts), dropout=dropout, aggregation="gnndist_csr", lr=lr, weight_decay=0.0, seed=0)
    systems: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="gnndist-distdgl-") as tmp:
        tmp = Path(tmp)
        dgl_info: Any = dgl.note
        if dgl.python is not None:
            npz, weights = tmp / "graph.npz", tmp / "weights.npz"
            write_graph(graph, npz)
            model, _ = ModelSpec(**spec_args).build()
            np.savez(weights, **sage_weights(model.convs))
            workdir = tmp / "distdgl"
            workdir.mkdir()
            spec = dict(
                npz=str(npz), weights=str(weights), workdir=str(workdir), num_parts=NUM_PARTS, fanouts=list(fanouts), batch_size=batch_size, hidden=hidden,
                dropout=dropout, lr=lr, weight_decay=0.0, epochs=epochs, threads=threads, timeout_s=timeout_s, num_features=graph.num_features, num_classes=graph.num_classes,
            )
            log(f"DistDGL: partitioning {graph.num_nodes:,} nodes into {NUM_PARTS} parts with dgl.distributed.partition_graph (METIS)")
            try:
                check_isolation()
                with ChildProcess(peer_command(dgl.python, spec), "DistDGL driver", timeout_s + 120, threads) as child:
                    dgl_info = child.info
                    partition = _answer(child.request("partition"))
                    log(f"DistDGL: partitioned in {partition['seconds']:.1f} s; training {epochs} epoch(s) with {NUM_PARTS} servers + {NUM_PARTS} trainers on 127.0.0.1")
                    trained = _answer(child.request("train"))
                systems["DistDGL"] = _distdgl_row(partition, trained, num_train)
            except (RuntimeError, TimeoutError, KeyError, ValueError) as error:
                systems["DistDGL"] = {"error": f"{type(error).__name__}: {error}"}
            if "error" in systems["DistDGL"]:
                log(f"DistDGL failed: {systems['DistDGL']['error']}")
            else:
                log(_progress("DistDGL", systems["DistDGL"]))
        log(f"gnndist: {NUM_PARTS} workers on a private Ray, METIS, cache {cache}")
        with ray_cluster(None, num_cpus=max(os.cpu_count() or 1, NUM_PARTS), object_store_bytes=512 * 2**20):
            run = run_gnndist(
                graph, tmp / "gnndist-parts", NUM_PARTS, [tuple(fanouts)], [cache], spec_args,
                batch_size=batch_size, prefetch=prefetch, lr=lr, weight_decay=0.0, epochs=epochs, cache_capacity=cache_capacity, threads=threads,
            )
        systems["gnndist"] = _gnndist_row(run, num_train)
        systems["gnndist"]["peak_bytes"]["driver"] = peak_resident_bytes()
        log(_progress("gnndist", systems["gnndist"]))
    result = {
        "graph": {"name": "sbm", "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_train": num_train, **graph_options},
        "settings": dict(quick=quick, parts=NUM_PARTS, fanouts=list(fanouts), batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, epochs=epochs, threads=threads, cache=cache, cache_capacity=cache_capacity, prefetch=prefetch),
        "environment": {
            "torch": torch.__version__, "cpus": os.cpu_count(), "machine": platform.machine(), "dgl": dgl_info,
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "wall_s": time.perf_counter() - started,
        },
        "systems": systems,
    }
    table = markdown(result)
    write_report(out_dir, "distdgl", result, table)
    log(table)
    return result


def _answer(answer: dict[str, Any]) -> dict[str, Any]:
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer


def _timed(values: list[float]) -> float:
    return statistics.median(values[1:] or values)


def _distdgl_row(partition: dict[str, Any], trained: dict[str, Any], num_train: int) -> dict[str, Any]:
    epochs = trained["epochs"]
    cpu = [e["trainer_cpu_seconds"] + (e["server_cpu_seconds"] or 0.0) for e in epochs]
    epoch_s = _timed([e["seconds"] for e in epochs])
    return {
        "epoch_s": epoch_s,
        "seeds_per_s": num_train / epoch_s,
        "cpu_s": _timed(cpu),
        "seeds_per_cpu_s": num_train / _timed(cpu),
        "trainer_cpu_s": _timed([e["trainer_cpu_seconds"] for e in epochs]),
        "server_cpu_s": _timed([e["server_cpu_seconds"] or 0.0 for e in epochs]),
        "test_acc": trained["test_acc"],
        "losses": [e["loss"] for e in epochs],
        "partition_s": partition["seconds"],
        "setup_s": trained["setup_s"],
        "peak_bytes": {"partitioner": partition["peak_bytes"], **trained["peak_bytes"]},
        "epochs": epochs,
    }


def _gnndist_row(run: dict[str, Any], num_train: int) -> dict[str, Any]:
    row = run["rows"][0]
    cpu_s = num_train / row["train_seeds_per_cpu_s"] + row["store_cpu_s"]
    peaks = {f"worker{rank}": value for rank, value in enumerate(run["peak_bytes"]["worker"])}
    peaks.update({f"store{part}": value for part, value in enumerate(run["peak_bytes"]["store"])})
    return {
        "epoch_s": row["epoch_s"],
        "seeds_per_s": row["train_seeds_per_s"],
        "cpu_s": cpu_s,
        "seeds_per_cpu_s": num_train / cpu_s,
        "trainer_cpu_s": num_train / row["train_seeds_per_cpu_s"],
        "server_cpu_s": row["store_cpu_s"],
        "test_acc": row["test_acc"],
        "losses": row["losses"],
        "partition_s": run["partition_s"],
        "setup_s": row["setup_s"],
        "peak_bytes": peaks,
        "split_s": row["split_s"],
        "cache_hit_rate": row["cache_hit_rate"],
        "remote_bytes_per_epoch": row["remote_bytes_per_epoch"],
    }


def _progress(name: str, row: dict[str, Any]) -> str:
    return f"{name}: {row['seeds_per_s'] / 1e3:.1f}k seeds/s ({row['epoch_s']:.2f} s/epoch), {row['seeds_per_cpu_s'] / 1e3:.1f}k seeds/CPU-s, test acc {100 * row['test_acc']:.2f} %"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.0f}"


def markdown(result: dict[str, Any]) -> str:
    """The side-by-side table: one row per system, ratios to DistDGL."""
    graph, settings, env, systems = result["graph"], result["settings"], result["environment"], result["systems"]
    lines = [
        f"# DistDGL vs gnndist: sbm ({graph['num_nodes']:,} nodes, {graph['num_edges']:,} edges, {graph['feature_dim']}-d, {graph['num_classes']} classes, {graph['num_train']:,} training seeds)",
        "",
        f"GraphSAGE (mean) {len(settings['fanouts'])} layers, hidden {settings['hidden']}, fanouts {settings['fanouts']} (hop order), batch {settings['batch_size']}, Adam lr {settings['lr']}, "
        f"{settings['epochs']} epochs (median of the epochs after the first), the same initial weights; {settings['parts']} parts (METIS on both sides), "
        f"{settings['threads']} torch thread(s) per process; gnndist cache `{settings['cache']}` ({settings['cache_capacity']} of the remote nodes), prefetch {settings['prefetch']}. "
        f"DGL: {env['dgl']}; gnndist: torch {env['torch']}. {env['cpus']} CPUs shared with other users: load average "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_before'])} before, {', '.join(f'{v:.1f}' for v in env['load_average_after'])} after; run took {env['wall_s'] / 60:.1f} min.",
        "",
        "CPU-seconds per epoch count the trainers and the processes serving them (DistDGL's graph servers, which also sample; gnndist's feature stores). "
        "Peak RSS is each process's kernel high-water mark (DistDGL's partitioner is its driver process, which also read the graph).",
        "",
        "| system | seeds/s | vs DistDGL | seeds/CPU-s | vs DistDGL | s/epoch | trainer + server CPU-s/epoch | test acc | peak RSS per process (MiB) | partitioning s | setup s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    base = systems.get("DistDGL", {})
    for name, row in systems.items():
        if "error" in row:
            lines.append(f"| {name} | failed: {row['error'].splitlines()[0]} | | | | | | | | | |")
            continue
        ratio = lambda key, row=row: f"{row[key] / base[key]:.2f}x" if base.get(key) else "-"  # noqa: E731
        peaks = ", ".join(f"{process} {_mib(value)}" for process, value in row["peak_bytes"].items())
        lines.append(
            f"| {name} | {row['seeds_per_s'] / 1e3:.1f}k | {ratio('seeds_per_s')} | {row['seeds_per_cpu_s'] / 1e3:.1f}k | {ratio('seeds_per_cpu_s')} | {row['epoch_s']:.2f} "
            f"| {row['trainer_cpu_s']:.2f} + {row['server_cpu_s']:.2f} | {100 * row['test_acc']:.2f} % | {peaks} | {row['partition_s']:.1f} | {row['setup_s']:.1f} |"
        )
    if "DistDGL" not in systems:
        lines += ["", f"DistDGL: {env['dgl']}"]
    elif "error" in base:
        lines += ["", "DistDGL failed:", "", "```", base["error"], "```"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gnndist bench distdgl", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory for distdgl.json and distdgl.md")
    parser.add_argument("--quick", action="store_true", help="a 4k-node graph and batch 256 (smoke run)")
    parser.add_argument("--nodes", type=int, help=f"nodes of the sbm graph (default {DEFAULT_GRAPH['num_nodes']:,}; larger graphs: e.g. 200000)")
    parser.add_argument("--fanouts", default="10,5", help="fanouts in hop order (default 10,5)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--epochs", type=int, default=2, help="training epochs; the first is warm-up when there are more (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process on both sides (default 1)")
    parser.add_argument("--cache", default="degree", help="gnndist's cache policy (none, degree, presample, lru; default degree)")
    parser.add_argument("--cache-capacity", type=float, default=0.2)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on DistDGL's partitioning and on its training run, seconds (default 1800)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DistDGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="measure gnndist only")
    args = parser.parse_args(argv)
    try:
        args.fanouts = [int(v) for v in args.fanouts.split(",")]
    except ValueError:
        parser.error(f"--fanouts expects comma-separated integers such as 10,5 (got {args.fanouts!r})")
    for name in ("epochs", "threads", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dgl = find_dgl_python(args.dgl_python, disabled=args.no_dgl)
    if dgl.python is None:
        print(f"DistDGL {dgl.note}", flush=True)
    result = run_benchmark(
        args.out, quick=args.quick, num_nodes=args.nodes, fanouts=args.fanouts, batch_size=args.batch_size, hidden=args.hidden, dropout=args.dropout,
        lr=args.lr, epochs=args.epochs, threads=args.threads, cache=args.cache, cache_capacity=args.cache_capacity, prefetch=args.prefetch,
        dgl=dgl, timeout_s=args.timeout, log=lambda line: print(line, flush=True),
    )
    return 1 if "error" in result["systems"].get("DistDGL", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
