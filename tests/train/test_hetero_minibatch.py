"""Mini-batch training of a heterogeneous graph: a typed part's batches read every type's inputs (features of
their own width, from memory or the owners' stores; node ids of featureless types), models train on them, one
in-process worker learns and evaluates like the whole-graph model, bad fanouts are refused."""
from __future__ import annotations

import pytest
import ray
import torch
import torch.distributed as dist
from torch.nn.utils import vector_to_parameters

from gnndist.config import CacheConfig, TrainConfig
from gnndist.data import load_dataset
from gnndist.hetero import HeteroGraph
from gnndist.models import ModelSpec
from gnndist.partition import PartitionBook
from gnndist.partition.hetero import minibatch_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.runtime import WorkerContext
from gnndist.sampling.hetero import relation_fanouts
from gnndist.store import local_stores
from gnndist.testing import InMemoryPart, joined_group
from gnndist.train.fullgraph import PartSource
from gnndist.train.loop import fit
from gnndist.train.metrics import EpochMetrics
from gnndist.train.minibatch import HeteroMiniBatchWorkerTrainer, HeteroPartBatches, ViewPartLoader, start_minibatch

SMALL_HSBM = dict(num_papers=300, num_authors=150, num_institutions=16, num_fields=32, seed=0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The machine is shared: one torch thread in this process."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def graph() -> HeteroGraph:
    """hsbm with authors of another width than papers (5 vs 32); institutions and fields are featureless."""
    hsbm = load_dataset("hsbm", **SMALL_HSBM)
    nodes = dict(hsbm.nodes)
    nodes["author"] = nodes["author"].with_(x=nodes["author"].x[:, :5].contiguous())
    return HeteroGraph(nodes, dict(hsbm.edges), hsbm.target)


def spec_for(graph: HeteroGraph, **changes) -> ModelSpec:
    options = dict(name="rgcn", num_features=32, num_classes=8, hidden=16, layers=2, dropout=0.0, lr=0.03, schema=graph.schema(), seed=0)
    return ModelSpec(**{**options, **changes})


def test_typed_batches_read_every_types_inputs_from_owned_and_remote_rows(graph):
    view = graph.to_homogeneous()
    assignment = resolve_partitioner("random").partition(view.graph, 3, seed=0)
    book = PartitionBook.from_assignment(assignment.node_part, 3)
    parts = minibatch_parts(graph, book, halo_hops=2)
    schema = graph.schema()
    data = HeteroPartBatches(parts[1], local_stores([part.part for part in parts]), schema=schema, fanouts=relation_fanouts([4, 3], schema.edge_types, 2), book=book, batch_size=20, seed=0, rank=1)
    prepared = data.prepare(next(data.batches(0)))
    batch, offsets = prepared.batch, view.offsets
    assert data.remote_bytes > 0  # some input rows came from other parts' stores
    for node_type, nodes in graph.nodes.items():
        ids = data.local.global_ids[batch.input_nodes[batch.rows[node_type]]] - offsets[node_type]
        assert bool((ids >= 0).all()) and bool((ids < nodes.num_nodes).all())
        expected = nodes.x[ids] if nodes.x is not None else ids  # features of the type's own width, or node ids
        assert torch.equal(prepared.x[node_type], expected), node_type
    assert {t: int(n) for t, n in batch.blocks[-1].num_dst.items()}["paper"] == prepared.target.numel()
    model, _ = spec_for(graph).build()
    assert model(prepared.x, batch.blocks).shape == (prepared.target.numel(), 8)
    with pytest.raises(ValueError, match="cache policy 'presample' is not yet supported for heterogeneous graphs"):
        HeteroPartBatches(parts[1], local_stores([part.part for part in parts]), schema=schema, fanouts=relation_fanouts([4, 3], schema.edge_types, 2), book=book, batch_size=20, seed=0, rank=1, cache="presample")


@pytest.fixture
def world_of_one(tmp_path):
    """A real gloo process group of one rank in this process."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_one_worker_learns_and_evaluates_like_the_whole_graph_model(graph, world_of_one):
    book = PartitionBook.from_assignment(torch.zeros(graph.num_nodes, dtype=torch.long), 1)
    (part,) = minibatch_parts(graph, book, halo_hops=2)
    source = InMemoryPart(part, book)
    spec = spec_for(graph)
    trainer = HeteroMiniBatchWorkerTrainer(WorkerContext(0, 1), source, spec, TrainConfig(batch_size=25, fanouts=[5, 5], prefetch=1), CacheConfig(), local_stores([ViewPartLoader(source)]))
    losses = [trainer.train_epoch(epoch, evaluate=False)["loss"] for epoch in range(4)]
    assert losses[-1] < losses[0]
    metrics = trainer.train_epoch(4)["evaluation"]
    model = trainer.model.eval()
    with torch.no_grad():
        predicted = model(graph.inputs(), graph.block()).argmax(1)
    target, applied = graph.nodes["paper"], EpochMetrics(epoch=4, loss=0.0, epoch_time_s=0.0)
    metrics.apply(applied)
    for name, mask in (("train_acc", target.train_mask), ("test_acc", target.test_mask)):
        assert getattr(applied, name) == pytest.approx(float((predicted[mask] == target.y[mask]).float().mean()))


def test_unknown_relation_in_fanouts_is_refused_naming_it(graph, world_of_one):
    book = PartitionBook.from_assignment(torch.zeros(graph.num_nodes, dtype=torch.long), 1)
    (part,) = minibatch_parts(graph, book, halo_hops=2)
    source = InMemoryPart(part, book)
    fanouts = {"author__writes__paper": [2, 2], "paper__likes__paper": [2, 2]}
    with pytest.raises(ValueError, match=r"unknown relation\(s\) \['paper__likes__paper'\]; the graph's relations: author__writes__paper, paper__cites__paper"):
        HeteroMiniBatchWorkerTrainer(WorkerContext(0, 1), source, spec_for(graph), TrainConfig(batch_size=25, fanouts=fanouts), CacheConfig(), local_stores([ViewPartLoader(source)]))


@pytest.fixture(scope="module")
def three_workers(ray_session):
    with joined_group(3) as group:
        yield group


@pytest.mark.slow  # a 3-worker group and its stores cost ~20 s to start on a shared 2-core machine
def test_three_workers_learn_and_evaluate_exactly_like_the_whole_graph_model(graph, three_workers):
    """Typed parts on Ray workers (remote rows of 5- and 32-wide types from the stores, featureless types
    embedded): the loss falls, and the distributed evaluation equals the whole-graph model's with the final parameters."""
    view = graph.to_homogeneous()
    book = PartitionBook.from_assignment(resolve_partitioner("metis").partition(view.graph, 3, seed=0).node_part, 3)
    book_ref = ray.put(book)
    sources = [PartSource(rank, object_ref=ray.put(part), book_ref=book_ref) for rank, part in enumerate(minibatch_parts(graph, book, halo_hops=2))]
    spec = spec_for(graph)
    trainer = start_minibatch(three_workers, sources, spec, TrainConfig(batch_size=25, fanouts=[5, 5]), CacheConfig(policy="degree"), worker=HeteroMiniBatchWorkerTrainer)
    try:
        history = fit(trainer, 4, eval_every=4, progress=False).history
        assert history[-1].loss < history[0].loss and history[-1].extra["remote_bytes"] > 0
        model, _ = spec.build()
        vector_to_parameters(trainer.parameters_vector(), model.parameters())
        with torch.no_grad():
            predicted = model.eval()(graph.inputs(), graph.block()).argmax(1)
        target = graph.nodes["paper"]
        for name, mask in (("train_acc", target.train_mask), ("val_acc", target.val_mask), ("test_acc", target.test_mask)):
            assert getattr(history[-1], name) == pytest.approx(float((predicted[mask] == target.y[mask]).float().mean())), name
    finally:
        trainer.shutdown()
