"""The cost model's arithmetic on small cases computed by hand, and on a real partition's quality report."""
import pytest

from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.partition.quality import QualityReport
from gnndist.partitioners import resolve_partitioner
from gnndist.plan import Cluster, PartLoad, Workload, from_quality, predict
from gnndist.plan.model import allreduce_bytes_per_worker, halo_bytes_per_epoch, overlapped_step

PARTS = [PartLoad(owned_nodes=100, owned_edges=1000, halo_nodes=20, send_rows=30, train_nodes=50), PartLoad(100, 800, 30, 20, 50)]


def workload(strategy="sync", options=None, mode="fullgraph", parts=PARTS) -> Workload:
    return Workload(mode=mode, model="sage", widths=[8, 16, 4], parts=parts, num_params=1000, strategy=strategy, strategy_options=options or {})


def test_fullgraph_epoch_by_hand(calibration):
    cluster = Cluster(same_machine=False, cores_per_worker=1, network_gbps=8, latency_s=1e-5)  # 8 Gb/s = 1e9 B/s
    prediction = predict(workload(), calibration, cluster)
    # rank 0: layer 0 (8 -> 16) aggregates 1000 edges x 8, then 2 maps x 2 flops x 100 rows x 8x16; layer 1 (16 -> 4)
    # maps its 100 owned rows by [W_l | W_r] first (2 flops x 16 x 8) and aggregates 1000 edges x 4
    forward = (2 * 2 * 100 * 8 * 16 + 2 * 100 * 16 * 8) / 1e10 + 1000 * (8 + 4) * 1e-9
    compute = forward * 3.0 + 0.001
    halo_bytes = 2 * (20 + 30) * 4 * 4  # layer 1's 4-wide neighbour rows (h W_l; h W_r serves owned rows only), forward and back, all workers
    assert prediction.halo_bytes == halo_bytes
    halo_s = halo_bytes * (30 / 50) / 1e9 + 2 * 1 * 1e-5  # rank 0 sends 30 of the 50 rows; 2 all-to-alls, 1 peer
    grad_s = 1000 * 4 * 2 * 1 / 2 / 1e9 + 2 * 1e-5
    assert prediction.slowest_rank == 0
    assert prediction.compute_s == pytest.approx(compute)
    assert prediction.epoch_s == pytest.approx(compute + halo_s + grad_s)
    assert prediction.grad_bytes == 2 * allreduce_bytes_per_worker(1000, 2) == 2 * 4000


def test_strategies_scale_or_hide_bytes(calibration):
    cluster = Cluster(same_machine=False, cores_per_worker=1, network_gbps=0.001)  # a slow link: communication dominates
    sync, stale = predict(workload("sync"), calibration, cluster), predict(workload("stale"), calibration, cluster)
    assert stale.halo_bytes == sync.halo_bytes and stale.epoch_s < sync.epoch_s
    assert stale.comm_s == pytest.approx(sync.comm_s - stale.compute_s, rel=1e-6)  # stale hides the halo behind compute
    assert predict(workload("sampled", {"p": 0.25}), calibration, cluster).halo_bytes == sync.halo_bytes // 4
    assert predict(workload("quantized", {"bits": 8}), calibration, cluster).halo_bytes == int(sync.halo_bytes * (8 / 32 + 2 / (4 * 4)))  # 4-wide rows


def test_workers_on_one_machine_share_its_cores(calibration):
    alone = Cluster(same_machine=False, cores_per_worker=2, network_gbps=100)
    shared = Cluster(same_machine=True, cores_per_worker=2, machine_cores=2)
    assert alone.effective_cores(4) == 2 and shared.effective_cores(4) == 0.5
    assert calibration.speedup(0.5) == 0.5 and calibration.speedup(3) == 2.0  # efficiency 0.5 per extra core
    on_shared, on_own = predict(workload(), calibration, shared), predict(workload(), calibration, alone)
    assert (on_shared.compute_s - 0.001) == pytest.approx((on_own.compute_s - 0.001) * 1.5)  # 1 core each instead of 2 (speedup 1.5)


