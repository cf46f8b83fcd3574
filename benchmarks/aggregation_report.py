"""The aggregation benchmark's results: rankings per graph class, the selection table, CSV, JSON and Markdown."""
from __future__ import annotations

import csv
import io
import json
import math
import platform
from dataclasses import asdict, fields
from pathlib import Path
from typing import Callable, Sequence

import psutil
import torch

import gnndist
from gnndist.aggregation import REDUCERS
from gnndist.aggregation.selection import SelectionTable
from gnndist.benchmarks.aggregation_distributed import aggregate_devices
from gnndist.benchmarks.aggregation_grid import AggregationBenchConfig, resolve_suite
from gnndist.benchmarks.aggregation_measure import DeviceReport, Measurement
from gnndist.benchmarks.report import write_text

MISSING_PENALTY = 10.0  # an abstraction that could not run a case counts as this many times the fastest


def rank_abstractions(rows: Sequence[Measurement], key: Callable[[Measurement], str], metric: str = "fwd_bwd_median_s") -> dict[tuple[str, str, str], list[tuple[str, float]]]:
    """Ranks abstractions per (device, group, reduce) by geometric-mean slowdown against the fastest of each case.

    A case is one (graph, width); an abstraction that did not run a case (skipped, mismatch, error)
    counts as ``MISSING_PENALTY`` times the fastest there. Returns ``[(name, slowdown), ...]`` fastest first.
    """
    cases: dict[tuple[str, str, str], dict[tuple[str, int], dict[str, float]]] = {}
    names: dict[tuple[str, str, str], set[str]] = {}
    for row in rows:
        group = (row.device, key(row), row.reduce)
        names.setdefault(group, set()).add(row.abstraction)
        if row.status == "ok" and getattr(row, metric) is not None:
            cases.setdefault(group, {}).setdefault((row.graph, row.width), {})[row.abstraction] = getattr(row, metric)
    ranking = {}
    for group, per_case in cases.items():
        scores = {}
        for name in names[group]:
            ran = [times for times in per_case.values() if name in times]
            if not ran:
                continue
            logs = [math.log(times[name] / min(times.values())) if name in times else math.log(MISSING_PENALTY) for times in per_case.values()]
            scores[name] = math.exp(sum(logs) / len(logs))
        ranking[group] = sorted(scores.items(), key=lambda item: item[1])
    return ranking


def selection_table(rows: Sequence[Measurement]) -> SelectionTable:
    """The measured ranking per device, graph class and reducer, as ``aggregation="auto"`` reads it."""
    rankings: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (device, graph_class, reduce), ranked in rank_abstractions(rows, lambda row: row.graph_class).items():
        rankings.setdefault(torch.device(device).type, {}).setdefault(graph_class, {})[reduce] = [name for name, _ in ranked]
    return SelectionTable(rankings)


def environment_info(config: AggregationBenchConfig, reports: Sequence[DeviceReport]) -> dict:
    return {
        "gnndist": gnndist.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": psutil.cpu_count(logical=True),
        "suite": resolve_suite(config.suite).name,
        "devices": [{"device": r.device, "name": r.device_name, "threads": r.threads, "seconds": round(r.seconds, 1), "native_kernel": r.native_kernel} for r in reports],
        "bandwidth": {r.device: r.bandwidth.as_dict() for r in reports},
    }


def write_csv(rows: Sequence[Measurement], path: Path) -> Path:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(Measurement)])
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return write_text(path, buffer.getvalue())


def write_json(rows, reports, environment, table: SelectionTable, scaling, path: Path) -> Path:
    fastest = {f"{d}|{g}|{r}": ranked for (d, g, r), ranked in rank_abstractions(rows, lambda row: row.family).items()}
    data = {
        "environment": environment,
        "fastest_per_family": fastest,
        "selection": table.rankings,
        "native_vs_dgl": _native_vs_dgl(rows),
        "concurrent": aggregate_devices(rows) if len(reports) > 1 else [],
        "scaling": [asdict(row) for row in scaling],
        "results": [asdict(row) for row in rows],
    }
    return write_text(path, json.dumps(data, indent=1))


