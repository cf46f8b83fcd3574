"""Mini-batch training: the single-process reference, one worker reproducing it exactly, distributed runs on
Ray (exact when only one part has training nodes, within a point of the reference's accuracy otherwise), the
prefetch pipeline, the step schedule and bad input."""
from __future__ import annotations

import json
import os
import sys
import threading

import pytest
import torch
import torch.distributed as dist

from gnndist.config import CacheConfig, ConfigError, TrainConfig, load_config
from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.partition import build_parts, save_partition
from gnndist.partitioners import PartitionResult, resolve_partitioner
from gnndist.runtime import WorkerContext, WorkerGroup
from gnndist.store import local_stores, start_stores, stop_stores
from gnndist.testing import InMemoryPart
from gnndist.train.fullgraph import PartSource
from gnndist.train.loop import fit
from gnndist.train.minibatch import (
    BatchPipeline,
    MiniBatchTrainer,
    MiniBatchWorkerTrainer,
    global_step_seeds,
    minibatch_epoch_metrics,
    start_minibatch,
    worker_batch_sizes,
)

POLICIES = ["none", "degree", "presample", "lru"]
TRAIN = TrainConfig(batch_size=48, fanouts=[5, 3], prefetch=2)


def train_with(**changes) -> TrainConfig:
    """``TRAIN`` with ``changes``, validated like a job config."""
    return TrainConfig(**{**TRAIN.model_dump(), **changes})
EPOCHS = 3


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The machine is shared: one torch thread in this process (workers get theirs from the group)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def graph():
    return load_dataset("sbm", num_nodes=600, avg_degree=8, feature_dim=16, num_classes=4, seed=0)


def spec_for(graph, model: str = "sage", *, hidden: int = 16, dropout: float = 0.5, lr: float = 0.01) -> ModelSpec:
    return ModelSpec(name=model, num_features=graph.num_features, num_classes=graph.num_classes, hidden=hidden, layers=2, dropout=dropout, aggregation="gnndist_csr", lr=lr, weight_decay=5e-4, seed=0)


