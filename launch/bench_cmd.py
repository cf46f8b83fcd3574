"""``gnndist bench <benchmark>``: the benchmark subcommands; one entry in ``BENCHMARKS`` adds one.

The argparse namespace stops here: each benchmark turns it into its own typed config.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence


@dataclass(frozen=True)
class BenchCommand:
    """A ``gnndist bench`` subcommand: its help line, its flags, and what runs it (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    own_help: bool = False  # the benchmark's module answers --help itself


def _add_aggregation_arguments(parser: argparse.ArgumentParser) -> None:
    # No imports of torch here: `gnndist --help` stays fast; names are checked when the config is built.
    parser.add_argument("--suite", default="quick", help="quick: small graphs, one thread, for CI; full: the 4M-edge graphs and all sweeps (default: quick)")
    parser.add_argument("--graphs", nargs="+", metavar="NAME", help="graph names or families of the suite to run (default: all)")
    parser.add_argument("--widths", nargs="+", type=int, metavar="F", help="feature widths (default: the suite's)")
    parser.add_argument("--reducers", nargs="+", metavar="R", help="sum, mean, max (default: the suite's)")
    parser.add_argument("--abstractions", nargs="+", metavar="NAME", help="aggregation backends to measure (default: all registered)")
    parser.add_argument("--devices", nargs="+", default=["cpu"], metavar="DEV", help="cpu and/or cuda[:N] (default: cpu)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (default: the suite's)")
    parser.add_argument("--warmup", type=int, help="warm-up runs per measurement (default: 1)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="stop repeating a measurement after this long, keeping >= 3 runs (default: 20)")
    parser.add_argument("--memory-budget-gb", type=float, help="skip message-materialising backends above this (default: 40%% of free memory)")
    parser.add_argument("--planetoid-root", type=Path, help="folder of the raw Planetoid files (ind.cora.x, ...); without it the Planetoid graphs are skipped")
    parser.add_argument("--probe-mib", type=int, help="buffer size of the bandwidth probe in MiB (default: 256 on CPU, 2048 on GPU)")
    parser.add_argument("--workers", type=int, default=1, help="run the suite in N Ray actors at once: one per GPU, or per share of the CPU cores (default: 1, no Ray)")
    parser.add_argument("--scaling", nargs="+", type=int, metavar="N", help="also run the distributed benchmark (partitioned graph, halo exchange + local aggregation) with these worker counts")
    parser.add_argument("--partitioner", default="metis", help="partitioner of the distributed benchmark (default: metis)")
    parser.add_argument("--out", type=Path, help="output directory (default: runs/bench-aggregation-<suite>)")
    parser.add_argument("--save-selection", type=Path, metavar="FILE", help="also write the measured ranking to FILE; train with aggregation.selection=FILE to make aggregation=auto follow it")


def _run_aggregation(args: argparse.Namespace) -> int:
    from gnndist.benchmarks.aggregation import AggregationBenchConfig, run_benchmark

    tuple_or_none = lambda values: tuple(values) if values is not None else None  # noqa: E731
    config = AggregationBenchConfig(
        suite=args.suite,
        out=args.out or Path(f"runs/bench-aggregation-{args.suite}"),
        graphs=tuple_or_none(args.graphs),
        widths=tuple_or_none(args.widths),
        reducers=tuple_or_none(args.reducers),
        abstractions=tuple_or_none(args.abstractions),
        devices=tuple(args.devices),
        repeats=args.repeats,
        warmup=args.warmup,
        threads=args.threads,
        max_seconds=args.max_seconds,
        memory_budget_bytes=int(args.memory_budget_gb * 2**30) if args.memory_budget_gb else None,
        planetoid_root=args.planetoid_root,
        probe_mib=args.probe_mib,
        workers=args.workers,
        scaling=tuple_or_none(args.scaling),
        partitioner=args.partitioner,
        save_selection=args.save_selection,
    )
    try:
        config.validate()
    except (ValueError, KeyError) as error:
        print(f"error: {error.args[0] if error.args else error}", file=sys.stderr)
        return 2
    result = run_benchmark(config, log=lambda line: print(line, flush=True))
    print(f"wrote {len(result.files)} files to {result.out} in {result.seconds:.0f} s:")
    for name, path in result.files.items():
        print(f"  {name}: {path}")
    for row in result.problems:
        print(f"{row.status}: {row.abstraction} on {row.graph} F={row.width} reduce={row.reduce} ({row.device}): {row.reason}", file=sys.stderr)
    return 0 if result.ok else 1


def _module_command(module: str, help: str) -> BenchCommand:
    """A benchmark whose module parses its own flags: ``gnndist bench NAME ARGS`` is ``python -m MODULE ARGS``."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.set_defaults(passthrough=True)  # the CLI hands every further flag to the module

    def run(args: argparse.Namespace) -> int:
        return importlib.import_module(module).main(args.passthrough)

    return BenchCommand(help, add_arguments, run, own_help=True)


BENCHMARKS: dict[str, BenchCommand] = {
    "aggregation": BenchCommand("aggregation kernels: correctness, time, bandwidth, fastest per graph class", _add_aggregation_arguments, _run_aggregation),
    "partition": _module_command("gnndist.benchmarks.partition_table", "every partitioner on sbm, rmat and Cora: edge cut, balance, time, memory"),
    "sampling": _module_command("gnndist.benchmarks.sampling", "neighbour sampling throughput against DGL"),
    "fullgraph": _module_command("gnndist.benchmarks.fullgraph", "full-graph training end to end: P parts x strategies against PyG and DGL (--devices cpu cuda)"),
    "minibatch": _module_command("gnndist.benchmarks.minibatch", "mini-batch training end to end: workers x cache policies against DGL and PyG (--devices cpu cuda)"),
    "link": _module_command("gnndist.benchmarks.link", "link-prediction mini-batch training: gnndist (1, 2 workers) against DGL's edge-prediction sampler, edges/s"),
    "hetero": _module_command("gnndist.benchmarks.hetero", "heterogeneous training on a ~1M-node hsbm: gnndist rgcn (job interface) against DGL's heterogeneous sampler + HeteroGraphConv R-GCN, seeds/s"),
    "scale": _module_command("gnndist.benchmarks.scale", "no process holds the whole graph: chunked sbm/rmat, parallel partitioner vs METIS, peak RSS of every process vs one process"),
    "plan": _module_command("gnndist.benchmarks.plan_validate", "planner validation: gnndist train at P = 1, 2, 4 (full-graph sync, stale, mini-batch) against gnndist plan's predictions"),
    "distdgl": _module_command("gnndist.benchmarks.distdgl", "DistDGL head to head: 2 parts, DGL's servers and trainers on 127.0.0.1 against gnndist on Ray"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds ``bench`` with one sub-subcommand per entry of ``BENCHMARKS``."""
    bench = subparsers.add_parser("bench", help="run a benchmark", description="Benchmarks: " + ", ".join(BENCHMARKS))
    benchmarks = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, command in BENCHMARKS.items():
        command.add_arguments(benchmarks.add_parser(name, help=command.help, description=command.help, add_help=not command.own_help))
    return bench


def run(args: argparse.Namespace) -> int:
    """Runs the benchmark ``args.benchmark``; returns the process exit code."""
    return BENCHMARKS[args.benchmark].run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gnndist.launch.bench_cmd aggregation ...`` (the same as ``gnndist bench aggregation ...``)."""
    from gnndist.launch.cli import main as cli_main

    return cli_main(["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
