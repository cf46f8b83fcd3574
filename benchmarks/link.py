"""Link-prediction mini-batch training: gnndist (1 and 2 workers) against DGL's edge-prediction sampler, same graph, same run.

``gnndist bench link --out DIR [--quick] [--epochs E] [--train-fraction F] [--dgl-python PATH]`` splits the
``sbm`` graph of the mini-batch benchmark (200k nodes, 4.09M directed edges) once with gnndist's link task
(``task.name=link``: ``train-fraction`` / 0.05 / 0.10 of the undirected edges; the val and test edges leave
the message-passing graph, the unscored rest stays in it) and trains, on that message-passing graph:

- gnndist's mini-batch trainer on a private local Ray (:func:`.minibatch.run_gnndist` with the link task):
  1 and 2 workers (METIS parts, one store per part, the chosen cache policy for the 2-worker run);
- DGL 2.1 in its own environment (:mod:`.peers`, ``dgl_link``): ``as_edge_prediction_sampler`` over a
  ``NeighborSampler`` with ``negative_sampler.Uniform(k)``, a ``DataLoader`` over the training edge ids
  (``exclude="reverse_id"`` by default, as DGL's link-prediction example), ``SAGEConv``, dot scores, BCE.

Both train GraphSAGE (mean, 2 layers, hidden 128, output 128) from the same initial weights with a dot
decoder, the same training edges, fanouts, batch of positive edges per step, negatives per positive (uniform)
and Adam, one torch thread per process. One DGL epoch runs after every gnndist epoch, so load on a shared
machine hits both alike. Reported per system: positive training edges/s (median over the epochs after each
configuration's first), per CPU-second (gnndist: workers and stores), the ratio gnndist / DGL, and the test
AUC after ``epochs`` epochs on both sides, computed the same way (full-neighbourhood inference on the
message-passing graph, the task's fixed test negatives, gnndist's ``roc_auc``). Writes ``link.json`` and
``link.md``; without a DGL environment (``--dgl-python`` / ``GNNDIST_DGL_PYTHON``) DGL is skipped and the
report says why.
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

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python, peer_command

VAL_FRACTION, TEST_FRACTION = 0.05, 0.10


def run_benchmark(
    out_dir: Path,
    *,
    quick: bool = False,
    workers: Sequence[int] = (1, 2),
    fanouts: Sequence[int] = (10, 5),
    batch_size: int = 1024,
    hidden: int = 128,
    dropout: float = 0.0,
    lr: float = 0.003,
    epochs: int = 3,
    train_fraction: float = 0.05,
    negatives: int = 1,
    cache: str = "degree",
    cache_capacity: float = 0.2,
    prefetch: int = 2,
    threads: int = 1,
    exclude: str = "reverse_id",
    dgl: DGLPython = NO_DGL,
    timeout_s: float = 1800.0,
    log=print,
) -> dict[str, Any]:
    """Trains gnndist (every worker count) and DGL (when ``dgl.python`` is set); writes ``link.json`` and ``link.md`` to ``out_dir``.

    Args:
        out_dir: output folder.
        quick: the 4k-node ``sbm-small`` graph and batch 256 (a smoke run).
        workers: gnndist worker counts (one part each; METIS, random for one).
        fanouts: fanouts in hop order (the seeds' neighbours first).
        batch_size: positive training edges per optimizer step (over all workers).
        hidden, dropout, lr: GraphSAGE width (also its output width) and dropout, Adam's rate (no weight decay).
        epochs: epochs per gnndist configuration; the first is warm-up when there are more; test AUC after the last.
            DGL trains one warm-up epoch, then one after every gnndist epoch but the first; its AUC is taken after ``epochs`` epochs.
        train_fraction: fraction of the undirected edges scored in training (val 0.05 and test 0.10 are held
            out; the rest stays in the message-passing graph unscored): sets an epoch's length.
        negatives: uniform negatives per positive edge.
        cache, cache_capacity: gnndist's cache policy (and its share of the remote nodes) for runs with remote nodes.
        prefetch: gnndist's prefetch depth.
        threads: torch threads of every process (gnndist workers and stores, the DGL child, this process).
        exclude: DGL's ``exclude`` (``reverse_id`` or ``none``); gnndist samples around a batch's edges without excluding them.
        dgl: the DGL environment (:func:`~gnndist.benchmarks.child.find_dgl_python`); its python None skips DGL.
        timeout_s: bound on one DGL request (an epoch, the setup, the scores).
        log: where progress lines go.
    """
    import numpy as np
    import torch

    from gnndist.benchmarks.minibatch import run_gnndist
    from gnndist.benchmarks.peers import sage_weights, write_graph
    from gnndist.benchmarks.report import write_report
    from gnndist.benchmarks.sampling import GRAPHS, load_graph
    from gnndist.models import ModelSpec
    from gnndist.runtime import ray_cluster
    from gnndist.tasks.link import LinkTask
    from gnndist.tasks.ranking import roc_auc

    torch.set_num_threads(threads)
    graph_name = "sbm-small" if quick else "sbm"
    if quick:
        batch_size = min(batch_size, 256)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, load_before = time.perf_counter(), os.getloadavg()
    task = LinkTask(split=(train_fraction, VAL_FRACTION, TEST_FRACTION), negatives=negatives, negative_sampler="uniform", decoder="dot")
    prepared = task.prepare(load_graph(graph_name), seed=0)
    graph, split = prepared.graph, prepared.targets
    num_train = split.train.size(1)
    spec_args = dict(
        name="sage", num_features=graph.num_features, num_classes=task.output_width(graph.num_classes, hidden), hidden=hidden, layers=len(fanouts),
        dropout=dropout, aggregation="gnndist_csr", lr=lr, weight_decay=0.0, seed=0, decoder="dot",
    )
    log(f"{graph_name}: {graph.num_nodes:,} nodes, {graph.num_edges:,} message-passing edges, {num_train:,} training edges ({train_fraction} of the undirected edges)")
    rows: list[dict[str, Any]] = []
    dgl_epochs: list[dict[str, float]] = []
    dgl_auc: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gnndist-link-") as tmp:
        tmp = Path(tmp)
        child = None
        if dgl.python is not None:
            npz = tmp / "graph.npz"
            model, _ = ModelSpec(**spec_args).build()
            test = split.test
            write_graph(graph, npz, train_pairs=split.train.numpy(), test_pos=test.pos.numpy(), test_neg_dst=test.neg_dst.numpy(), **sage_weights(model.encoder.convs))
            spec = dict(npz=str(npz), fanouts=list(fanouts), batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, weight_decay=0.0, negatives=negatives, exclude=exclude, threads=threads)
            child = ChildProcess(peer_command(dgl.python, "dgl_link", spec), "DGL link prediction", timeout_s, threads)

        def dgl_epoch(*_: Any) -> None:
            """One more DGL epoch; its test AUC once it has trained ``epochs`` epochs (as each gnndist configuration)."""
            dgl_epochs.append(child.request("train", epoch=len(dgl_epochs)))
            if len(dgl_epochs) == epochs:
                with np.load(child.request("scores", out=str(tmp / "dgl-scores.npz"))["scores"], allow_pickle=False) as scores:
                    dgl_auc.append(roc_auc(torch.from_numpy(scores["pos"]), torch.from_numpy(scores["neg"])))

        try:
            if child is not None:
                dgl_epoch()  # warm-up, untimed
                log(f"DGL warm-up epoch: {dgl_epochs[0]['seconds']:.1f} s, {dgl_epochs[0]['steps']} steps, exclude={exclude}")
            after_epoch = (lambda fanouts, epoch: dgl_epoch() if epoch else None) if child is not None else None
            with ray_cluster(None, num_cpus=max(os.cpu_count() or 1, max(workers)), object_store_bytes=512 * 2**20):
                for num_workers in workers:
                    run = run_gnndist(
                        graph, tmp / f"parts-{num_workers}", num_workers, [tuple(fanouts)], [cache if num_workers > 1 else "none"], spec_args,
                        batch_size=batch_size, prefetch=prefetch, lr=lr, weight_decay=0.0, epochs=epochs, cache_capacity=cache_capacity, threads=threads,
                        after_epoch=after_epoch, task=task, targets=split,
                    )
                    rows.append(_gnndist_row(run, num_train))
                    log(_progress(rows[-1]))
        finally:
            if child is not None:
                child.close()
    if child is not None:
        rows.insert(0, _dgl_row(dgl_epochs, num_train, dgl_auc[0] if dgl_auc else None, exclude))
        log(_progress(rows[0]))
    _add_ratios(rows)
    result = {
        "graph": {"name": graph_name, **GRAPHS[graph_name], "num_nodes": graph.num_nodes, "message_passing_edges": graph.num_edges, "train_edges": num_train, "test_edges": split.test.pos.size(1)},
        "settings": dict(
            quick=quick, workers=list(workers), fanouts=list(fanouts), batch_size=batch_size, hidden=hidden, dropout=dropout, lr=lr, epochs=epochs, train_fraction=train_fraction,
            negatives=negatives, cache=cache, cache_capacity=cache_capacity, prefetch=prefetch, threads=threads, exclude=exclude,
        ),
        "environment": {
            "torch": torch.__version__, "cpus": os.cpu_count(), "machine": platform.machine(), "dgl": child.info if child is not None else dgl.note,
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "wall_s": time.perf_counter() - started,
        },
        "rows": rows,
    }
    table = markdown(result)
    write_report(out_dir, "link", result, table)
    log(table)
    return result


def _dgl_row(epochs: list[dict[str, float]], num_train: int, test_auc: float | None, exclude: str) -> dict[str, Any]:
    timed = epochs[1:] or epochs
    epoch_s, cpu_s = statistics.median(e["seconds"] for e in timed), statistics.median(e["cpu_seconds"] for e in timed)
    return {
        "system": "dgl", "workers": 1, "cache": "-", "exclude": exclude, "epoch_s": epoch_s, "edges_per_s": num_train / epoch_s, "cpu_s": cpu_s, "edges_per_cpu_s": num_train / cpu_s,
        "steps": epochs[0]["steps"], "timed_epochs": len(timed), "test_auc": test_auc, "losses": [e["loss"] for e in epochs],
    }


def _gnndist_row(run: dict[str, Any], num_train: int) -> dict[str, Any]:
    """gnndist's row from :func:`.minibatch.run_gnndist`'s (whose "seeds" are the link task's training edges); CPU
    seconds are the workers' plus the stores'."""
    row = run["rows"][0]
    cpu_s = num_train / row["train_seeds_per_cpu_s"] + row["store_cpu_s"]
    return {
        "system": "gnndist", "workers": row["workers"], "cache": row["cache"], "epoch_s": row["epoch_s"], "edges_per_s": row["train_seeds_per_s"], "cpu_s": cpu_s,
        "edges_per_cpu_s": num_train / cpu_s, "worker_cpu_s": num_train / row["train_seeds_per_cpu_s"], "store_cpu_s": row["store_cpu_s"], "timed_epochs": row["timed_epochs"],
        "split_s": row["split_s"], "cache_hit_rate": row["cache_hit_rate"], "remote_bytes_per_epoch": row["remote_bytes_per_epoch"],
        "test_auc": row["test_metrics"].get("test_auc"), "losses": row["losses"], "setup_s": row["setup_s"], "partition_s": run["partition_s"], "peak_bytes": run["peak_bytes"],
    }


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Adds ``vs_dgl`` (edges/s) and ``cpu_vs_dgl`` (edges per CPU-second) to every row: the row over DGL's row of this run (None without DGL)."""
    base = next((row for row in rows if row["system"] == "dgl"), None)
    for row in rows:
        row["vs_dgl"] = row["edges_per_s"] / base["edges_per_s"] if base else None
        row["cpu_vs_dgl"] = row["edges_per_cpu_s"] / base["edges_per_cpu_s"] if base else None


def _progress(row: dict[str, Any]) -> str:
    auc = "-" if row["test_auc"] is None else f"{row['test_auc']:.4f}"
    return f"{row['system']} {row['workers']} worker(s): {row['edges_per_s'] / 1e3:.2f}k edges/s ({row['epoch_s']:.2f} s/epoch), {row['edges_per_cpu_s'] / 1e3:.2f}k edges/CPU-s, test AUC {auc}"


def _dgl_version(info: dict[str, Any] | str) -> str:
    """The DGL child's first answer as words, or why DGL was skipped."""
    return info if isinstance(info, str) else f"{info['dgl']} on torch {info['torch']}"


def markdown(result: dict[str, Any]) -> str:
    """The table: one row per system and worker count, ratios to DGL's row of the same run."""
    graph, settings, env = result["graph"], result["settings"], result["environment"]
    kilo = lambda value: f"{value / 1e3:,.2f}k"  # noqa: E731
    ratio = lambda value: "-" if value is None else f"{value:.2f}x"  # noqa: E731
    lines = [
        f"# Link prediction, mini-batch: gnndist vs DGL, graph {graph['name']} ({graph['num_nodes']:,} nodes, {graph['message_passing_edges']:,} message-passing edges, "
        f"{graph['train_edges']:,} training edges, {graph['test_edges']:,} test edges)",
        "",
        f"GraphSAGE (mean) {len(settings['fanouts'])} layers, hidden {settings['hidden']} (also the output), dot decoder, the same initial weights; fanouts {settings['fanouts']} (hop order), "
        f"{settings['batch_size']} positive edges per step, {settings['negatives']} uniform negative(s) per positive, BCE, Adam lr {settings['lr']}, dropout {settings['dropout']}; "
        f"{settings['epochs']} epochs per gnndist configuration (medians of the epochs after the first), one DGL epoch after each (plus one warm-up). "
        f"DGL: {_dgl_version(env['dgl'])}, exclude={settings['exclude']!r} (gnndist excludes nothing); gnndist: torch {env['torch']}, cache `{settings['cache']}` "
        f"({settings['cache_capacity']} of the remote nodes) with 2+ workers, prefetch {settings['prefetch']}. {settings['threads']} torch thread(s) per process. "
        f"{env['cpus']} CPUs shared with other users: load average {', '.join(f'{v:.1f}' for v in env['load_average_before'])} before, "
        f"{', '.join(f'{v:.1f}' for v in env['load_average_after'])} after; run took {env['wall_s'] / 60:.1f} min.",
        "",
        "Edges/s count the positive training edges of an epoch over its wall time (sampling, feature fetch, forward, backward, Adam; evaluation excluded). "
        "CPU-seconds: gnndist's workers and stores, DGL's one process. Test AUC after the same number of epochs on both sides, computed the same way "
        "(full-neighbourhood inference, the task's fixed uniform test negatives, gnndist's `roc_auc`). Time split of gnndist's slowest worker: sample and fetch "
        "run in the prefetch thread, overlapped with training; wait is what training waited for batches.",
        "",
        "| system | workers | cache | training edges/s | vs DGL | edges/CPU-s | vs DGL | s/epoch | sample / fetch / wait / compute / sync s | cache hit | test AUC |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in result["rows"]:
        auc = "-" if row["test_auc"] is None else f"{row['test_auc']:.4f}"
        if row["system"] == "dgl":
            split, hit, name = "-", "-", "DGL 2.1"
        else:
            split = " / ".join(f"{value:.2f}" for value in row["split_s"].values())
            hit, name = ("-" if row["cache_hit_rate"] is None else f"{100 * row['cache_hit_rate']:.1f} %"), "gnndist"
        lines.append(
            f"| {name} | {row['workers']} | {row['cache']} | {kilo(row['edges_per_s'])} | {ratio(row['vs_dgl'])} | {kilo(row['edges_per_cpu_s'])} | {ratio(row['cpu_vs_dgl'])} "
            f"| {row['epoch_s']:.2f} | {split} | {hit} | {auc} |"
        )
    if not any(row["system"] == "dgl" for row in result["rows"]):
        lines += ["", f"DGL: {env['dgl']}"]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gnndist bench link", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory for link.json and link.md")
    parser.add_argument("--quick", action="store_true", help="the 4k-node sbm-small graph and batch 256 (smoke run)")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2], help="gnndist worker counts (default: 1 2)")
    parser.add_argument("--fanouts", default="10,5", help="fanouts in hop order (default 10,5)")
    parser.add_argument("--batch-size", type=int, default=1024, help="positive training edges per step (default 1024)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per gnndist configuration; the first is warm-up when there are more (default 3)")
    parser.add_argument("--train-fraction", type=float, default=0.05, help=f"fraction of the undirected edges trained on, in (0, {1 - VAL_FRACTION - TEST_FRACTION:g}] (default 0.05: ~102k edges on sbm)")
    parser.add_argument("--negatives", type=int, default=1, help="uniform negatives per positive edge (default 1)")
    parser.add_argument("--cache", default="degree", help="gnndist's cache policy with 2+ workers (none, degree, presample, lru; default degree)")
    parser.add_argument("--cache-capacity", type=float, default=0.2)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process on both sides (default 1)")
    parser.add_argument("--exclude", choices=["reverse_id", "none"], default="reverse_id", help="DGL's exclude: leave a batch's edges and their reverses out of its neighbourhoods (default reverse_id)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="bound on one DGL request, seconds (default 1800)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="measure gnndist only")
    args = parser.parse_args(argv)
    try:
        args.fanouts = [int(v) for v in args.fanouts.split(",")]
    except ValueError:
        parser.error(f"--fanouts expects comma-separated integers such as 10,5 (got {args.fanouts!r})")
    for name in ("epochs", "threads", "batch_size", "negatives"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if any(n < 1 for n in args.workers):
        parser.error(f"--workers must be >= 1 (got {args.workers})")
    if not 0 < args.train_fraction <= 1 - VAL_FRACTION - TEST_FRACTION + 1e-9:
        parser.error(f"--train-fraction must be in (0, {1 - VAL_FRACTION - TEST_FRACTION:g}] (got {args.train_fraction})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dgl = find_dgl_python(args.dgl_python, disabled=args.no_dgl)
    if dgl.python is None:
        print(f"DGL {dgl.note}", flush=True)
    run_benchmark(
        args.out, quick=args.quick, workers=args.workers, fanouts=args.fanouts, batch_size=args.batch_size, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
        epochs=args.epochs, train_fraction=args.train_fraction, negatives=args.negatives, cache=args.cache, cache_capacity=args.cache_capacity, prefetch=args.prefetch,
        threads=args.threads, exclude=args.exclude, dgl=dgl, timeout_s=args.timeout, log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
