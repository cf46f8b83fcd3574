"""Every device decision goes through gnndist.device; trainers keep every tensor they create on their device."""
import pytest
import torch

from gnndist.config import ConfigError, load_config
from gnndist.data import load_dataset
from gnndist.device import comm_backend, out_of_memory_message, placement, resolve_device, to_device
from gnndist.launch.cli import main
from gnndist.models import ModelSpec
from gnndist.partition import build_parts
from gnndist.partitioners import resolve_partitioner
from gnndist.train.fullgraph import LocalFullGraphTrainer
from gnndist.train.single import SingleProcessTrainer

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the errors of a machine without CUDA")


def test_auto_is_cpu_without_cuda_and_cpu_is_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu"))
    with pytest.raises(ValueError, match="train.device='tpu'"):
        resolve_device("tpu")


@no_cuda
def test_cuda_without_cuda_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match="train.device=cuda, but CUDA is not available here"):
        resolve_device("cuda")
    assert main(["train", "mode=single", "train.device=cuda", "dataset.num_nodes=100", "dataset.feature_dim=4", "train.epochs=1", "--no-progress"]) == 1
    assert "train.device=cuda, but CUDA is not available here" in capsys.readouterr().err


def test_backend_follows_the_gpus_of_a_worker():
    assert comm_backend("auto", 0) == "gloo"
    assert comm_backend("auto", 0.5) == "gloo"  # workers sharing a GPU: NCCL refuses them
    assert comm_backend("auto", 1) == "nccl"
    assert comm_backend("gloo", 1) == "gloo"
    with pytest.raises(ValueError, match="needs one whole GPU per worker"):
        comm_backend("nccl", 0.5)
    with pytest.raises(ConfigError, match="cluster.comm_backend=nccl needs one whole GPU per worker"):
        load_config(None, ["cluster.comm_backend=nccl"])


def test_placement_of_worker_data():
    cpu = torch.device("cpu")
    assert placement("auto", cpu, 10**12, key="cache.device") == cpu
    assert placement("cpu", cpu, 0, key="cache.device") == cpu
    with pytest.raises(ValueError, match="sampling.device=cuda, but this worker trains on cpu"):
        placement("cuda", cpu, 0, key="sampling.device")


def test_out_of_memory_message_names_rank_size_and_remedies():
    message = out_of_memory_message(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), rank=3, rows=1_000_000, edges=20_000_000)
    assert "rank 3" in message and "1,000,000 rows" in message and "20,000,000 edges" in message
    assert "partition.parts" in message and "cache.device=cpu" in message and "train.batch_size" in message


def tensors_of(value, seen=None):
    """Every tensor reachable from ``value``'s attributes (modules' parameters and buffers, optimizer state, blocks, containers)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, torch.nn.Module):
        yield from value.parameters()
        yield from value.buffers()
    elif isinstance(value, torch.optim.Optimizer):
        for state in value.state.values():
            yield from (t for t in state.values() if isinstance(t, torch.Tensor) and t.dim() > 0)  # Adam's step counter is a host scalar
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from tensors_of(item, seen)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_of(item, seen)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("gnndist"):
        for item in vars(value).values():
            yield from tensors_of(item, seen)


def assert_on(trainer, device: torch.device) -> None:
    skip = {id(t) for t in tensors_of(getattr(trainer, "graph", None))} | {id(t) for t in tensors_of(getattr(trainer, "spec", None))}  # the host copy it was given
    misplaced = [tuple(t.shape) for t in tensors_of(trainer) if id(t) not in skip and t.device.type != device.type]
    assert not misplaced, f"tensors not on {device}: {misplaced[:5]}"


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
def test_every_tensor_of_the_single_and_local_trainers_lives_on_their_device(device):
    graph = load_dataset("sbm", num_nodes=300, avg_degree=5, feature_dim=8, seed=0)
    spec = ModelSpec(name="gcn", num_features=8, num_classes=graph.num_classes, hidden=8, dropout=0.0, aggregation="csr_spmm")
    device = torch.device(device)
    single = SingleProcessTrainer(graph, spec, device)
    single.train_epoch(0)
    assert_on(single, device)
    parts = build_parts(graph, resolve_partitioner("metis").partition(graph, 3, seed=0))
    local = LocalFullGraphTrainer(parts, spec, device)
    local.train_epoch(0)
    assert_on(local, device)


def test_to_device_keeps_a_tensor_already_there():
    tensor = torch.arange(4)
    assert to_device(tensor, torch.device("cpu")) is tensor
