"""How workers get their parts (``partition.transport``): the choice of ``auto``, and parts in the object store
loaded by an actor on the driver's node, never by the driver process."""
from __future__ import annotations

import shutil

import pytest
import torch

import gnndist.partition
from gnndist.config import load_config
from gnndist.data import load_dataset
from gnndist.launch.job import part_sources, resolve_transport
from gnndist.modes.base import JobData
from gnndist.partition import load_book, load_part, partition_graph
from gnndist.partition.format import part_folder

GRAPH = dict(num_nodes=300, avg_degree=6, num_classes=3, feature_dim=8, seed=1)


@pytest.mark.parametrize(
    "setting, nodes, remote_driver, written_by_tasks, expected",
    [
        ("auto", 1, False, False, "directory"),
        ("auto", 1, False, True, "directory"),
        ("auto", 2, False, False, "object_store"),  # parts partitioned in the driver: no shared filesystem assumed
        ("auto", 2, False, True, "directory"),  # Ray tasks wrote partition.dir: every node reads it
        ("auto", 1, True, False, "object_store"),  # a ray:// driver's directory is on its own machine
        ("auto", 2, True, True, "object_store"),
        ("directory", 2, True, False, "directory"),
        ("object_store", 1, False, True, "object_store"),
    ],
)
def test_auto_transport(setting, nodes, remote_driver, written_by_tasks, expected):
    assert resolve_transport(setting, nodes=nodes, remote_driver=remote_driver, written_by_tasks=written_by_tasks) == expected


@pytest.fixture(scope="module")
def partition(tmp_path_factory):
    directory = tmp_path_factory.mktemp("transport") / "parts"
    partition_graph(load_dataset("sbm", **GRAPH), "metis", 2, directory, seed=0)
    return directory


def _job(directory, transport: str) -> JobData:
    options = [f"dataset.{key}={value}" for key, value in GRAPH.items()]
    return JobData(load_config(None, ["mode=fullgraph", "partition.parts=2", f"partition.dir={directory}", f"partition.transport={transport}", *options]))


def test_object_store_parts_are_loaded_on_the_driver_node_not_by_the_driver(ray_session, partition, monkeypatch):
    in_driver = []

    def recorded(directory, part_id, **options):  # this process's load_part only: the reader actor imports its own
        in_driver.append(part_id)
        return load_part(directory, part_id, **options)

    monkeypatch.setattr(gnndist.partition, "load_part", recorded)
    sources = part_sources(_job(partition, "object_store"), partition)  # set explicitly: every part through the object store
    assert [source.directory for source in sources] == [None, None]
    for rank, source in enumerate(sources):
        loaded, expected = source.load(), load_part(partition, rank)
        assert loaded.part_id == rank
        assert torch.equal(loaded.global_ids, expected.global_ids) and torch.equal(loaded.x, expected.x)
        assert torch.equal(source.load_book().node_part, load_book(partition).node_part)
    assert in_driver == []  # the loader called its own copy; the driver never loaded a part


def test_a_corrupted_part_file_is_named_when_a_worker_loads_it_from_the_object_store(ray_session, partition, tmp_path):
    damaged = tmp_path / "parts"
    shutil.copytree(partition, damaged)
    victim = max((damaged / part_folder(1)).iterdir(), key=lambda path: path.stat().st_size)  # the tensors
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    sources = part_sources(_job(damaged, "object_store"), damaged)
    assert sources[0].load().part_id == 0
    with pytest.raises(Exception, match=victim.name):
        sources[1].load()
