"""Full-graph training of a heterogeneous graph on Ray workers equals single-process training (the oracle):
the homogeneous view is partitioned by a registered partitioner, each part typed again (HeteroPart)."""
import dataclasses
import json

import pytest
import ray
import torch

from gnndist.data import load_dataset
from gnndist.models import ModelSpec
from gnndist.partition import build_parts
from gnndist.partition.hetero import hetero_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.testing import assert_matches_single_process, joined_group
from gnndist.train.fullgraph import HeteroFullGraphWorkerTrainer, PartSource, start_fullgraph

EPOCHS = 5
SMALL_HSBM = dict(num_papers=300, num_authors=150, num_institutions=16, num_fields=32, seed=0)


@pytest.fixture(scope="module")
def graph():
    return load_dataset("hsbm", **SMALL_HSBM)


def test_typed_parts_cover_every_row_and_edge_once(graph):
    view = graph.to_homogeneous()
    parts = hetero_parts(graph, build_parts(view.graph, resolve_partitioner("random").partition(view.graph, 3, seed=0)))
    for node_type, nodes in graph.nodes.items():
        assert sum(part.num_owned[node_type] for part in parts) == nodes.num_nodes
    for edge_type, block in graph.edges.items():
        assert sum(part.blocks[edge_type].num_edges for part in parts) == block.num_edges
    part = parts[1]
    paper_ids = part.part.global_ids[part.rows["paper"]] - view.offsets["paper"]
    assert torch.equal(part.inputs["paper"], graph.nodes["paper"].x[paper_ids])
    assert part.inputs["field"].dtype == torch.long  # featureless: type-local ids, embedded by the model


@pytest.fixture(scope="module")
def three_workers(ray_session):
    with joined_group(3) as group:
        yield group


@pytest.mark.slow  # a 3-worker group costs ~20 s to start on a shared 2-core machine
@pytest.mark.parametrize("model, method", [("rgcn", "metis"), ("hsage", "random")])
def test_sync_on_three_workers_matches_single_process(graph, three_workers, model, method):
    view = graph.to_homogeneous()
    parts = hetero_parts(graph, build_parts(view.graph, resolve_partitioner(method).partition(view.graph, 3, seed=0)))
    spec = ModelSpec(name=model, num_features=32, num_classes=8, hidden=16, dropout=0.0, schema=graph.schema(), seed=0)
    trainer = start_fullgraph(three_workers, [PartSource(rank, object_ref=ray.put(part)) for rank, part in enumerate(parts)], spec, worker=HeteroFullGraphWorkerTrainer)
    assert_matches_single_process(graph, spec, trainer, EPOCHS)


@pytest.mark.slow  # shares the 3-worker group above
def test_every_strategy_trains_heterogeneous_parts(graph, three_workers):
    """Halo rows travel in the view's homogeneous layout, so every strategy applies to all relations at once:
    sampled with p=1 keeps every halo edge (exactly sync), the approximate ones stay near sync's accuracy,
    and the ones that promise fewer bytes send fewer."""
    from gnndist.train.loop import fit

    view = graph.to_homogeneous()
    parts = hetero_parts(graph, build_parts(view.graph, resolve_partitioner("random").partition(view.graph, 3, seed=0)))
    sources = [PartSource(rank, object_ref=ray.put(part)) for rank, part in enumerate(parts)]
    spec = ModelSpec(name="rgcn", num_features=32, num_classes=8, hidden=16, dropout=0.0, lr=0.02, schema=graph.schema(), seed=0)

    def run(strategy, options, epochs):
        trainer = start_fullgraph(three_workers, sources, spec, strategy, options, worker=HeteroFullGraphWorkerTrainer)
        result = fit(trainer, epochs, eval_every=epochs, progress=False)
        return [m.loss for m in result.history], result.final.test_acc, sum(m.bytes_sent for m in result.history)

    sync_losses, sync_accuracy, sync_bytes = run("sync", {}, 30)
    assert run("sampled", {"p": 1.0}, 3)[0] == pytest.approx(sync_losses[:3], rel=1e-6)
    for strategy, options in {"sampled": {"p": 0.5}, "quantized": {"bits": 8}, "stale": {}, "cached": {"threshold": 0.05}}.items():
        losses, accuracy, sent = run(strategy, options, 30)
        print(f"hsbm rgcn {strategy:9s} test acc {100 * accuracy:.1f} % (sync {100 * sync_accuracy:.1f} %), halo bytes {sent / sync_bytes:.2f}x sync")
        assert losses[1:] != pytest.approx(sync_losses[1:], rel=1e-7), strategy  # really not the exact exchange
        assert accuracy >= sync_accuracy - 0.05, strategy
        if strategy != "stale":
            assert sent < sync_bytes, strategy


def test_quality_report_of_a_heterogeneous_graph_has_type_balance_and_relation_cut(graph, tmp_path):
    from gnndist.hetero import edge_type_name
    from gnndist.partition import partition_graph
    from gnndist.partition.format import load_book, load_meta

    meta, _ = partition_graph(graph, "random", 3, tmp_path / "p")
    assert load_meta(tmp_path / "p").quality == meta.quality  # written with the partition, reused with it
    node_part, view = load_book(tmp_path / "p").node_part, graph.to_homogeneous()
    for node_type, balance in meta.quality.type_balance.items():
        counts = torch.bincount(node_part[view.offsets[node_type] : view.offsets[node_type] + graph.nodes[node_type].num_nodes], minlength=3)
        assert balance == pytest.approx(float(counts.max() / counts.double().mean()))
    for edge_type in graph.edge_types:
        src, dst = graph.edge_index(edge_type)
        cut = node_part[src + view.offsets[edge_type[0]]] != node_part[dst + view.offsets[edge_type[2]]]
        assert meta.quality.relation_cut[edge_type_name(edge_type)] == pytest.approx(float(cut.double().mean()))
    assert "edge cut per relation: author__writes__paper" in meta.quality.table()


def test_a_typed_partition_directory_records_every_row_and_edge_type(graph, tmp_path):
    from gnndist.partition import partition_graph
    from gnndist.partition.format import load_meta, load_part
    from gnndist.partition.hetero import HeteroPart

    partition_graph(graph, "random", 3, tmp_path / "p", halo_hops=2)
    meta, view = load_meta(tmp_path / "p"), graph.to_homogeneous()
    assert meta.types == {"node_types": view.node_types, "edge_types": [list(e) for e in view.edge_types], "offsets": view.offsets}
    for part_id in range(3):
        stored = load_part(tmp_path / "p", part_id)
        assert torch.equal(stored.node_type, view.node_type[stored.global_ids])
        untyped = dataclasses.replace(stored, node_type=None, edge_type=None)  # what a directory without types loads
        from_disk, from_view = HeteroPart.from_part(graph, view, stored), HeteroPart.from_part(graph, view, untyped)
        assert torch.equal(from_disk.edge_type, from_view.edge_type) and from_disk.edge_type.numel() == stored.num_edges
        for edge_type, block in from_view.blocks.items():
            assert torch.equal(from_disk.blocks[edge_type].indptr, block.indptr) and torch.equal(from_disk.blocks[edge_type].indices, block.indices)


def test_a_part_file_with_types_but_no_schema_is_refused(graph, tmp_path):
    from gnndist.partition import partition_graph
    from gnndist.partition.format import META_FILE, load_part

    partition_graph(graph, "random", 2, tmp_path / "p")
    meta_path = tmp_path / "p" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta["types"] = None
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"part.safetensors: 'node_type' .* needs meta.json 'types'"):
        load_part(tmp_path / "p", 0, verify=False)
