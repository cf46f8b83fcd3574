"""Link prediction (task.name=link): the edge split, negative samplers, OGB metrics, bad input, and training
on real Cora in one process and on 3 Ray workers (full-graph sync equals single-process)."""
import json

import pytest
import torch

from gnndist.config import ConfigError, load_config
from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.launch.cli import main
from gnndist.models import ModelSpec
from gnndist.partition import save_partition
from gnndist.partitioners import resolve_partitioner
from gnndist.runtime import WorkerGroup
from gnndist.runtime.checkpoint import read_checkpoint
from gnndist.tasks import resolve_task
from gnndist.tasks.link import LinkTask, split_edges
from gnndist.tasks.negatives import degree, uniform
from gnndist.tasks.ranking import hits_at_k, mean_reciprocal_rank, roc_auc
from gnndist.train.fullgraph import PartSource, start_fullgraph
from gnndist.train.loop import FitResult, fit
from gnndist.train.single import SingleProcessTrainer


def pairs_of(edge_index: torch.Tensor, n: int) -> set[int]:
    low, high = edge_index.min(dim=0).values, edge_index.max(dim=0).values
    return set((low * n + high)[low != high].tolist())


@pytest.fixture(scope="module")
def cora(planetoid_root):
    return load_dataset("planetoid:cora", root=str(planetoid_root))


# ------------------------------------------------------------------ the split


def test_split_is_disjoint_keeps_pairs_together_removes_held_out_edges_and_is_deterministic(cora):
    n = cora.num_nodes
    graph, train, val, test = split_edges(cora, [0.85, 0.05, 0.10], seed=0)
    all_pairs = pairs_of(cora.edge_index(), n)
    train_s, val_s, test_s = (pairs_of(e, n) for e in (train, val, test))
    assert not (train_s & val_s) and not (train_s & test_s) and not (val_s & test_s)
    assert train_s | val_s | test_s == all_pairs
    assert (len(val_s), len(test_s)) == (int(0.05 * len(all_pairs)), int(0.10 * len(all_pairs)))
    assert bool((train[0] < train[1]).all())
    edges = graph.edge_index()
    directed = set((edges[0] * n + edges[1]).tolist())
    for u, v in train.t().tolist():  # both directions of a training pair stay in the message-passing graph
        assert u * n + v in directed and v * n + u in directed
    assert not (pairs_of(edges, n) & (val_s | test_s))  # held-out pairs left it in both directions
    assert graph.num_edges == 2 * len(train_s) and graph.fingerprint() != cora.fingerprint()
    again = split_edges(cora, [0.85, 0.05, 0.10], seed=0)
    assert torch.equal(again[1], train) and torch.equal(again[3], test) and again[0].fingerprint() == graph.fingerprint()
    assert not torch.equal(split_edges(cora, [0.85, 0.05, 0.10], seed=1)[3], test)


def test_evaluation_negatives_are_fixed_once_per_split(cora):
    a, b = LinkTask(negatives=3).prepare(cora, 0).targets, LinkTask(negatives=3).prepare(cora, 0).targets
    assert a.val.neg_dst.shape == (a.val.pos.size(1), 3)
    assert torch.equal(a.val.neg_dst, b.val.neg_dst) and torch.equal(a.test.neg_dst, b.test.neg_dst)


# ------------------------------------------------------------------ negative samplers


def test_uniform_negatives_hit_edges_only_by_chance(cora):
    n = cora.num_nodes
    src = cora.indices[:2000]
    dst = uniform(src.numel(), 5, cora.in_degrees(), torch.Generator().manual_seed(0))
    edges = set((cora.indices * n + cora.dst()).tolist())
    hits = sum(int(s) * n + int(d) in edges for s, row in zip(src, dst) for d in row)
    chance = float(cora.out_degrees()[src].sum()) * 5 / n  # expected hits of uniform draws: P((s, w) is an edge) = deg(s) / n
    assert hits <= 1.5 * chance + 5
    assert int(dst.min()) >= 0 and int(dst.max()) < n


def test_degree_negatives_follow_the_degree():
    weights = torch.tensor([0, 1, 2, 7])
    drawn = degree(10_000, 4, weights, torch.Generator().manual_seed(0))
    frequency = torch.bincount(drawn.flatten(), minlength=4).double() / drawn.numel()
    assert frequency[0] == 0
    assert torch.allclose(frequency, weights.double() / 10, atol=0.01)


# ------------------------------------------------------------------ metrics against hand-computed values


