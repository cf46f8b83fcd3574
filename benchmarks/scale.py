"""Scale: the memory of every process when no process holds the whole graph, against one process that does.

``gnndist bench scale --out DIR [--quick] [--graphs sbm rmat] [--nodes N] [--parts 4] [--epochs 2] [--balance ...]`` writes each
graph as a chunked folder (``gnndist convert``, streamed), partitions it into P parts with the parallel
partitioner (Ray tasks) and with METIS (in memory, in one Ray task), then trains on it: one process
(``mode=single``, the baseline that holds everything), full-graph (P workers, ``sync``) and mini-batch (P workers)
from the parallel partition (mini-batch workers keep ``SHARED_MEMORY_MB`` of other parts' shared rows mapped). Both partitioners balance what ``BALANCE`` names per graph (``--balance`` for all):
nodes on sbm; nodes and edges, two constraints, on rmat, where node balance piles most edges (and with them most
of a full-graph worker's memory) into one part. Every step is its own ``gnndist`` command in a child process, so each peak is that
process's own: the child's peak RSS from ``wait4`` (convert, partition drivers) and the run's ``summary.json``
``memory`` section (driver, every worker, every store, the partitioning tasks).

Reported per graph, side by side: every process's peak RSS and its ratio to the single-process peak, partition
time (the whole command, and the assignment alone: ``meta.json``'s ``partition_time_s``, which leaves out Ray's
start and the part files both methods build alike) and edge cut of both partitioners and their ratios, epoch times. Targets (issue 11): driver <= 10 % and every
worker <= 40 % of the single-process peak at P=4; the parallel partitioner's edge cut <= 1.3x METIS's on sbm and
<= 1.5x on rmat, at >= 3x METIS's speed. Writes ``scale.json`` and ``scale.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from gnndist.benchmarks.report import write_report

# Same size as the measurement: 2M nodes, ~41M directed edges, 128 features.
GRAPHS = {
    "sbm": dict(num_nodes=2_000_000, avg_degree=20.5, num_classes=16, feature_dim=128, seed=0),
    "rmat": dict(scale=21, edge_factor=10.0, num_classes=16, feature_dim=128, seed=0),
}
QUICK = {
    "sbm": dict(num_nodes=20_000, avg_degree=10, num_classes=8, feature_dim=32, seed=0),
    "rmat": dict(scale=14, edge_factor=5.0, num_classes=8, feature_dim=32, seed=0),
}
BALANCE = {"sbm": ("nodes",), "rmat": ("nodes", "edges")}
TARGETS = {"driver": 0.10, "worker": 0.40, "cut": {"sbm": 1.3, "rmat": 1.5}, "speed": 3.0}
SHARED_MEMORY_MB = 256  # cache.shared_memory_mb of the mini-batch run: MiB of other parts' shared rows a worker keeps mapped


@dataclass(frozen=True)
class Step:
    """One ``gnndist`` command run as a child: its exit code, wall time, peak RSS and output tail."""

    returncode: int
    seconds: float
    peak_bytes: int
    output: str


def run_child(args: Sequence[str], log: Callable[[str], None], timeout_s: float) -> Step:
    """Runs ``gnndist ARGS`` as a child process; its output goes to a file, its peak RSS comes from ``wait4``."""
    command = [sys.executable, "-m", "gnndist.launch.cli", *args]
    log("$ gnndist " + " ".join(args))
    start = time.perf_counter()
    with open(os.devnull, "rb") as stdin, subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
        output = _read_until(child, timeout_s)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    return Step(child.returncode, time.perf_counter() - start, usage.ru_maxrss * 1024, output[-4000:])


def _read_until(child: subprocess.Popen, timeout_s: float) -> str:
    """The child's output until it closes it, or until ``timeout_s`` (then the child is killed)."""
    import threading

    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: child.stdout.read(1 << 16), b"")), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if reader.is_alive():
        child.kill()
        reader.join(30)
        chunks.append(f"\n(killed after {timeout_s:.0f} s)".encode())
    return b"".join(chunks).decode(errors="replace")


def _quality(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "meta.json").read_text())["quality"]