@pytest.fixture
def world_of_one(tmp_path):
    """A real gloo process group of one rank in this process."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def losses(history):
    return [m.loss for m in history]


# ------------------------------------------------------------------ the reference and one worker
@pytest.mark.parametrize("model", ["sage", "gcn"])
@pytest.mark.parametrize("prefetch", [0, 3])
def test_one_worker_reproduces_the_reference_exactly(graph, world_of_one, model, prefetch):
    spec = spec_for(graph, model)
    train = train_with(prefetch=prefetch)
    reference = MiniBatchTrainer(graph, spec, train)
    part = build_parts(graph, torch.zeros(graph.num_nodes, dtype=torch.long))[0]
    worker = MiniBatchWorkerTrainer(WorkerContext(0, 1), InMemoryPart(part), spec, train, CacheConfig(policy="presample"), local_stores([part]))

    reference.sampler.set_epoch(0)
    pairs = list(zip(reference.loader.batches(0), worker.data.batches(0), strict=True))
    for reference_seeds, worker_seeds in pairs:  # same batches
        assert torch.equal(reference_seeds, worker_seeds)
        expected, got = reference.sampler.sample(reference_seeds), worker.data.prepare(worker_seeds)
        assert torch.equal(expected.input_nodes, got.batch.input_nodes)
        assert all(torch.equal(a.indptr, b.indptr) and torch.equal(a.indices, b.indices) for a, b in zip(expected.blocks, got.batch.blocks))
        assert torch.equal(graph.x[expected.input_nodes], got.x)

    expected = fit(reference, EPOCHS, progress=False).history
    got = [minibatch_epoch_metrics(epoch, [worker.train_epoch(epoch)]) for epoch in range(EPOCHS)]
    assert losses(got) == pytest.approx(losses(expected), abs=1e-6, rel=0)  # same losses
    assert [(m.train_acc, m.val_acc, m.test_acc) for m in got] == [(m.train_acc, m.val_acc, m.test_acc) for m in expected]
    assert torch.allclose(worker.parameters_vector(), reference.parameters_vector(), rtol=0, atol=1e-6)
    assert got[-1].extra["seeds"] == int(graph.train_mask.sum()) and got[-1].extra["remote_bytes"] == 0


def test_reference_is_deterministic_and_learns(graph):
    spec = spec_for(graph)
    runs = [fit(MiniBatchTrainer(graph, spec, TRAIN), 6, progress=False) for _ in range(2)]
    assert losses(runs[0].history) == losses(runs[1].history)
    assert runs[0].history[-1].loss < runs[0].history[0].loss
    extra = runs[0].history[-1].extra
    assert extra["steps"] == -(-int(graph.train_mask.sum()) // TRAIN.batch_size)
    assert {"sample_s", "fetch_s", "wait_s", "compute_s", "sync_s", "seeds_per_s", "eval_time_s"} <= set(extra)


# ------------------------------------------------------------------ steps, pipeline
def test_step_schedule_covers_every_seed_with_the_same_steps_everywhere():
    counts = [10, 0, 5]
    sizes = worker_batch_sizes(4, counts)
    assert sizes == [3, 0, 2]
    assert global_step_seeds(counts, sizes) == [5, 5, 4, 1]  # worker 2 runs out first, worker 1 never starts
    assert global_step_seeds([7], [7]) == [7]
    assert sum(global_step_seeds([1000, 333, 1], worker_batch_sizes(64, [1000, 333, 1]))) == 1334


def test_pipeline_keeps_order_and_raises_errors_of_the_thread():
    prepare = lambda seeds: int(seeds)  # noqa: E731
    for depth in (0, 1, 4):
        assert list(BatchPipeline(prepare, depth)(torch.arange(10))) == list(range(10))

    def failing(seeds):
        if int(seeds) == 3:
            raise ValueError("bad batch 3")
        return int(seeds)

    with pytest.raises(ValueError, match="bad batch 3"):
        list(BatchPipeline(failing, 2)(torch.arange(10)))
    before = threading.active_count()
    iterator = BatchPipeline(prepare, 2)(torch.arange(1000))
    assert next(iterator) == 0
    iterator.close()  # stopping early ends the thread
    assert threading.active_count() == before
    with pytest.raises(ValueError, match="prefetch depth"):
        BatchPipeline(prepare, -1)
    with pytest.raises(ValueError, match="nice value"):
        BatchPipeline(prepare, 2, nice=20)


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities are Linux's")
def test_pipeline_prepares_at_a_lower_priority_than_training():
    """The background thread gets ``nice`` more than the caller's priority; the caller's own is untouched."""
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = lambda seeds: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # noqa: E731
    assert set(BatchPipeline(seen, 2, nice=5)(torch.arange(3))) == {min(own + 5, 19)}
    assert set(BatchPipeline(seen, 2)(torch.arange(3))) == {own}  # nice 0: as training
    assert set(BatchPipeline(seen, 0, nice=5)(torch.arange(3))) == {own}  # no thread: prepared by the caller
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "section, changes, match",
    [
        (TrainConfig, {"fanouts": []}, "fanouts"),
        (TrainConfig, {"fanouts": [5, 0]}, "fanout >= 1"),
        (TrainConfig, {"fanouts": [5, -2]}, "fanout >= 1"),
        (TrainConfig, {"fanouts": "5,3"}, "fanouts"),
        (TrainConfig, {"batch_size": 0}, "batch_size"),
        (TrainConfig, {"prefetch": -1}, "prefetch"),
        (TrainConfig, {"prefetch_nice": 20}, "prefetch_nice"),
        (CacheConfig, {"policy": "fifo"}, "available: degree, lru, none, presample"),
        (CacheConfig, {"capacity": -0.5}, "capacity"),
    ],
)
def test_bad_options_are_refused(section, changes, match):
    """Mini-batch settings are validated in one place: the config sections the trainers take."""
    with pytest.raises(ValueError, match=match):
        section(**changes)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["train.fanouts=[]"], "fanouts must name at least one hop"),
        (["train.fanouts=[5, 0]"], "fanouts must be positive"),
        (["train.batch_size=0"], "train.batch_size"),
        (["train.prefetch=-1"], "train.prefetch"),
        (["train.prefetch_nice=-1"], "train.prefetch_nice"),
        (["cache.policy=fifo"], "unknown cache policy 'fifo'"),
        (["cache.capacity=-1"], "cache.capacity"),
    ],
)
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, ["mode=minibatch", *overrides])


def test_batch_larger_than_the_training_set_or_wrong_layers_is_refused(graph):
    num_train = int(graph.train_mask.sum())
    with pytest.raises(ValueError, match=f"'batch_size' in \\[1, {num_train}\\]"):
        MiniBatchTrainer(graph, spec_for(graph), train_with(batch_size=num_train + 1))
    with pytest.raises(ValueError, match="one fanout per layer"):
        MiniBatchTrainer(graph, spec_for(graph), train_with(fanouts=[5, 3, 2]))
    no_train = graph.with_(train_mask=torch.zeros(graph.num_nodes, dtype=torch.bool))
    with pytest.raises(ValueError, match="no training nodes"):
        MiniBatchTrainer(no_train, spec_for(graph), TRAIN)


def test_worker_refuses_a_batch_larger_than_all_training_nodes(graph, world_of_one):
    part = build_parts(graph, torch.zeros(graph.num_nodes, dtype=torch.long))[0]
    with pytest.raises(ValueError, match="the training nodes of all parts"):
        MiniBatchWorkerTrainer(WorkerContext(0, 1), InMemoryPart(part), spec_for(graph), train_with(batch_size=graph.num_nodes), CacheConfig(), local_stores([part]))
    part.train_mask[:] = False
    with pytest.raises(ValueError, match="No part has training nodes"):
        MiniBatchWorkerTrainer(WorkerContext(0, 1), InMemoryPart(part), spec_for(graph), TRAIN, CacheConfig(), local_stores([part]))


# ------------------------------------------------------------------ on Ray
@pytest.fixture(scope="module", params=[2, 4], ids=lambda p: f"{p}workers")
def worker_group(request, ray_session):
    group = WorkerGroup(request.param, cpus_per_worker=0.5, timeout_s=300, num_threads=1)
    group.init_process_group()
    yield group
    group.shutdown()


@pytest.fixture(scope="module")
def lopsided(worker_group, graph, tmp_path_factory):
    """Part 0 owns every training node (and some others); the other parts own only non-training nodes."""
    parts = worker_group.num_workers
    node_part = torch.zeros(graph.num_nodes, dtype=torch.long)
    others = (~graph.train_mask).nonzero().flatten()
    node_part[others] = torch.arange(others.numel()) % parts
    result = PartitionResult(node_part, parts, "manual", {}, 0, 0.0, 0, 0)
    directory = tmp_path_factory.mktemp("lopsided") / "parts"
    save_partition(graph, result, directory)
    sources = [PartSource(rank, directory=str(directory)) for rank in range(parts)]
    stores = start_stores(sources, placement_group=worker_group.placement_group)
    yield sources, stores
    stop_stores(stores)


@pytest.fixture(scope="module")
def reference_history(graph):
    return fit(MiniBatchTrainer(graph, spec_for(graph), TRAIN), EPOCHS, progress=False).history


@pytest.mark.parametrize("policy, shared_memory, shared_memory_mb", [(policy, True, None) for policy in POLICIES] + [("none", True, 0), ("none", False, None)])
def test_parts_without_training_nodes_reproduce_the_reference(graph, worker_group, lopsided, reference_history, policy, shared_memory, shared_memory_mb):
    """Stores (rows read in place, unmapped after every read, or requested), ring extension, caches, remote
    features and zero-weight steps change nothing: exact equality."""
    sources, stores = lopsided
    cache = CacheConfig(policy=policy, capacity=0.3, shared_memory=shared_memory, shared_memory_mb=shared_memory_mb)
    trainer = start_minibatch(worker_group, sources, spec_for(graph), TRAIN, cache, stores=stores)
    history = fit(trainer, EPOCHS, progress=False).history
    assert losses(history) == pytest.approx(losses(reference_history), abs=1e-6, rel=0)
    assert [m.test_acc for m in history] == [m.test_acc for m in reference_history]
    last = history[-1].extra
    assert last["seeds"] == int(graph.train_mask.sum()) and last["steps"] == reference_history[-1].extra["steps"]
    assert last["remote_bytes"] > 0 and last["structure_bytes"] > 0
    assert history[-1].bytes_sent == last["remote_bytes"]
    assert (last["cache_hit_rate"] == 0) == (policy == "none")
    assert last["remote_bytes"] == last["cache_misses"] * graph.num_features * 4


REAL = {"cora": dict(batch_size=32, hidden=64, epochs=30, last=10), "sbm": dict(batch_size=64, hidden=32, epochs=15, last=5)}


def real_graph(name, planetoid_root):
    if name == "cora":
        return load_dataset("planetoid:cora", root=str(planetoid_root))
    return load_dataset("sbm", num_nodes=3000, avg_degree=10, feature_dim=16, num_classes=4, seed=0)


def mean_test_accuracy(trainer, name) -> float:
    """Test accuracy averaged over the last epochs (smooths epoch-to-epoch noise)."""
    settings = REAL[name]
    history = fit(trainer, settings["epochs"], progress=False).history
    return sum(m.test_acc for m in history[-settings["last"] :]) / settings["last"]


@pytest.fixture(scope="module")
def reference_accuracy(planetoid_root):
    cache = {}

    def get(name):
        if name not in cache:
            graph = real_graph(name, planetoid_root)
            settings = REAL[name]
            train = TrainConfig(batch_size=settings["batch_size"], fanouts=[10, 10], prefetch=2)
            cache[name] = mean_test_accuracy(MiniBatchTrainer(graph, spec_for(graph, hidden=settings["hidden"]), train), name)
        return cache[name]

    return get


@pytest.mark.slow  # an accuracy experiment on real data (exactness is the fast tier's lopsided-parts test)
@pytest.mark.parametrize("name", ["cora", "sbm"])
def test_accuracy_within_one_point_of_the_reference(worker_group, name, planetoid_root, reference_accuracy, tmp_path):
    graph = real_graph(name, planetoid_root)
    parts = worker_group.num_workers
    save_partition(graph, resolve_partitioner("metis").partition(graph, parts, seed=0), tmp_path / "parts")
    settings = REAL[name]
    train = TrainConfig(batch_size=settings["batch_size"], fanouts=[10, 10], prefetch=2)
    sources = [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(parts)]
    trainer = start_minibatch(worker_group, sources, spec_for(graph, hidden=settings["hidden"]), train, CacheConfig(policy="degree"))
    try:
        accuracy = mean_test_accuracy(trainer, name)
        vectors = worker_group.run("parameters_vector")
        assert all(torch.equal(v, vectors[0]) for v in vectors)  # every worker holds the same model
    finally:
        trainer.shutdown()
    expected = reference_accuracy(name)
    print(f"{name}, {parts} workers: test accuracy {accuracy:.4f}, reference {expected:.4f}")
    assert abs(accuracy - expected) <= 0.01


def test_gnndist_train_minibatch_writes_its_metrics(ray_session, tmp_path):
    from gnndist.launch.job import run_job

    overrides = [
        "mode=minibatch", "dataset.num_nodes=800", "dataset.avg_degree=6", "dataset.feature_dim=16", "model.hidden=16", "train.epochs=2",
        "train.batch_size=64", "train.fanouts=[5, 3]", "partition.parts=2", "cache.policy=presample", "cache.options={epochs: 2}",
        "cluster.cpus_per_worker=0.5", "train.num_threads=1", f"output.dir={tmp_path / 'run'}", f"partition.dir={tmp_path / 'parts'}",
    ]
    summary = run_job(load_config(None, overrides), progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [0, 1] and summary["mode"] == "minibatch"
    fields = {"loss", "test_acc", "seeds_per_s", "sample_s", "fetch_s", "wait_s", "compute_s", "sync_s", "cache_hit_rate", "remote_bytes", "bytes_sent", "steps"}
    assert fields <= set(lines[-1])
    assert 0 < lines[-1]["cache_hit_rate"] < 1 and lines[-1]["remote_bytes"] > 0
