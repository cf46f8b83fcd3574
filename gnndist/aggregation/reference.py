"""The oracle every aggregation backend is checked against: plain edge-list ops, sums in float64."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gnndist.aggregation.base import REDUCERS
from gnndist.block import Block


def tie_free_features(num_rows: int, width: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[num_rows, width]`` features in [-1, 1) whose values are distinct within every column.

    With ties, max has several valid gradients (one winner, or an even split) and backends differ;
    distinct values make the winner unique so every max backend must produce the same gradient.
    Each column is a random permutation of ``num_rows`` evenly spaced values, none of them 0 (exact
    in float32 below 2**24 rows).
    """
    columns = [torch.randperm(num_rows, generator=generator) for _ in range(width)]
    ranks = torch.stack(columns, dim=1) if columns else torch.zeros(num_rows, 0, dtype=torch.long)
    return ((ranks.to(torch.float64) + 0.5) * (2.0 / max(num_rows, 1)) - 1.0).to(dtype)


def reference_aggregate(block: Block, x: Tensor, reduce: str) -> Tensor:
    """``[num_dst, F]`` float64 aggregation of ``x`` over ``block`` by the definition in ``Aggregation``.

    Messages ``w * x[src]`` are formed in ``x``'s dtype (so a max picks the same element a float32
    kernel picks) and reduced in float64. Differentiable with respect to ``x``.
    """
    if reduce not in REDUCERS:
        raise ValueError(f"Expected reduce in {REDUCERS} (got {reduce!r})")
    src, dst = block.indices, block.dst()
    messages = x[src]
    if block.edge_weight is not None:
        messages = messages * block.edge_weight.to(x.dtype).unsqueeze(1)
    messages = messages.to(torch.float64)
    out = torch.zeros(block.num_dst, x.size(1), dtype=torch.float64, device=x.device)
    index = dst.unsqueeze(1).expand_as(messages)
    if reduce == "max":
        # start from -inf: torch's amax backward also counts untouched start values equal to the max as winners
        out = torch.full_like(out, -math.inf).scatter_reduce(0, index, messages, "amax", include_self=False)
        return out.masked_fill(block.in_degree().unsqueeze(1) == 0, 0.0)
    out = out.scatter_add(0, index, messages)
    if reduce == "mean":
        out = out / block.in_degree().clamp(min=1).to(torch.float64).unsqueeze(1)
    return out


@dataclass(frozen=True)
class Agreement:
    """How one backend's output and input gradient compare with the reference.

    Attributes:
        forward_error, backward_error: max absolute difference, relative to the reference's max magnitude.
        tolerance: the relative bound both must stay under.
    """

    forward_error: float
    backward_error: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.forward_error <= self.tolerance and self.backward_error <= self.tolerance

    def describe(self) -> str:
        return f"forward error {self.forward_error:.2e}, backward error {self.backward_error:.2e} (tolerance {self.tolerance:.0e})"


def _relative_error(value: Tensor, reference: Tensor) -> float:
    if value.shape != reference.shape:
        return float("inf")
    if reference.numel() == 0:
        return 0.0
    scale = reference.abs().max().item()
    error = (value.to(torch.float64) - reference).abs().max().item()
    if error != error:  # NaN
        return float("inf")
    return error / scale if scale > 0 else error


def reference_with_grad(block: Block, x: Tensor, reduce: str, grad_out: Tensor, chunk_bytes: int = 1 << 28) -> tuple[Tensor, Tensor]:
    """``(out, grad_x)`` in float64: :func:`reference_aggregate` and its input gradient for ``grad_out``.

    Works on destination ranges whose messages fit in ``chunk_bytes``, so checking a 4M-edge,
    512-wide graph does not materialise all E x F messages at once.
    """
    width = x.size(1)
    out = torch.zeros(block.num_dst, width, dtype=torch.float64, device=x.device)
    grad_x = torch.zeros(block.num_src, width, dtype=torch.float64, device=x.device)
    indptr = block.indptr.cpu()
    edges_per_chunk = max(chunk_bytes // (8 * max(width, 1)), 1)
    row = 0
    while row < block.num_dst:
        end_row = int(torch.searchsorted(indptr, indptr[row] + edges_per_chunk, right=True)) - 1
        end_row = min(max(end_row, row + 1), block.num_dst)
        lo, hi = int(indptr[row]), int(indptr[end_row])
        chunk = Block(
            (block.indptr[row : end_row + 1] - lo),
            block.indices[lo:hi],
            block.num_src,
            edge_weight=block.edge_weight[lo:hi] if block.edge_weight is not None else None,
        )
        x_leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            part = reference_aggregate(chunk, x_leaf, reduce)
            (grad,) = torch.autograd.grad(part, x_leaf, grad_out[row:end_row].to(torch.float64), allow_unused=True)
        out[row:end_row] = part.detach()
        if grad is not None:
            grad_x += grad.to(torch.float64)
        row = end_row
    return out, grad_x


def compare_with_reference(aggregate, x: Tensor, grad_out: Tensor, expected: tuple[Tensor, Tensor], tolerance: float | None = None) -> Agreement:
    """Runs ``aggregate(x)`` forward and backward with ``grad_out`` and compares with ``expected = (out, grad_x)``."""
    if tolerance is None:
        tolerance = 1e-10 if x.dtype == torch.float64 else 1e-4
    x_test = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = aggregate(x_test)
        grad = torch.autograd.grad(out, x_test, grad_out, allow_unused=True)[0] if out.requires_grad else None
    if grad is None:  # the backend cut the graph: its gradient is missing, which is a mismatch unless all zero
        grad = torch.zeros_like(x_test)
    return Agreement(_relative_error(out.detach(), expected[0]), _relative_error(grad, expected[1]), tolerance)


def check_against_reference(aggregate, block: Block, x: Tensor, reduce: str, grad_out: Tensor | None = None, tolerance: float | None = None) -> Agreement:
    """Runs ``aggregate(x)`` forward and backward and compares both with :func:`reference_aggregate`.

    Args:
        aggregate: callable ``x -> [num_dst, F]`` (e.g. ``lambda x: backend.run(state, x)``).
        block: the structure ``aggregate`` works on.
        x: ``[num_src, F]`` features.
        reduce: the reducer.
        grad_out: ``[num_dst, F]`` upstream gradient (seeded random when None).
        tolerance: relative bound (default 1e-4 for float32, 1e-10 for float64).
    """
    if grad_out is None:
        generator = torch.Generator().manual_seed(1)
        grad_out = torch.randn(block.num_dst, x.size(1), generator=generator, dtype=x.dtype).to(x.device)
    expected = reference_with_grad(block, x, reduce, grad_out)
    return compare_with_reference(aggregate, x, grad_out, expected, tolerance)
