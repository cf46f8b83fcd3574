"""`gnndist bench distdgl`: flags are checked, DistDGL is skipped with a reason without DGL, and (slow
tier, compat environment present) both systems train end to end and land in one table."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gnndist.benchmarks.distdgl import markdown, parse_args
from gnndist.launch.cli import main as cli_main

COMPAT_PYTHON = Path(os.environ.get("GNNDIST_DGL_PYTHON", Path(__file__).resolve().parents[2] / ".venv-compat" / "bin" / "python"))


def test_flags_parse_and_bad_values_name_the_flag(tmp_path, capsys):
    args = parse_args(["--out", str(tmp_path), "--quick", "--fanouts", "15,10", "--epochs", "3", "--nodes", "200000"])
    assert args.quick and args.fanouts == [15, 10] and args.epochs == 3 and args.nodes == 200_000 and args.threads == 1
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--fanouts", "ten"])
    assert "--fanouts expects comma-separated integers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--epochs", "0"])
    assert "--epochs must be >= 1 (got 0)" in capsys.readouterr().err


def test_the_subcommand_is_registered():
    from gnndist.launch.bench_cmd import BENCHMARKS

    assert "distdgl" in BENCHMARKS and "DistDGL" in BENCHMARKS["distdgl"].help


def test_table_without_dgl_says_why():
    row = dict(seeds_per_s=2000.0, seeds_per_cpu_s=1000.0, epoch_s=0.5, trainer_cpu_s=0.8, server_cpu_s=0.2, test_acc=0.9, peak_bytes={"worker0": 2**20}, partition_s=0.1, setup_s=1.0)
    result = {
        "graph": dict(num_nodes=10, num_edges=20, feature_dim=4, num_classes=2, num_train=5),
        "settings": dict(fanouts=[10, 5], hidden=8, batch_size=4, lr=0.01, epochs=2, parts=2, threads=1, cache="none", cache_capacity=0.2, prefetch=2),
        "environment": dict(dgl="skipped: no DGL environment (pass --dgl-python PATH or set GNNDIST_DGL_PYTHON)", torch="2", cpus=2, load_average_before=[0, 0, 0], load_average_after=[0, 0, 0], wall_s=1.0),
        "systems": {"gnndist": row},
    }
    table = markdown(result)
    assert "| gnndist | 2.0k | - |" in table and "worker0 1" in table
    assert "DistDGL: skipped: no DGL environment (pass --dgl-python PATH" in table
    result["systems"] = {"DistDGL": {"error": "RuntimeError: DistDGL server0 exited with code 1: boom"}, "gnndist": row}
    assert "| DistDGL | failed: RuntimeError: DistDGL server0 exited with code 1: boom |" in markdown(result)


@pytest.mark.slow
@pytest.mark.skipif(not COMPAT_PYTHON.exists(), reason=f"no DGL compat environment at {COMPAT_PYTHON} (build it with the README's compat command, or set GNNDIST_DGL_PYTHON)")
def test_quick_run_trains_both_systems(tmp_path, ray_session):
    assert cli_main(["bench", "distdgl", "--out", str(tmp_path), "--quick", "--dgl-python", str(COMPAT_PYTHON), "--timeout", "600"]) == 0
    result = json.loads((tmp_path / "distdgl.json").read_text())
    assert set(result["systems"]) == {"DistDGL", "gnndist"}
    for name, row in result["systems"].items():
        assert row["seeds_per_s"] > 0 and row["seeds_per_cpu_s"] > 0 and row["partition_s"] > 0, name
        assert 0.0 <= row["test_acc"] <= 1.0 and all(value and value > 0 for value in row["peak_bytes"].values()), name
    assert set(result["systems"]["DistDGL"]["peak_bytes"]) == {"partitioner", "server0", "server1", "trainer0", "trainer1"}
    assert "| DistDGL |" in (tmp_path / "distdgl.md").read_text()