def test_auc_by_hand():
    pos, neg = torch.tensor([0.9, 0.4, 0.3]), torch.tensor([0.5, 0.3, 0.1])
    # pairs (pos > neg): 0.9 beats 3; 0.4 beats 2 (0.3, 0.1); 0.3 beats 0.1 and ties 0.3 -> 1.5; 6.5 / 9
    assert roc_auc(pos, neg) == pytest.approx(6.5 / 9)
    assert roc_auc(torch.tensor([2.0]), torch.tensor([1.0, 0.0])) == 1.0
    with pytest.raises(ValueError, match="AUC needs positive and negative scores"):
        roc_auc(torch.tensor([]), neg)


def test_hits_at_k_by_hand():
    pos, neg = torch.tensor([0.9, 0.6, 0.5, 0.1]), torch.tensor([0.8, 0.5, 0.4, 0.2])
    assert hits_at_k(pos, neg, 2) == 0.5  # 2nd highest negative 0.5: 0.9 and 0.6 are strictly above it
    assert hits_at_k(pos, neg, 1) == 0.25  # above 0.8: only 0.9
    assert hits_at_k(pos, neg, 5) == 1.0  # fewer negatives than K (OGB)


def test_mrr_by_hand():
    pos = torch.tensor([0.9, 0.5, 0.2])
    neg = torch.tensor([[0.1, 0.2], [0.6, 0.5], [0.3, 0.4]])
    # ranks: 1; optimistic 1 + pessimistic 2 -> 1 + 1.5 = 2.5; 3 -> reciprocal 1, 0.4, 1/3
    assert mean_reciprocal_rank(pos, neg) == pytest.approx((1 + 0.4 + 1 / 3) / 3)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task.name=link", "task.negatives=0"], "task.negatives: Input should be greater than or equal to 1 (got 0)"),
        (["task.name=link", "task.split=[0.9, 0.1, 0.0]"], "task.split: task.split leaves an empty test set"),
        (["task.name=link", "task.split=[0.8, 0.2, 0.1]"], "task.split: task.split fractions must sum to at most 1 (got [0.8, 0.2, 0.1] summing to 1.1)"),
        (["task.name=link", "task.split=[0.5, 0.5]"], "task.split must be three fractions"),
        (["task.name=link", "task.decoder=bilinear"], "task.decoder: unknown decoder 'bilinear'; available: dot, mlp"),
        (["task.name=link", "task.negative_sampler=hard"], "task.negative_sampler: unknown negative sampler 'hard'; available: degree, uniform"),
        (["task.name=edge"], "task.name: unknown task 'edge'; available: link, node"),
        (["task.decoder=mlp"], "task.decoder does not apply to task.name='node'"),
    ],
)
def test_bad_task_config_is_a_clear_error(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, overrides)
    assert message in str(error.value)


def test_split_without_edges_for_training_or_testing_is_a_clear_error():
    few = Graph.from_edge_index(torch.tensor([[0, 1, 2], [1, 2, 3]]), 4, x=torch.ones(4, 2)).to_undirected()
    with pytest.raises(ValueError, match=r"task.split=\[0.85, 0.05, 0.1\] leaves an empty test set: 0.1 of the graph's 3 undirected edges"):
        LinkTask().prepare(few, 0)
    no_edges = Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), 4, x=torch.ones(4, 2))
    with pytest.raises(ValueError, match="leaves an empty test set: 0.5 of the graph's 0 undirected edges"):
        LinkTask(split=[0.5, 0.0, 0.5]).prepare(no_edges, 0)
    with pytest.raises(ValueError, match=r"task.split=\[0.2, 0.0, 0.7\] leaves no edges for training: the graph has 3 undirected edges"):
        LinkTask(split=[0.2, 0.0, 0.7]).prepare(few, 0)


def test_link_task_in_a_mode_without_it_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "mode=local", "task.name=link", f"output.dir={tmp_path / 'run'}", "--no-progress"]) != 0
    assert "task.name='link' is not supported by mode='local' (it trains: node)" in capsys.readouterr().err


# ------------------------------------------------------------------ training on Cora

EPOCHS = 200


def cora_spec(cora, decoder="dot", hidden=64) -> ModelSpec:
    return ModelSpec(name="gcn", num_features=cora.num_features, num_classes=hidden, hidden=hidden, layers=2, dropout=0.0, aggregation="csr_spmm", lr=0.01, weight_decay=0.0, seed=0, decoder=decoder)


@pytest.mark.slow
def test_single_process_link_prediction_on_cora_reaches_gae_auc(cora):
    task = resolve_task(load_config(None, ["task.name=link"]).task)
    prepared = task.prepare(cora, 0)
    trainer = SingleProcessTrainer(prepared.graph, cora_spec(cora), "cpu", task, prepared.targets)
    final = fit(trainer, EPOCHS, eval_every=EPOCHS, progress=False, result=FitResult(headline="auc")).final
    print(f"cora link single: {final.extra}")
    assert final.extra["test_auc"] >= 0.90  # GAE reports 0.91
    assert 0 < final.extra["test_hits@50"] <= 1 and 0.5 < final.extra["test_mrr"] <= 1


