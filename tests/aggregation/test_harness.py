"""The benchmark harness and ``gnndist bench aggregation``: outputs, rankings and bad input."""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnndist.aggregation.selection import SelectionTable
from gnndist.benchmarks import aggregation as harness
from gnndist.benchmarks import aggregation_grid as grid
from gnndist.benchmarks import aggregation_measure as measure
from gnndist.benchmarks import aggregation_report as report
from gnndist.benchmarks.bandwidth import probe_bandwidth
from gnndist.launch import bench_cmd

OUTPUTS = ["results.csv", "results.json", "results.md", "selection.json", "time_vs_degree.png", "time_vs_width.png", "time_vs_skew.png", "fraction_of_peak.png"]


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


def test_quick_suite_subset_writes_every_output(tmp_path, planetoid_root):
    config = grid.AggregationBenchConfig(
        suite="quick", out=tmp_path, graphs=("uniform", "rmat", "cora-gcn"), widths=(4, 8), reducers=("sum", "max"), repeats=1, warmup=0, max_seconds=1.0,
        planetoid_root=planetoid_root, probe_mib=16,
    )
    result = harness.run_benchmark(config, log=lambda line: None)
    assert result.ok, [(r.abstraction, r.graph, r.reduce, r.reason) for r in result.problems]
    for name in OUTPUTS:
        assert (tmp_path / name).is_file(), name
    for name in OUTPUTS[4:]:
        assert_png(tmp_path / name)
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    graphs = {row["graph"] for row in rows}
    assert graphs == {"uniform-2k-d4", "uniform-2k-d16", "rmat-s12-a0.45", "rmat-s12-a0.57", "cora-gcn"}
    timed = [row for row in rows if row["status"] == "ok"]
    assert {row["abstraction"] for row in timed} >= {"csr_spmm", "coo_index_add", "csr_segment", "csc_spmm", "dense_gemm", "pyg_edge_index", "pyg_sparse"}
    for row in timed:
        assert float(row["fwd_median_s"]) > 0 and float(row["fwd_bwd_median_s"]) > 0 and float(row["fwd_gbps"]) > 0
        assert float(row["forward_error"]) <= 1e-4 and float(row["backward_error"]) <= 1e-4
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["environment"]["bandwidth"]["cpu"]["copy_gbps"] > 0
    assert any(key.startswith("cpu|planetoid|") for key in data["fastest_per_family"])
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert "tiny/skewed" in selection["rankings"]["cpu"]
    markdown = (tmp_path / "results.md").read_text()
    assert "## Fastest abstraction per graph class" in markdown and "### cora-gcn on cpu" in markdown and "weighted" in markdown


def test_dense_too_large_is_skipped_with_reason(tmp_path):
    big = grid.Suite("tiny-test", (grid.Case(grid._uniform(9_000, 2), (4,), ("sum",)),), repeats=1)
    config = grid.AggregationBenchConfig(suite=big, out=tmp_path, abstractions=("dense_gemm", "csr_spmm"), repeats=1, warmup=0, probe_mib=8)
    result = harness.run_benchmark(config, log=lambda line: None)
    rows = {row.abstraction: row for row in result.reports[0].measurements}
    assert rows["dense_gemm"].status == "skipped" and "dense 9000x9000" in rows["dense_gemm"].reason
    assert rows["csr_spmm"].status == "ok"
    assert "dense 9000x9000" in (tmp_path / "results.md").read_text()


def test_memory_budget_skips_message_materialising_backends(tmp_path):
    suite = grid.Suite("tiny-test", (grid.Case(grid._uniform(500, 4), (8,), ("sum",)),), repeats=1)
    config = grid.AggregationBenchConfig(suite=suite, out=tmp_path, abstractions=("coo_index_add", "csr_spmm"), repeats=1, warmup=0, memory_budget_bytes=1000, probe_mib=8)
    rows = {row.abstraction: row for row in harness.run_benchmark(config, log=lambda line: None).reports[0].measurements}
    assert rows["coo_index_add"].status == "skipped" and "memory budget" in rows["coo_index_add"].reason
    assert rows["csr_spmm"].status == "ok"


def test_mismatch_is_reported_not_timed(tmp_path, monkeypatch):
    from gnndist.aggregation.edge_list import CooIndexAdd

    class Wrong(CooIndexAdd):
        def run(self, state, x):
            return super().run(state, x) * 1.01

    suite = grid.Suite("tiny-test", (grid.Case(grid._uniform(300, 4), (8,), ("sum",)),), repeats=1)
    monkeypatch.setattr(measure, "resolve_aggregation", lambda name: Wrong())
    config = grid.AggregationBenchConfig(suite=suite, out=tmp_path, abstractions=("coo_index_add",), repeats=1, warmup=0, probe_mib=8)
    result = harness.run_benchmark(config, log=lambda line: None)
    (row,) = result.problems
    assert row.status == "mismatch" and "forward error" in row.reason and row.fwd_median_s is None
    assert not result.ok