def _native_vs_dgl(rows: Sequence[Measurement]) -> list[dict]:
    """gnndist_csr time / dgl_gspmm time for every case where both ran (same process, same inputs)."""
    by_case: dict[tuple, dict[str, Measurement]] = {}
    for row in rows:
        if row.status == "ok" and row.abstraction in ("gnndist_csr", "dgl_gspmm"):
            by_case.setdefault((row.device, row.graph, row.width, row.reduce), {})[row.abstraction] = row
    ratios = []
    for (device, graph, width, reduce), pair in by_case.items():
        if len(pair) == 2:
            ours, dgl = pair["gnndist_csr"], pair["dgl_gspmm"]
            ratios.append({
                "device": device, "graph": graph, "width": width, "reduce": reduce,
                "fwd_ratio": ours.fwd_median_s / dgl.fwd_median_s,
                "fwd_bwd_ratio": ours.fwd_bwd_median_s / dgl.fwd_bwd_median_s,
            })
    return ratios


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value * 1e3:.3g}" if value < 1 else f"{value * 1e3:.0f}"


def write_markdown(rows: Sequence[Measurement], reports: Sequence[DeviceReport], environment: dict, scaling, path: Path) -> Path:
    lines = [f"# Aggregation benchmark: suite `{environment['suite']}`", ""]
    lines.append(f"torch {environment['torch']}, gnndist {environment['gnndist']}, {environment['platform']}, {environment['cpu_count']} CPUs.")
    lines.append("")
    lines.append("| device | name | threads | copy GB/s | row gather GB/s | native kernel | run time |")
    lines.append("|---|---|---|---|---|---|---|")
    for report in reports:
        native = report.native_kernel
        kernel = "" if not native else (f"compiled in {native['compile_seconds']:.1f} s" if native.get("compile_seconds") else "cached build") if native.get("available") else f"unavailable: {native.get('reason', '')[:80]}"
        lines.append(f"| {report.device} | {report.device_name} | {report.threads} | {report.bandwidth.copy_gbps:.1f} | {report.bandwidth.gather_gbps:.1f} | {kernel} | {report.seconds:.0f} s |")
    lines += ["", "Times are medians per call (forward, and forward + backward w.r.t. x); GB/s by the byte model "
              "`itemsize*F*(E + N_out) + 8E + 8N (+4E weights)` per direction; % copy = GB/s over the probed copy bandwidth.", ""]

    lines += ["## Fastest abstraction per graph class (forward + backward)", "", "| device | graph class | reduce | ranking (geometric-mean slowdown vs the fastest per case) |", "|---|---|---|---|"]
    for (device, group, reduce), ranked in sorted(rank_abstractions(rows, lambda row: row.graph_class).items()):
        lines.append(f"| {device} | {group} | {reduce} | " + ", ".join(f"**{n}**" if i == 0 else f"{n} ({s:.2f}x)" for i, (n, s) in enumerate(ranked[:5])) + " |")
    lines += ["", "## Fastest abstraction per graph family (forward + backward)", "", "| device | family | reduce | fastest | runner-up |", "|---|---|---|---|---|"]
    for (device, group, reduce), ranked in sorted(rank_abstractions(rows, lambda row: row.family).items()):
        runner = f"{ranked[1][0]} ({ranked[1][1]:.2f}x)" if len(ranked) > 1 else ""
        lines.append(f"| {device} | {group} | {reduce} | **{ranked[0][0]}** | {runner} |")
    ratios = _native_vs_dgl(rows)
    if ratios:
        lines += ["", "## gnndist_csr / dgl_gspmm (same run, same inputs; <= 1 means gnndist is at least as fast)", "", "| device | graph | F | reduce | forward | forward + backward |", "|---|---|---|---|---|---|"]
        for ratio in ratios:
            lines.append(f"| {ratio['device']} | {ratio['graph']} | {ratio['width']} | {ratio['reduce']} | {ratio['fwd_ratio']:.2f} | {ratio['fwd_bwd_ratio']:.2f} |")

    if len(reports) > 1:
        lines += ["", f"## Concurrent run: {len(reports)} devices at once (per device, and aggregate = sum over devices)", "",
                  "| graph | F | reduce | abstraction | fwd ms per device | aggregate fwd GB/s | aggregate fwd+bwd GB/s |", "|---|---|---|---|---|---|---|"]
        for entry in aggregate_devices(rows):
            per_device = ", ".join(f"{ms:.3g}" for ms in entry["fwd_ms_per_device"])
            lines.append(f"| {entry['graph']} | {entry['width']} | {entry['reduce']} | {entry['abstraction']} | {per_device} | {entry['aggregate_fwd_gbps']:.1f} | {entry['aggregate_fwd_bwd_gbps']:.1f} |")
    if scaling:
        lines += ["", "## Distributed aggregation: graph partitioned over the workers, halo exchange + local aggregation (one layer)", "",
                  "| graph | F | abstraction | workers | partitioner | halo rows | MB sent per layer | fwd ms | fwd+bwd ms | exchange ms | aggregate ms | speedup fwd+bwd | status |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in scaling:
            if row.status == "ok":
                lines.append(f"| {row.graph} | {row.width} | {row.abstraction} | {row.workers} | {row.partitioner} | {row.halo_rows} | {row.bytes_per_layer / 1e6:.1f} "
                             f"| {_ms(row.fwd_s)} | {_ms(row.fwd_bwd_s)} | {_ms(row.exchange_s)} | {_ms(row.aggregate_s)} | {row.speedup_fwd_bwd:.2f} | ok |")
            else:
                lines.append(f"| {row.graph} | {row.width} | {row.abstraction} | {row.workers} | {row.partitioner} | | | | | | | | {row.status}: {row.reason} |")
    lines += ["", "## Results", ""]
    graphs = list(dict.fromkeys((row.device, row.graph) for row in rows))
    for device, graph in graphs:
        group = [row for row in rows if row.device == device and row.graph == graph]
        first = group[0]
        lines.append(f"### {graph} on {device}: {first.num_dst} nodes, {first.num_edges} edges, avg degree {first.avg_degree:.1f}, degree CV {first.degree_cv:.2f}, class {first.graph_class}{', weighted' if first.weighted else ''}")
        lines += ["", "| F | reduce | abstraction | layout / propagation | fwd ms (IQR) | fwd+bwd ms (IQR) | fwd GB/s | % copy | % gather | fwd GFLOP/s | peak MB | status |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in sorted(group, key=lambda r: (r.width, REDUCERS.index(r.reduce), r.fwd_bwd_median_s if r.fwd_bwd_median_s is not None else math.inf)):
            if row.status == "ok":
                lines.append(
                    f"| {row.width} | {row.reduce} | {row.abstraction} | {row.data_organization} / {row.propagation} "
                    f"| {_ms(row.fwd_median_s)} ({_ms(row.fwd_p25_s)}-{_ms(row.fwd_p75_s)}) | {_ms(row.fwd_bwd_median_s)} ({_ms(row.fwd_bwd_p25_s)}-{_ms(row.fwd_bwd_p75_s)}) "
                    f"| {row.fwd_gbps:.1f} | {100 * row.fwd_fraction_of_copy:.0f} | {100 * row.fwd_fraction_of_gather:.0f} | {row.fwd_gflops:.1f} "
                    f"| {row.peak_memory_bytes / 2**20:.0f} | ok |"
                )
            elif row.status != "skipped":
                lines.append(f"| {row.width} | {row.reduce} | {row.abstraction} | {row.data_organization} / {row.propagation} | | | | | | | | **{row.status}**: {row.reason} |")
        lines.append("")
    skipped: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.status == "skipped":
            skipped.setdefault((row.abstraction, row.reason), []).append(f"{row.graph} F={row.width} {row.reduce}")
    if skipped:
        lines += ["## Skipped (not a failure: the reason says why)", "", "| abstraction | reason | cases |", "|---|---|---|"]
        for (name, reason), cases in sorted(skipped.items()):
            shown = ", ".join(dict.fromkeys(cases[:4])) + (f" and {len(cases) - 4} more" if len(cases) > 4 else "")
            lines.append(f"| {name} | {reason} | {shown} |")
    return write_text(path, "\n".join(lines) + "\n")
