"""Every example config validates and trains (one epoch, generated graphs shrunk; the distributed ones in the slow tier), and the README's
commands are the ones CI runs."""
import json
from pathlib import Path

import pytest
import yaml

from gnndist.config import load_config
from gnndist.launch import cli

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_configs_validate(path):
    load_config(path)


def test_examples_hold_distributed_jobs():
    modes = {yaml.safe_load(path.read_text())["mode"] for path in EXAMPLES}
    assert {"single", "fullgraph", "minibatch"} <= modes


def _slow_unless_single(path: Path):
    """Distributed examples start a worker per part (tens of seconds here): slow tier."""
    single = yaml.safe_load(path.read_text()).get("mode") == "single"
    return pytest.param(path, marks=() if single else pytest.mark.slow, id=path.name)


@pytest.mark.parametrize("path", [_slow_unless_single(path) for path in EXAMPLES])
def test_example_trains_one_epoch(path, tmp_path, request, planetoid_root, capsys):
    """The example as a user runs it, for one epoch; a generated graph is shrunk to 8,000 nodes (enough training nodes for a 1024 batch), and
    dataset.root points at the test machine's Planetoid files."""
    config = load_config(path)
    overrides = ["train.epochs=1", f"output.dir={tmp_path / 'run'}"]
    if config.dataset.name.startswith("planetoid:"):
        overrides.append(f"dataset.root={planetoid_root}")
    elif "num_nodes" in config.dataset.options():
        overrides.append("dataset.num_nodes=8000")
    if config.mode != "single":
        request.getfixturevalue("ray_session")
    assert cli.main(["train", str(path), "--no-progress", *overrides]) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["mode"], summary["epochs"]) == (config.mode, 1)


def test_readme_has_the_two_commands():
    readme = (REPO / "README.md").read_text()
    for tag, must in (("main-command", "gnndist train"), ("ci-test-command", "pytest"), ("ci-compat-command", "-m dgl")):
        block = readme.split(f"<!-- {tag} -->", 1)[1].split("```")[1]
        assert must in block and "pip install" in block
    assert "bash .ci/run" not in readme.split("<!-- ci-test-command -->", 1)[1].split("```")[1]
