"""Checkpoint folders: atomic writes, exact round trips, verification, fallback, compatibility checks."""
import json
import random

import numpy as np
import pytest
import torch

from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.runtime.checkpoint import CheckpointError, CheckpointStore, JobIdentity, config_changes, config_identity, read_checkpoint, rng_state, set_rng_state

SMALL = ["dataset.num_nodes=200", "dataset.feature_dim=8", "model.hidden=8"]


@pytest.fixture
def identity():
    config = load_config(None, SMALL)
    return JobIdentity.of(config, load_dataset(config.dataset.name, **config.dataset.options()).fingerprint())


def trained_state(seed=0):
    model, optimizer = ModelSpec(name="sage", num_features=8, num_classes=3, hidden=8, layers=2, dropout=0.0, aggregation="csr_spmm", lr=0.01, weight_decay=5e-4, seed=seed).build()
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}


def states(world_size=2):
    shared = trained_state()
    return [{**shared, "strategy": {"halo": {0: torch.full((3, 2), float(rank))}}, "rng": rng_state()} for rank in range(world_size)]


def test_round_trip_is_exact_and_shared_state_stored_once(tmp_path, identity):
    store = CheckpointStore(tmp_path, identity)
    saved = states()
    path = store.save(4, saved)
    assert path.name == "ckpt-000004" and sorted(p.name for p in path.iterdir()) == ["meta.json", "rank-00000.pt", "rank-00001.pt", "shared.pt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    meta = json.loads((path / "meta.json").read_text())
    assert meta["epoch"] == 4 and meta["world_size"] == 2 and set(meta["files"]) == {"shared.pt", "rank-00000.pt", "rank-00001.pt"}
    assert meta["graph_fingerprint"] == identity.graph_fingerprint and meta["config_fingerprint"] == identity.config_fingerprint
    loaded = read_checkpoint(path).load_states()
    for rank, state in enumerate(loaded):
        for key, value in saved[rank]["model"].items():
            assert torch.equal(state["model"][key], value)
        assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], saved[rank]["optimizer"]["state"][0]["exp_avg"])
        assert torch.equal(state["strategy"]["halo"][0], saved[rank]["strategy"]["halo"][0])
    assert "model" not in torch.load(path / "rank-00001.pt", weights_only=True)


def test_keeps_the_last_k_and_latest_is_newest(tmp_path, identity):
    store = CheckpointStore(tmp_path, identity, keep=2)
    for epoch in (1, 2, 3, 10):
        store.save(epoch, states(1))
    assert [p.name for p in store.paths()] == ["ckpt-000003", "ckpt-000010"]
    assert store.latest().epoch == 10
    store.save(10, states(1))  # the same epoch again replaces it
    assert store.latest().epoch == 10 and len(store.paths()) == 2


def test_half_written_checkpoints_are_discarded(tmp_path, identity):
    store = CheckpointStore(tmp_path, identity)
    (tmp_path / ".ckpt-000002.tmp-0badc0de").mkdir()  # left by an interrupted or killed write
    (tmp_path / ".ckpt-000002.tmp-0badc0de" / "shared.pt").write_bytes(b"partial")
    store.save(3, states(1))
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-000003"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "meta"])
def test_damaged_checkpoint_is_named_and_older_one_used(tmp_path, identity, damage):
    store = CheckpointStore(tmp_path, identity)
    store.save(1, states())
    newest = store.save(2, states())
    target = newest / ("meta.json" if damage == "meta" else "rank-00001.pt")
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "delete":
        target.unlink()
    else:
        target.write_text("{not json")
    with pytest.raises(CheckpointError, match=str(target)):
        read_checkpoint(newest)
    reported = []
    assert store.latest(on_invalid=reported.append).epoch == 1
    assert len(reported) == 1 and str(target) in str(reported[0])


def test_no_valid_checkpoint_is_an_error_naming_the_files(tmp_path, identity):
    store = CheckpointStore(tmp_path, identity)
    assert store.latest() is None
    path = store.save(3, states(1))
    (path / "shared.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"No valid checkpoint .*shared\.pt is corrupted or truncated"):
        store.latest()


def test_incompatible_config_and_graph_are_named(tmp_path, identity):
    path = CheckpointStore(tmp_path, identity).save(2, states(1))
    checkpoint = read_checkpoint(path)
    checkpoint.check_compatible(identity)
    other = load_config(None, [*SMALL, "train.epochs=99", "train.eval_every=5", "partition.dir=/elsewhere", "cluster.timeout_s=5"])
    checkpoint.check_compatible(JobIdentity(config_identity(other), identity.graph_fingerprint))  # none of these change the result
    changed = load_config(None, [*SMALL, "model.hidden=16", "train.lr=0.1"])
    with pytest.raises(CheckpointError, match=r"different config \(model.hidden: 8 -> 16; train.lr: 0.01 -> 0.1\)"):
        checkpoint.check_compatible(JobIdentity(config_identity(changed), identity.graph_fingerprint))
    with pytest.raises(CheckpointError, match=r"written for graph .*\(the data changed\)"):
        checkpoint.check_compatible(JobIdentity(identity.config, "0" * 16))


def test_config_changes_lists_added_and_removed_keys():
    assert config_changes({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}) == ["a.c: (unset) -> 2"]


def test_rng_state_round_trip():
    state = rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(7), random.random()
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
