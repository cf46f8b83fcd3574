"""A job on a chunked dataset: the driver never loads the graph, and training equals the same job on the in-memory graph."""
from __future__ import annotations

import json

import pytest

from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.data.chunked import ChunkedGraph, GraphEdges, write_chunked
from gnndist.launch.job import run_job

GRAPH = dict(num_nodes=600, avg_degree=6, num_classes=3, feature_dim=8, seed=3)
JOB = ["train.epochs=3", "train.batch_size=64", "model.dropout=0.0", "model.hidden=16", "partition.parts=2", "cluster.timeout_s=120"]


@pytest.fixture(scope="module")
def chunks(tmp_path_factory):
    directory = tmp_path_factory.mktemp("chunked") / "sbm"
    write_chunked(GraphEdges(load_dataset("sbm", **GRAPH)), directory, chunk_edges=700, chunk_nodes=128)
    return directory


def _losses(summary_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (summary_dir / "metrics.jsonl").read_text().splitlines()]


def _in_memory(mode: str, tmp_path, *extra: str) -> list[float]:
    options = [f"dataset.{key}={value}" for key, value in GRAPH.items()]
    out = tmp_path / f"memory-{mode}"
    run_job(load_config(None, [*JOB, f"mode={mode}", "dataset.name=sbm", *options, *extra, f"output.dir={out}"]), progress=False)
    return _losses(out)


@pytest.mark.parametrize("mode", ["fullgraph", "minibatch"])
def test_a_chunked_run_never_loads_the_graph_in_the_driver_and_equals_the_in_memory_run(ray_session, chunks, tmp_path, monkeypatch, mode):
    # The same assignment on both sides (METIS, in one Ray task for the chunked graph), so the same parts; the
    # chunked run partitions into its own folder (the default one, keyed by the same fingerprint, would be reused).
    expected = _in_memory(mode, tmp_path, "partition.method=metis")

    def refuse(*args, **kwargs):
        raise AssertionError("the driver loaded the whole graph")

    monkeypatch.setattr(ChunkedGraph, "to_graph", refuse)  # this process only: Ray tasks and workers are other processes
    monkeypatch.setattr(ChunkedGraph, "in_degrees", refuse)  # aggregation=auto reads meta.json's degree_stats
    monkeypatch.setattr("gnndist.data.load_dataset", refuse)
    monkeypatch.setattr("gnndist.data.registry.load_dataset", refuse)
    out = tmp_path / f"chunked-{mode}"
    summary = run_job(load_config(None, [*JOB, f"mode={mode}", f"dataset.name=chunked:{chunks}", "partition.method=metis", f"partition.dir={tmp_path / 'chunked-parts'}", f"output.dir={out}"]), progress=False)
    assert _losses(out) == pytest.approx(expected, abs=1e-6)
    assert summary["graph"]["fingerprint"] == ChunkedGraph.open(chunks).meta.fingerprint
    assert summary["memory"]["partition_task_peak_bytes"] > 0


def test_a_chunked_fullgraph_run_with_the_parallel_partitioner_equals_one_process(ray_session, chunks, tmp_path):
    expected = _in_memory("single", tmp_path)
    out = tmp_path / "parallel"
    run_job(load_config(None, [*JOB, "mode=fullgraph", f"dataset.name=chunked:{chunks}", "partition.method=parallel", f"output.dir={out}"]), progress=False)
    assert _losses(out) == pytest.approx(expected, abs=1e-4)
