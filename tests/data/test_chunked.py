"""The chunked graph format: round trips, the reader API, streamed generators, `gnndist convert`, and every bad input."""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gnndist.data import load_dataset, save_npz
from gnndist.data.chunked import ChunkedGraph, GraphEdges, chunked_fingerprint, open_source, write_chunked
from gnndist.data.synthetic import ROW_BLOCK
from gnndist.graph import DegreeStats, Graph
from gnndist.launch import cli, convert_cmd


def convert(*argv: str) -> int:
    return convert_cmd.run(cli.parse_args(cli.build_parser(), ["convert", *argv, "--no-progress"]))


def leftovers(folder: Path) -> list[str]:
    """Hidden temp folders a writer left beside its target."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def small_sbm():
    return load_dataset("sbm", num_nodes=300, avg_degree=6, feature_dim=4)


def written(tmp_path: Path, graph=None, **kwargs) -> Path:
    out = tmp_path / "chunks"
    write_chunked(GraphEdges(graph if graph is not None else small_sbm()), out, chunk_edges=kwargs.pop("chunk_edges", 400), chunk_nodes=kwargs.pop("chunk_nodes", 128), **kwargs)
    return out


# ---------------------------------------------------------------------- round trips
def test_round_trip_keeps_the_fingerprint(tmp_path, named_graph):
    graph = named_graph
    out = written(tmp_path, graph, chunk_edges=3, chunk_nodes=2)
    meta = ChunkedGraph.open(out).meta
    assert meta.fingerprint == graph.fingerprint() == load_dataset(f"chunked:{out}").fingerprint()
    assert len(meta.edge_chunks) == -(-graph.num_edges // 3) and all(chunk.num_edges <= 3 for chunk in meta.edge_chunks)


def test_degree_stats_are_recorded_once_and_counted_for_older_folders(tmp_path):
    """``aggregation=auto`` reads the in-degree statistics from meta.json; a folder written before they were
    recorded (no ``degree_stats`` key) still loads, and counting its chunks gives the same statistics."""
    graph = small_sbm()
    out = written(tmp_path, graph)
    expected = DegreeStats.of(graph.in_degrees())
    assert ChunkedGraph.open(out).meta.degree_stats == expected == ChunkedGraph.open(out).degree_stats()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["degree_stats"] == {"max_in_degree": expected.max_in_degree, "degree_cv": expected.degree_cv}
    del meta["degree_stats"]
    (out / "meta.json").write_text(json.dumps(meta))
    older = ChunkedGraph.open(out)
    assert older.meta.degree_stats is None and older.degree_stats() == expected


@pytest.mark.parametrize("graph", [
    Graph.from_edge_index(torch.tensor([[0, 1, 2, 2], [1, 2, 0, 0]]), 5),  # no node data, a duplicate edge
    Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), 3, x=torch.ones(3, 2)),  # no edges
], ids=["edges_only", "no_edges"])
def test_round_trip_of_bare_graphs(tmp_path, graph):
    out = written(tmp_path, graph, chunk_edges=3, chunk_nodes=2)
    assert load_dataset(f"chunked:{out}").fingerprint() == graph.fingerprint() == ChunkedGraph.open(out).meta.fingerprint


def test_progress_reports_every_phase(tmp_path):
    seen = []
    write_chunked(GraphEdges(small_sbm()), tmp_path / "out", chunk_edges=500, chunk_nodes=100, progress=lambda *step: seen.append(step))
    assert [step for step in seen if step[0] == "nodes"] == [("nodes", 100, 300), ("nodes", 200, 300), ("nodes", 300, 300)]
    edges = [done for phase, done, _ in seen if phase == "edges"]
    assert edges == sorted(edges) and edges[0] == 500 and seen[-1][0] == "fingerprint" and seen[-1][1] == seen[-1][2] == edges[-1]


def test_round_trip_with_edge_weights_and_no_labels(tmp_path):
    graph = small_sbm()
    graph = graph.with_(edge_weight=torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(1)), y=None, train_mask=None, val_mask=None, test_mask=None)
    out = written(tmp_path, graph)
    loaded = load_dataset(f"chunked:{out}")
    assert loaded.fingerprint() == graph.fingerprint() and torch.equal(loaded.edge_weight, graph.edge_weight) and loaded.y is None


def test_round_trip_of_cora_and_rechunking_keep_the_fingerprint(tmp_path, planetoid_root):
    graph = load_dataset("planetoid:cora", root=str(planetoid_root))
    assert convert("planetoid:cora", str(tmp_path / "cora"), "--root", str(planetoid_root), "--chunk-edges", "3000", "--chunk-nodes", "1000") == 0
    assert load_dataset(f"chunked:{tmp_path / 'cora'}").fingerprint() == graph.fingerprint()
    assert convert(f"chunked:{tmp_path / 'cora'}", str(tmp_path / "again"), "--chunk-edges", "777") == 0
    again = ChunkedGraph.open(tmp_path / "again")
    assert again.meta.fingerprint == graph.fingerprint() and len(again.meta.edge_chunks) == -(-graph.num_edges // 777)


def test_convert_reads_npz_files_and_job_configs(tmp_path):
    graph = small_sbm()
    save_npz(graph, tmp_path / "graph.npz")
    assert convert(f"npz:{tmp_path / 'graph.npz'}", str(tmp_path / "from-npz"), "--chunk-edges", "100") == 0
    assert ChunkedGraph.open(tmp_path / "from-npz").meta.fingerprint == graph.fingerprint()
    job = tmp_path / "job.yaml"
    job.write_text("mode: single\ndataset:\n  name: sbm\n  num_nodes: 300\n  avg_degree: 6\n  feature_dim: 4\n")
    assert convert(str(job), str(tmp_path / "from-job"), "--in-memory") == 0
    assert ChunkedGraph.open(tmp_path / "from-job").meta.fingerprint == graph.fingerprint()


SMALL_HSBM = ["dataset.num_papers=300", "dataset.num_authors=150", "dataset.num_institutions=16", "dataset.num_fields=32"]


def test_a_heterogeneous_graph_round_trips_through_the_typed_variant(tmp_path):
    graph = load_dataset("hsbm", num_papers=300, num_authors=150, num_institutions=16, num_fields=32)
    assert convert("hsbm", str(tmp_path / "typed"), *SMALL_HSBM, "--chunk-edges", "1000", "--chunk-nodes", "128") == 0
    folder = ChunkedGraph.open(tmp_path / "typed")
    assert folder.types["fingerprint"] == graph.fingerprint() and folder.types["features"]["field"] == 0
    assert all("etype.npy" in chunk.files for chunk in folder.meta.edge_chunks) and len(folder.meta.edge_chunks) > 1
    loaded = load_dataset(f"chunked:{tmp_path / 'typed'}")
    assert loaded.fingerprint() == graph.fingerprint()
    for edge_type in graph.edge_types:
        assert torch.equal(loaded.edge_index(edge_type), graph.edge_index(edge_type))
    assert torch.equal(loaded.nodes["author"].x, graph.nodes["author"].x) and loaded.nodes["field"].x is None
    # re-chunking keeps the types; streaming readers see the view (what the partitioners cut)
    assert convert(f"chunked:{tmp_path / 'typed'}", str(tmp_path / "again"), "--chunk-edges", "777") == 0
    assert load_dataset(f"chunked:{tmp_path / 'again'}").fingerprint() == graph.fingerprint()
    assert folder.info().num_nodes == graph.num_nodes and folder.info().num_features == 32


def test_a_typed_folder_trains_like_the_heterogeneous_graph(tmp_path):
    from gnndist.config import load_config
    from gnndist.launch.job import run_job

    assert convert("hsbm", str(tmp_path / "typed"), *SMALL_HSBM) == 0
    common = ["mode=single", "model.name=rgcn", "train.epochs=2", "model.hidden=8", "train.num_threads=1"]
    run_job(load_config(None, [*common, "dataset.name=hsbm", *SMALL_HSBM, f"output.dir={tmp_path / 'memory'}"]), progress=False)
    run_job(load_config(None, [*common, f"dataset.name=chunked:{tmp_path / 'typed'}", f"output.dir={tmp_path / 'chunked'}"]), progress=False)

    def losses(run: str) -> list[float]:
        return [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("memory") == losses("chunked") and len(losses("memory")) == 2


def test_a_damaged_relation_chunk_is_named(tmp_path):
    assert convert("hsbm", str(tmp_path / "typed"), *SMALL_HSBM, "--chunk-edges", "1000") == 0
    path = tmp_path / "typed" / "edges-00001" / "etype.npy"
    values = np.load(path)
    values[0] = 99
    np.save(path, values)
    with pytest.raises(ValueError, match="chunk edges-00001/etype.npy: relation id 99 out of range \\[0, 8\\)"):
        ChunkedGraph.open(tmp_path / "typed", verify=False).to_hetero()
    with pytest.raises(ValueError, match="chunk edges-00001/etype.npy: sha256 mismatch"):
        load_dataset(f"chunked:{tmp_path / 'typed'}")


def test_fingerprint_from_chunks_does_not_depend_on_the_sort_budget(tmp_path):
    """The streamed fingerprint sorts destination ranges of at most ``budget`` edges: any budget gives Graph.fingerprint()."""
    source = open_source("sbm", {"num_nodes": 400, "feature_dim": 3})  # random edge order: every range reads every chunk
    out = tmp_path / "s"
    meta = write_chunked(source, out, chunk_edges=500)
    graph = ChunkedGraph.open(out)
    assert {chunked_fingerprint(graph, budget) for budget in (1, 37, 1000, 10**6)} == {meta.fingerprint}
    assert graph.to_graph().fingerprint() == meta.fingerprint


def test_same_training_losses_from_chunks(tmp_path):
    from gnndist.config import load_config
    from gnndist.launch.job import run_job

    options = ["dataset.num_nodes=300", "dataset.feature_dim=8", "dataset.avg_degree=6"]
    assert convert("sbm", str(tmp_path / "chunks"), "--in-memory", *options, "--chunk-edges", "500") == 0
    common = ["mode=single", "train.epochs=3", "model.hidden=8", "train.num_threads=1"]
    run_job(load_config(None, [*common, *options, f"output.dir={tmp_path / 'memory'}"]), progress=False)
    run_job(load_config(None, [*common, f"dataset.name=chunked:{tmp_path / 'chunks'}", f"output.dir={tmp_path / 'chunked'}"]), progress=False)

    def losses(run: str) -> list[float]:
        return [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("memory") == losses("chunked") and len(losses("memory")) == 3


# ---------------------------------------------------------------------- reader API
def test_reader_memory_maps_chunks_and_reads_row_ranges(tmp_path):
    graph = small_sbm()
    chunks = ChunkedGraph.open(written(tmp_path, graph))
    block = chunks.edge_chunk(1)
    assert isinstance(block.src, np.memmap) and isinstance(block.dst, np.memmap)
    src = np.concatenate([b.src for b in chunks.edge_blocks()])
    assert np.array_equal(src, graph.indices.numpy())  # a converted Graph is written in CSR order
    for start, stop in ((0, 300), (100, 260), (127, 129), (5, 5)):
        assert np.array_equal(chunks.node_rows("x", start, stop), graph.x[start:stop].numpy())
        assert np.array_equal(chunks.node_rows("train_mask", start, stop), graph.train_mask[start:stop].numpy())
    assert chunks.meta.node_data["x"].row_shape == (4,) and chunks.meta.num_classes == graph.num_classes
    chunks.verify()
    chunks.verify("nodes-00001")
    with pytest.raises(KeyError, match="no chunk 'edges-99999'"):
        chunks.verify("edges-99999")
    with pytest.raises(KeyError, match="no node field 'z'"):
        chunks.node_rows("z", 0, 1)


# ---------------------------------------------------------------------- streamed generators
@pytest.mark.parametrize("spec, options", [("sbm", {"num_nodes": 3000, "feature_dim": 3}), ("rmat", {"scale": 10, "edge_factor": 4, "feature_dim": 3})])
def test_streamed_generator_is_seeded_and_independent_of_chunk_sizes(tmp_path, spec, options):
    first = write_chunked(open_source(spec, options), tmp_path / "a", chunk_edges=1000, chunk_nodes=300)
    second = write_chunked(open_source(spec, options), tmp_path / "b", chunk_edges=4567, chunk_nodes=1024)
    other_seed = write_chunked(open_source(spec, {**options, "seed": 1}), tmp_path / "c", chunk_edges=1000)
    assert first.fingerprint == second.fingerprint != other_seed.fingerprint
    assert first.source == {"dataset": spec, "options": options, "streamed": True}
    graph = load_dataset(f"chunked:{tmp_path / 'a'}")
    assert graph.fingerprint() == first.fingerprint and graph.num_classes == 8 and int(graph.train_mask.sum()) == graph.num_nodes // 4
    src, dst = graph.indices, graph.dst()
    assert torch.equal(torch.sort(src * graph.num_nodes + dst).values, torch.sort(dst * graph.num_nodes + src).values)  # every edge both ways
    assert not bool((src == dst).any())


def test_streamed_feature_rows_do_not_depend_on_the_ranges_asked():
    source = open_source("sbm", {"num_nodes": ROW_BLOCK + 500, "feature_dim": 2, "avg_degree": 1})
    whole = source.node_rows("x", 0, source.num_nodes)
    cuts = [0, 7, ROW_BLOCK - 1, ROW_BLOCK + 3, source.num_nodes]
    assert np.array_equal(np.concatenate([source.node_rows("x", lo, hi) for lo, hi in zip(cuts, cuts[1:])]), whole)
    assert whole.dtype == np.float32 and whole.shape == (ROW_BLOCK + 500, 2)


@pytest.mark.slow
def test_streamed_conversion_holds_a_bounded_amount_of_memory(tmp_path):
    """rmat scale 20, edge factor 8: 16.8M directed edges, 268 MB of src + dst, written in chunks of 2**18 edges;
    the process's peak RSS grows by well under the edges' size."""
    script = f"""
