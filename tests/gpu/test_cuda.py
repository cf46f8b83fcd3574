"""The CUDA paths (``gpu`` marker: run on a machine with a GPU, e.g. by benchmarks/gpu_check.sh).

Every check compares with a reference: CUDA single-process against the CPU one, CUDA full-graph
workers against the CUDA single process, a CUDA mini-batch worker against a CPU one.
"""
import json

import pytest
import torch

from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.launch.job import run_job
from gnndist.models import ModelSpec
from gnndist.partition import build_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.testing import assert_matches_single_process, reference_run
from gnndist.train.fullgraph import LocalFullGraphTrainer

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

EPOCHS = 20


@pytest.fixture(scope="module")
def graph():
    return load_dataset("sbm", num_nodes=2000, avg_degree=8, feature_dim=32, seed=0)


def spec_of(graph, model: str) -> ModelSpec:
    return ModelSpec(name=model, num_features=graph.num_features, num_classes=graph.num_classes, hidden=32, dropout=0.0, aggregation="auto", seed=0)


@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_single_process_on_cuda_equals_the_cpu(graph, model):
    cpu_losses, cpu_params = reference_run(graph, spec_of(graph, model), EPOCHS, "cpu")
    cuda_losses, cuda_params = reference_run(graph, spec_of(graph, model), EPOCHS, "cuda")
    for epoch, (got, want) in enumerate(zip(cuda_losses, cpu_losses)):
        assert abs(got - want) <= 1e-3 * abs(want), f"epoch {epoch}: {got} vs {want}"
    assert torch.allclose(cuda_params, cpu_params, rtol=1e-3, atol=1e-3)


def test_local_full_graph_on_cuda_equals_the_cuda_single_process(graph):
    spec = spec_of(graph, "gcn")
    parts = build_parts(graph, resolve_partitioner("metis").partition(graph, 4, seed=0))
    assert_matches_single_process(graph, spec, LocalFullGraphTrainer(parts, spec, "cuda"), EPOCHS, device="cuda")


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


JOB = ["dataset.num_nodes=2000", "dataset.feature_dim=32", "model.hidden=32", "model.dropout=0", "model.name=gcn", f"train.epochs={EPOCHS}", "aggregation=csr_spmm"]


def test_two_workers_sharing_one_gpu_equal_the_single_process(ray_session, tmp_path):
    """gpus_per_worker=0.5: both workers on one GPU, gloo staging their exchange through pinned host buffers."""
    run_job(load_config(None, [*JOB, "mode=single", "train.device=cuda", f"output.dir={tmp_path / 'single'}"]), progress=False)
    summary = run_job(load_config(None, [*JOB, "mode=fullgraph", "partition.parts=2", "cluster.gpus_per_worker=0.5", f"output.dir={tmp_path / 'two'}"]), progress=False)
    assert summary["final"]["loss"] is not None
    for epoch, (got, want) in enumerate(zip(losses(tmp_path / "two"), losses(tmp_path / "single"))):
        assert abs(got - want) <= 1e-4 * abs(want), f"epoch {epoch}: {got} vs {want}"


def test_a_minibatch_worker_on_cuda_equals_one_on_the_cpu(ray_session, tmp_path):
    """GPU sampler, GPU cache and NCCL against the CPU worker; full fanouts, so the samples do not depend on
    which device's random generator draws them."""
    job = [*JOB, "mode=minibatch", "partition.parts=1", "train.fanouts=[-1,-1]", "train.batch_size=256", "train.epochs=5"]
    run_job(load_config(None, [*job, f"output.dir={tmp_path / 'cpu'}"]), progress=False)
    run_job(load_config(None, [*job, "cluster.gpus_per_worker=1", "sampling.device=cuda", "cache.device=cuda", f"output.dir={tmp_path / 'cuda'}"]), progress=False)
    for epoch, (got, want) in enumerate(zip(losses(tmp_path / "cuda"), losses(tmp_path / "cpu"))):
        assert abs(got - want) <= 1e-3 * abs(want), f"epoch {epoch}: {got} vs {want}"
