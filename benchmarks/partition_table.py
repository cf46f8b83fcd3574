"""Partition quality table: every registered partitioner on SBM, RMAT and real Cora, for 2/4/8 parts.

Measures edge cut, node/edge/train balance, replication factor, time and peak memory, and writes
``partition_table.json`` and ``partition_table.md`` to ``--out``::

    python -m gnndist.benchmarks.partition_table --out runs/partition-table           # full (minutes)
    python -m gnndist.benchmarks.partition_table --out runs/pt-quick --quick          # seconds
    python -m gnndist.benchmarks.partition_table --out runs/pt-large --graphs rmat-large --methods metis ldg fennel --parts 4

Each partitioner runs once on a tiny graph first (numba compilation, library loading) so timings
measure partitioning only. Peak memory is the process's resident high-water mark during the call
(graph included). Cora needs ``--planetoid-root DIR`` (the raw ``ind.cora.*`` files); without it
Cora is skipped and the report says so.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gnndist.benchmarks.report import write_report
from gnndist.memory import peak_resident_bytes


@dataclass(frozen=True)
class GraphSpec:
    """A benchmark graph: a dataset spec and its loader options."""

    dataset: str
    options: dict[str, Any]
    description: str


def graph_specs(planetoid_root: Path | None) -> dict[str, dict[str, GraphSpec]]:
    """Graphs by suite (``full``, ``quick``) and by name; ``rmat-large`` is opt-in in either suite."""
    cora = GraphSpec("planetoid:cora", {"root": str(planetoid_root) if planetoid_root else None}, "real Cora (2,708 nodes, 10,556 edges)")
    large = GraphSpec("rmat", {"scale": 21, "edge_factor": 10.0, "feature_dim": 16, "seed": 0}, "RMAT 2M nodes, ~40M edges")
    return {
        "full": {
            "sbm": GraphSpec("sbm", {"num_nodes": 200_000, "num_classes": 16, "avg_degree": 20.0, "feature_dim": 128, "seed": 0}, "degree-corrected SBM, 200k nodes, ~4M edges"),
            "rmat": GraphSpec("rmat", {"scale": 18, "edge_factor": 8.0, "seed": 0}, "RMAT power-law, 262k nodes, ~3.9M edges"),
            "cora": cora,
            "rmat-large": large,
        },
        "quick": {
            "sbm": GraphSpec("sbm", {"num_nodes": 5_000, "num_classes": 8, "avg_degree": 10.0, "feature_dim": 16, "seed": 0}, "SBM 5k nodes"),
            "rmat": GraphSpec("rmat", {"scale": 12, "edge_factor": 8.0, "feature_dim": 16, "seed": 0}, "RMAT 4k nodes"),
            "cora": cora,
            "rmat-large": large,
        },
    }


def warm_up(methods: list[str]) -> dict[str, str]:
    """Runs every partitioner once on a tiny graph; returns the methods that cannot run, with the reason."""
    import torch

    from gnndist.graph import Graph
    from gnndist.partitioners import resolve_partitioner

    src = torch.arange(64)
    tiny = Graph.from_edge_index(torch.stack([src, (src * 7 + 3) % 64]), 64).to_undirected()
    unavailable = {}
    for method in methods:
        try:
            resolve_partitioner(method).partition(tiny, 2)
        except ImportError as error:
            unavailable[method] = str(error)
    return unavailable


def measure(graph, graph_name: str, method: str, num_parts: int, seed: int) -> dict[str, Any]:
    """One partitioning and its quality report as a flat row."""
    from gnndist.partition import QualityReport
    from gnndist.partitioners import resolve_partitioner

    result = resolve_partitioner(method).partition(graph, num_parts, seed=seed)
    report = QualityReport.compute(graph, result)
    return {
        "graph": graph_name,
        "method": method,
        "num_parts": num_parts,
        "edges_cut": report.edges_cut,
        "edge_cut_fraction": report.edge_cut_fraction,
        "undirected_edges_cut": report.undirected_edges_cut,
        "node_balance": report.node_balance,
        "edge_balance": report.edge_balance,
        "train_balance": report.train_balance,
        "replication_factor": report.replication_factor,
        "vertex_cut_replication_factor": report.vertex_cut_replication_factor,
        "halo_nodes_max": max(report.halo_nodes),
        "time_s": report.partition_time_s,
        "peak_memory_bytes": report.peak_memory_bytes,
        "memory_increase_bytes": report.memory_increase_bytes,
        "options": result.options,
    }


def checks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's reference points, computed from the rows that exist."""
    def row(graph: str, method: str, parts: int) -> dict[str, Any] | None:
        return next((r for r in rows if (r["graph"], r["method"], r["num_parts"]) == (graph, method, parts) and "error" not in r), None)

    out: dict[str, Any] = {}
    cora = {m: row("cora", m, 4) for m in ("metis", "kahip", "kaminpar")}
    if any(cora.values()):
        out["cora_4_parts_undirected_cut"] = {m: r["undirected_edges_cut"] for m, r in cora.items() if r}
        out["cora_4_parts_node_balance"] = {m: round(r["node_balance"], 4) for m, r in cora.items() if r}
    for graph in ("rmat", "sbm", "rmat-large"):
        metis = row(graph, "metis", 4)
        if metis is None:
            continue
        for method in ("ldg", "fennel"):
            other = row(graph, method, 4)
            if other:
                out[f"{graph}_4_parts_{method}_vs_metis"] = {
                    "speedup": round(metis["time_s"] / other["time_s"], 2),
                    "cut_ratio": round(other["edge_cut_fraction"] / metis["edge_cut_fraction"], 3),
                    "node_balance": round(other["node_balance"], 4),
                    "edge_balance": round(other["edge_balance"], 3),
                    "metis_edge_balance": round(metis["edge_balance"], 3),
                }
    large = [r for r in rows if r["graph"] == "rmat-large" and "error" not in r]
    if large:
        out["rmat_large_peak_memory_gib"] = {f"{r['method']}-{r['num_parts']}": round(r["peak_memory_bytes"] / 2**30, 2) for r in large}
    return out


