"""Config: YAML + overrides, unknown keys and cross-field errors name the key path."""
import pytest

from gnndist.config import ConfigError, JobConfig, load_config


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("mode: single\nmodel:\n  name: gcn\n  hidden: 32\ndataset:\n  name: sbm\n  num_nodes: 500\n")
    config = load_config(path, ["model.hidden=8", "train.fanouts=[3, 2]", "dataset.avg_degree=4.5"])
    assert config.model.name == "gcn" and config.model.hidden == 8
    assert config.train.fanouts == [3, 2]
    assert config.dataset.options() == {"num_nodes": 500, "avg_degree": 4.5}
    again = load_config(None, []).model_validate_json(config.model_dump_json())
    assert again == config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.epochz=3"], "train.epochz: unknown key"),
        (["nosection.key=1"], "nosection: unknown key"),
        (["model.name=gnn"], "model.name: unknown model 'gnn'; available: gat, gcn, gin, hsage, mlp, rgcn, sage"),
        (["model.num_bases=2"], "model.num_bases applies to model.name='rgcn' only (got model.name='sage')"),
        (["model.name=rgcn", "model.num_bases=2", "model.num_blocks=2"], "Give model.num_bases or model.num_blocks, not both"),
        (["train.fanouts=[0, 5]"], "train.fanouts: fanouts must be positive or -1"),
        (["partition.parts=0"], "partition.parts: Input should be greater than or equal to 1"),
        (["dataset.nodes=5"], "Unknown option 'nodes' for dataset 'sbm'"),
        (["mode=fullgraph", "cluster.workers=3", "partition.parts=2"], "cluster.workers=3 but partition.parts=2"),
        (["mode=minibatch", "train.fanouts=[5]"], "train.fanouts has 1 hops but model.layers=2"),
        (["aggregation=fastest"], "unknown aggregation 'fastest'"),
        (["mode=distributed"], "mode: unknown training mode 'distributed'; available: fullgraph, local, minibatch, single"),
        (["train"], "is not of the form section.key=value"),
        (["train.epochs.x=1"], "'epochs' is a value, not a section"),
    ],
)
def test_bad_config_names_the_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.epochs=3", *overrides])
    assert message in str(info.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")


def test_every_section_of_the_contract_exists():
    sections = set(JobConfig.model_fields)
    assert sections == {"mode", "task", "dataset", "model", "train", "partition", "comm", "sampling", "cache", "aggregation", "cluster", "checkpoint", "output", "plan"}


def test_comm_strategy_local_is_a_deprecated_alias_of_mode_local():
    with pytest.warns(FutureWarning, match="use mode=local"):
        config = load_config(None, ["comm.strategy=local"])
    assert (config.mode, config.comm.strategy) == ("local", "sync")


def test_aggregation_string_sets_the_name():
    assert load_config(None, ["aggregation=csr_spmm"]).aggregation.name == "csr_spmm"
