"""Feature and graph stores: the template methods, the in-process and Ray backends, and a worker's client with the partition book."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from gnndist.data import load_dataset
from gnndist.graph import Graph
from gnndist.memory import worker_malloc_env
from gnndist.partition import PartitionBook, build_parts, save_partition
from gnndist.partitioners import resolve_partitioner
from gnndist.runtime.process import ACTOR_NICENESS
from gnndist.store import (
    FeatureInfo,
    FeatureStore,
    LocalFeatureStore,
    LocalGraphStore,
    LocalHandle,
    RemoteFeatures,
    StoreClient,
    StoreServer,
    StoreSet,
    local_stores,
    start_stores,
    stop_stores,
)
from gnndist.store.base import copy_rows
from gnndist.train.fullgraph import PartSource


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_dataset("sbm", num_nodes=800, avg_degree=6, feature_dim=8, num_classes=4, seed=1)


def partitioned(graph: Graph, num_parts: int, method: str = "metis"):
    """The parts (one halo ring) and the partition book of ``graph``."""
    result = resolve_partitioner(method).partition(graph, num_parts, seed=0)
    return build_parts(graph, result), PartitionBook.from_assignment(result.node_part, num_parts)


def test_store_serves_owned_rows_only(graph):
    parts, book = partitioned(graph, 3)
    part = parts[1]
    server = StoreServer(part)
    owned = part.owned_global_ids
    owner, local = book.to_local(owned[[5, 0, 7]])  # the book, not the store, says where a node lives
    assert owner.tolist() == [1, 1, 1] and local.tolist() == [5, 0, 7]
    assert np.array_equal(server.features(local.numpy()), graph.x[owned[[5, 0, 7]]].numpy())
    edges = server.in_edges(np.array([3, 1]))
    expected = [graph.indices[graph.indptr[v] : graph.indptr[v + 1]] for v in owned[[3, 1]].tolist()]
    assert edges.counts.tolist() == [e.numel() for e in expected]
    assert edges.sources.tolist() == torch.cat(expected).tolist()
    assert edges.source_degree.tolist() == graph.in_degrees()[torch.cat(expected)].tolist()
    assert edges.source_owner.tolist() == book.node_part[torch.cat(expected)].tolist()
    assert edges.nbytes == sum(e.numel() for e in expected) * 8 * 3 + 2 * 8
    not_owned = int((book.node_part != 1).nonzero()[0])
    assert int(book.to_local([not_owned])[0]) != 1
    with pytest.raises(IndexError, match=f"part 1, {part.num_owned} rows\\): expected row ids in \\[0, {part.num_owned - 1}\\]"):
        server.features(np.array([part.num_owned]))
    with pytest.raises(IndexError, match="LocalGraphStore\\(part 1"):
        server.in_edges(np.array([-1]))
    assert server.ready().features == FeatureInfo(part.num_owned, graph.num_features, torch.float32)


class Squares(FeatureStore):
    """A backend is its hook: row ``i`` is ``[i*i]``."""

    @property
    def info(self) -> FeatureInfo:
        return FeatureInfo(10, 1, torch.long)

    def _gather(self, ids):
        return (ids * ids).unsqueeze(1)


def test_public_methods_validate_and_backends_implement_only_the_hook(graph):
    store = Squares()
    assert store.gather(torch.tensor([3, 0, 9])).flatten().tolist() == [9, 0, 81]
    assert store.gather(torch.zeros(0, dtype=torch.long)).shape == (0, 1)
    with pytest.raises(IndexError, match="expected row ids in \\[0, 9\\] \\(got ids from 2 to 10\\)"):
        store.gather(torch.tensor([2, 10]))
    with pytest.raises(TypeError, match="1-D int64 tensor \\(got Tensor of dtype torch.int32"):
        store.gather(torch.tensor([1], dtype=torch.int32))
    with pytest.raises(TypeError, match="got ndarray"):
        store.gather(np.array([1]))
    with pytest.raises(TypeError, match="shape \\(1, 1\\)"):
        LocalGraphStore(partitioned(graph, 2)[0][0]).in_edges(torch.tensor([[0]]))
    with pytest.raises(ValueError, match="shape \\[num_rows, width\\]"):
        LocalFeatureStore(torch.zeros(3))


def test_remote_features_fetch_per_owner_in_request_order(graph):
    parts, book = partitioned(graph, 4)
    client = StoreClient(local_stores(parts))
    remote_ids = torch.cat([part.global_ids[part.num_owned :] for part in parts[2:3]])
    remote = RemoteFeatures(client, *book.to_local(remote_ids))
    assert remote.info == FeatureInfo(remote_ids.numel(), graph.num_features, torch.float32)
    ids = torch.randperm(remote_ids.numel(), generator=torch.Generator().manual_seed(0))[:100]
    rows = remote.gather(ids)
    assert torch.equal(rows, graph.x[remote_ids[ids]])
    assert client.stats.requests == len(set(book.node_part[remote_ids[ids]].tolist()))  # one request per owner
    assert client.stats.bytes_received == rows.numel() * 4
    assert remote.gather(ids[:0]).shape == (0, graph.num_features)
    out = torch.full((250, graph.num_features), -1.0)
    positions = torch.randperm(250, generator=torch.Generator().manual_seed(1))[:100]
    remote.gather_into(ids, out, positions)  # each owner's answer straight into its rows of out
    assert torch.equal(out[positions], graph.x[remote_ids[ids]])
    untouched = torch.ones(250, dtype=torch.bool).index_fill_(0, positions, False)
    assert bool((out[untouched] == -1).all())
    with pytest.raises(ValueError, match="one position per id"):
        remote.gather_into(ids, out, positions[:5])


def test_mapped_rows_are_read_in_place_without_requests(graph):
    parts, book = partitioned(graph, 3)
    client = StoreClient(local_stores(parts), mapped=True)
    assert client.num_mapped == 3
    remote_ids = parts[0].global_ids[parts[0].num_owned :]
    rows = RemoteFeatures(client, *book.to_local(remote_ids)).gather(torch.arange(remote_ids.numel()))
    assert torch.equal(rows, graph.x[remote_ids]) and client.stats.requests == 0
    out = torch.zeros(1, graph.num_features)
    with pytest.raises(IndexError, match="expected row ids in"):
        client.features_into(torch.tensor([1]), torch.tensor([parts[1].num_owned]), out, torch.tensor([0]))
    client.features_into(torch.tensor([1]), torch.tensor([2]), out, torch.tensor([0]))
    assert torch.equal(out[0], parts[1].x[2]) and client.stats.requests == 0
    client.per_owner("in_edges", torch.tensor([1]), torch.tensor([0]))  # graph requests still go to the store
    assert client.stats.requests == 1


def test_client_needs_one_store_per_part_in_order(graph):
    parts, _ = partitioned(graph, 3)
    with pytest.raises(ValueError, match="one store per part"):
        StoreClient([])
    with pytest.raises(ValueError, match="parts 0..2 in order \\(got parts \\[1, 0, 2\\]\\)"):
        StoreClient([LocalHandle(StoreServer(parts[p])) for p in (1, 0, 2)])
    with pytest.raises(ValueError, match="in order"):
        local_stores(parts[1:])


# ------------------------------------------------------------------ the Ray backend
@pytest.fixture(scope="module")
def on_disk(graph, tmp_path_factory):
    directory = tmp_path_factory.mktemp("stores") / "parts"
    save_partition(graph, resolve_partitioner("metis").partition(graph, 3, seed=0), directory)
    return [PartSource(rank, directory=str(directory)) for rank in range(3)]


def test_ray_stores_answer_like_local_ones(ray_session, on_disk):
    import ray

    book = on_disk[0].load_book()
    parts = [source.load() for source in on_disk]
    handles = start_stores(on_disk)
    try:
        local, remote = StoreClient(local_stores(parts)), StoreClient([pickle.loads(pickle.dumps(handle)) for handle in handles])
        assert [h.info for h in handles] == [h.info for h in local.stores]
        nodes = torch.randperm(book.num_nodes, generator=torch.Generator().manual_seed(0))[:300]
        owner, local_id = book.to_local(nodes)
        assert torch.equal(RemoteFeatures(remote, owner, local_id).gather(torch.arange(300)), RemoteFeatures(local, owner, local_id).gather(torch.arange(300)))
        for part in range(3):
            ids = local_id[owner == part]
            from_ray, in_process = handles[part].in_edges(ids).result(), local.stores[part].in_edges(ids).result()
            assert all(np.array_equal(getattr(from_ray, name), getattr(in_process, name)) for name in ("counts", "sources", "source_owner", "source_degree"))
        with pytest.raises(IndexError, match="expected row ids in"):  # the store's error reaches the client
            handles[0].features(torch.tensor([book.num_nodes])).result()
        proc = Path(f"/proc/{ray.get(handles[0].actor.process.remote(), timeout=60)['pid']}")
        if proc.exists():  # the store's process started with the heap settings that hand freed answers back
            variables = dict(entry.partition("=")[::2] for entry in (proc / "environ").read_text().split("\0") if entry)
            assert worker_malloc_env(release=True).items() <= variables.items()
            # and every thread (those answering requests too) at the actors' niceness, not Ray's 15: a fetch waits on it
            nice = {int(stat.read_text().rpartition(")")[2].split()[16]) for stat in proc.glob("task/*/stat")}
            assert nice == {ACTOR_NICENESS}
    finally:
        stop_stores(handles)
    with pytest.raises(ray.exceptions.RayActorError):
        handles[0].features(torch.tensor([0])).result()


def test_ray_stores_rows_are_mapped_on_their_node_and_outlive_a_store_restart(ray_session, on_disk):
    """Rows of a store on this node are read from Ray's object store in place: the same rows, no request, no
    store CPU, the same rows again after their pages were unmapped; the mapping stays readable after the store's
    process is killed and restarted."""
    import os
    import signal

    import ray

    book = on_disk[0].load_book()
    parts = [source.load() for source in on_disk]
    handles = start_stores(on_disk)
    try:
        client = StoreClient([pickle.loads(pickle.dumps(handle)) for handle in handles], mapped=True, mapped_budget_bytes=2**30)
        assert client.num_mapped == 3 and client.mapped_pages.releasable == 3  # in shared memory: can be unmapped
        mapped = handles[1].mapped_rows()
        assert not mapped.flags.writeable and np.array_equal(mapped, parts[1].x[: parts[1].num_owned].numpy())
        nodes = torch.randperm(book.num_nodes, generator=torch.Generator().manual_seed(0))[:300]
        remote = RemoteFeatures(client, *book.to_local(nodes))
        expected = RemoteFeatures(StoreClient(local_stores(parts)), *book.to_local(nodes)).gather(torch.arange(300))
        cpu_before = ray.get(handles[1].actor.process.remote(), timeout=60)["cpu_s"]
        for _ in range(20):
            assert torch.equal(remote.gather(torch.arange(300)), expected)
        client.mapped_pages.release()  # pages unmapped from this process: read again from the shared memory
        assert torch.equal(remote.gather(torch.arange(300)), expected)
        assert client.stats.requests == 0
        assert ray.get(handles[1].actor.process.remote(), timeout=60)["cpu_s"] - cpu_before < 0.05  # the store did nothing
        os.kill(store_pid(handles[1]), signal.SIGKILL)
        assert torch.equal(remote.gather(torch.arange(300)), expected)
        assert handles[1].features(torch.arange(10)).result().shape == (10, 8)  # restarted by Ray
        assert torch.equal(remote.gather(torch.arange(300)), expected)
    finally:
        stop_stores(handles)


def test_ray_stores_of_misordered_sources_are_refused(ray_session, on_disk):
    with pytest.raises(ValueError, match="parts 0..1 in order \\(got parts \\[1, 0\\]\\)"):
        start_stores([on_disk[1], on_disk[0]])


def store_pid(handle) -> int:
    import ray

    return ray.get(handle.actor.process.remote(), timeout=60)["pid"]


def test_a_killed_store_restarts_and_the_request_is_answered(ray_session, on_disk):
    """kill -9 of a store process: Ray restarts it (it reloads its part) and the request sent meanwhile is retried once."""
    import os
    import signal

    handles = start_stores(on_disk)
    try:
        ids = torch.arange(10)
        before = handles[1].features(ids).result()
        pid = store_pid(handles[1])
        os.kill(pid, signal.SIGKILL)
        assert torch.equal(torch.as_tensor(handles[1].features(ids).result()), torch.as_tensor(before))
        assert store_pid(handles[1]) != pid
    finally:
        stop_stores(handles)


def test_a_dead_store_is_replaced_by_revive(ray_session, on_disk):
    """A store that stays dead (restarts used up, node lost) is replaced; stores that answer are kept."""
    import ray

    stores = StoreSet(on_disk, timeout_s=60)
    try:
        before = list(stores.handles)
        assert not stores.revive()
        ray.kill(before[2].actor, no_restart=True)
        assert stores.revive()
        assert stores.handles[0] is before[0] and stores.handles[1] is before[1] and stores.handles[2] is not before[2]
        assert stores.handles[2].info == before[2].info
        assert stores.handles[2].features(torch.arange(5)).result().shape == (5, 8)
        peaks = stores.peak_bytes()
        assert len(peaks) == 3 and all(peak > 10 * 2**20 for peak in peaks)  # each a whole process with its part
    finally:
        stores.stop()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.int64])
def test_copy_rows_puts_each_row_in_its_place(dtype):
    generator = torch.Generator().manual_seed(0)
    rows = (torch.randn(50, 7, generator=generator) * 100).to(dtype)
    ids = torch.randint(0, 50, (30,), generator=generator)
    positions = torch.randperm(40, generator=generator)[:30]
    out = torch.full((40, 7), -1).to(dtype)
    copy_rows(rows, ids, out, positions)
    expected = torch.full((40, 7), -1).to(dtype).index_copy_(0, positions, rows[ids])
    assert torch.equal(out, expected)
    strided = torch.zeros(40, 14, dtype=dtype)[:, ::2]  # not contiguous: the torch pair, the same result
    copy_rows(rows, ids, strided, positions)
    assert torch.equal(strided[positions], rows[ids])
