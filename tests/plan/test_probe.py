"""Measured batch shapes (gnndist.plan.probe): what the sampler really draws, and how the cost model uses it."""
import math

import torch

from gnndist.data import load_dataset
from gnndist.plan import Cluster, PartLoad, Workload, predict
from gnndist.plan.model import FLOAT_BYTES, minibatch_layers
from gnndist.plan.probe import BatchShape, probe_batches
from gnndist.sampling import NeighborSampler


def graph():
    return load_dataset("sbm", num_nodes=3000, avg_degree=8, feature_dim=8, num_classes=4, seed=0)


def test_shapes_are_the_samplers_and_remote_inputs_are_other_parts_nodes():
    g = graph()
    node_part = torch.arange(g.num_nodes) % 2
    shapes = probe_batches(g, node_part, 2, [5, 3], batch_size=256, seed=1)
    steps = math.ceil(int(g.train_mask.sum()) / 256)
    for part, shape in enumerate(shapes):
        assert shape.seeds == math.ceil(int((g.train_mask & (node_part == part)).sum()) / steps)
        assert shape.dst[-1] == shape.seeds and shape.src[1] == shape.dst[0]  # blocks chain: the seeds' layer is last
        assert shape.src[0] > shape.dst[0] and 0 < shape.remote_inputs < shape.src[0]
    # one batch of part 0, by hand: its input nodes that part 1 owns
    sampler = NeighborSampler(g.indptr, g.indices, [5, 3], seed=1)
    batch = sampler.sample(torch.arange(0, 2 * shapes[0].seeds, 2))
    assert 0.3 < int((node_part[batch.input_nodes] == 1).sum()) / shapes[0].remote_inputs < 3
    assert probe_batches(g, node_part, 2, [5, 3], batch_size=256, seed=1) == shapes  # deterministic for a seed
    alone = probe_batches(g, torch.zeros(g.num_nodes, dtype=torch.long), 1, [5, 3], batch_size=256, seed=1)
    assert alone[0].remote_inputs == 0


def test_the_model_uses_a_measured_shape_scaled_to_its_seeds(calibration):
    shape = BatchShape(seeds=10, dst=(40.0, 10.0), src=(100.0, 40.0), edges=(150.0, 50.0), remote_inputs=30.0)
    parts = [PartLoad(100, 1000, 20, 20, 50, shape), PartLoad(100, 1000, 20, 20, 50, shape)]
    work = Workload(mode="minibatch", model="sage", widths=[8, 16, 4], parts=parts, num_params=1000, edge_cut_fraction=0.5, batch_size=40, fanouts=[2, 2])
    assert minibatch_layers(work, parts[0], 20) == ([80, 20], [200, 80], [300, 100])
    prediction = predict(work, calibration, Cluster(same_machine=False, cores_per_worker=1, network_gbps=8))
    assert prediction.steps == 3  # 100 training nodes in batches of 40: 17 seeds per part and step
    assert prediction.halo_bytes == int(2 * 3 * 30.0 * 17 / 10 * 8 * FLOAT_BYTES)  # parts x steps x remote rows x row bytes
