"""The full-graph benchmark runs end to end on a small graph and writes its JSON and Markdown."""
from __future__ import annotations

import json

import pytest

from gnndist.benchmarks.fullgraph import FullGraphBenchConfig, main


@pytest.mark.slow
def test_quick_run_writes_every_row(tmp_path, ray_session):
    # ray_session: the benchmark's ray_cluster() joins the session's Ray instead of starting a second one
    assert main(["--out", str(tmp_path), "--quick", "--pyg", "csr", "--strategies", "sync", "stale"]) == 0
    result = json.loads((tmp_path / "fullgraph.json").read_text())
    labels = [row["label"] for row in result["rows"]]
    assert labels == ["gnndist P=1", "PyG csr", "gnndist P=2 sync", "gnndist P=2 stale"]
    assert result["environment"]["dgl"] == "skipped (--no-dgl)"
    for row in result["rows"]:
        assert len(row["epoch_s"]) == 2 and row["median_epoch_s"] > 0
        assert row["peak_rss_bytes"] > 0 and 0.0 <= row["accuracies"]["test_acc"] <= 1.0
        assert row["ratio_vs_pyg_csr"] > 0 and row["ratio_vs_dgl"] is None
    distributed = [row for row in result["rows"] if row["parts"] == 2]
    assert all(row["halo_bytes_per_epoch"] > 0 and row["grad_bytes_per_epoch"] > 0 for row in distributed)
    assert sum(result["breakdown"]["gcn"]["seconds"].values()) > 0
    table = (tmp_path / "fullgraph.md").read_text()
    for label in labels:
        assert f"| gcn | {label} |" in table
    assert "## Where gnndist's time goes at P=1" in table


def test_bad_settings_name_the_value(tmp_path):
    with pytest.raises(ValueError, match="Unknown benchmark graph 'cora'"):
        FullGraphBenchConfig(tmp_path, graph="cora")
    with pytest.raises(ValueError, match="warmup < epochs"):
        FullGraphBenchConfig(tmp_path, epochs=2, warmup=2)


def test_gnndist_p1_runs_with_the_workers_heap_settings_and_peers_without(tmp_path):
    """`vs P=1` compares distribution alone: the P=1 process has the heap settings P > 1 workers start with."""
    from pathlib import Path

    from gnndist.benchmarks.fullgraph import Contender, ContenderSpec
    from gnndist.benchmarks.peers import write_graph
    from gnndist.data import load_dataset
    from gnndist.memory import worker_malloc_env

    npz = tmp_path / "graph.npz"
    write_graph(load_dataset("sbm", num_nodes=300, avg_degree=6, num_classes=3, feature_dim=8, seed=0), npz)
    seen = {}
    for library, variant in (("gnndist", "csr_spmm"), ("pyg", "csr")):
        contender = Contender(ContenderSpec(library, variant, "gcn", str(npz), 8, 0.5, 0.01, 5e-4, 0, 1, "cpu"), None, 120)
        try:
            environ = Path(f"/proc/{contender.child.process.pid}/environ").read_bytes().split(b"\0")
            seen[library] = {key: value for key, _, value in (entry.decode().partition("=") for entry in environ) if key.startswith("MALLOC_")}
        finally:
            contender.close()
    assert seen["gnndist"] == worker_malloc_env(release=False)
    assert seen["pyg"] == {}
