"""Datasets: real Planetoid files, seeded generators, the npz and OGB formats, clear errors."""
import gzip

import numpy as np
import pytest
import torch

from gnndist.data import available_datasets, load_dataset, save_npz
from gnndist.graph import Graph


def test_registry_lists_builtins():
    assert {"sbm", "rmat", "uniform", "planetoid", "ogb", "npz", "chunked"} <= set(available_datasets())
    with pytest.raises(KeyError, match="Unknown dataset 'nope'; available: chunked, hsbm, npz, ogb, planetoid, rmat, sbm, uniform"):
        load_dataset("nope")


@pytest.mark.parametrize("name, nodes, edges, features, classes, train", [("cora", 2708, 10556, 1433, 7, 140), ("citeseer", 3327, 9104, 3703, 6, 120)])
def test_planetoid_matches_pyg_statistics(planetoid_root, name, nodes, edges, features, classes, train):
    graph = load_dataset(f"planetoid:{name}", root=str(planetoid_root))
    assert (graph.num_nodes, graph.num_edges, graph.num_features, graph.num_classes) == (nodes, edges, features, classes)
    assert int(graph.train_mask.sum()) == train and int(graph.val_mask.sum()) == 500 and int(graph.test_mask.sum()) == 1000
    assert torch.allclose(graph.x.sum(1)[graph.x.sum(1) > 0], torch.ones(1))  # row-normalised


def test_planetoid_missing_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("planetoid:cora", root=str(tmp_path))
    assert str(tmp_path / "ind.cora.x") in str(info.value) and "looked in" in str(info.value)
    for folder in (tmp_path / "raw", tmp_path / "Cora" / "raw", tmp_path / "cora" / "raw"):  # every place it looked
        assert str(folder / "ind.cora.x") in str(info.value)
    with pytest.raises(ValueError, match="needs dataset.root"):
        load_dataset("planetoid:cora")
    with pytest.raises(ValueError, match="Unknown Planetoid dataset 'corra'"):
        load_dataset("planetoid:corra", root=str(tmp_path))


@pytest.mark.parametrize("layout", ["Cora/raw", "cora/raw", "raw"])
def test_planetoid_root_may_be_a_pyg_dataset_root(tmp_path, planetoid_root, layout):
    """PyG's ``Planetoid(root, "Cora")`` keeps the files in ``root/Cora/raw``: that root works as well."""
    folder = tmp_path / layout
    folder.mkdir(parents=True)
    for file in planetoid_root.glob("ind.cora.*"):
        (folder / file.name).symlink_to(file)
    graph = load_dataset("planetoid:cora", root=str(tmp_path))
    assert graph.fingerprint() == load_dataset("planetoid:cora", root=str(planetoid_root)).fingerprint()


def test_planetoid_incomplete_folder_names_the_missing_files(tmp_path, planetoid_root):
    folder = tmp_path / "Cora" / "raw"
    folder.mkdir(parents=True)
    for file in planetoid_root.glob("ind.cora.*"):
        if not file.name.endswith(".graph"):
            (folder / file.name).symlink_to(file)
    with pytest.raises(FileNotFoundError, match=f"missing raw file\\(s\\) {folder / 'ind.cora.graph'} \\(looked in {folder}"):
        load_dataset("planetoid:cora", root=str(tmp_path))


def test_planetoid_refuses_foreign_pickles(tmp_path, planetoid_root):
    import pickle
    import shutil

    for file in planetoid_root.glob("ind.cora.*"):
        shutil.copy(file, tmp_path / file.name)  # a scratch copy inside pytest's tmp_path, not the repo
    (tmp_path / "ind.cora.graph").write_bytes(pickle.dumps(torch.nn.Linear(1, 1)))
    with pytest.raises(ValueError, match="Refusing to load torch"):
        load_dataset("planetoid:cora", root=str(tmp_path))