import resource, sys
from gnndist.data.chunked import open_source, write_chunked
source = open_source("rmat", {{"scale": 20, "edge_factor": 8, "feature_dim": 2}})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
meta = write_chunked(source, {str(tmp_path / 'big')!r}, chunk_edges=1 << 18)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(meta.num_edges, before, after)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    num_edges, before_kb, after_kb = map(int, result.stdout.split())
    edge_mb, growth_mb = num_edges * 16 / 2**20, (after_kb - before_kb) / 1024
    assert edge_mb > 250 and growth_mb < 150, (edge_mb, growth_mb)


# ---------------------------------------------------------------------- bad input
def damage(out: Path, relative: str, how: str) -> None:
    """Damages one chunk file: removes it, flips a byte, or rewrites it as a valid .npy (and fixes meta's checksum)."""
    path = out / relative
    if how == "missing":
        path.unlink()
    elif how == "flipped":
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        array = np.load(path)
        array = np.append(array, array[:1], axis=0) if how == "shape" else np.where(np.arange(array.size) == 2, 10**6, array)
        np.save(path, array)
        meta = json.loads((out / "meta.json").read_text())
        folder, file = relative.split("/")
        chunk = next(c for c in meta["edge_chunks"] + meta["node_chunks"] if c["name"] == folder)
        chunk["files"][file] = hashlib.sha256(path.read_bytes()).hexdigest()
        (out / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("relative, how, error, message", [
    ("edges-00002/src.npy", "missing", FileNotFoundError, "chunk edges-00002/src.npy is missing"),
    ("edges-00002/dst.npy", "flipped", ValueError, "chunk edges-00002/dst.npy: sha256 mismatch \\(expected [0-9a-f]{64}, got [0-9a-f]{64}\\)"),
    ("edges-00001/src.npy", "ids", ValueError, "chunk edges-00001/src.npy: node id 1000000 out of range \\[0, 300\\)"),
    ("nodes-00001/x.npy", "shape", ValueError, "chunk nodes-00001/x.npy: expected dtype float32 and shape \\(128, 4\\) \\(got float32, \\(129, 4\\)\\)"),
    ("nodes-00002/y.npy", "flipped", ValueError, "chunk nodes-00002/y.npy: sha256 mismatch"),
])
def test_bad_chunks_are_errors_naming_the_chunk(tmp_path, relative, how, error, message):
    out = written(tmp_path)
    damage(out, relative, how)
    with pytest.raises(error, match=message):
        load_dataset(f"chunked:{out}")
    with pytest.raises(error, match=message):
        ChunkedGraph.open(out).verify(relative.split("/")[0])
    # halfway through a conversion: no output folder, no temp folder left, the chunk named
    with pytest.raises(error, match=message):
        convert(f"chunked:{out}", str(tmp_path / "converted"), "--chunk-edges", "150")
    assert not (tmp_path / "converted").exists() and leftovers(tmp_path) == []


def test_bad_meta_json_is_an_error_naming_the_file(tmp_path):
    out = written(tmp_path)
    meta = json.loads((out / "meta.json").read_text())
    for change, message in (
        ({"format": "other"}, "is not the meta.json of a chunked graph"),
        ({"format_version": 99}, "has format_version 99, newer than this gnndist"),
        ({"num_edges": 1}, "the edge chunks hold \\d+ edges, 'num_edges' says 1"),
        ({"node_chunks": meta["node_chunks"][1:]}, "the node chunks do not cover nodes 0..300"),
        ({"node_data": {**meta["node_data"], "x": {"dtype": "object", "shape": [4]}}}, "node field 'x' has dtype object; expected bool, integer or float"),
        ({"edge_chunks": None}, "malformed chunk list, node_data or degree_stats"),
        ({"degree_stats": {"max_in_degree": 3}}, "malformed chunk list, node_data or degree_stats \\(KeyError"),
    ):
        (out / "meta.json").write_text(json.dumps({**meta, **change}))
        with pytest.raises(ValueError, match=re.escape(str(out / "meta.json")) + ".*" + message):
            ChunkedGraph.open(out)
    (out / "meta.json").write_text(json.dumps({**meta, "fingerprint": "0" * 16}))
    with pytest.raises(ValueError, match="fingerprint 0{16} does not match the loaded graph's [0-9a-f]{16}"):
        load_dataset(f"chunked:{out}")
    (out / "meta.json").write_text(json.dumps({key: value for key, value in meta.items() if key != "chunk_nodes"}))
    with pytest.raises(ValueError, match="lacks key\\(s\\) \\['chunk_nodes'\\]"):
        ChunkedGraph.open(out)
    (out / "meta.json").write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        ChunkedGraph.open(out)
    (out / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="meta.json is missing"):
        load_dataset(f"chunked:{out}")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(f"chunked:{tmp_path / 'nowhere'}")


def test_chunk_sizes_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="Expected chunk_edges to be an integer >= 1 \\(got 0\\)"):
        written(tmp_path, chunk_edges=0)
    assert not (tmp_path / "chunks").exists()