def test_bytes_equal_the_quality_reports_exchange_times_layers_times_two(calibration):
    graph = load_dataset("sbm", num_nodes=600, avg_degree=6, feature_dim=8, num_classes=4, seed=0)
    config = load_config(None, ["model.hidden=16", "model.layers=3"])
    quality = QualityReport.compute(graph, resolve_partitioner("random").partition(graph, 3, seed=0), feature_width=16)
    work = from_quality(config, quality, 8, 4, mode="fullgraph", strategy="sync")
    # sage 8-16-16-4: layer 1 exchanges its activated 16-wide rows, layer 2 narrows to 4 and exchanges h W_l (4)
    assert halo_bytes_per_epoch(work) == quality.exchange_bytes_per_layer * (16 + 4) // 16 * 2
    assert work.num_params > 0 and [p.owned_nodes for p in work.parts] == quality.owned_nodes


def test_minibatch_counts_steps_and_remote_rows(calibration):
    work = Workload(mode="minibatch", model="sage", widths=[8, 16, 4], parts=PARTS, num_params=1000, edge_cut_fraction=0.5, batch_size=40, fanouts=[2, 2])
    prediction = predict(work, calibration, Cluster(same_machine=False, cores_per_worker=1, network_gbps=8))
    assert prediction.steps == 3  # 100 training nodes in batches of 40
    assert prediction.halo_bytes > 0 and prediction.epoch_s > 0
    alone = Workload(mode="minibatch", model="sage", widths=[8, 16, 4], parts=[PARTS[0]], num_params=1000, batch_size=40, fanouts=[2, 2])
    assert predict(alone, calibration, Cluster(same_machine=True, cores_per_worker=1, machine_cores=1)).halo_bytes == 0


def test_prefetching_adds_the_loaders_core_seconds_to_a_step_that_fills_the_cores():
    assert overlapped_step(1.0, 0.4, 2) == pytest.approx(1.2)  # training fills both cores; the loader's 0.4 core-s on top
    assert overlapped_step(0.2, 1.0, 2) == pytest.approx(1.0)  # never shorter than the loader
    assert overlapped_step(1.0, 0.4, 4) == pytest.approx(1.1)
    assert overlapped_step(1.0, 0.4, 1) == overlapped_step(1.0, 0.4, 0.5) == pytest.approx(1.4)  # one core: turns


def test_bad_workloads_name_what_is_wrong():
    with pytest.raises(ValueError, match="Unknown comm.strategy 'nope'"):
        workload("nope")
    with pytest.raises(ValueError, match="network-gbps"):
        Cluster(same_machine=False, cores_per_worker=1, network_gbps=-1)


def test_fullgraph_worker_memory_by_hand(calibration):
    """The part is held once: its file streams into its tensors (no second copy of features and CSR)."""
    memory = predict(workload(), calibration, Cluster(same_machine=True, cores_per_worker=1)).memory
    # the larger part (rank 1: 130 local rows, 800 edges); rank 0 has 120 rows but 1000 edges
    rows = {0: 120, 1: 130}
    edges = {0: 1000, 1: 800}
    totals = {}
    for rank in (0, 1):
        features, csr = rows[rank] * 8 * 4, (100 + 1 + edges[rank]) * 8
        activations = 2 * rows[rank] * ((8 + 16) + (16 + 4)) * 4 * 2.0
        exchange = 2 * 30 * 4 * 4  # layer 1 exchanges h W_l: 4 wide
        totals[rank] = 400 * 2**20 + features + csr + activations + exchange + 1000 * 4 * 4
    assert memory["total"] == max(totals.values())
    assert set(memory) == {"runtime", "features", "structure", "activations", "exchange", "parameters", "total"}


def test_fanouts_per_relation_are_refused_by_the_planner():
    from gnndist.plan.workload import hop_fanouts

    assert hop_fanouts(load_config(None, ["mode=minibatch", "train.fanouts=[4, 2]"])) == [4, 2]
    config = load_config(None, ["mode=minibatch", "train.fanouts={author__writes__paper: [4, 2]}"])
    with pytest.raises(ValueError, match=r"train.fanouts=\{'author__writes__paper': \[4, 2\]\} is a mapping per relation: the planner models a list per hop"):
        hop_fanouts(config)