@pytest.mark.parametrize("name, options", [("sbm", dict(num_nodes=2000, avg_degree=8)), ("rmat", dict(scale=11, edge_factor=8))])
def test_generators_are_seeded_and_valid(name, options):
    a = load_dataset(name, seed=3, **options)
    b = load_dataset(name, seed=3, **options)
    c = load_dataset(name, seed=4, **options)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.train_mask.any() and a.val_mask.any() and a.test_mask.any()
    src, dst = a.edge_index()
    assert not bool((src == dst).any())
    undirected = a.to_undirected()
    assert undirected.num_edges == a.num_edges  # already symmetric, no duplicates


def test_sbm_homophily_and_degree():
    graph = load_dataset("sbm", num_nodes=5000, avg_degree=12, homophily=0.9, seed=0)
    src, dst = graph.edge_index()
    same = (graph.y[src] == graph.y[dst]).float().mean().item()
    assert 0.85 < same < 0.95
    assert 10 < graph.num_edges / graph.num_nodes < 14
    assert graph.in_degrees().max() > 5 * graph.in_degrees().float().mean()  # degree-corrected: hubs exist


def test_rmat_is_power_law():
    graph = load_dataset("rmat", scale=14, edge_factor=8, seed=0)
    degree = graph.in_degrees().float()
    assert degree.max() > 50 * degree.mean()


@pytest.mark.parametrize("options, message", [(dict(homophily=1.5), "homophily in \\[0, 1\\]"), (dict(num_nodes=3, num_classes=8), "num_nodes >= num_classes"), (dict(avg_degree=0), "avg_degree > 0")])
def test_sbm_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("sbm", **options)


def test_uniform_is_seeded_and_has_no_skew():
    a = load_dataset("uniform", num_nodes=4000, avg_degree=8, feature_dim=4, num_classes=3, seed=1)
    assert a.fingerprint() == load_dataset("uniform", num_nodes=4000, avg_degree=8, feature_dim=4, num_classes=3, seed=1).fingerprint()
    assert a.fingerprint() != load_dataset("uniform", num_nodes=4000, avg_degree=8, feature_dim=4, num_classes=3, seed=2).fingerprint()
    assert a.x.shape == (4000, 4) and int(a.y.max()) == 2 and a.train_mask.any()
    assert 7.9 < a.num_edges / a.num_nodes <= 8  # de-duplicated: a few of the 32000 drawn edges repeat
    degree = a.in_degrees().float()
    assert degree.max() < 4 * degree.mean()  # Poisson(8): no hubs, unlike sbm and rmat
    with pytest.raises(ValueError, match="avg_degree > 0"):
        load_dataset("uniform", avg_degree=0)


def test_bad_generator_options():
    with pytest.raises(ValueError, match="a \\+ b \\+ c <= 1"):
        load_dataset("rmat", a=0.6, b=0.3, c=0.3)
    with pytest.raises(ValueError, match="Unknown option 'nodes' for dataset 'sbm'; accepted: num_nodes, "):
        load_dataset("sbm", nodes=10)


