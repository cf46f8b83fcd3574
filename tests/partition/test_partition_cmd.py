"""``gnndist partition``: the subcommand parsed as the CLI parses it, run in-process, with real files."""
from __future__ import annotations

import argparse

import pytest

from gnndist.launch import cli, partition_cmd
from gnndist.partition import load_meta, load_part


def parse(*argv: str) -> argparse.Namespace:
    return cli.parse_args(cli.build_parser(), ["partition", *argv])


def test_partitions_a_dataset_and_prints_the_report(tmp_path, capsys):
    out = tmp_path / "parts"
    code = partition_cmd.run(parse("sbm", "-d", "num_nodes=300", "-d", "feature_dim=4", "--method", "ldg", "--parts", "3", "--out", str(out), "-o", "passes=2", "--halo-hops", "2"))
    assert code == 0
    printed = capsys.readouterr()
    assert "Partition quality: ldg, 3 parts, 300 nodes" in printed.out and f"wrote {out}" in printed.out
    assert "[gnndist partition] loading dataset sbm" in printed.err
    meta = load_meta(out)
    assert (meta.method, meta.num_parts, meta.halo_hops, meta.options["passes"]) == ("ldg", 3, 2, 2)
    assert len(load_part(out, 2).num_halo_per_hop) == 2


def test_existing_directory_needs_force(tmp_path):
    out = tmp_path / "parts"
    out.mkdir()
    with pytest.raises(FileExistsError, match="already exists; pass --force"):
        partition_cmd.run(parse("sbm", "-d", "num_nodes=200", "--out", str(out)))
    assert partition_cmd.run(parse("sbm", "-d", "num_nodes=200", "-d", "feature_dim=4", "--out", str(out), "--force")) == 0
    assert load_meta(out).method == "metis"


def test_config_supplies_dataset_and_partition_section(tmp_path, capsys):
    config = tmp_path / "job.yaml"
    config.write_text(
        "dataset:\n  name: sbm\n  num_nodes: 400\n  feature_dim: 4\n"
        f"partition:\n  method: metis\n  parts: 2\n  dir: {tmp_path / 'from-config'}\n  options:\n    balance: [nodes, train]\n"
        "train:\n  seed: 7\n"
    )
    assert partition_cmd.run(parse(str(config))) == 0
    meta = load_meta(tmp_path / "from-config")
    assert (meta.method, meta.num_parts, meta.seed, meta.options["balance"]) == ("metis", 2, 7, ["nodes", "train"])
    assert partition_cmd.run(parse(str(config), "--parts", "3", "--out", str(tmp_path / "override"))) == 0
    assert load_meta(tmp_path / "override").num_parts == 3


def test_bad_input_fails_before_loading_data(tmp_path):
    with pytest.raises(ValueError, match="partition.method: unknown partitioner 'nope'; available: .*metis"):
        partition_cmd.run(parse("sbm", "--method", "nope", "--out", str(tmp_path / "x")))
    with pytest.raises(ValueError, match="No output directory"):
        partition_cmd.run(parse("sbm"))
    with pytest.raises(ValueError, match="--option 'balance' is not of the form KEY=VALUE"):
        partition_cmd.run(parse("sbm", "-o", "balance", "--out", str(tmp_path / "x")))
    with pytest.raises(ValueError, match=r"partition.parts: Input should be greater than or equal to 1 \(got 0\)"):
        partition_cmd.run(parse("sbm", "-d", "num_nodes=50", "-d", "feature_dim=4", "--parts", "0", "--out", str(tmp_path / "x")))
    with pytest.raises(ValueError, match=r"Expected num_parts in \[1, 50\] \(got 51\)"):
        partition_cmd.run(parse("sbm", "-d", "num_nodes=50", "-d", "feature_dim=4", "--parts", "51", "--out", str(tmp_path / "x")))
    with pytest.raises(ValueError, match="Unknown option 'passes' for partitioner 'metis'; accepted: balance, imbalance, recursive"):
        partition_cmd.run(parse("sbm", "partition.options.passes=2", "--out", str(tmp_path / "x")))
    with pytest.raises(ValueError, match="Expected one dataset spec or job YAML, got sbm, rmat"):
        partition_cmd.run(parse("sbm", "rmat", "--out", str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()


def test_list(capsys):
    assert partition_cmd.run(parse("--list")) == 0
    assert "metis" in capsys.readouterr().out.split()


def test_job_grammar_of_gnndist_train(tmp_path, capsys):
    """Overrides and options in any order; each flag is a shorthand for its config key."""
    out = tmp_path / "parts"
    assert cli.main(["partition", "sbm", "--parts", "4", "--out", str(out), "dataset.num_nodes=2000", "dataset.feature_dim=4"]) == 0
    meta = load_meta(out)
    assert (meta.num_parts, meta.method, meta.seed) == (4, "metis", 0)
    assert "Partition quality: metis, 4 parts, 2,000 nodes" in capsys.readouterr().out
    spelled_out = tmp_path / "spelled-out"
    argv = ["partition", "dataset.name=sbm", "dataset.num_nodes=2000", "dataset.feature_dim=4", "partition.parts=4", f"partition.dir={spelled_out}"]
    assert cli.main(argv) == 0
    assert load_meta(spelled_out).key == meta.key


def test_config_file_and_overrides_in_any_order(tmp_path, monkeypatch):
    config = tmp_path / "job.yaml"
    config.write_text("dataset:\n  name: sbm\n  num_nodes: 300\n  feature_dim: 4\npartition:\n  method: ldg\n  parts: 2\n")
    monkeypatch.chdir(tmp_path)
    # `--out 2024`: a folder name that YAML would read as a number stays a path
    assert cli.main(["partition", "partition.parts=3", "--out", "2024", str(config), "-o", "passes=2", "train.seed=5", "--force"]) == 0
    meta = load_meta(tmp_path / "2024")
    assert (meta.method, meta.num_parts, meta.seed, meta.options["passes"]) == ("ldg", 3, 5, 2)


def test_force_never_deletes_a_folder_gnndist_did_not_write(tmp_path):
    out = tmp_path / "my-data"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=f"Refusing to replace {out}: it is not empty and not a partition directory gnndist wrote"):
        cli.main(["--debug", "partition", "sbm", "-d", "num_nodes=200", "--out", str(out), "--force"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "keep me"
