"""partition_chunked: the Ray-shuffle build equals save_partition's, the driver never loads the graph, bad input leaves nothing."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from ray import cloudpickle

from gnndist.data import load_dataset
from gnndist.data.chunked import ChunkedGraph, GraphEdges, write_chunked
from gnndist.graph import Graph
from gnndist.partition import load_book, load_meta, load_part, save_partition
from gnndist.partitioners import Partitioner, resolve_partitioner

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import test modules: ship this one's tasks by value

TIMING_FIELDS = {"partition_time_s", "peak_memory_bytes", "memory_increase_bytes", "partition_task_peak_bytes"}


def sbm(weighted: bool) -> Graph:
    graph = load_dataset("sbm", num_nodes=300, num_classes=3, avg_degree=6, feature_dim=4, seed=2)
    if weighted:
        graph = graph.with_(edge_weight=torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(3)))
    return graph


def chunks_of(tmp_path: Path, graph: Graph) -> Path:
    folder = tmp_path / "chunks"
    write_chunked(GraphEdges(graph), folder, chunk_edges=300, chunk_nodes=70)
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def assert_same_directory(actual: Path, expected: Path, num_parts: int) -> None:
    left_book, right_book = load_book(actual), load_book(expected)
    assert torch.equal(left_book.node_part, right_book.node_part) and torch.equal(left_book.local_id, right_book.local_id)
    for part_id in range(num_parts):
        left, right = load_part(actual, part_id), load_part(expected, part_id)
        assert (left.num_owned, left.halo_hops, left.num_halo_per_hop) == (right.num_owned, right.halo_hops, right.num_halo_per_hop)
        assert left.tensors().keys() == right.tensors().keys()
        for name, tensor in right.tensors().items():
            other = left.tensors()[name]
            assert other.dtype == tensor.dtype and torch.equal(other, tensor), (part_id, name)
    left_meta, right_meta = load_meta(actual), load_meta(expected)
    left_quality, right_quality = left_meta.quality.to_dict(), right_meta.quality.to_dict()
    for name in TIMING_FIELDS:
        left_quality.pop(name), right_quality.pop(name)
    assert left_quality == right_quality
    assert left_meta.key == right_meta.key and left_meta.graph_fingerprint == right_meta.graph_fingerprint
    assert left_meta.files == right_meta.files  # byte for byte: every file's sha256


@pytest.mark.parametrize("halo_hops", [1, 2])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_ray_shuffle_build_equals_save_partition(ray_session, tmp_path, monkeypatch, halo_hops, weighted):
    from gnndist.partition.chunked_pipeline import partition_chunked

    graph = sbm(weighted)
    folder = chunks_of(tmp_path, graph)
    expected = tmp_path / "expected"
    save_partition(graph, resolve_partitioner("random").partition(graph, 3, seed=5), expected, halo_hops=halo_hops)

    def no_whole_graph(*args, **kwargs):
        raise AssertionError("the driver loaded the whole graph")

    monkeypatch.setattr(ChunkedGraph, "to_graph", no_whole_graph)  # in this (driver) process only: tasks run in Ray workers
    monkeypatch.setattr("gnndist.data.load_dataset", no_whole_graph)
    meta, reused = partition_chunked(folder, "random", 3, tmp_path / "actual", seed=5, halo_hops=halo_hops)
    assert not reused and meta.quality.partition_task_peak_bytes > 0
    assert_same_directory(tmp_path / "actual", expected, 3)
    assert leftovers(tmp_path) == []
    again, reused = partition_chunked(folder, "random", 3, tmp_path / "actual", seed=5, halo_hops=halo_hops, reuse=True)
    assert reused and again.key == meta.key


def test_existing_directory_needs_force_and_ray(ray_session, tmp_path):
    from gnndist.partition.chunked_pipeline import partition_chunked

    folder = chunks_of(tmp_path, sbm(False))
    partition_chunked(folder, "range", 2, tmp_path / "parts")
    with pytest.raises(FileExistsError, match="parts"):
        partition_chunked(folder, "range", 2, tmp_path / "parts")
    here = ray.get_runtime_context().get_node_id()
    meta, _ = partition_chunked(folder, "range", 2, tmp_path / "parts", force=True, nodes=[here, here])  # parts pinned to a node
    assert meta.num_parts == 2 and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="one Ray node per part"):
        partition_chunked(folder, "range", 2, tmp_path / "other", nodes=[here])


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("damage", ["missing", "corrupted"])
@pytest.mark.parametrize("method", ["range", "parallel"])  # the chunk fails in the route wave, or in the partitioner's bucketing
def test_bad_chunk_is_named_and_nothing_is_left(ray_session, tmp_path, damage, method):
    from gnndist.partition.chunked_pipeline import partition_chunked

    folder = chunks_of(tmp_path, sbm(False))
    bad = folder / "edges-00002" / "src.npy"
    if damage == "missing":
        bad.unlink()
    else:
        array = np.load(bad)
        array[::7] = (array[::7] + 1) % 300
        np.save(bad, array)
    error = FileNotFoundError if damage == "missing" else ValueError
    with pytest.raises(error, match=r"chunk edges-00002/src\.npy"):  # in the task that loads the graph (range) or buckets the chunk (parallel)
        partition_chunked(folder, method, 3, tmp_path / "parts")
    assert not (tmp_path / "parts").exists() and leftovers(tmp_path) == []


def test_ctrl_c_cancels_and_leaves_nothing(ray_session, tmp_path):
    from gnndist.partition.chunked_pipeline import partition_chunked

    folder = chunks_of(tmp_path, sbm(False))

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        partition_chunked(folder, "range", 3, tmp_path / "parts", progress=interrupt)
    assert not (tmp_path / "parts").exists() and leftovers(tmp_path) == []


@dataclasses.dataclass
class Greedy(Partitioner):
    """A partitioner that runs out of memory (in the Ray task that loads the graph)."""

    def _assign(self, graph, num_parts, *, seed):
        raise MemoryError("cannot allocate 1 TiB")


@ray.remote
def crash(code: int) -> dict:
    os._exit(code)  # what the kernel's OOM killer leaves behind: a worker gone without a Python error


@ray.remote
def out_of_memory() -> dict:
    raise MemoryError("cannot allocate")


def test_out_of_memory_tasks_are_named_by_their_range(ray_session, tmp_path):
    from gnndist.partition.chunked_pipeline import partition_chunked
    from gnndist.runtime.tasks import TaskGroup

    tasks = TaskGroup()
    ref = tasks.submit(out_of_memory, "node range 0..100", max_retries=0)
    # the task's own MemoryError, or (seen once in a full fast-tier run) its worker dying as it raised: either names the range
    with pytest.raises(MemoryError, match=r"node range 0\.\.100(: cannot allocate| ran out of memory or its worker died)"):
        tasks.wait([ref])
    ref = tasks.submit(crash, "edge chunk edges-00007", 1, max_retries=0)
    with pytest.raises(MemoryError, match=r"edge chunk edges-00007 ran out of memory or its worker died \(WorkerCrashedError\)"):
        tasks.wait([ref])

    folder = chunks_of(tmp_path, sbm(False))
    with pytest.raises(MemoryError, match=r"partitioner Greedy \(in-memory, whole graph\): cannot allocate 1 TiB"):
        partition_chunked(folder, Greedy(), 3, tmp_path / "parts")
    assert not (tmp_path / "parts").exists() and leftovers(tmp_path) == []


def test_partition_command_on_a_chunked_folder_uses_tasks(ray_session, tmp_path, monkeypatch, capsys):
    from gnndist.launch import cli, partition_cmd

    folder = chunks_of(tmp_path, sbm(False))

    def no_whole_graph(*args, **kwargs):
        raise AssertionError("the command loaded the whole graph")

    monkeypatch.setattr(ChunkedGraph, "to_graph", no_whole_graph)
    argv = ["partition", f"chunked:{folder}", "--method", "parallel", "--parts", "2", "--out", str(tmp_path / "parts"), "-o", "tasks=2", "-o", "refine_rounds=1"]
    assert partition_cmd.run(cli.parse_args(cli.build_parser(), argv)) == 0
    printed = capsys.readouterr()
    assert "Partition quality: parallel, 2 parts, 300 nodes" in printed.out and "largest task peak" in printed.out
    assert "as Ray tasks" in printed.err
    assert load_meta(tmp_path / "parts").options["tasks"] == 2


@pytest.mark.parametrize("num_parts, dtype", [(1, np.uint8), (4, np.uint8), (256, np.uint8), (257, np.uint16), (70_000, np.uint32)])
def test_owner_vector_is_narrow_and_groups_as_int64(num_parts, dtype):
    from gnndist.partition.chunked_pipeline import owner_vector

    node_part = np.random.default_rng(0).integers(0, num_parts, 5_000)
    owners = owner_vector(node_part, num_parts)
    assert owners.dtype == dtype
    assert np.array_equal(owners, node_part)
    assert np.array_equal(np.argsort(owners, kind="stable"), np.argsort(node_part, kind="stable"))  # the tasks' grouping order


def test_feature_rows_stream_in_blocks_as_gathered_whole(tmp_path, monkeypatch):
    """A part's feature rows pass through a small reused buffer; the blocks add up to the rows gathered whole."""
    from gnndist.partition import chunked_pipeline

    graph = ChunkedGraph.open(chunks_of(tmp_path, sbm(weighted=False)))
    ids = np.random.default_rng(0).permutation(graph.num_nodes)[:250]
    monkeypatch.setattr(chunked_pipeline, "FEATURE_BLOCK_ROWS", 16)
    rows = chunked_pipeline._feature_blocks(graph, ids)
    blocks = [block.clone() for block in rows.blocks()]  # each block is a view of the one buffer
    assert len(blocks) == 16 and rows.shape == (250, 4) and rows.dtype == torch.float32
    assert torch.equal(torch.cat(blocks), chunked_pipeline._node_rows(graph, "x", ids))
