"""Heterogeneous datasets from files: ogbn-mag in OGB's on-disk layout (offline), the typed npz format."""
import gzip
import importlib.util
import socket
import threading

import numpy as np
import pytest
import torch

from gnndist.data import load_dataset, save_npz
from gnndist.hetero import HeteroGraph

needs_ogb = pytest.mark.skipif(importlib.util.find_spec("ogb") is None, reason="needs the ogb package (its dataset table)")

MAG_COUNTS = {"author": 24, "field_of_study": 10, "institution": 6, "paper": 30}
MAG_RELATIONS = [
    ("author", "affiliated_with", "institution"),
    ("author", "writes", "paper"),
    ("paper", "cites", "paper"),
    ("paper", "has_topic", "field_of_study"),
]


def _write_gz(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as file:
        file.write(text)


def _rows(array: np.ndarray) -> str:
    return "".join(",".join(str(value) for value in np.atleast_1d(row)) + "\n" for row in array)


def fake_mag(root) -> dict:
    """A tiny ogbn-mag in exactly the layout the ogb package unpacks (``root/ogbn_mag``); returns what was written."""
    rng = np.random.default_rng(0)
    folder = root / "ogbn_mag"
    raw = folder / "raw"
    (folder / "RELEASE_v2.txt").parent.mkdir(parents=True)
    (folder / "RELEASE_v2.txt").write_text("# Release note for ogbn-mag\n\n### v2: ...\n")
    types = sorted(MAG_COUNTS)
    _write_gz(raw / "num-node-dict.csv.gz", ",".join(types) + "\n" + ",".join(str(MAG_COUNTS[t]) for t in types) + "\n")
    _write_gz(raw / "nodetype-has-feat.csv.gz", ",".join(types) + "\n" + ",".join(str(t == "paper") for t in types) + "\n")
    _write_gz(raw / "nodetype-has-label.csv.gz", ",".join(types) + "\n" + ",".join(str(t == "paper") for t in types) + "\n")
    _write_gz(raw / "triplet-type-list.csv.gz", _rows(np.array(MAG_RELATIONS)))
    edges = {}
    for index, (src, relation, dst) in enumerate(MAG_RELATIONS):
        num_edges = 40 + 5 * index
        pairs = np.stack([rng.integers(0, MAG_COUNTS[src], num_edges), rng.integers(0, MAG_COUNTS[dst], num_edges)], axis=1)
        edges[(src, relation, dst)] = pairs
        directory = raw / "relations" / f"{src}___{relation}___{dst}"
        _write_gz(directory / "edge.csv.gz", _rows(pairs))
        _write_gz(directory / "edge_reltype.csv.gz", _rows(np.full(num_edges, index)))
        _write_gz(directory / "num-edge-list.csv.gz", f"{num_edges}\n")
    features = rng.integers(-64, 64, (MAG_COUNTS["paper"], 128)) / 8.0  # exact in float32 and in text
    years = rng.integers(2010, 2020, MAG_COUNTS["paper"])
    labels = rng.integers(0, 349, MAG_COUNTS["paper"])
    _write_gz(raw / "node-feat" / "paper" / "node-feat.csv.gz", _rows(features))
    _write_gz(raw / "node-feat" / "paper" / "node_year.csv.gz", _rows(years))
    _write_gz(raw / "node-label" / "paper" / "node-label.csv.gz", _rows(labels))
    split = folder / "split" / "time"
    _write_gz(split / "nodetype-has-split.csv.gz", ",".join(types) + "\n" + ",".join(str(t == "paper") for t in types) + "\n")
    ids = {"train": np.flatnonzero(years < 2018), "valid": np.flatnonzero(years == 2018), "test": np.flatnonzero(years == 2019)}
    for part, values in ids.items():
        _write_gz(split / "paper" / f"{part}.csv.gz", _rows(values))
    return {"folder": folder, "edges": edges, "features": features, "labels": labels, "split": ids}


@pytest.fixture
def no_network(monkeypatch):
    """Sockets refuse to connect; yields the ids of the threads that tried (a background thread may, unasked)."""
    tried = []

    def refuse(*args, **kwargs):
        tried.append(threading.get_ident())
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return tried


def _edge_set(edges) -> list[tuple[int, int]]:
    return sorted(map(tuple, np.asarray(edges).tolist()))


@needs_ogb
def test_ogbn_mag_loads_offline_from_ogb_layout(tmp_path, no_network):
    written = fake_mag(tmp_path)
    graph = load_dataset("ogb:ogbn-mag", root=str(tmp_path), add_reverse=False)
    assert threading.get_ident() not in no_network  # the loader never tried the network
    assert isinstance(graph, HeteroGraph) and graph.target == "paper"
    assert graph.node_types == sorted(MAG_COUNTS) and {t: d.num_nodes for t, d in graph.nodes.items()} == MAG_COUNTS
    assert graph.edge_types == MAG_RELATIONS
    for relation, pairs in written["edges"].items():
        assert _edge_set(graph.edge_index(relation).T) == _edge_set(pairs), relation
    paper = graph.nodes["paper"]
    assert paper.x.dtype == torch.float32 and torch.equal(paper.x, torch.tensor(written["features"], dtype=torch.float32))
    assert all(graph.nodes[t].x is None for t in ("author", "field_of_study", "institution"))
    assert paper.y.tolist() == written["labels"].tolist() and paper.num_classes == 349
    assert all(graph.nodes[t].y is None for t in ("author", "field_of_study", "institution"))
    for field, part in (("train_mask", "train"), ("val_mask", "valid"), ("test_mask", "test")):
        assert torch.nonzero(getattr(paper, field)).view(-1).tolist() == written["split"][part].tolist(), field

    reversed_graph = load_dataset("ogb:ogbn-mag", root=str(tmp_path))  # add_reverse defaults to True
    assert len(reversed_graph.edge_types) == 8
    for (src, relation, dst), pairs in written["edges"].items():
        assert _edge_set(reversed_graph.edge_index((dst, f"rev_{relation}", src)).T) == _edge_set(pairs[:, ::-1])
    assert reversed_graph.nodes["paper"].fingerprint() == paper.fingerprint()


@needs_ogb
def test_ogbn_mag_missing_files_say_where_to_get_it(tmp_path):
    folder = fake_mag(tmp_path)["folder"]
    edges = folder / "raw" / "relations" / "paper___cites___paper" / "edge.csv.gz"
    edges.unlink()
    with pytest.raises(FileNotFoundError, match=f"missing file\\(s\\) {edges}; gnndist never downloads: .*NodePropPredDataset\\('ogbn-mag'.*mag.zip and rename its folder mag/ to {folder}"):
        load_dataset("ogb:ogbn-mag", root=str(tmp_path))
    (folder / "raw" / "num-node-dict.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match="missing file\\(s\\) .*num-node-dict.csv.gz"):
        load_dataset("ogb:ogbn-mag", root=str(tmp_path))


@needs_ogb
def test_homogeneous_ogb_datasets_refuse_add_reverse(tmp_path):
    with pytest.raises(ValueError, match="add_reverse=True applies to heterogeneous OGB datasets \\(ogbn-mag\\); 'ogbn-arxiv' is homogeneous"):
        load_dataset("ogb:ogbn-arxiv", root=str(tmp_path), add_reverse=True)


@needs_ogb
@pytest.mark.parametrize(
    "damage, file, message",
    [
        (lambda data: data[: len(data) // 2], "raw/node-feat/paper/node-feat.csv.gz", "Cannot read OGB file {path} .*expected one row of float features per node"),
        (lambda data: b"not gzip at all", "raw/relations/author___writes___paper/edge.csv.gz", "Cannot read OGB file {path} .*expected two integer columns"),
        (lambda data: gzip.compress(gzip.decompress(data).split(b"\n", 1)[1]), "raw/relations/paper___cites___paper/edge.csv.gz", "{path} has 49 rows; expected 50 \\(the edge count in"),
        (lambda data: gzip.compress(b"1,2,x\n"), "split/time/paper/valid.csv.gz", "Cannot read OGB file {path} .*expected one integer node id per line"),
        (lambda data: gzip.compress(b"3\n30\n"), "split/time/paper/test.csv.gz", "{path}: node id 30 out of range \\[0, 29\\]"),
        (lambda data: gzip.compress(b"author,paper\nTrue,maybe\n"), "raw/nodetype-has-label.csv.gz", "{path}: expected a header of node types and one row of True/False"),
    ],    ids=["truncated-gzip", "not-gzip", "edge-row-missing", "non-integer-id", "id-out-of-range", "bad-flag"],
)
def test_damaged_ogbn_mag_files_are_named(tmp_path, damage, file, message):
    path = fake_mag(tmp_path)["folder"] / file
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=message.format(path=path)):
        load_dataset("ogb:ogbn-mag", root=str(tmp_path))


def _two_targets(target):
    """Papers and authors both labeled (so the target must be stored), venues featureless and unlabeled."""
    return HeteroGraph.from_edge_index(
        {"paper": 5, "author": 3, "venue": 2},
        {("author", "writes", "paper"): torch.tensor([[0, 1, 2, 2, 0], [0, 1, 3, 4, 4]]), ("paper", "published_in", "venue"): torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 1, 0]])},
        x={"paper": torch.arange(10.0).view(5, 2), "author": torch.ones(3, 4, dtype=torch.float64)},
        y={"paper": torch.tensor([0, 1, 2, 1, 0]), "author": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])},
        train_mask={"paper": torch.tensor([True, True, False, False, False])},
        test_mask={"paper": torch.tensor([False, False, False, True, True])},
        target=target,
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: load_dataset("hsbm", num_papers=60, num_authors=40, num_institutions=8, num_fields=8, num_classes=4),
        lambda: _two_targets("author"),
        lambda: _two_targets(None),
        lambda: HeteroGraph.from_edge_index({"a": 2, "b": 1}, {}),  # no labels, no relations
    ],
    ids=["hsbm", "target-author", "no-target", "no-relations"],
)
def test_typed_npz_round_trip(tmp_path, make):
    graph = make()
    path = tmp_path / "typed.npz"
    save_npz(graph, path)
    loaded = load_dataset("npz:typed.npz", root=str(tmp_path))
    assert isinstance(loaded, HeteroGraph) and loaded.fingerprint() == graph.fingerprint()
    assert loaded.node_types == graph.node_types and loaded.edge_types == graph.edge_types and loaded.target == graph.target
    for node_type, nodes in graph.nodes.items():
        for field, value in nodes.node_data().items():
            assert getattr(loaded.nodes[node_type], field).dtype == value.dtype, (node_type, field)