def _train(name: str, chunks: Path, work: Path, overrides: Sequence[str], log: Callable[[str], None], timeout_s: float) -> dict[str, Any]:
    """One ``gnndist train`` on the chunked graph; its summary's timing and memory (or the error).

    The run's folder is removed first instead of passing ``--force``, which would also re-partition the graph
    rather than reuse the partition the benchmark measured.
    """
    out = work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    step = run_child(["train", f"dataset.name=chunked:{chunks}", f"output.dir={out}", "--no-progress", *overrides], log, timeout_s)
    if step.returncode != 0:
        return {"error": f"exit {step.returncode}", "output": step.output}
    summary = json.loads((out / "summary.json").read_text())
    memory = summary["memory"]
    return {
        "seconds": step.seconds,
        "median_epoch_s": summary["timing"]["median_epoch_s"],
        "test_acc": summary["final"].get("test_acc"),
        "driver_peak_bytes": max(memory["driver_peak_bytes"], step.peak_bytes),
        "worker_peak_bytes": memory.get("worker_peak_bytes") or [],
        "store_peak_bytes": memory.get("store_peak_bytes") or [],
        "partition_task_peak_bytes": memory.get("partition_task_peak_bytes"),
    }


def _partition(method: str, chunks: Path, target: Path, parts: int, balance: Sequence[str], log: Callable[[str], None], timeout_s: float) -> dict[str, Any]:
    """``gnndist partition`` of the chunked graph balancing ``balance``; wall time, the driver's peak, edge cut and balance."""
    step = run_child(["partition", f"chunked:{chunks}", "--method", method, "--parts", str(parts), "--out", str(target), "--force", "-o", f"balance=[{','.join(balance)}]"], log, timeout_s)
    if step.returncode != 0:
        return {"error": f"exit {step.returncode}", "output": step.output}
    quality = _quality(target)
    return {
        "seconds": step.seconds,
        "assign_seconds": quality.get("partition_time_s"),
        "driver_peak_bytes": step.peak_bytes,
        "task_peak_bytes": quality.get("partition_task_peak_bytes"),
        "edge_cut_fraction": quality["edge_cut_fraction"],
        "node_balance": quality["node_balance"],
        "edge_balance": quality["edge_balance"],
    }


def run_graph(graph: str, options: dict[str, Any], work: Path, *, parts: int, epochs: int, balance: Sequence[str], timeout_s: float, log: Callable[[str], None]) -> dict[str, Any]:
    """Every step on one graph; returns its row."""
    chunks = work / f"{graph}-chunks"
    step = run_child(["convert", graph, str(chunks), "--force", "--no-progress", *(f"dataset.{k}={v}" for k, v in options.items())], log, timeout_s)
    if step.returncode != 0:
        return {"graph": graph, "options": options, "error": f"convert failed (exit {step.returncode})", "output": step.output}
    meta = json.loads((chunks / "meta.json").read_text())
    row: dict[str, Any] = {"graph": graph, "options": options, "balance": list(balance), "num_nodes": meta["num_nodes"], "num_edges": meta["num_edges"], "convert": {"seconds": step.seconds, "peak_bytes": step.peak_bytes}}
    row["partition"] = {method: _partition(method, chunks, work / f"{graph}-{method}-p{parts}", parts, balance, log, timeout_s) for method in ("parallel", "metis")}
    train = [f"train.epochs={epochs}", "train.eval_every=1000", "model.name=sage", "model.hidden=64", "cluster.timeout_s=1800"]
    # a run bound by memory: workers hand freed memory back to the OS (cluster.release_memory) and mini-batch workers
    # keep few of the other parts' shared pages mapped (cache.shared_memory_mb), as this benchmark measures memory
    partitioned = [
        f"partition.parts={parts}", "partition.method=parallel", f"partition.options={{balance: [{', '.join(balance)}]}}",
        f"partition.dir={work / f'{graph}-parallel-p{parts}'}", "cluster.release_memory=true",
    ]
    row["train"] = {
        "single": _train(f"{graph}-single", chunks, work, ["mode=single", *train], log, timeout_s),
        "fullgraph": _train(f"{graph}-fullgraph", chunks, work, ["mode=fullgraph", "comm.strategy=sync", *train, *partitioned], log, timeout_s),
        "minibatch": _train(f"{graph}-minibatch", chunks, work, ["mode=minibatch", f"cache.shared_memory_mb={SHARED_MEMORY_MB}", *train, *partitioned], log, timeout_s),
    }
    row["ratios"] = _ratios(graph, row)
    return row


