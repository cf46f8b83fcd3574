"""`gnndist plan` end to end on a tiny graph, a graph shape, bad options; the plan in a run's summary and report."""
import json

import pytest

from gnndist.launch import cli


def test_plan_prints_a_table_and_writes_json(tmp_path, capsys, calibration_file):
    out = tmp_path / "plan.json"
    args = ["plan", "dataset.num_nodes=600", "model.hidden=16", "--parts", "1", "2", "--strategies", "sync", "stale", "--modes", "fullgraph", "minibatch",
            "--partitioners", "random", "metis", "--network-gbps", "10", "--calibration", str(calibration_file), "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert f"calibration: {calibration_file} (reused)" in printed and "epoch s" in printed and "peak GiB/worker" in printed
    plan = json.loads(out.read_text())
    assert plan["calibration"] == str(calibration_file)
    assert len(plan["rows"]) == 2 * 2 * 3  # partitioners x P x (sync, stale, minibatch)
    assert {(r["partitioner"], r["num_parts"], r["mode"], r["strategy"]) for r in plan["rows"]} >= {("metis", 2, "fullgraph", "stale"), ("random", 1, "minibatch", "-")}
    assert all(r["epoch_s"] > 0 and r["peak_worker_bytes"] > 0 for r in plan["rows"])
    assert cli.main(args) == 1  # never overwrites without --force
    assert "--out" in capsys.readouterr().err
    assert cli.main([*args, "--force"]) == 0


def test_plan_from_a_shape_loads_no_graph(tmp_path, capsys, calibration_file):
    shape = "nodes=111e6,edges=1.6e9,features=128,classes=172,train=1.2e6,halo=0.8,cut=0.3"
    assert cli.main(["plan", "model.hidden=16", "--shape", shape, "--parts", "16", "64", "--network-gbps", "25", "100", "--modes", "fullgraph", "minibatch", "--calibration", str(calibration_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith(("16 ", "64 ")) for line in lines) == 2 * 2 * 2


@pytest.mark.parametrize(("option", "message"), [
    (["--strategies", "nope"], "--strategies: unknown strategy 'nope'"),
    (["--parts", "0"], "--parts: expected every P >= 1 (got 0)"),
    (["--network-gbps", "-5"], "--network-gbps: expected every rate > 0 (got -5)"),
    (["--partitioners", "nope"], "--partitioners: unknown partitioner 'nope'"),
    (["--shape", "nodes=10,edges=20"], "--shape: missing features, classes"),
])
def test_bad_options_are_named(calibration_file, capsys, option, message):
    assert cli.main(["plan", "dataset.num_nodes=300", "--calibration", str(calibration_file), *option]) == 1
    assert message in capsys.readouterr().err


def test_a_run_records_its_plan_and_report_compares(tmp_path, capsys, calibration_file, ray_session):
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "dataset.num_nodes=1500", "model.hidden=16", "train.epochs=2", f"plan.calibration={calibration_file}", f"output.dir={out}"]) == 0
    assert "plan (predicted)" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    plan = summary["plan"]
    assert plan["calibration"] == str(calibration_file) and plan["num_parts"] == 2 and plan["strategy"] == "sync"
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert plan["halo_bytes"] == metrics[-1]["bytes_sent"]  # the exchange is predicted exactly
    assert cli.main(["report", str(out), "--no-plot"]) == 0
    report = capsys.readouterr().out
    assert "Plan (calibration" in report and "epoch time (s)" in report and "bytes per epoch (MiB)" in report and "+0 %" in report


def test_a_run_without_calibration_records_plan_null(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "mode=single", "dataset.num_nodes=300", "train.epochs=1", f"output.dir={out}"]) == 0
    assert "plan.calibration=FILE" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["plan"] is None
    assert cli.main(["report", str(out), "--no-plot"]) == 0
    assert "Plan: none (no calibration configured: set plan.calibration=FILE" in capsys.readouterr().out


def test_a_mismatched_calibration_warns_and_keeps_the_run(tmp_path, capsys, calibration_file, ray_session):
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "dataset.num_nodes=800", "model.hidden=32", "train.epochs=1", f"plan.calibration={calibration_file}", f"output.dir={out}"]) == 0
    assert f"no plan: {calibration_file}: key 'key.hidden' is 16 but this plan needs 32" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["plan"] is None


def test_a_minibatch_runs_plan_measures_its_batches(tmp_path, capsys, calibration_file, ray_session):
    """A mini-batch run on a graph in memory plans from its parts' sampled batches: remote bytes as measured."""
    out = tmp_path / "run"
    assert cli.main(["train", "--no-progress", "mode=minibatch", "dataset.num_nodes=3000", "model.hidden=16", "train.epochs=2", "train.batch_size=256", f"plan.calibration={calibration_file}", f"output.dir={out}"]) == 0
    plan = json.loads((out / "summary.json").read_text())["plan"]
    measured = [json.loads(line)["bytes_sent"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    print(plan["halo_bytes"], measured)
    assert all(0.8 < plan["halo_bytes"] / sent < 1.25 for sent in measured)
