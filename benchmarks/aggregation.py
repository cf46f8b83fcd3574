"""Aggregation benchmark harness: suites of graphs, correctness against the reference, timing, reports.

The harness is split by concern: the grid (:mod:`.aggregation_grid`), measuring on one device
(:mod:`.aggregation_measure`), several workers and the partitioned benchmark
(:mod:`.aggregation_distributed`), rankings and report files (:mod:`.aggregation_report`); this
module runs them in order.

Every (graph, feature width, reducer, abstraction) is first checked forward and backward against
``gnndist.aggregation.reference``; only what agrees is timed (warm-up, repeated runs, median and
quartiles; CUDA events on GPU). Results carry bytes moved (the model ``itemsize*F*(E + N_out) +
8E + 8N`` per direction, +4E with edge weights), the fraction of the machine's probed bandwidth,
GFLOP/s (2EF per direction) and peak memory. Output: CSV, JSON, Markdown and PNG plots, plus a
``selection.json`` ranking the abstractions per graph class for ``aggregation="auto"``.

Run: ``gnndist bench aggregation --suite quick --out DIR`` or
``python -m gnndist.benchmarks.aggregation --suite quick --out DIR``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from gnndist.benchmarks.aggregation_distributed import run_concurrent, run_scaling
from gnndist.benchmarks.aggregation_grid import AggregationBenchConfig
from gnndist.benchmarks.aggregation_measure import DeviceReport, Measurement, attach_fractions, run_device
from gnndist.benchmarks.aggregation_report import environment_info, selection_table, write_csv, write_json, write_markdown


@dataclass
class BenchResult:
    """What a run wrote and found."""

    out: Path
    files: dict[str, Path]
    reports: list[DeviceReport]
    problems: list[Measurement]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.problems


def run_benchmark(config: AggregationBenchConfig, log: Callable[[str], None] = print) -> BenchResult:
    """Validates ``config``, measures every device, writes CSV/JSON/Markdown/plots/selection into ``config.out``."""
    config.validate()
    started = time.perf_counter()
    if config.workers > 1:
        reports = run_concurrent(config, log)
    else:
        reports = [run_device(config, device, log) for device in config.devices]
    for report in reports:
        attach_fractions(report)
    scaling = run_scaling(config, log) if config.scaling else []
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for report in reports for row in report.measurements]
    table = selection_table(rows)
    environment = environment_info(config, reports)
    files = {
        "csv": write_csv(rows, out / "results.csv"),
        "json": write_json(rows, reports, environment, table, scaling, out / "results.json"),
        "markdown": write_markdown(rows, reports, environment, scaling, out / "results.md"),
        "selection": table.save(out / "selection.json", suite=environment["suite"], environment=environment),
    }
    from gnndist.benchmarks.plots import write_plots, write_scaling_plot

    for name, path in write_plots(rows, reports, out).items():
        files[f"plot:{name}"] = path
    if scaling:
        files["plot:scaling"] = write_scaling_plot(scaling, out / "scaling.png")
    if config.save_selection is not None:
        files["saved_selection"] = table.save(config.save_selection, suite=environment["suite"], environment=environment)
    problems = [row for row in rows if row.status in ("mismatch", "error")] + [row for row in scaling if row.status != "ok"]
    return BenchResult(out, files, reports, problems, time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gnndist.benchmarks.aggregation [flags]``: the same flags as ``gnndist bench aggregation``."""
    from gnndist.launch.bench_cmd import main as bench_main

    return bench_main(["aggregation", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