def test_typed_npz_keys_are_the_documented_scheme(tmp_path):
    save_npz(_two_targets("paper"), tmp_path / "typed.npz")
    with np.load(tmp_path / "typed.npz", allow_pickle=False) as arrays:
        assert sorted(arrays.files) == sorted([
            "node_types", "edge_types", "target",
            "paper/num_nodes", "paper/num_classes", "paper/x", "paper/y", "paper/train_mask", "paper/test_mask",
            "author/num_nodes", "author/num_classes", "author/x", "author/y",
            "venue/num_nodes",
            "author__writes__paper/edge_index", "paper__published_in__venue/edge_index",
        ])
        assert arrays["node_types"].tolist() == ["paper", "author", "venue"] and arrays["target"].item() == "paper"
        assert arrays["edge_types"].tolist() == [["author", "writes", "paper"], ["paper", "published_in", "venue"]]


def _typed(**changes):
    arrays = {
        "node_types": np.array(["paper", "author"]),
        "edge_types": np.array([["author", "writes", "paper"]]),
        "paper/num_nodes": np.int64(3),
        "author/num_nodes": np.int64(2),
        "paper/y": np.array([0, 1, 1]),
        "author__writes__paper/edge_index": np.array([[0, 1], [2, 0]]),
    }
    arrays.update(changes)
    return {key: value for key, value in arrays.items() if value is not None}