def _ratios(graph: str, row: dict[str, Any]) -> dict[str, Any]:
    """Peaks against the single-process peak; the parallel partitioner against METIS; each with its target."""
    ratios: dict[str, Any] = {}
    single = row["train"]["single"].get("driver_peak_bytes")
    if single:
        for mode in ("fullgraph", "minibatch"):
            run = row["train"][mode]
            if "error" in run:
                continue
            ratios[f"{mode}_driver"] = run["driver_peak_bytes"] / single
            ratios[f"{mode}_worker_max"] = max(run["worker_peak_bytes"]) / single
            if run["store_peak_bytes"]:
                ratios[f"{mode}_store_max"] = max(run["store_peak_bytes"]) / single
    parallel, metis = row["partition"]["parallel"], row["partition"]["metis"]
    if "error" not in parallel and "error" not in metis:
        ratios["cut_parallel_over_metis"] = parallel["edge_cut_fraction"] / metis["edge_cut_fraction"] if metis["edge_cut_fraction"] else None
        ratios["speed_parallel_over_metis"] = metis["seconds"] / parallel["seconds"]
        if parallel.get("assign_seconds") and metis.get("assign_seconds"):
            ratios["assign_speed_parallel_over_metis"] = metis["assign_seconds"] / parallel["assign_seconds"]
    checks = {
        "driver": all(ratios.get(f"{m}_driver", 1) <= TARGETS["driver"] for m in ("fullgraph", "minibatch")),
        "worker": all(ratios.get(f"{m}_worker_max", 1) <= TARGETS["worker"] for m in ("fullgraph", "minibatch")),
        "cut": (ratios.get("cut_parallel_over_metis") or 99) <= TARGETS["cut"].get(graph, 1.3),
        "speed": ratios.get("speed_parallel_over_metis", 0) >= TARGETS["speed"],
    }
    return {**ratios, "targets_met": checks}


def _gib(value: int | None) -> str:
    return "-" if not value else f"{value / 2**30:.2f}"


def _markdown(result: dict[str, Any]) -> str:
    lines = [f"# gnndist bench scale ({result['parts']} parts, {result['epochs']} epochs; {result['machine']})", ""]
    lines += [f"Distributed runs hand freed memory back (`cluster.release_memory=true`); mini-batch workers keep {result['shared_memory_mb']} MiB of other parts' shared rows mapped (`cache.shared_memory_mb`).", ""]
    for row in result["rows"]:
        if "error" in row:
            lines += [f"## {row['graph']}: {row['error']}", "", "```", row.get("output", ""), "```", ""]
            continue
        train, parts, ratios = row["train"], row["partition"], row["ratios"]
        single = train["single"].get("driver_peak_bytes")
        lines += [f"## {row['graph']}: {row['num_nodes']:,} nodes, {row['num_edges']:,} edges; partitions balance {' and '.join(row['balance'])}", ""]
        lines += ["| process | peak RSS (GiB) | / single-process peak |", "|---|---:|---:|"]
        lines.append(f"| convert (streamed) | {_gib(row['convert']['peak_bytes'])} | {row['convert']['peak_bytes'] / single:.2f} |" if single else f"| convert | {_gib(row['convert']['peak_bytes'])} | - |")
        for method, part in parts.items():
            if "error" not in part:
                share = f"{part['driver_peak_bytes'] / single:.2f} / {(part['task_peak_bytes'] or 0) / single:.2f}" if single else "-"
                lines.append(f"| partition {method}: driver / largest task | {_gib(part['driver_peak_bytes'])} / {_gib(part['task_peak_bytes'])} | {share} |")
        for mode, run in train.items():
            if "error" in run:
                lines.append(f"| {mode} | {run['error']} | |")
                continue
            lines.append(f"| {mode} driver | {_gib(run['driver_peak_bytes'])} | {run['driver_peak_bytes'] / single:.2f} |" if single else f"| {mode} driver | {_gib(run['driver_peak_bytes'])} | - |")
            for kind in ("worker", "store"):
                peaks = [p for p in run[f"{kind}_peak_bytes"] if p]
                if peaks and single:
                    lines.append(f"| {mode} {kind}s (max of {len(peaks)}) | {_gib(max(peaks))} | {max(peaks) / single:.2f} |")
        lines += ["", "| partitioner | command (s) | assignment (s) | edge cut | node balance | edge balance |", "|---|---:|---:|---:|---:|---:|"]
        for method, part in parts.items():
            assign = f"{part['assign_seconds']:.1f}" if part.get("assign_seconds") else "-"
            lines.append(f"| {method} | " + (part["error"] + " | | | | |" if "error" in part else f"{part['seconds']:.1f} | {assign} | {100 * part['edge_cut_fraction']:.1f} % | {part['node_balance']:.3f} | {part['edge_balance']:.3f} |"))
        if "cut_parallel_over_metis" in ratios:
            assign_speed = f", assignment alone {ratios['assign_speed_parallel_over_metis']:.2f}x" if "assign_speed_parallel_over_metis" in ratios else ""
            lines.append(f"\nparallel / METIS: edge cut {ratios['cut_parallel_over_metis']:.2f}x, speed {ratios['speed_parallel_over_metis']:.2f}x (whole command){assign_speed}")
        epochs = ", ".join(f"{mode} {run['median_epoch_s']:.2f} s" for mode, run in train.items() if "error" not in run)
        lines += [f"\nmedian epoch: {epochs}", f"\ntargets met: {ratios['targets_met']}", ""]
    return "\n".join(lines)