def test_save_selection_writes_the_named_file_and_planetoid_needs_a_root(tmp_path):
    suite = grid.Suite("tiny-test", (grid.Case(grid._uniform(300, 4), (8,), ("sum",)), grid.Case(grid._planetoid("cora"), (8,), ("sum",))), repeats=1)
    config = grid.AggregationBenchConfig(suite=suite, out=tmp_path / "out", abstractions=("csr_spmm",), repeats=1, warmup=0, probe_mib=8, save_selection=tmp_path / "mine.json")
    result = harness.run_benchmark(config, log=lambda line: None)
    assert result.ok and result.files["saved_selection"] == tmp_path / "mine.json"
    saved = SelectionTable.load(tmp_path / "mine.json")
    assert saved.rankings == SelectionTable.load(tmp_path / "out" / "selection.json").rankings
    assert saved.ranking("cpu", result.reports[0].measurements[0].graph_class, "sum") == ["csr_spmm"]
    cora = [row for row in result.reports[0].measurements if row.graph == "cora"]
    assert cora and all(row.status == "skipped" and "--planetoid-root" in row.reason for row in cora)


def test_cli_save_selection_takes_a_file(tmp_path):
    parser = argparse.ArgumentParser(prog="gnndist")
    bench_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "aggregation", "--save-selection", str(tmp_path / "table.json")])
    assert args.save_selection == tmp_path / "table.json"


def test_rank_abstractions_penalises_missing_cases():
    def row(graph, name, seconds, status="ok"):
        return measure.Measurement("cpu", graph, "f", "c", 1, 1, 1, 1.0, 0.0, False, "", 8, "sum", name, "torch", "csr", "pull", status, fwd_bwd_median_s=seconds)

    rows = [row("g1", "a", 1.0), row("g1", "b", 2.0), row("g2", "a", 3.0), row("g2", "b", None, "skipped"), row("g1", "c", 1.5), row("g2", "c", 3.3)]
    ranking = report.rank_abstractions(rows, lambda r: r.family)[("cpu", "f", "sum")]
    assert [name for name, _ in ranking] == ["a", "c", "b"]
    assert ranking[0][1] == pytest.approx(1.0)


def test_bandwidth_probe_small():
    probe = probe_bandwidth("cpu", copy_mib=8, repeats=2)
    assert probe.copy_gbps > 0 and probe.gather_gbps > 0 and probe.row_bytes == 512


def run_cli(argv, capsys) -> tuple[int, str]:
    code = bench_cmd.main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_cli_bad_inputs(capsys, tmp_path):
    code, text = run_cli(["aggregation", "--abstractions", "nope", "--out", str(tmp_path)], capsys)
    assert code == 2 and "Unknown abstraction(s) ['nope']" in text and "gnndist_csr" in text
    code, text = run_cli(["aggregation", "--widths", "0", "--out", str(tmp_path)], capsys)
    assert code == 2 and "Expected feature widths >= 1 (got [0])" in text
    code, text = run_cli(["aggregation", "--reducers", "min", "--out", str(tmp_path)], capsys)
    assert code == 2 and "available: sum, mean, max" in text
    code, text = run_cli(["aggregation", "--graphs", "nowhere", "--out", str(tmp_path)], capsys)
    assert code == 2 and "Unknown graph(s) ['nowhere']" in text and "cora" in text
    code, text = run_cli(["aggregation", "--suite", "bogus", "--out", str(tmp_path)], capsys)
    assert code == 2 and "Unknown suite 'bogus'; available: quick, full" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cli_cuda_without_gpu(capsys, tmp_path):
    code, text = run_cli(["aggregation", "--devices", "cuda", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--devices cuda asked, but no CUDA device is visible" in text


def test_bench_parser_plugs_into_a_parent_cli(tmp_path):
    parser = argparse.ArgumentParser(prog="gnndist")
    bench_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", "aggregation", "--suite", "full", "--graphs", "sbm", "--widths", "32", "128", "--out", str(tmp_path)])
    assert args.benchmark == "aggregation" and args.suite == "full" and args.widths == [32, 128]


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "gnndist.benchmarks.aggregation", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--suite" in result.stdout and "--abstractions" in result.stdout


@pytest.mark.slow
def test_quick_suite_through_the_cli(tmp_path, capsys):
    code = bench_cmd.main(["aggregation", "--suite", "quick", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    for name in OUTPUTS:
        assert (tmp_path / name).is_file(), name


@pytest.mark.slow
def test_concurrent_workers_and_distributed_scaling_on_cpu_actors(tmp_path, ray_session):
    """Item 5 on a CPU-only machine: two CPU actors run the suite at once; the partitioned benchmark runs on 1 and 2 workers."""
    suite = grid.Suite("tiny-test", (grid.Case(grid._sbm(3_000, 8), (8,), ("sum",)),), repeats=2)
    config = grid.AggregationBenchConfig(
        suite=suite, out=tmp_path / "out", abstractions=("gnndist_csr", "csr_spmm"), repeats=2, warmup=0, probe_mib=8, workers=2, scaling=(1, 2), partitioner="random"
    )
    result = harness.run_benchmark(config, log=lambda line: None)
    assert result.ok, [(r.graph, r.reason) for r in result.problems]
    assert sorted(report.device for report in result.reports) == ["cpu:0", "cpu:1"]
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {entry["abstraction"] for entry in data["concurrent"]} == {"gnndist_csr", "csr_spmm"}
    scaling = {row["workers"]: row for row in data["scaling"]}
    assert set(scaling) == {1, 2} and scaling[1]["bytes_per_layer"] == 0 and scaling[2]["bytes_per_layer"] > 0
    assert all(row["status"] == "ok" and row["forward_error"] <= 1e-4 for row in scaling.values())
    assert_png(tmp_path / "out" / "scaling.png")
    assert "## Distributed aggregation" in (tmp_path / "out" / "results.md").read_text()
