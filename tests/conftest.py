"""Shared fixtures: tiny named graphs, the shared real datasets, and one private Ray cluster per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from gnndist.graph import Graph

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # as the gnndist command does, before Ray is imported (by the test modules): the session's Ray listens on loopback only

REPO = Path(__file__).resolve().parents[1]
PLANETOID_RAW = Path(os.environ.get("GNNDIST_PLANETOID_RAW", REPO.parent / "shared" / "datasets" / "planetoid" / "raw"))


def ring(n: int = 8) -> Graph:
    src = torch.arange(n)
    edge_index = torch.stack([src, (src + 1) % n])
    return Graph.from_edge_index(edge_index, n, x=torch.eye(n), y=src % 2).to_undirected()


def two_cliques(k: int = 5) -> Graph:
    nodes = torch.arange(k)
    a = torch.cartesian_prod(nodes, nodes)
    a = a[a[:, 0] != a[:, 1]]
    edges = torch.cat([a, a + k, torch.tensor([[0, k], [k, 0]])]).t()
    y = torch.cat([torch.zeros(k), torch.ones(k)]).long()
    return Graph.from_edge_index(edges, 2 * k, x=torch.randn(2 * k, 4, generator=torch.Generator().manual_seed(0)), y=y)


def isolated_nodes() -> Graph:
    edges = torch.tensor([[0, 1, 2], [1, 2, 0]])
    return Graph.from_edge_index(edges, 6, x=torch.arange(12.0).view(6, 2), y=torch.tensor([0, 1, 0, 1, 0, 1])).to_undirected()


def bipartite(left: int = 4, right: int = 3) -> Graph:
    pairs = torch.cartesian_prod(torch.arange(left), torch.arange(left, left + right)).t()
    y = torch.cat([torch.zeros(left), torch.ones(right)]).long()
    return Graph.from_edge_index(pairs, left + right, x=torch.ones(left + right, 3), y=y).to_undirected()


NAMED_GRAPHS = {"ring": ring, "two_cliques": two_cliques, "isolated_nodes": isolated_nodes, "bipartite": bipartite}


@pytest.fixture(params=sorted(NAMED_GRAPHS))
def named_graph(request) -> Graph:
    return NAMED_GRAPHS[request.param]()


@pytest.fixture(scope="session")
def planetoid_root() -> Path:
    if not (PLANETOID_RAW / "ind.cora.x").exists():
        pytest.fail(f"Real Planetoid files missing: expected them in {PLANETOID_RAW}")
    return PLANETOID_RAW


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """One private local Ray for the whole session: fixed logical resources, own temp dir, shut down at the end."""
    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    from gnndist.runtime import ray_cluster

    with ray_cluster(None, num_cpus=4, object_store_bytes=512 * 1024**2) as resources:
        yield resources
