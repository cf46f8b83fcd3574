"""Neighbour-sampling throughput: gnndist's sampler against DGL 2.1's, on the same graph in the same run.

``python -m gnndist.benchmarks.sampling --out DIR`` measures seeds per second over whole epochs of
seed batches, sampling only and sampling + feature gather (``x[input_nodes]``), for every fanout
setting. DGL runs in its own environment (torch 2.2.1; ``--dgl-python`` or ``GNNDIST_DGL_PYTHON``,
else it is skipped) as a child process (:mod:`.peers`), with the graph passed in an ``.npz`` file;
its epochs are interleaved with gnndist's so that load on a shared machine hits both alike. Writes
``sampling.json`` and ``sampling.md``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from gnndist.benchmarks.child import DGL_PYTHON_ENV, NO_DGL, ChildProcess, DGLPython, find_dgl_python, peer_command
from gnndist.benchmarks.peers import write_graph
from gnndist.benchmarks.report import write_report

MODES = ("sample", "gather")
GRAPHS = {
    "sbm": dict(num_nodes=200_000, avg_degree=20, num_classes=16, feature_dim=128, seed=0),
    "sbm-small": dict(num_nodes=4_000, avg_degree=10, num_classes=4, feature_dim=16, seed=0),  # smoke tests
}


@dataclass
class Measurement:
    """Epoch wall and CPU times of one (library, fanouts, mode) and the throughput of their medians.

    CPU time (all threads of the process) is reported beside wall time because the machines these
    run on are shared: it shows the work done, wall time also shows the waiting.
    """

    library: str
    fanouts: list[int]
    mode: str
    epoch_s: list[float] = field(default_factory=list)
    epoch_cpu_s: list[float] = field(default_factory=list)
    num_seeds: int = 0

    def add(self, times: tuple[float, float]) -> None:
        self.epoch_s.append(times[0])
        self.epoch_cpu_s.append(times[1])

    @property
    def seeds_per_s(self) -> float:
        return self.num_seeds / statistics.median(self.epoch_s)

    @property
    def seeds_per_cpu_s(self) -> float:
        return self.num_seeds / statistics.median(self.epoch_cpu_s)


def load_graph(name: str):
    """The benchmark graph ``name`` (see ``GRAPHS``) as a :class:`~gnndist.graph.Graph`."""
    from gnndist.data import load_dataset

    if name not in GRAPHS:
        raise ValueError(f"Unknown benchmark graph {name!r}; available: {', '.join(GRAPHS)}")
    return load_dataset("sbm", **GRAPHS[name])


def gnndist_epoch(sampler, loader, x: torch.Tensor, mode: str, epoch: int) -> tuple[float, float]:
    """Wall and CPU seconds of one epoch of sampling (and gathering ``x[input_nodes]`` when mode is 'gather')."""
    start, start_cpu = time.perf_counter(), time.process_time()
    for seeds in loader.batches(epoch):
        batch = sampler.sample(seeds)
        if mode == "gather":
            x.index_select(0, batch.input_nodes)
    return time.perf_counter() - start, time.process_time() - start_cpu


def run_benchmark(
    out_dir: Path,
    *,
    graph_name: str = "sbm",
    fanout_settings: Sequence[Sequence[int]] = ((10, 5), (15, 10)),
    batch_size: int = 1024,
    repeats: int = 5,
    threads: int | None = None,
    sampler_threads: int | None = 1,
    dgl: DGLPython = NO_DGL,
    timeout_s: float = 1800.0,
) -> dict:
    """Measures every (fanouts, mode) for gnndist and, when ``dgl_python`` is ready, DGL; writes JSON + Markdown.

    Args:
        out_dir: where ``sampling.json`` and ``sampling.md`` go.
        graph_name: a key of ``GRAPHS``.
        fanout_settings: fanouts in hop order (the seeds' neighbours first), one list per setting.
        batch_size: seeds per batch.
        repeats: timed epochs per (library, fanouts, mode), after one warm-up epoch; the median counts.
        threads: torch (and DGL OpenMP) threads of both processes; None keeps the libraries' defaults.
        sampler_threads: ``num_threads`` of gnndist's sampler (None: the process setting).
        dgl: the DGL environment (:func:`~gnndist.benchmarks.child.find_dgl_python`); its python None skips DGL.
        timeout_s: bound on one epoch (or the setup) of the DGL child.
    """
    from gnndist.sampling import NeighborSampler, SeedLoader

    if threads is not None:
        torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = load_graph(graph_name)
    train_ids = graph.train_mask.nonzero().flatten()
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory() as tmp:
        child = None
        if dgl.python is not None:
            npz = Path(tmp) / "graph.npz"
            write_graph(graph, npz)
            child = ChildProcess(peer_command(dgl.python, "dgl_minibatch", {"npz": str(npz), "batch_size": batch_size, "threads": threads}), "DGL sampler", timeout_s, threads)
        try:
            for fanouts in fanout_settings:
                fanouts = list(fanouts)
                sampler = NeighborSampler.from_graph(graph, fanouts, seed=0, num_threads=sampler_threads)
                loader = SeedLoader(train_ids, batch_size, seed=0)
                for mode in MODES:
                    ours = Measurement("gnndist", fanouts, mode, num_seeds=train_ids.numel())
                    theirs = Measurement("dgl", fanouts, mode, num_seeds=train_ids.numel())
                    for epoch in range(repeats + 1):  # epoch 0 warms up
                        times = gnndist_epoch(sampler, loader, graph.x, mode, epoch)
                        if epoch:
                            ours.add(times)
                        if child is not None:
                            answer = child.request(mode, fanouts=fanouts, epoch=epoch)
                            if epoch:
                                theirs.add((answer["seconds"], answer["cpu_seconds"]))
                    measurements += [ours] + ([theirs] if child is not None else [])
                    print(_row(ours, theirs if child is not None else None), flush=True)
        finally:
            if child is not None:
                child.close()
    result = {
        "graph": {"name": graph_name, "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "num_train": train_ids.numel(), **GRAPHS[graph_name]},
        "batch_size": batch_size,
        "repeats": repeats,
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "sampler_threads": sampler_threads,
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "machine": platform.machine(),
            "dgl": child.info if child is not None else dgl.note,
        },
        "measurements": [dict(asdict(m), seeds_per_s=m.seeds_per_s, seeds_per_cpu_s=m.seeds_per_cpu_s) for m in measurements],
    }
    table = _markdown(measurements, result)
    write_report(out_dir, "sampling", result, table)
    print(table)
    return result


def _row(ours: Measurement, theirs: Measurement | None) -> str:
    line = f"fanouts={ours.fanouts} {ours.mode:6s} gnndist {ours.seeds_per_s / 1e3:7.1f}k seeds/s ({ours.seeds_per_cpu_s / 1e3:.1f}k/CPU-s)"
    if theirs is not None:
        line += f"  dgl {theirs.seeds_per_s / 1e3:7.1f}k seeds/s ({theirs.seeds_per_cpu_s / 1e3:.1f}k/CPU-s)  ratio {ours.seeds_per_s / theirs.seeds_per_s:.2f}x"
    return line


def _markdown(measurements: list[Measurement], result: dict) -> str:
    by_key = {(m.library, tuple(m.fanouts), m.mode): m for m in measurements}
    env = result["environment"]
    lines = [
        f"# Sampling throughput, graph {result['graph']['name']} ({result['graph']['num_nodes']} nodes, {result['graph']['num_edges']} edges), batch {result['batch_size']}",
        "",
        f"Median of {result['repeats']} epochs over {result['graph']['num_train']} seeds; torch {env['torch']}, {env['threads']} threads "
        f"(gnndist sampler: {env['sampler_threads'] or 'same'}), "
        f"{env['cpus']} CPUs, load average {', '.join(f'{v:.1f}' for v in env['load_average'])}; DGL: {env['dgl']}.",
        "",
        "| fanouts (hop order) | mode | gnndist seeds/s | DGL seeds/s | gnndist / DGL | gnndist seeds/CPU-s | DGL seeds/CPU-s | gnndist / DGL (CPU) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (library, fanouts, mode), ours in by_key.items():
        if library != "gnndist":
            continue
        theirs = by_key.get(("dgl", fanouts, mode))
        cells = [f"{ours.seeds_per_s:,.0f}", f"{theirs.seeds_per_s:,.0f}" if theirs else "n/a", f"{ours.seeds_per_s / theirs.seeds_per_s:.2f}x" if theirs else "n/a"]
        cells += [f"{ours.seeds_per_cpu_s:,.0f}", f"{theirs.seeds_per_cpu_s:,.0f}" if theirs else "n/a", f"{ours.seeds_per_cpu_s / theirs.seeds_per_cpu_s:.2f}x" if theirs else "n/a"]
        lines.append(f"| {list(fanouts)} | {'sampling' if mode == 'sample' else 'sampling + x[input_nodes]'} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.sampling", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output directory for sampling.json and sampling.md")
    parser.add_argument("--graph", default="sbm", choices=sorted(GRAPHS))
    parser.add_argument("--fanouts", nargs="+", default=["10,5", "15,10"], help="fanout settings in hop order, e.g. 10,5 15,10")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch/OpenMP threads for both libraries (default: theirs)")
    parser.add_argument("--sampler-threads", type=int, default=1, help="gnndist sampler's intra-op threads (0: the process setting)")
    parser.add_argument("--dgl-python", type=Path, help=f"python of the DGL environment (default: ${DGL_PYTHON_ENV}; neither: DGL is skipped)")
    parser.add_argument("--no-dgl", action="store_true", help="measure gnndist only")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("--out is required")
    fanout_settings = [[int(v) for v in setting.split(",")] for setting in args.fanouts]
    run_benchmark(
        args.out,
        graph_name=args.graph,
        fanout_settings=fanout_settings,
        batch_size=args.batch_size,
        repeats=args.repeats,
        threads=args.threads,
        sampler_threads=args.sampler_threads or None,
        dgl=find_dgl_python(args.dgl_python, disabled=args.no_dgl),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