def markdown(payload: dict[str, Any]) -> str:
    """The results as Markdown: one table per graph, then the reference checks."""
    lines = ["# Partition quality", "", f"Machine: {payload['environment']['cpus']} CPUs, load average at start {payload['environment']['load_average']}; "
             "timings are single runs and noisy on a shared machine.", ""]
    for name, info in payload["graphs"].items():
        lines += [f"## {name}: {info['description']}", "", f"{info['num_nodes']:,} nodes, {info['num_edges']:,} directed edges, loaded in {info['load_s']:.1f} s.", ""]
        lines += ["| parts | method | cut % | cut (undirected) | node bal. | edge bal. | train bal. | replication | time s | peak mem GiB | +mem GiB |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in (r for r in payload["rows"] if r["graph"] == name):
            if "error" in r:
                lines.append(f"| {r['num_parts']} | {r['method']} | error: {r['error']} ||||||||| ")
                continue
            train = "-" if r["train_balance"] is None else f"{r['train_balance']:.3f}"
            replication = f"{r['replication_factor']:.3f}" + ("" if r["vertex_cut_replication_factor"] is None else f" (vc {r['vertex_cut_replication_factor']:.2f})")
            lines.append(
                f"| {r['num_parts']} | {r['method']} | {100 * r['edge_cut_fraction']:.2f} | {r['undirected_edges_cut']:,} | {r['node_balance']:.3f} | {r['edge_balance']:.3f} | {train} | "
                f"{replication} | {r['time_s']:.2f} | {r['peak_memory_bytes'] / 2**30:.2f} | {r['memory_increase_bytes'] / 2**30:.2f} |"
            )
        lines.append("")
    if payload["unavailable"]:
        lines += ["## Unavailable partitioners", ""] + [f"- {m}: {reason}" for m, reason in payload["unavailable"].items()] + [""]
    if payload["skipped"]:
        lines += ["## Skipped graphs", ""] + [f"- {name}: {reason}" for name, reason in payload["skipped"].items()] + [""]
    lines += ["## Reference checks", "", "```json", json.dumps(payload["checks"], indent=2), "```", ""]
    return "\n".join(lines)


def run_benchmark(out: Path, *, suite: str, graphs: list[str], methods: list[str] | None, parts: list[int], seed: int,
                  planetoid_root: Path | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Runs the table and writes ``partition_table.json`` and ``partition_table.md`` into ``out``."""
    from gnndist.data import load_dataset
    from gnndist.partitioners import available_partitioners

    specs = graph_specs(planetoid_root)[suite]
    unknown = sorted(set(graphs) - set(specs))
    if unknown:
        raise ValueError(f"Unknown benchmark graph(s) {unknown}; available: {', '.join(specs)}")
    methods = methods or available_partitioners()
    unavailable = warm_up(methods)
    runnable = [m for m in methods if m not in unavailable]
    payload: dict[str, Any] = {
        "suite": suite,
        "seed": seed,
        "environment": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "graphs": {},
        "rows": [],
        "unavailable": unavailable,
        "skipped": {},
    }
    out.mkdir(parents=True, exist_ok=True)
    for name in graphs:
        spec = specs[name]
        if spec.dataset.startswith("planetoid:") and planetoid_root is None:
            payload["skipped"][name] = "no Planetoid folder given (pass --planetoid-root DIR with the raw ind.* files)"
            log(f"skipped {name}: {payload['skipped'][name]}")
            continue
        log(f"loading {name}: {spec.description}")
        start = time.perf_counter()
        graph = load_dataset(spec.dataset, **spec.options)
        payload["graphs"][name] = {"description": spec.description, "dataset": spec.dataset, "options": spec.options,
                                   "num_nodes": graph.num_nodes, "num_edges": graph.num_edges, "load_s": time.perf_counter() - start}
        for num_parts in parts:
            for method in runnable:
                log(f"  {name} {num_parts} parts {method} ...")
                try:
                    row = measure(graph, name, method, num_parts, seed)
                    log(f"    cut {100 * row['edge_cut_fraction']:.2f} %, node balance {row['node_balance']:.3f}, edge balance {row['edge_balance']:.3f}, "
                        f"{row['time_s']:.2f} s, peak {row['peak_memory_bytes'] / 2**30:.2f} GiB")
                except (ValueError, RuntimeError, MemoryError) as error:
                    row = {"graph": name, "method": method, "num_parts": num_parts, "error": f"{type(error).__name__}: {error}"}
                    log(f"    failed: {row['error']}")
                payload["rows"].append(row)
                _write(out, payload)
        del graph
    payload["process_peak_memory_bytes"] = peak_resident_bytes()
    _write(out, payload)
    return payload


def _write(out: Path, payload: dict[str, Any]) -> None:
    payload["checks"] = checks(payload["rows"])
    write_report(out, "partition_table", payload, markdown(payload))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gnndist.benchmarks.partition_table", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory for partition_table.json and .md")
    parser.add_argument("--quick", action="store_true", help="small graphs and 2/4 parts (seconds)")
    parser.add_argument("--graphs", nargs="+", metavar="NAME", help="sbm, rmat, cora, rmat-large (default: sbm rmat cora)")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help="partitioners (default: every registered one)")
    parser.add_argument("--parts", nargs="+", type=int, help="part counts (default: 2 4 8; quick: 2 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--planetoid-root", type=Path, help="folder of the raw Planetoid files (without it, Cora is skipped)")
    args = parser.parse_args(argv)
    payload = run_benchmark(
        args.out,
        suite="quick" if args.quick else "full",
        graphs=args.graphs or ["sbm", "rmat", "cora"],
        methods=args.methods,
        parts=args.parts or ([2, 4] if args.quick else [2, 4, 8]),
        seed=args.seed,
        planetoid_root=args.planetoid_root,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    print(json.dumps(payload["checks"], indent=2))
    print(f"wrote {args.out / 'partition_table.md'} and {args.out / 'partition_table.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