def test_fullgraph_sync_on_3_workers_equals_single_process(cora, ray_session, tmp_path):
    epochs = 5
    task = LinkTask(decoder="mlp", negatives=2, negative_sampler="degree")
    prepared = task.prepare(cora, 0)
    graph, spec = prepared.graph, cora_spec(cora, decoder="mlp", hidden=16)
    single = SingleProcessTrainer(graph, spec, "cpu", task, prepared.targets)
    reference = fit(single, epochs, progress=False, result=FitResult(headline="auc")).history
    save_partition(graph, resolve_partitioner("metis").partition(graph, 3, seed=0), tmp_path / "parts")
    group = WorkerGroup(3, cpus_per_worker=1, timeout_s=120)
    try:
        group.init_process_group()
        trainer = start_fullgraph(group, [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(3)], spec, "sync", None, task, prepared.targets)
        history = fit(trainer, epochs, progress=False, result=FitResult(headline="auc")).history
        vectors = group.run("parameters_vector")
    finally:
        group.shutdown()
    for got, want in zip(history, reference):
        assert abs(got.loss - want.loss) <= 1e-4 * abs(want.loss), (got.loss, want.loss)
        for name, value in want.extra.items():
            assert got.extra[name] == pytest.approx(value, abs=1e-4), name
    assert torch.allclose(vectors[0], single.parameters_vector(), rtol=1e-4, atol=1e-4)
    assert "decoder.lins.0.weight" in single.model.state_dict()  # the MLP decoder trains with the encoder


def test_link_run_through_the_command_checkpoints_and_resumes(planetoid_root, tmp_path):
    common = ["mode=single", "task.name=link", "task.decoder=mlp", "dataset.name=planetoid:cora", f"dataset.root={planetoid_root}", "model.hidden=16", "train.num_threads=1", "--no-progress"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", *common, "train.epochs=4", f"output.dir={straight}"]) == 0
    assert main(["train", *common, "train.epochs=2", f"output.dir={resumed}"]) == 0
    assert main(["train", *common, "train.epochs=4", f"output.dir={resumed}", "--resume", str(resumed)]) == 0
    a, b = (read_checkpoint(run / "checkpoints" / "ckpt-000004").load_states()[0]["model"] for run in (straight, resumed))
    assert any(key.startswith("decoder.") for key in a)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
    summary = json.loads((straight / "summary.json").read_text())
    assert set(summary["best"]) == {"epoch", "val_auc", "test_auc"} and {"test_auc", "test_hits@50", "test_mrr"} <= set(summary["final"])
    assert main(["report", str(straight), "--no-plot"]) == 0


@pytest.mark.slow
def test_minibatch_on_3_workers_is_within_2_points_of_single_process_auc(cora, ray_session, tmp_path):
    from gnndist.config import CacheConfig, TrainConfig
    from gnndist.train.minibatch import start_minibatch

    task = LinkTask()
    prepared = task.prepare(cora, 0)
    graph, spec = prepared.graph, cora_spec(cora)
    single = SingleProcessTrainer(graph, spec, "cpu", task, prepared.targets)
    reference = fit(single, EPOCHS, eval_every=EPOCHS, progress=False, result=FitResult(headline="auc")).final.extra
    save_partition(graph, resolve_partitioner("random").partition(graph, 3, seed=0), tmp_path / "parts")
    group = WorkerGroup(3, cpus_per_worker=1, timeout_s=300)
    try:
        group.init_process_group()
        sources = [PartSource(rank, directory=str(tmp_path / "parts")) for rank in range(3)]
        trainer = start_minibatch(group, sources, spec, TrainConfig(batch_size=512, fanouts=[10, 5]), CacheConfig(), task=task, targets=prepared.targets)
        try:
            final = fit(trainer, 60, eval_every=60, progress=False, result=FitResult(headline="auc")).final.extra
            parameters = trainer.parameters_vector()
        finally:
            trainer.shutdown()
    finally:
        group.shutdown()
    print(f"cora link single-process: {reference}\ncora link mini-batch, 3 workers: {final}")
    assert abs(final["test_auc"] - reference["test_auc"]) <= 0.02
    # distributed evaluation is exact: the single-process evaluation of the workers' parameters gives the same metrics,
    # up to float rounding of the scores (summation order); AUC, a rank statistic, turns that into a near-tied
    # (positive, negative) pair flipping: 1 / (527 x 527) = 3.6e-6 on Cora's test edges (half of it measured once)
    from torch.nn.utils import vector_to_parameters

    vector_to_parameters(parameters, single.model.parameters())
    for name, value in single.evaluate().values.items():
        assert final[name] == pytest.approx(value, abs=1e-5 if name.endswith("auc") else 1e-6), name
