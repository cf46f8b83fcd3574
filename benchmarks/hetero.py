"""Heterogeneous mini-batch training: gnndist against DGL's heterogeneous sampler + ``HeteroGraphConv`` R-GCN, same graph, same run.

``gnndist bench hetero --out DIR [--quick] [--mode minibatch|fullgraph|single] [--workers 1 2] [--epochs E] [--dgl-python PATH]``
generates an ``hsbm`` graph (papers, authors, institutions, fields; ~1M nodes in all, ``--quick``: ~5k) once, writes it
as a typed ``.npz`` (``gnndist.data.npz``) and trains on that file:

- gnndist through its job interface only (:func:`gnndist.launch.job.run_job`, the config of ``gnndist train
  mode=MODE dataset.name=npz:FILE model.name=rgcn train.fanouts=[..] train.batch_size=..``), one job per worker
  count; its epochs' metrics (``seeds``, ``cpu_s`` where the mode reports them) and this process's CPU time give
  seeds/s and seeds per CPU-second;
- DGL 2.1 in its own environment (:mod:`.peers`, ``dgl_hetero``): ``dgl.heterograph``, ``NeighborSampler`` (the
  fanout applies to every relation, per hop) + ``DataLoader`` over the target type's training nodes, and gnndist's
  ``rgcn`` written with ``HeteroGraphConv`` over one mean ``GraphConv`` per relation, a shared root ``Linear``,
  ``nn.Embedding`` for featureless types, started from gnndist's initial parameters.

Both train the same model shape (hidden width, layers, dropout, per-relation weights, self-loop), the same batch
size and Adam, one torch thread per process. One DGL epoch runs after every gnndist epoch but each job's first
(plus one warm-up), so load on a shared machine hits both alike. Reported per system: training seeds/s (median over
the epochs after each configuration's first), seeds per CPU-second, the ratio gnndist / DGL, and the test accuracy
after ``epochs`` epochs, evaluated the same way on both sides (full-neighbourhood inference on the whole graph).

gnndist runs ``mode=minibatch`` (1 and 2 workers) by default; ``--mode single`` / ``fullgraph`` run full-graph
training on the same graph for comparison (one optimizer step per epoch: not a mini-batch throughput). Writes
``hetero.json`` and ``hetero.md``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python, peer_command

DEFAULT_MODE = "minibatch"
MODES = ("minibatch", "fullgraph", "single")
# ~1M nodes and ~8.1M directed edges (with reverses); 100k training papers (train_fraction 0.25)
GRAPH = dict(num_papers=400_000, num_authors=450_000, num_institutions=50_000, num_fields=100_000, feature_dim=128, seed=0)
QUICK_GRAPH = dict(seed=0)  # hsbm's defaults: 5,192 nodes, 750 training papers


def job_overrides(npz: Path, run_dir: Path, mode: str, workers: int, *, fanouts: Sequence[int], batch_size: int, hidden: int, dropout: float, lr: float, epochs: int, threads: int) -> list[str]:
    """The ``gnndist train`` overrides of one gnndist job: ``mode`` and ``workers`` are all that differ between jobs."""
    overrides = [
        f"mode={mode}", f"dataset.name=npz:{npz}", "model.name=rgcn", f"model.hidden={hidden}", f"model.layers={len(fanouts)}", f"model.dropout={dropout}",
        f"train.fanouts=[{','.join(map(str, fanouts))}]", f"train.batch_size={batch_size}", f"train.lr={lr}", "train.weight_decay=0", f"train.epochs={epochs}",
        f"train.eval_every={epochs}", "train.seed=0", f"train.num_threads={threads}", "train.device=cpu", f"output.dir={run_dir}",
    ]
    if mode != "single":
        overrides += [f"partition.parts={workers}", f"cluster.workers={workers}", f"partition.method={'metis' if workers > 1 else 'random'}"]
    return overrides


def run_benchmark(
    out_dir: Path,
    *,
    quick: bool = False,
    mode: str = DEFAULT_MODE,
    workers: Sequence[int] = (1,),
    fanouts: Sequence[int] = (10, 5),
    batch_size: int = 1024,
    hidden: int = 64,
    dropout: float = 0.5,
    lr: float = 0.01,
    epochs: int = 3,
    threads: int = 1,
    dgl: DGLPython = NO_DGL,
    timeout_s: float = 1800.0,
    log=print,
) -> dict[str, Any]:
    """Trains gnndist (one job per worker count) and DGL (when ``dgl.python`` is set); writes ``hetero.json`` and ``hetero.md``.

    Args:
        out_dir: output folder (the gnndist jobs' run directories go to ``out_dir/runs``).
        quick: hsbm's small default graph (~5k nodes) and batch <= 256 (a smoke run).
        mode: gnndist's ``mode``: ``minibatch``, or full-graph training for comparison (``single``: one process;
            ``fullgraph``: ``sync`` over one part per worker).
        workers: gnndist worker counts (``mode=single``: 1 only).
        fanouts: per hop, in hop order (the seeds' neighbours first); each applies to every relation.
        batch_size, hidden, dropout, lr: both sides' seeds per step (over all workers), R-GCN width and dropout, Adam's rate.
        epochs: epochs per gnndist job (>= 2: the first is warm-up); test accuracy after the last. DGL trains one
            warm-up epoch, then one after every gnndist epoch but the first; its accuracy is taken after ``epochs`` epochs.
        threads: torch threads of every process (gnndist's, the DGL child).
        dgl: the DGL environment (:func:`~gnndist.benchmarks.child.find_dgl_python`); its python None skips DGL.
        timeout_s: bound on one DGL request (an epoch, the setup, the evaluation).
        log: where progress lines go.
    """
    import numpy as np
    import torch

    from gnndist.benchmarks.peers import rgcn_weights
    from gnndist.benchmarks.report import write_report
    from gnndist.config import load_config
    from gnndist.data import load_dataset
    from gnndist.data.npz import save_npz
    from gnndist.modes.base import JobData
    from gnndist.registry import MODES as JOB_MODES
    from gnndist.runtime import ray_cluster

    if mode not in MODES:
        raise ValueError(f"Expected mode in {list(MODES)} (got {mode!r})")
    if mode == "single" and list(workers) != [1]:
        raise ValueError(f"mode=single trains in one process: workers must be [1] (got {list(workers)})")
    if epochs < 2:
        raise ValueError(f"Expected epochs >= 2: the first is warm-up (got {epochs})")
    torch.set_num_threads(threads)
    options = QUICK_GRAPH if quick else GRAPH
    if quick:
        batch_size = min(batch_size, 256)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()
    graph = load_dataset("hsbm", **options)
    target = graph.schema().target
    num_train = int(graph.nodes[target].train_mask.sum())
    graph_info = {
        "name": "hsbm", "options": options, "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "target": target, "train_seeds": num_train,
        "nodes": {t: nodes.num_nodes for t, nodes in graph.nodes.items()}, "relations": len(graph.edge_types),
    }
    log(f"hsbm: {graph.num_nodes:,} nodes ({', '.join(f'{n:,} {t}' for t, n in graph_info['nodes'].items())}), {graph.num_edges:,} edges in {len(graph.edge_types)} relations, {num_train:,} training {target} nodes")
    settings = dict(quick=quick, mode=mode, workers=list(workers), fanouts=list(fanouts), batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, epochs=epochs, threads=threads)
    rows: list[dict[str, Any]] = []
    dgl_epochs: list[dict[str, float]] = []
    dgl_acc: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gnndist-hetero-") as tmp:
        npz = Path(tmp) / "hsbm.npz"
        save_npz(graph, npz)
        del graph  # every job loads the file itself

        def job_config(num_workers: int):
            """The job config of ``num_workers`` workers, as ``gnndist train`` builds it from :func:`job_overrides`."""
            run_dir = out_dir / "runs" / f"{mode}-w{num_workers}"
            settings_of_job = dict(fanouts=fanouts, batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, epochs=epochs, threads=threads)
            return load_config(None, job_overrides(npz, run_dir, mode, num_workers, **settings_of_job))

        child = None
        if dgl.python is not None:
            model, _ = JobData(job_config(workers[0])).spec.build()  # the job's own initial parameters
            weights = Path(tmp) / "rgcn-weights.npz"
            np.savez(weights, **rgcn_weights(model))
            spec = dict(npz=str(npz), weights=str(weights), fanouts=list(fanouts), batch_size=batch_size, hidden=hidden, layers=len(fanouts), dropout=dropout, lr=lr, weight_decay=0.0, threads=threads)
            child = ChildProcess(peer_command(dgl.python, "dgl_hetero", spec), "DGL heterogeneous", timeout_s, threads)

        def dgl_epoch() -> None:
            """One more DGL epoch; its test accuracy once it has trained ``epochs`` epochs (as each gnndist job)."""
            dgl_epochs.append(child.request("train", epoch=len(dgl_epochs)))
            if len(dgl_epochs) == epochs:
                dgl_acc.append(child.request("evaluate")["test_acc"])

        try:
            if child is not None:
                dgl_epoch()  # warm-up, untimed
                log(f"DGL warm-up epoch: {dgl_epochs[0]['seconds']:.1f} s, {dgl_epochs[0]['steps']} steps")
            # one Ray for every job of a distributed mode (each job would start and stop its own otherwise)
            with ray_cluster(None, num_cpus=max(os.cpu_count() or 1, max(workers)), object_store_bytes=512 * 2**20) if JOB_MODES.get(mode).distributed else contextlib.nullcontext():
                for num_workers in workers:
                    run = _run_gnndist(job_config(num_workers), num_train, dgl_epoch if child is not None else None)
                    rows.append(_gnndist_row(run, mode, num_workers))
                    log(_progress(rows[-1]))
        finally:
            if child is not None:
                child.close()
    if child is not None:
        rows.insert(0, _dgl_row(dgl_epochs, num_train, dgl_acc[0] if dgl_acc else None))
        log(_progress(rows[0]))
    _add_ratios(rows)
    result = {
        "graph": graph_info,
        "settings": settings,
        "environment": {
            "torch": torch.__version__, "cpus": os.cpu_count(), "machine": platform.machine(), "dgl": child.info if child is not None else dgl.note,
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "wall_s": time.perf_counter() - started,
        },
        "rows": rows,
    }
    table = markdown(result)
    write_report(out_dir, "hetero", result, table)
    log(table)
    return result


def _run_gnndist(config, num_train: int, peer_epoch) -> dict[str, Any]:
    """One gnndist job; per epoch its wall seconds, seeds and CPU seconds (the workers' ``cpu_s`` and the stores'
    ``store_cpu_s`` where the mode reports them, plus this process's: all of ``mode=single``), and ``peer_epoch()``
    after every epoch but the first."""
    from gnndist.launch.job import run_job

    epochs: list[dict[str, float]] = []
    mark = [time.process_time()]

    def on_epoch(metrics) -> None:
        driver_cpu_s = time.process_time() - mark[0]
        seeds = metrics.extra.get("seeds", num_train)
        cpu_s = metrics.extra.get("cpu_s", 0.0) + metrics.extra.get("store_cpu_s", 0.0) + driver_cpu_s
        epochs.append({"seconds": metrics.epoch_time_s, "cpu_seconds": cpu_s, "seeds": seeds, "loss": metrics.loss, "test_acc": metrics.test_acc})
        if peer_epoch is not None and metrics.epoch:
            peer_epoch()
        mark[0] = time.process_time()

    summary = run_job(config, force=True, progress=False, on_epoch=on_epoch)
    return {"epochs": epochs, "summary": summary}


def _throughput(epochs: list[dict[str, float]], seeds: float) -> dict[str, float]:
    """Medians over the epochs after the first (warm-up): seconds, CPU seconds, and ``seeds`` per second and per CPU-second."""
    timed = epochs[1:] or epochs
    epoch_s, cpu_s = statistics.median(e["seconds"] for e in timed), statistics.median(e["cpu_seconds"] for e in timed)
    return {"epoch_s": epoch_s, "cpu_s": cpu_s, "seeds_per_s": seeds / epoch_s, "seeds_per_cpu_s": seeds / cpu_s, "timed_epochs": len(timed)}


def _dgl_row(epochs: list[dict[str, float]], num_train: int, test_acc: float | None) -> dict[str, Any]:
    return {"system": "dgl", "workers": 1, **_throughput(epochs, num_train), "steps": epochs[0]["steps"], "test_acc": test_acc, "losses": [e["loss"] for e in epochs]}


def _gnndist_row(run: dict[str, Any], mode: str, workers: int) -> dict[str, Any]:
    summary = run["summary"]
    return {
        "system": "gnndist", "mode": mode, "workers": workers, **_throughput(run["epochs"], statistics.median(e["seeds"] for e in run["epochs"])), "test_acc": summary["final"].get("test_acc"),
        "losses": [e["loss"] for e in run["epochs"]], "setup_s": summary["timing"]["setup_s"], "aggregation": summary["aggregation"]["backends"], "run_dir": summary["run_dir"],
        "memory": summary["memory"],
    }


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Adds ``vs_dgl`` (seeds/s) and ``cpu_vs_dgl`` (seeds per CPU-second) to every row: the row over DGL's row of this run (None without DGL)."""
    base = next((row for row in rows if row["system"] == "dgl"), None)
    for row in rows:
        row["vs_dgl"] = row["seeds_per_s"] / base["seeds_per_s"] if base else None
        row["cpu_vs_dgl"] = row["seeds_per_cpu_s"] / base["seeds_per_cpu_s"] if base else None


def _name(row: dict[str, Any]) -> str:
    return "DGL 2.1" if row["system"] == "dgl" else f"gnndist {row['mode']}"


def _progress(row: dict[str, Any]) -> str:
    acc = "-" if row["test_acc"] is None else f"{100 * row['test_acc']:.2f} %"
    return f"{_name(row)} {row['workers']} worker(s): {row['seeds_per_s'] / 1e3:.2f}k seeds/s ({row['epoch_s']:.2f} s/epoch), {row['seeds_per_cpu_s'] / 1e3:.2f}k seeds/CPU-s, test acc {acc}"


def markdown(result: dict[str, Any]) -> str:
    """The table: one row per system and worker count, ratios to DGL's row of the same run."""
    graph, settings, env = result["graph"], result["settings"], result["environment"]
    dgl = env["dgl"] if isinstance(env["dgl"], str) else f"{env['dgl']['dgl']} on torch {env['dgl']['torch']}"
    kilo = lambda value: f"{value / 1e3:,.2f}k"  # noqa: E731
    ratio = lambda value: "-" if value is None else f"{value:.2f}x"  # noqa: E731
    stand_in = (
        f" **gnndist ran `mode={settings['mode']}` (full-graph training): "
        "its seeds/s are training nodes per full-graph epoch (one optimizer step), not sampled mini-batches.**" if settings["mode"] != "minibatch" else ""
    )
    lines = [
        f"# Heterogeneous mini-batch training: gnndist vs DGL, hsbm ({graph['num_nodes']:,} nodes in {len(graph['nodes'])} types, {graph['num_edges']:,} edges in "
        f"{graph['relations']} relations, {graph['train_seeds']:,} training {graph['target']} nodes)",
        "",
        f"R-GCN, {len(settings['fanouts'])} layers, hidden {settings['hidden']}, dropout {settings['dropout']}, per-relation weights + self-loop, featureless types embedded, "
        f"the same initial parameters; fanouts {settings['fanouts']} per relation (hop order), {settings['batch_size']} seeds per step, Adam lr {settings['lr']}; "
        f"{settings['epochs']} epochs per gnndist job (medians of the epochs after the first), one DGL epoch after each (plus one warm-up). "
        f"DGL: {dgl}; gnndist: torch {env['torch']}, `gnndist train mode={settings['mode']}`. {settings['threads']} torch thread(s) per process. "
        f"{env['cpus']} CPUs shared with other users: load average {', '.join(f'{v:.1f}' for v in env['load_average_before'])} before, "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_after'])} after; run took {env['wall_s'] / 60:.1f} min.{stand_in}",
        "",
        "Seeds/s count the training nodes of an epoch over its wall time (evaluation excluded). CPU-seconds: DGL's one process; gnndist's driver "
        "plus the workers' and the stores' CPU time. Test accuracy after the same number of epochs on both sides, with full neighbourhoods on the whole graph.",
        "",
        "| system | workers | training seeds/s | vs DGL | seeds/CPU-s | vs DGL | s/epoch | CPU s/epoch | test acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        acc = "-" if row["test_acc"] is None else f"{100 * row['test_acc']:.2f} %"
        lines.append(
            f"| {_name(row)} | {row['workers']} | {kilo(row['seeds_per_s'])} | {ratio(row['vs_dgl'])} | {kilo(row['seeds_per_cpu_s'])} | {ratio(row['cpu_vs_dgl'])} "
            f"| {row['epoch_s']:.2f} | {row['cpu_s']:.2f} | {acc} |"
        )
    if not any(row["system"] == "dgl" for row in result["rows"]):
        lines += ["", f"DGL: {env['dgl']}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gnndist bench hetero", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory for hetero.json, hetero.md and the gnndist runs")
    parser.add_argument("--quick", action="store_true", help="hsbm's small default graph (~5k nodes) and batch <= 256 (smoke run)")
    parser.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"gnndist's mode (default {DEFAULT_MODE}; single, fullgraph: full-graph training, one step per epoch)")
    parser.add_argument("--workers", nargs="+", type=int, help="gnndist worker counts (default: 1 2; 1 with single)")
    parser.add_argument("--fanouts", default="10,5", help="fanouts per relation in hop order (default 10,5)")
    parser.add_argument("--batch-size", type=int, default=1024, help="seeds per step (default 1024)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per gnndist job, >= 2; the first is warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process on both sides (default 1)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on one DGL request, seconds (default 1800)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="measure gnndist only")
    args = parser.parse_args(argv)
    try:
        args.fanouts = [int(v) for v in args.fanouts.split(",")]
    except ValueError:
        parser.error(f"--fanouts expects comma-separated integers such as 10,5 (got {args.fanouts!r})")
    if args.workers is None:
        args.workers = [1] if args.mode == "single" else [1, 2]  # 2 workers where the mode distributes
    for name in ("threads", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.epochs < 2:
        parser.error(f"--epochs must be >= 2, the first is warm-up (got {args.epochs})")
    if any(n < 1 for n in args.workers):
        parser.error(f"--workers must be >= 1 (got {args.workers})")
    if args.mode == "single" and args.workers != [1]:
        parser.error(f"--mode single trains in one process: --workers must be 1 (got {args.workers})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dgl = find_dgl_python(args.dgl_python, disabled=args.no_dgl)
    if dgl.python is None:
        print(f"DGL {dgl.note}", flush=True)
    run_benchmark(
        args.out, quick=args.quick, mode=args.mode, workers=args.workers, fanouts=args.fanouts, batch_size=args.batch_size, hidden=args.hidden, dropout=args.dropout,
        lr=args.lr, epochs=args.epochs, threads=args.threads, dgl=dgl, timeout_s=args.timeout, log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