def test_npz_round_trip_and_errors(tmp_path, named_graph):
    path = tmp_path / "graph.npz"
    save_npz(named_graph, path)
    loaded = load_dataset(f"npz:{path}")
    assert loaded.fingerprint() == named_graph.fingerprint()
    assert load_dataset("npz:graph.npz", root=str(tmp_path)).fingerprint() == named_graph.fingerprint()
    with pytest.raises(FileNotFoundError, match="npz dataset file not found: .*missing.npz"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")
    np.savez(tmp_path / "noedges.npz", x=np.ones((2, 2)))
    with pytest.raises(ValueError, match="missing required key 'edge_index'"):
        load_dataset(f"npz:{tmp_path / 'noedges.npz'}")
    np.savez(tmp_path / "bad.npz", edge_index=np.array([[0, 9], [1, 0]]), x=np.ones((3, 2)))
    with pytest.raises(ValueError, match="bad.npz: Node ids in 'edge_index' must be < num_nodes=3"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    np.savez(tmp_path / "extra.npz", edge_index=np.array([[0], [1]]), feats=np.ones((2, 2)))
    with pytest.raises(ValueError, match="unknown key\\(s\\) \\['feats'\\]"):
        load_dataset(f"npz:{tmp_path / 'extra.npz'}")


def _write_csv_gz(path, rows, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as file:
        np.savetxt(file, rows, fmt=fmt, delimiter=",")


def _fake_arxiv(tmp_path):
    """A 4-node graph in the raw layout of ogbn-arxiv."""
    folder = tmp_path / "ogbn_arxiv"
    _write_csv_gz(folder / "raw" / "edge.csv.gz", np.array([[0, 1], [1, 2], [2, 3]]), "%d")
    _write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([4]), "%d")
    _write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([3]), "%d")
    _write_csv_gz(folder / "raw" / "node-feat.csv.gz", np.arange(8.0).reshape(4, 2), "%.1f")
    _write_csv_gz(folder / "raw" / "node_year.csv.gz", np.array([2010, 2011, 2012, 2013]), "%d")
    _write_csv_gz(folder / "raw" / "node-label.csv.gz", np.array([0, 1, 0, 1]), "%d")
    for part, ids in (("train", [0, 1]), ("valid", [2]), ("test", [3])):
        _write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", np.array(ids), "%d")
    return folder


def test_ogb_reads_local_raw_files_offline(tmp_path):
    pytest.importorskip("ogb")
    _fake_arxiv(tmp_path)
    graph = load_dataset("ogb:ogbn-arxiv", root=str(tmp_path))
    assert isinstance(graph, Graph) and graph.num_nodes == 4 and graph.num_edges == 3
    assert graph.train_mask.tolist() == [True, True, False, False] and graph.y.tolist() == [0, 1, 0, 1]
    with pytest.raises(FileNotFoundError, match="missing file\\(s\\) .*edge.csv.gz"):
        load_dataset("ogb:ogbn-products", root=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown OGB node dataset 'ogbn-nope'"):
        load_dataset("ogb:ogbn-nope", root=str(tmp_path))


# --- damaged or wrong files: every error names the file and what was expected (issue 16, item 6) -------
def _npz_bytes(tmp_path, **arrays) -> bytes:
    arrays = arrays or dict(edge_index=np.array([[0, 1, 2], [1, 2, 0]]), x=np.ones((3, 2), dtype=np.float32), y=np.array([0, 1, 0]))
    np.savez(tmp_path / "source.npz", **arrays)
    return (tmp_path / "source.npz").read_bytes()


def _flip_inside(data: bytes, member: bytes = b"edge_index.npy") -> bytes:
    """One flipped byte inside the data of ``member`` (after its local header and the .npy header)."""
    data = bytearray(data)
    header = data.index(member) + len(member)
    position = data.index(b"\x93NUMPY", header) + 130  # past the 128-byte .npy header, into the values
    data[position] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data, tmp: data[: len(data) // 2], "is not an .npz archive (not a zip file: truncated, or another format); expected an npz graph"),
        (lambda data, tmp: b"", "is not an .npz archive"),
        (lambda data, tmp: _flip_inside(data), "is corrupted (Bad CRC-32 for file 'edge_index.npy'); expected an npz graph"),
        (lambda data, tmp: (np.save(tmp / "a.npy", np.arange(4)), (tmp / "a.npy").read_bytes())[1], "is a single .npy array, not an .npz archive"),
        (lambda data, tmp: _npz_bytes(tmp, edge_index=np.array([[0.0, 1.0], [1.0, 0.0]])), "key 'edge_index' has dtype float64; expected integer node ids [2, E]"),
        (lambda data, tmp: _npz_bytes(tmp, edge_index=np.array([[0, 1], [1, 0]]), y=np.array(["a", "b"])), "key 'y' has dtype <U1; expected integer labels [N] or float multi-labels [N, C]"),
        (lambda data, tmp: _npz_bytes(tmp, edge_index=np.array([[0, 1], [1, 0]]), num_nodes=np.array([2, 2])), "key 'num_nodes' has shape (2,); expected an integer scalar"),
        (lambda data, tmp: _npz_bytes(tmp, edge_index=np.array([[0, 1], [1, 0]]), train_mask=np.array([1, 0])), "key 'train_mask' has dtype int64; expected a bool mask [N]"),
    ],
    ids=["truncated", "empty", "crc", "npy", "float-ids", "string-labels", "array-num-nodes", "int-mask"],
)
def test_damaged_npz_names_the_file_and_what_was_expected(tmp_path, damage, message):
    path = tmp_path / "graph.npz"
    path.write_bytes(damage(_npz_bytes(tmp_path), tmp_path))
    with pytest.raises(ValueError) as info:
        load_dataset(f"npz:{path}")
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize(
    "y, num_classes, message",
    [
        ([0, -1, 2, 3], None, "Label 'y' of node 1 (in 'train_mask') is -1"),
        ([0, 1, 2, -3], None, "Label 'y' of node 3 (outside every split) is -3"),
        ([0, 1, 10_000, 3], None, "would make a 10001-way output"),
        ([0, 1, 2, 3], 3, "Label 'y' of node 3 (outside every split) is 3; expected [0, 3)"),
    ],
)
def test_npz_labels_are_checked(tmp_path, y, num_classes, message):
    path = tmp_path / "labels.npz"
    masks = dict(train_mask=np.array([True, True, False, False]), val_mask=np.array([False, False, True, False]))
    extra = {} if num_classes is None else dict(num_classes=np.int64(num_classes))
    np.savez(path, edge_index=np.array([[0, 1, 2, 3], [1, 2, 3, 0]]), y=np.array(y), **masks, **extra)
    with pytest.raises(ValueError) as info:
        load_dataset(f"npz:{path}")
    assert str(path) in str(info.value) and message in str(info.value)


def test_npz_keeps_num_classes(tmp_path):
    graph = Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 2, y=torch.tensor([0, 1]), num_classes=5)
    save_npz(graph, tmp_path / "g.npz")
    assert load_dataset(f"npz:{tmp_path / 'g.npz'}").num_classes == 5