@pytest.mark.parametrize(
    "arrays, error, message",
    [
        (_typed(**{"paper/feats": np.ones((3, 2))}), ValueError, "unknown key\\(s\\) \\['paper/feats'\\]; a typed npz"),
        (_typed(**{"author/num_nodes": None}), ValueError, "missing required key\\(s\\) \\['author/num_nodes'\\]"),
        (_typed(**{"author__writes__paper/edge_index": None}), ValueError, "missing required key\\(s\\) \\['author__writes__paper/edge_index'\\]"),
        (_typed(**{"paper/y": np.array(["a", "b", "c"])}), ValueError, "key 'paper/y' has dtype <U1; expected integer labels"),
        (_typed(**{"paper/num_nodes": np.array([3])}), ValueError, "key 'paper/num_nodes' has shape \\(1,\\); expected an integer scalar"),
        (_typed(edge_types=np.array([["author", "paper"]])), ValueError, "key 'edge_types' has dtype <U6 and shape \\(1, 2\\); expected \\(src_type, relation, dst_type\\)"),
        (_typed(node_types=np.array(["paper", "author", "paper"])), ValueError, "key 'node_types' lists \\['paper'\\] more than once"),
        (_typed(**{"author__writes__paper/edge_index": np.array([[0, 2], [2, 0]])}), ValueError, "typed.npz: Edge type \\('author', 'writes', 'paper'\\): source id 2 out of range for node type 'author'"),
        (_typed(target=np.array("venue")), ValueError, "typed.npz: target='venue' is not a node type"),
        (_typed(node_types=np.array(["paper", "author"], dtype=object)), ValueError, "typed.npz: .*object arrays are not allowed"),
    ],    ids=["unknown-key", "no-num-nodes", "no-edges", "string-labels", "array-count", "edge-types-2-wide", "duplicate-type", "id-out-of-range", "unknown-target", "pickled"],
)
def test_typed_npz_errors_name_the_file_and_key(tmp_path, arrays, error, message):
    np.savez(tmp_path / "typed.npz", **arrays)
    with pytest.raises(error, match=message):
        load_dataset(f"npz:{tmp_path / 'typed.npz'}")
