"""Full-graph training over parts equals single-process training (the oracle), in-process and on Ray."""
import pytest
import torch

from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.partition import build_parts, save_partition
from gnndist.partitioners import resolve_partitioner
from gnndist.runtime import WorkerGroup
from gnndist.testing import assert_matches_single_process
from gnndist.train.fullgraph import LocalFullGraphTrainer, PartSource, start_fullgraph

EPOCHS = 20


@pytest.fixture(scope="module")
def graph():
    return load_dataset("sbm", num_nodes=600, avg_degree=8, feature_dim=16, num_classes=4, seed=0)


def spec_for(graph, model, aggregation="csr_spmm"):
    return ModelSpec(name=model, num_features=graph.num_features, num_classes=graph.num_classes, hidden=16, layers=2, dropout=0.0, aggregation=aggregation, lr=0.01, weight_decay=5e-4, seed=0)


def assignment(graph, method, parts):
    return resolve_partitioner(method).partition(graph, parts, seed=0)


@pytest.mark.parametrize("method", ["random", "metis"])
@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_local_mode_matches_single_process(graph, method, parts, model):
    spec = spec_for(graph, model)
    trainer = LocalFullGraphTrainer(build_parts(graph, assignment(graph, method, parts)), spec)
    assert_matches_single_process(graph, spec, trainer, EPOCHS)


@pytest.fixture(scope="module", params=[2, 4], ids=lambda p: f"{p}workers")
def worker_group(request, ray_session):
    group = WorkerGroup(request.param, cpus_per_worker=1, timeout_s=120)
    group.init_process_group()
    yield group
    group.shutdown()


@pytest.mark.parametrize("method", ["random", "metis"])
@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_sync_on_ray_matches_single_process(graph, worker_group, method, model, tmp_path):
    parts = worker_group.num_workers
    save_partition(graph, assignment(graph, method, parts), tmp_path / "parts")
    spec = spec_for(graph, model, aggregation="auto")  # the default: gnndist's own kernel where it builds
    trainer = start_fullgraph(worker_group, [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(parts)], spec, strategy="sync")
    assert_matches_single_process(graph, spec, trainer, EPOCHS)
    vectors = worker_group.run("parameters_vector")
    assert all(torch.equal(v, vectors[0]) for v in vectors)  # every worker holds the same model


def test_more_workers_than_the_cluster_hosts_is_a_clear_error(ray_session):
    with pytest.raises(RuntimeError, match="cannot host 64 workers with \\{'CPU': 1.0\\} each: they need 64 CPU"):
        WorkerGroup(64, cpus_per_worker=1.0, timeout_s=2)


def test_partition_directory_of_another_graph_is_refused(graph, tmp_path):
    from gnndist.partition import partition_graph

    partition_graph(graph, "random", 2, tmp_path / "p")
    other = load_dataset("sbm", num_nodes=300, avg_degree=4, feature_dim=16, num_classes=4, seed=1)
    with pytest.raises(FileExistsError, match="holds a different partition"):
        partition_graph(other, "random", 2, tmp_path / "p", reuse=True)
    assert partition_graph(graph, "random", 2, tmp_path / "p", reuse=True)[1] is True  # the same graph reuses it
