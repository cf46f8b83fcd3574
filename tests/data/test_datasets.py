"""Datasets: real Planetoid files, seeded generators, the npz and OGB formats, clear errors."""
import gzip

import numpy as np
import pytest
import torch

from gnndist.data import available_datasets, load_dataset, save_npz
from gnndist.graph import Graph


def test_registry_lists_builtins():
    assert {"sbm", "rmat", "planetoid", "ogb", "npz"} <= set(available_datasets())
    with pytest.raises(KeyError, match="Unknown dataset 'nope'; available: npz, ogb, planetoid, rmat, sbm"):
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


def test_ogb_reads_local_raw_files_offline(tmp_path):
    pytest.importorskip("ogb")
    folder = tmp_path / "ogbn_arxiv"
    _write_csv_gz(folder / "raw" / "edge.csv.gz", np.array([[0, 1], [1, 2], [2, 3]]), "%d")
    _write_csv_gz(folder / "raw" / "num-node-list.csv.gz", np.array([4]), "%d")
    _write_csv_gz(folder / "raw" / "num-edge-list.csv.gz", np.array([3]), "%d")
    _write_csv_gz(folder / "raw" / "node-feat.csv.gz", np.arange(8.0).reshape(4, 2), "%.1f")
    _write_csv_gz(folder / "raw" / "node_year.csv.gz", np.array([2010, 2011, 2012, 2013]), "%d")
    _write_csv_gz(folder / "raw" / "node-label.csv.gz", np.array([0, 1, 0, 1]), "%d")
    for part, ids in (("train", [0, 1]), ("valid", [2]), ("test", [3])):
        _write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", np.array(ids), "%d")
    graph = load_dataset("ogb:ogbn-arxiv", root=str(tmp_path))
    assert isinstance(graph, Graph) and graph.num_nodes == 4 and graph.num_edges == 3
    assert graph.train_mask.tolist() == [True, True, False, False] and graph.y.tolist() == [0, 1, 0, 1]
    with pytest.raises(FileNotFoundError, match="missing file\\(s\\) .*edge.csv.gz"):
        load_dataset("ogb:ogbn-products", root=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown OGB node dataset 'ogbn-nope'"):
        load_dataset("ogb:ogbn-nope", root=str(tmp_path))
