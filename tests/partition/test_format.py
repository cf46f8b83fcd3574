"""On-disk partition directories: round trip for every partitioner, atomic writes, bad input."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.partition import (
    FORMAT_VERSION,
    PartitionBook,
    QualityReport,
    assemble_graph,
    load_book,
    load_meta,
    load_part,
    partition_graph,
    save_partition,
)
from gnndist.partitioners import available_partitioners, resolve_partitioner

METHODS = ["fennel", "hdrf", "kahip", "kaminpar", "ldg", "metis", "parallel", "random", "range"]


def seeded_sbm() -> Graph:
    graph = load_dataset("sbm", num_nodes=300, num_classes=3, avg_degree=6, feature_dim=4, seed=2)
    return graph.with_(edge_weight=torch.rand(graph.num_edges, generator=torch.Generator().manual_seed(3)))


def assert_same_graph(actual: Graph, expected: Graph) -> None:
    assert torch.equal(actual.indptr, expected.indptr) and torch.equal(actual.indices, expected.indices)
    for name in ("x", "y", "train_mask", "val_mask", "test_mask", "edge_weight"):
        left, right = getattr(actual, name), getattr(expected, name)
        assert (left is None) == (right is None), name
        if left is not None:
            assert left.dtype == right.dtype and torch.equal(left, right), name


def write(tmp_path, graph=None, method="metis", num_parts=2, **kwargs):
    graph = graph if graph is not None else seeded_sbm()
    result = resolve_partitioner(method).partition(graph, num_parts, seed=0)
    directory = tmp_path / "parts"
    return graph, result, directory, save_partition(graph, result, directory, **kwargs)


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_named_graphs(method, named_graph, tmp_path):
    for num_parts in (2, 3):
        directory = tmp_path / f"p{num_parts}"
        result = resolve_partitioner(method).partition(named_graph, num_parts, seed=0)
        save_partition(named_graph, result, directory)
        parts = [load_part(directory, i) for i in range(num_parts)]
        assert_same_graph(assemble_graph(parts), named_graph)
        assert torch.equal(load_book(directory).node_part, result.node_part)


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_seeded_sbm_with_masks_and_weights(method, tmp_path):
    graph, result, directory, meta = write(tmp_path, method=method, num_parts=4, halo_hops=2)
    parts = [load_part(directory, i) for i in range(4)]
    assert_same_graph(assemble_graph(parts), graph)
    for part in parts:
        assert part.halo_hops == 2 and len(part.num_halo_per_hop) == 2
        assert bool((part.halo_owner != part.part_id).all())
    book = load_book(directory)
    assert torch.equal(book.node_part, result.node_part)
    assert meta.quality.vertex_cut_replication_factor is None or method == "hdrf"


def test_meta_json_describes_the_partition(tmp_path):
    graph, result, directory, meta = write(tmp_path, num_parts=3, feature_width=32)
    stored = json.loads((directory / "meta.json").read_text())
    assert stored["format_version"] == FORMAT_VERSION
    assert stored["graph_fingerprint"] == graph.fingerprint()
    assert (stored["method"], stored["options"], stored["seed"]) == ("metis", result.options, 0)
    assert (stored["num_parts"], stored["halo_hops"]) == (3, 1)
    assert stored["quality"]["feature_width"] == 32 and stored["quality"]["edges_cut"] == meta.quality.edges_cut
    expected_files = {"book.safetensors"} | {f"part-{i:05d}/{name}" for i in range(3) for name in ("part.safetensors", "part.json")}
    assert set(stored["files"]) == expected_files
    for relative, digest in stored["files"].items():
        assert hashlib.sha256((directory / relative).read_bytes()).hexdigest() == digest
    assert load_meta(directory) == meta
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]  # no temp directory left behind


def test_existing_directory_needs_force(tmp_path):
    graph, _, directory, first = write(tmp_path)
    other = resolve_partitioner("random").partition(graph, 3, seed=0)
    with pytest.raises(FileExistsError, match=r"Partition directory .*parts already exists; pass --force"):
        save_partition(graph, other, directory)
    assert load_meta(directory).method == "metis"
    save_partition(graph, other, directory, force=True)
    replaced = load_meta(directory)
    assert (replaced.method, replaced.num_parts) == ("random", 3)
    assert not (directory / "part-00002").exists() or load_part(directory, 2).part_id == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path):
    graph = seeded_sbm()
    result = resolve_partitioner("random").partition(graph, 4, seed=0)

    def interrupt_after_two(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_partition(graph, result, tmp_path / "parts", progress=interrupt_after_two)
    assert list(tmp_path.iterdir()) == []

    save_partition(graph, result, tmp_path / "parts")
    with pytest.raises(KeyboardInterrupt):
        save_partition(graph, result, tmp_path / "parts", force=True, progress=interrupt_after_two)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]
    assert load_part(tmp_path / "parts", 3).num_parts == 4  # the old directory is intact


def test_corrupted_part_file_is_named(tmp_path):
    _, _, directory, _ = write(tmp_path)
    path = directory / "part-00001" / "part.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Checksum mismatch for .*part-00001/part.safetensors: expected sha256"):
        load_part(directory, 1)
    assert load_part(directory, 0).part_id == 0  # other parts still load
    with pytest.raises(ValueError, match="part-00001/part.safetensors is not a readable safetensors file"):
        path.write_bytes(b"garbage")
        load_part(directory, 1, verify=False)


def test_book_loads_its_two_arrays_and_checks_them(tmp_path):
    graph, result, directory, _ = write(tmp_path, num_parts=3)
    book = load_book(directory)
    expected = PartitionBook.from_assignment(result.node_part, 3)
    assert torch.equal(book.to_local(torch.arange(graph.num_nodes))[1], expected.local_id)
    assert "_owned_by_part" not in vars(book)  # routing by global id needs only node_part and local_id
    assert torch.equal(book.owned_nodes(1), expected.owned_nodes(1))
    path = directory / "book.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Checksum mismatch for .*book.safetensors: expected sha256"):
        load_book(directory)
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="book.safetensors is not a readable safetensors file"):
        load_book(directory, verify=False)


def test_missing_files_are_named(tmp_path):
    _, _, directory, _ = write(tmp_path)
    (directory / "part-00000" / "part.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"Partition file .*part-00000/part.json is missing"):
        load_part(directory, 0)
    (directory / "book.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"Partition file .*book.safetensors is missing"):
        load_book(directory)
    (directory / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta.json is missing: .* is not a complete partition directory"):
        load_part(directory, 1)
    with pytest.raises(FileNotFoundError, match="Partition directory .*nowhere does not exist"):
        load_meta(tmp_path / "nowhere")


def test_truncated_meta_json(tmp_path):
    _, _, directory, _ = write(tmp_path)
    meta_path = directory / "meta.json"
    meta_path.write_text(meta_path.read_text()[:100])
    with pytest.raises(ValueError, match=r"meta.json is not valid JSON \(truncated or corrupted\?\)"):
        load_part(directory, 0)


def test_format_version_from_the_future(tmp_path):
    _, _, directory, _ = write(tmp_path)
    meta_path = directory / "meta.json"
    stored = json.loads(meta_path.read_text())
    stored["format_version"] = FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=rf"has format_version {FORMAT_VERSION + 1}, newer than this gnndist .* reads \(<= {FORMAT_VERSION}\)"):
        load_meta(directory)
    del stored["format_version"]
    meta_path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="expected an integer 'format_version' \\(got None\\)"):
        load_meta(directory)


def test_meta_json_missing_keys(tmp_path):
    _, _, directory, _ = write(tmp_path)
    meta_path = directory / "meta.json"
    stored = json.loads(meta_path.read_text())
    del stored["num_parts"]
    meta_path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match=r"meta.json lacks key\(s\) \['num_parts'\]"):
        load_meta(directory)


@pytest.mark.parametrize("part_id", [-1, 2, "0"])
def test_part_id_out_of_range(part_id, tmp_path):
    _, _, directory, _ = write(tmp_path)
    with pytest.raises(ValueError, match=r"Expected part_id in \[0, 1\]"):
        load_part(directory, part_id)


def test_graph_and_result_must_match(tmp_path):
    result = resolve_partitioner("random").partition(seeded_sbm(), 2)
    other = load_dataset("sbm", num_nodes=100, num_classes=2, seed=0)
    with pytest.raises(ValueError, match="The partitioning covers 300 nodes but the graph has 100"):
        save_partition(other, result, tmp_path / "parts")
    with pytest.raises(ValueError, match=r"Expected halo_hops >= 1 \(got 0\)"):
        save_partition(seeded_sbm(), result, tmp_path / "parts", halo_hops=0)
    assert list(tmp_path.iterdir()) == []


def test_quality_report_round_trip_and_table(tmp_path):
    clique = torch.cartesian_prod(torch.arange(5), torch.arange(5))
    clique = clique[clique[:, 0] != clique[:, 1]]
    graph = Graph.from_edge_index(torch.cat([clique, clique + 5, torch.tensor([[0, 5], [5, 0]])]).t(), 10, x=torch.ones(10, 4))
    result = resolve_partitioner("metis").partition(graph, 2)
    report = QualityReport.compute(graph, result)
    assert (report.edges_cut, report.undirected_edges_cut, report.halo_nodes, report.send_rows) == (2, 1, [1, 1], [1, 1])
    assert report.exchange_bytes_per_layer == 2 * 4 * 4 and report.replication_factor == 1.2
    assert report.node_balance == 1.0 and report.train_nodes is None and report.train_balance is None
    assert QualityReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    table = report.table()
    assert "edge cut: 2 of 42 directed edges (4.76 %), 1 undirected" in table
    assert "exchange per full-graph layer: 32 B at width 4 (fp32)" in table
    with pytest.raises(ValueError, match=r"missing \['seed'\]"):
        QualityReport.from_dict({k: v for k, v in report.to_dict().items() if k != "seed"})


def test_partition_graph_writes_and_reuses(tmp_path):
    graph = seeded_sbm()
    meta, reused = partition_graph(graph, "ldg", 3, tmp_path / "p", options={"passes": 2})
    assert not reused and meta.options["passes"] == 2
    again, reused = partition_graph(graph, "ldg", 3, tmp_path / "p", options={"passes": 2}, reuse=True)
    assert reused and again.key == meta.key
    with pytest.raises(FileExistsError, match="holds a different partition"):
        partition_graph(graph, "ldg", 3, tmp_path / "p", seed=1, reuse=True)
    with pytest.raises(FileExistsError, match="already exists"):
        partition_graph(graph, "ldg", 3, tmp_path / "p")
    with pytest.raises(KeyError, match="Unknown partitioner 'nope'; available"):
        partition_graph(graph, "nope", 3, tmp_path / "q")


def test_every_method_is_listed():
    assert set(METHODS) <= set(available_partitioners())


# --- force replaces only what gnndist wrote, atomically (issue 16, item 5) --------------------------------
def user_folder(tmp_path):
    folder = tmp_path / "my-thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("precious")
    (folder / "figures").mkdir()
    (folder / "figures" / "plot.pdf").write_bytes(b"%PDF")
    return folder


def assert_untouched(folder):
    assert (folder / "chapter1.tex").read_text() == "precious" and (folder / "figures" / "plot.pdf").read_bytes() == b"%PDF"
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".")) == []  # no temp or aside folder left


def test_force_refuses_a_folder_gnndist_did_not_write(tmp_path):
    folder = user_folder(tmp_path)
    graph = seeded_sbm()
    result = resolve_partitioner("random").partition(graph, 2, seed=0)
    for attempt in (lambda: save_partition(graph, result, folder, force=True), lambda: partition_graph(graph, "random", 2, folder, force=True)):
        with pytest.raises(FileExistsError) as info:
            attempt()
        assert f"Refusing to replace {folder}: it is not empty and not a partition directory gnndist wrote" in str(info.value) and "--force only replaces what gnndist wrote" in str(info.value)
        assert_untouched(folder)
    (tmp_path / "empty").mkdir()
    save_partition(graph, result, tmp_path / "empty", force=True)  # an empty folder may be filled
    assert load_meta(tmp_path / "empty").num_parts == 2


def test_force_swap_that_fails_puts_the_old_directory_back(tmp_path, monkeypatch):
    import os

    graph, _, directory, first = write(tmp_path)
    other = resolve_partitioner("random").partition(graph, 3, seed=0)
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in str(src):  # the new directory's move into place fails
            raise OSError("simulated failure")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated failure"):
        save_partition(graph, other, directory, force=True)
    monkeypatch.undo()
    assert load_meta(directory).key == first.key and load_part(directory, 1).num_parts == 2  # the old one, intact
    assert sorted(path.name for path in tmp_path.iterdir()) == ["parts"]


def test_tensor_files_are_safetensors_written_in_one_pass(tmp_path):
    """The part writer's files load with safetensors itself, every dtype aligned, and the digest is the file's."""
    from safetensors.torch import load_file

    from gnndist.partition.format import SAFETENSORS_DTYPES, RowBlocks, _write_tensors

    generator = torch.Generator().manual_seed(0)
    tensors = {f"t_{str(dtype).split('.')[1]}": (torch.rand(3, 5, generator=generator) * 100).to(dtype) for dtype in SAFETENSORS_DTYPES}
    tensors.update(scalar=torch.tensor(7, dtype=torch.int64), empty=torch.zeros(0, 4), flag=torch.tensor([True, False, True]))
    rows = torch.randn(10, 3, generator=generator)
    streamed = RowBlocks((10, 3), torch.float32, lambda: (rows[start:start + 4] for start in range(0, 10, 4)))
    path = tmp_path / "t.safetensors"
    digest = _write_tensors(path, {**tensors, "streamed": streamed})
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_file(path)
    assert sorted(loaded) == sorted([*tensors, "streamed"])
    for name, value in {**tensors, "streamed": rows}.items():
        assert loaded[name].dtype == value.dtype and torch.equal(loaded[name], value), name


def test_row_blocks_of_the_wrong_size_fail_naming_the_tensor(tmp_path):
    from gnndist.partition.format import RowBlocks, _write_tensors

    short = RowBlocks((10, 3), torch.float32, lambda: iter([torch.zeros(9, 3)]))
    with pytest.raises(ValueError, match=r"t\.safetensors: tensor 'x' gave 108 bytes, expected 120"):
        _write_tensors(tmp_path / "t.safetensors", {"x": short})
