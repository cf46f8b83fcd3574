"""Bandwidth probe: the memory limit of this machine that aggregation kernels are measured against.

Two numbers, both counting bytes read plus bytes written (the convention of STREAM and of the
aggregation byte model): a large contiguous copy (the streaming limit: DRAM on CPU, HBM on GPU)
and a random gather of feature rows (what a neighbour aggregation mostly does).
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import torch

from gnndist.benchmarks.timing import time_call


@dataclass(frozen=True)
class BandwidthProbe:
    """Measured limits of one device.

    Attributes:
        device: "cpu" or "cuda:0".
        copy_gbps: contiguous copy, GB/s (1e9 bytes) of reads + writes; the median of the runs.
        gather_gbps: random row gather (``index_select``), GB/s of rows read + written.
        copy_bytes: size of the copied buffer.
        gather_rows, row_bytes, table_bytes: rows gathered per run, bytes per row, size of the table gathered from.
        threads: CPU threads torch used (0 on GPU).
    """

    device: str
    copy_gbps: float
    gather_gbps: float
    copy_bytes: int
    gather_rows: int
    row_bytes: int
    table_bytes: int
    threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def _copy_seconds(numel: int, device: torch.device, repeats: int) -> float:
    """Median seconds to copy ``numel`` float32 values (the buffers are freed on return)."""
    src = torch.ones(numel, device=device)
    dst = torch.empty_like(src)
    return statistics.median(time_call(lambda: dst.copy_(src), device, repeats))


def probe_bandwidth(device: str | torch.device = "cpu", copy_mib: int | None = None, width: int = 128, repeats: int = 5) -> BandwidthProbe:
    """Measures copy and random-gather bandwidth on ``device``.

    Args:
        device: "cpu" or a CUDA device.
        copy_mib: size of the copied buffer (default 256 MiB on CPU, 2 GiB on GPU: far beyond the caches).
        width: float32 features per gathered row (128 -> 512-byte rows).
        repeats: timed runs per measurement (median reported).
    """
    device = torch.device(device)
    if copy_mib is None:
        copy_mib = 2048 if device.type == "cuda" else 256
    numel = copy_mib * 2**20 // 4
    copy_s = _copy_seconds(numel, device, repeats)
    table_rows = max(numel // width // 2, 1)  # a table half the copy size: also far beyond the caches
    gather_rows = table_rows
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(table_rows, width, generator=generator).to(device)
    index = torch.randint(table_rows, (gather_rows,), generator=generator).to(device)
    out = torch.empty(gather_rows, width, device=device)
    gather_s = statistics.median(time_call(lambda: torch.index_select(table, 0, index, out=out), device, repeats))
    row_bytes = width * 4
    gather_bytes = gather_rows * (2 * row_bytes + index.element_size())
    name = str(device) if device.type == "cpu" else f"cuda:{device.index or 0}"
    return BandwidthProbe(
        device=name,
        copy_gbps=2 * numel * 4 / copy_s / 1e9,
        gather_gbps=gather_bytes / gather_s / 1e9,
        copy_bytes=numel * 4,
        gather_rows=gather_rows,
        row_bytes=row_bytes,
        table_bytes=table.numel() * 4,
        threads=torch.get_num_threads() if device.type == "cpu" else 0,
    )


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(probe_bandwidth(sys.argv[1] if len(sys.argv) > 1 else "cpu").as_dict(), indent=2))