def test_damaged_ogb_and_planetoid_files_are_named(tmp_path, planetoid_root):
    import shutil

    for file in planetoid_root.glob("ind.cora.*"):
        shutil.copy(file, tmp_path / file.name)
    data = (tmp_path / "ind.cora.allx").read_bytes()
    (tmp_path / "ind.cora.allx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=f"Cannot read Planetoid file {tmp_path / 'ind.cora.allx'} .*expected one of PyG's raw Planetoid pickles"):
        load_dataset("planetoid:cora", root=str(tmp_path))
    (tmp_path / "ind.cora.allx").write_bytes(data)
    (tmp_path / "ind.cora.test.index").write_text("12\nnot-a-number\n")
    with pytest.raises(ValueError, match=f"Cannot read Planetoid file {tmp_path / 'ind.cora.test.index'} .*expected one integer node id per line"):
        load_dataset("planetoid:cora", root=str(tmp_path))


def test_damaged_ogb_files_are_named(tmp_path):
    pytest.importorskip("ogb")
    raw = _fake_arxiv(tmp_path) / "raw"
    labels = raw / "node-label.csv.gz"
    labels.write_bytes(labels.read_bytes()[:-12])  # truncated gzip
    with pytest.raises(ValueError, match=f"Cannot read OGB file {labels} .*expected one label"):
        load_dataset("ogb:ogbn-arxiv", root=str(tmp_path))
    edges = raw / "edge.csv.gz"
    edges.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=f"Cannot read the OGB graph files in {raw} "):
        load_dataset("ogb:ogbn-arxiv", root=str(tmp_path))
