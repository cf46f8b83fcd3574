"""Every device decision in one place: which device a process trains on, which collective backend its
group uses, how host rows reach the device, and what a CUDA out-of-memory error tells the user.

Trainers call :func:`resolve_device` (the single process, ``train.device``) or :func:`worker_device` (a
Ray worker: CUDA when Ray gave it a GPU) once, and put every tensor they create there; nothing else
in gnndist picks a device.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")
BACKEND_CHOICES = ("auto", "nccl", "gloo")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(requested: str, *, key: str = "train.device") -> "torch.device":
    """The device ``requested`` names: ``auto`` (CUDA when there is a GPU, else the CPU), ``cpu``, ``cuda``
    or ``cuda:N``; asking for CUDA without it is an error naming ``key``."""
    import torch

    if requested == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if cuda_available() else torch.device("cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"{key}={requested!r}: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")
    if device.type == "cuda":
        if not cuda_available():
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible (CUDA_VISIBLE_DEVICES, drivers)"
            raise ValueError(f"{key}={requested}, but CUDA is not available here: {why}; use {key}=cpu or auto")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        elif device.index >= torch.cuda.device_count():
            raise ValueError(f"{key}={requested}, but this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def device_name(device: "torch.device | str") -> str:
    """What ``device`` is, for reports: the GPU's name (``torch.cuda.get_device_name``) or ``cpu``."""
    import torch

    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def worker_device(kind: str) -> "torch.device":
    """A Ray worker's device: ``kind`` is ``cuda`` when the worker holds a GPU (Ray then makes exactly its GPUs
    visible, so the first visible one is its own), else ``cpu``."""
    return resolve_device(kind, key="cluster.gpus_per_worker")


def comm_backend(requested: str, gpus_per_worker: float) -> str:
    """The torch.distributed backend of a worker group.

    ``auto`` is NCCL when every worker has a GPU of its own and gloo otherwise (CPU workers, or several
    workers sharing one GPU, which NCCL refuses; gloo moves CUDA tensors through pinned host buffers).
    """
    if requested not in BACKEND_CHOICES:
        raise ValueError(f"cluster.comm_backend={requested!r}: expected one of {', '.join(BACKEND_CHOICES)}")
    if requested == "auto":
        return "nccl" if gpus_per_worker >= 1 else "gloo"
    if requested == "nccl" and gpus_per_worker < 1:
        raise ValueError(
            f"cluster.comm_backend=nccl needs one whole GPU per worker (cluster.gpus_per_worker={gpus_per_worker:g}); "
            "use cluster.comm_backend=gloo (or auto) for CPU workers or workers sharing a GPU"
        )
    return requested


def to_device(tensor: "torch.Tensor", device: "torch.device") -> "torch.Tensor":
    """``tensor`` on ``device``; a host tensor bound for a GPU goes through pinned memory without blocking
    (the copy overlaps whatever the host does next; the stream orders it before any kernel that reads it)."""
    if tensor.device == device:
        return tensor
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def out_of_memory_message(error: BaseException, *, rank: int, rows: int | None, edges: int | None) -> str:
    """What a CUDA out-of-memory error in a worker tells the user: where, how big, what to change."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    size = f"part of {rows:,} rows, {edges:,} edges" if rows is not None and edges is not None else "while loading its part"
    return (
        f"CUDA out of memory on rank {rank} ({size}): {first}. "
        "Try more parts (partition.parts), a CPU cache (cache.device=cpu), a smaller train.batch_size, "
        "or model.hidden smaller"
    )


GPU_SHARE = 0.25
"""What ``auto`` lets one kind of data (a sampling graph, a feature table and cache) take of a GPU's memory."""


def placement(requested: str, device: "torch.device", nbytes: int, *, key: str) -> "torch.device":
    """Where a worker training on ``device`` keeps data of ``nbytes`` that may live on its GPU.

    ``cpu``: the host. ``cuda``: the worker's GPU (an error naming ``key`` when it has none). ``auto``: the
    GPU when the worker has one and the data take at most :data:`GPU_SHARE` of its memory, else the host.
    """
    import torch

    if requested not in DEVICE_CHOICES:
        raise ValueError(f"{key}={requested!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    if requested == "cpu" or (requested == "auto" and device.type != "cuda"):
        return torch.device("cpu")
    if device.type != "cuda":
        raise ValueError(f"{key}=cuda, but this worker trains on {device} (set cluster.gpus_per_worker > 0 to give workers GPUs)")
    if requested == "auto" and nbytes > GPU_SHARE * torch.cuda.get_device_properties(device).total_memory:
        return torch.device("cpu")
    return device