def run_benchmark(out: Path, *, graphs: Sequence[str], quick: bool, num_nodes: int | None, parts: int, epochs: int, timeout_s: float,
                  balance: Sequence[str] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs every graph; writes ``scale.json`` and ``scale.md`` into ``out``; returns the result.

    ``balance``: what both partitioners balance on every graph (default: ``BALANCE``'s choice per graph)."""
    import platform

    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    rows = []
    for graph in graphs:
        options = dict((QUICK if quick else GRAPHS)[graph])
        if num_nodes is not None:
            if graph == "sbm":
                options["num_nodes"] = num_nodes
            else:
                options["scale"] = max(1, round(num_nodes).bit_length() - 1)
        rows.append(run_graph(graph, options, work, parts=parts, epochs=epochs, balance=balance or BALANCE[graph], timeout_s=timeout_s, log=log))
    result = {"parts": parts, "epochs": epochs, "machine": f"{os.cpu_count()} cores, {platform.machine()}", "targets": TARGETS, "shared_memory_mb": SHARED_MEMORY_MB, "rows": rows}
    markdown = _markdown(result)
    write_report(out, "scale", result, markdown)
    log(markdown)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gnndist bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder (scale.json, scale.md, work/ with the chunked graphs, partitions and runs)")
    parser.add_argument("--graphs", nargs="+", choices=sorted(GRAPHS), default=sorted(GRAPHS), help="graphs (default: rmat sbm)")
    parser.add_argument("--quick", action="store_true", help="20k-node graphs (a smoke run)")
    parser.add_argument("--nodes", type=int, help="nodes (sbm) / 2^scale (rmat) instead of the default 2M")
    parser.add_argument("--parts", type=int, default=4, help="parts = workers (default 4)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per run (default 2)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="bound on each step, seconds (default 3600)")
    parser.add_argument("--balance", nargs="+", choices=["nodes", "edges"], help="what both partitioners balance on every graph (default: nodes on sbm, nodes and edges on rmat)")
    args = parser.parse_args(argv)
    if args.parts < 1 or args.epochs < 1:
        parser.error("--parts and --epochs must be >= 1")
    result = run_benchmark(args.out, graphs=args.graphs, quick=args.quick, num_nodes=args.nodes, parts=args.parts, epochs=args.epochs, timeout_s=args.timeout, balance=args.balance, log=lambda line: print(line, flush=True))
    return 1 if any("error" in row or any("error" in run for run in row["train"].values()) for row in result["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
