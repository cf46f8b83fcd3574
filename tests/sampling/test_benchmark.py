"""The sampling benchmark runs end to end on a small graph and writes its JSON and Markdown."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gnndist.benchmarks.sampling import main


def run(tmp_path: Path, *extra: str) -> dict:
    assert main(["--out", str(tmp_path), "--graph", "sbm-small", "--fanouts", "4,3", "-1", "--batch-size", "256", "--repeats", "1", *extra]) == 0
    table = (tmp_path / "sampling.md").read_text()
    assert "| [4, 3] | sampling |" in table and "| [-1] | sampling + x[input_nodes] |" in table
    return json.loads((tmp_path / "sampling.json").read_text())


def test_gnndist_only(tmp_path):
    result = run(tmp_path, "--no-dgl")
    assert result["environment"]["dgl"] == "skipped (--no-dgl)"
    assert {(m["library"], tuple(m["fanouts"]), m["mode"]) for m in result["measurements"]} == {
        ("gnndist", fanouts, mode) for fanouts in ((4, 3), (-1,)) for mode in ("sample", "gather")
    }
    assert all(m["seeds_per_s"] > 0 and len(m["epoch_s"]) == 1 for m in result["measurements"])


@pytest.mark.dgl
def test_against_dgl_in_the_compat_environment(tmp_path):
    result = run(tmp_path, "--dgl-python", sys.executable)
    assert result["environment"]["dgl"]["dgl"].startswith("2.")
    assert sum(m["library"] == "dgl" for m in result["measurements"]) == 4