def test_force_replaces_only_what_gnndist_wrote(tmp_path):
    out = written(tmp_path)
    with pytest.raises(FileExistsError, match="already exists; pass --force"):
        convert("sbm", str(out), "dataset.num_nodes=200")
    assert convert("sbm", str(out), "dataset.num_nodes=200", "dataset.feature_dim=2", "--force") == 0
    assert ChunkedGraph.open(out).meta.num_nodes == 200
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a chunked graph gnndist wrote"):
        convert("sbm", str(mine), "dataset.num_nodes=200", "--force")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_interrupt_leaves_nothing(tmp_path):
    """KeyboardInterrupt between two chunks (what Ctrl-C raises) removes the temp folder; no output appears."""
    def interrupt(phase: str, done: int, total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_chunked(open_source("sbm", {"num_nodes": 2000, "feature_dim": 2}), tmp_path / "out", chunk_edges=1000, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_on_the_command_leaves_nothing(tmp_path):
    """A real `gnndist convert` process sent SIGINT while writing chunks exits 130 and leaves no folder."""
    command = [sys.executable, "-m", "gnndist.launch.cli", "convert", "sbm", str(tmp_path / "out"), "dataset.num_nodes=400000", "dataset.feature_dim=2", "--chunk-edges", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.monotonic() + 120
    while not any((path / "edges-00003").exists() for path in tmp_path.iterdir()) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "gnndist: interrupted" in stderr
    assert list(tmp_path.iterdir()) == []


def test_help_and_arguments(tmp_path, capsys):
    with pytest.raises(ValueError, match="Expected SOURCE and OUT \\(got 1 positional argument\\(s\\): sbm\\)"):
        convert("sbm")
    assert cli.main(["convert", "sbm", str(tmp_path / "x"), "dataset.nope=1"]) == 1
    assert "Unknown option 'nope' for dataset 'sbm'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_in_a_terminal_progress_bars(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert convert_cmd.run(cli.parse_args(cli.build_parser(), ["convert", "sbm", str(tmp_path / "out"), "dataset.num_nodes=2000", "dataset.feature_dim=2", "--chunk-edges", "5000"])) == 0
    printed = capsys.readouterr()
    assert "writing edge chunks" in printed.err and "writing node chunks" in printed.err and "fingerprinting" in printed.err
    assert f"wrote {tmp_path / 'out'} (fingerprint " in printed.out


def test_a_partition_of_the_chunked_graph_carries_its_fingerprint(tmp_path):
    """meta.json's fingerprint is the identity partition directories record for the graph the folder loads to."""
    from gnndist.launch import partition_cmd
    from gnndist.partition import load_meta

    meta = write_chunked(open_source("rmat", {"scale": 8, "edge_factor": 4, "feature_dim": 2}), tmp_path / "chunks", chunk_edges=500)
    args = cli.parse_args(cli.build_parser(), ["partition", f"chunked:{tmp_path / 'chunks'}", "--method", "random", "--parts", "2", "--out", str(tmp_path / "parts")])
    assert partition_cmd.run(args) == 0
    assert load_meta(tmp_path / "parts").graph_fingerprint == meta.fingerprint
