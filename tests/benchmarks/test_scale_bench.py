"""The scale benchmark runs end to end on a small power-law graph: both partitioners balance nodes and edges."""
from __future__ import annotations

import json

import pytest

from gnndist.benchmarks.scale import main


@pytest.mark.slow
def test_quick_rmat_run_balances_both_and_reports_every_process(tmp_path):
    assert main(["--out", str(tmp_path), "--quick", "--graphs", "rmat", "--epochs", "1"]) == 0
    (row,) = json.loads((tmp_path / "scale.json").read_text())["rows"]
    assert row["balance"] == ["nodes", "edges"]
    for method in ("parallel", "metis"):
        meta = json.loads((tmp_path / "work" / f"rmat-{method}-p4" / "meta.json").read_text())
        assert meta["options"]["balance"] == ["nodes", "edges"]
        assert row["partition"][method]["node_balance"] < 1.1 and row["partition"][method]["edge_balance"] < 1.1
    for mode in ("fullgraph", "minibatch"):
        assert len(row["train"][mode]["worker_peak_bytes"]) == 4 and 0 < row["ratios"][f"{mode}_worker_max"] < 2
    assert row["ratios"]["cut_parallel_over_metis"] > 0 and set(row["ratios"]["targets_met"]) == {"driver", "worker", "cut", "speed"}
    assert "partitions balance nodes and edges" in (tmp_path / "scale.md").read_text()
