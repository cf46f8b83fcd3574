"""``gnndist_csr``: CSR pull whose backward scatters along the same CSR or pulls over a cached transposed copy.

On CPU both directions run gnndist's own kernel (see ``native_kernel`` for why it exists); on CUDA
they run cuSPARSE through ``torch.sparse.mm``. The backward of sum and mean is the transposed SpMM:
a block's first backward scatters along the forward's CSR on one CPU thread (when it has one thread, or
is at most ``SCATTER_WIDTH`` wide: a sampled block is backpropagated once); otherwise it pulls over a
source-major copy of the edges, built once (torch's own CSR backward transposes the matrix on every call,
which costs more than the SpMM on a GPU). The backward of max (CPU only) sends each output gradient to the
edge that won.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from gnndist.aggregation.base import Aggregation
from gnndist.aggregation.native_kernel import load_native_library, native_status, supported_dtypes
from gnndist.aggregation.torch_sparse_csr import sparse_matrix
from gnndist.block import Block, csr_indptr

SMALL_WORK = 1 << 15  # edges x features below which one thread beats starting more
# Widest gradient a block's first backward scatters at any thread count: per edge, the scatter costs ~0.5 ns per
# column on one thread, against 35-100 ns to place the edge in the transposed copy plus ~0.35 ns per column over
# the threads for the pull, so up to ~70 columns the scatter wins however many threads pull (measured here).
SCATTER_WIDTH = 64


@dataclass(eq=False)
class NativeCsrState:
    """The CSR arrays the kernel reads, per dtype weights, and the transposed copy for backward.

    Attributes:
        indptr, indices: ``[num_dst + 1]``, ``[E]`` int64 CSR over destinations.
        weight: ``[E]`` edge weights (float32) or None for all ones.
        reduce: "sum", "mean" or "max".
        num_src: rows ``x`` must have.
    """

    indptr: Tensor
    indices: Tensor
    weight: Tensor | None
    reduce: str
    num_src: int
    backwards: int = 0  # backward passes run through this state
    _by_dtype: dict = field(default_factory=dict)

    @property
    def num_dst(self) -> int:
        return self.indptr.numel() - 1

    def arrays(self, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
        """``(weight, row_scale)`` in ``dtype``: the forward's edge weights and 1/in-degree for mean."""
        key = ("forward", dtype)
        if key not in self._by_dtype:
            weight = self.weight.to(dtype) if self.weight is not None else None
            row_scale = None
            if self.reduce == "mean":
                row_scale = 1.0 / self.indptr.diff().clamp(min=1).to(dtype)
            self._by_dtype[key] = (weight, row_scale)
        return self._by_dtype[key]

    def transposed(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(indptr [num_src + 1], dst [E], weight [E] or None)``: the edges grouped by source, for backward.

        Mean's 1/in-degree of the destination is folded into the weights, so backward is a plain weighted sum.
        """
        key = ("transposed", dtype)
        if key not in self._by_dtype:
            device = self.indptr.device
            dst = torch.repeat_interleave(torch.arange(self.num_dst, device=device), self.indptr.diff())
            order = torch.argsort(self.indices, stable=True)
            indptr = csr_indptr(self.indices, self.num_src)
            weight = self.weight
            if self.reduce == "mean":
                scale = 1.0 / self.indptr.diff().clamp(min=1).to(torch.float64)
                weight = scale[dst] if weight is None else weight.to(torch.float64) * scale[dst]
            weight = weight[order].to(dtype).contiguous() if weight is not None else None
            self._by_dtype[key] = (indptr, dst[order].contiguous(), weight)
        return self._by_dtype[key]

    def matrices(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``(A, A^T)`` as torch sparse CSR matrices in ``dtype`` (mean folded into the values), for CUDA."""
        key = ("matrices", dtype)
        if key not in self._by_dtype:
            indptr, dst, transposed_weight = self.transposed(dtype)
            weight, row_scale = self.arrays(dtype)
            values = weight if weight is not None else torch.ones(self.indices.numel(), dtype=dtype, device=self.indices.device)
            if row_scale is not None:
                values = values * torch.repeat_interleave(row_scale, self.indptr.diff())
            if transposed_weight is None:
                transposed_weight = torch.ones(dst.numel(), dtype=dtype, device=dst.device)
            self._by_dtype[key] = (
                sparse_matrix("csr", self.indptr, self.indices, values, (self.num_dst, self.num_src)),
                sparse_matrix("csr", indptr, dst, transposed_weight, (self.num_src, self.num_dst)),
            )
        return self._by_dtype[key]


def _threads(num_edges: int, width: int) -> int:
    return 1 if num_edges * width < SMALL_WORK else torch.get_num_threads()


class _NativeSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, state: NativeCsrState) -> Tensor:
        library = load_native_library()
        weight, row_scale = state.arrays(x.dtype)
        out = torch.empty(state.num_dst, x.size(1), dtype=x.dtype)
        library.spmm_sum(state.indptr, state.indices, weight, row_scale, x, out, _threads(state.indices.numel(), x.size(1)))
        ctx.state = state
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        """The transposed sum: a block's first backward scatters along the forward's CSR (on one thread, or when
        at most ``SCATTER_WIDTH`` wide); later ones pull over a transposed copy.

        Building the transposed copy (a stable argsort of the edges) costs more than the sum itself on a
        sampled block (1024 seeds, 10k edges, 16 wide: 0.66 ms against 0.07 ms), and a mini-batch block has one
        backward; a full-graph block builds the copy at its second and pulls over it from then on (the pull
        gathers with prefetch, 1.3-1.4x faster than the scatter's scattered writes on 4M edges). Same
        additions in the same order either way (destinations ascending): the same gradient, up to the
        rounding of an edge weight times 1/in-degree (folded in float64 for the copy, in ``dtype`` here).
        """
        state: NativeCsrState = ctx.state
        grad_out = grad_out.contiguous()
        library = load_native_library()
        threads = _threads(state.indices.numel(), grad_out.size(1))
        first = state.backwards == 0 and ("transposed", grad_out.dtype) not in state._by_dtype
        if first and (threads == 1 or grad_out.size(1) <= SCATTER_WIDTH):
            weight, row_scale = state.arrays(grad_out.dtype)
            grad_x = torch.zeros(state.num_src, grad_out.size(1), dtype=grad_out.dtype)
            library.spmm_scatter(state.indptr, state.indices, weight, row_scale, grad_out, grad_x)
        else:
            indptr, dst, weight = state.transposed(grad_out.dtype)
            grad_x = torch.empty(state.num_src, grad_out.size(1), dtype=grad_out.dtype)
            library.spmm_sum(indptr, dst, weight, None, grad_out, grad_x, threads)
        state.backwards += 1
        return grad_x, None


class _SparseSum(torch.autograd.Function):
    """CUDA: ``A @ x`` forward, ``A^T @ grad`` backward, both cuSPARSE with the transpose built once."""

    @staticmethod
    def forward(ctx, x: Tensor, state: NativeCsrState) -> Tensor:
        ctx.state = state
        return torch.sparse.mm(state.matrices(x.dtype)[0], x)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        return torch.sparse.mm(ctx.state.matrices(grad_out.dtype)[1], grad_out.contiguous()), None


class _NativeMax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, state: NativeCsrState) -> Tensor:
        weight, _ = state.arrays(x.dtype)
        out = torch.empty(state.num_dst, x.size(1), dtype=x.dtype)
        arg = torch.empty(state.num_dst, x.size(1), dtype=torch.long)
        load_native_library().spmm_max(state.indptr, state.indices, weight, x, out, arg, _threads(state.indices.numel(), x.size(1)))
        ctx.state = state
        ctx.save_for_backward(arg)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        state: NativeCsrState = ctx.state
        (arg,) = ctx.saved_tensors
        width = grad_out.size(1)
        won = arg >= 0
        edge = arg[won]
        grad = grad_out[won]
        weight, _ = state.arrays(grad_out.dtype)
        if weight is not None:
            grad = grad * weight[edge]
        column = won.nonzero()[:, 1]
        grad_x = torch.zeros(state.num_src * width, dtype=grad_out.dtype)
        grad_x.index_add_(0, state.indices[edge] * width + column, grad)
        return grad_x.view(state.num_src, width), None


class NativeCsr(Aggregation):
    """Pull over CSR, backward by a scatter (a block's first: one thread or narrow) or over a cached transposed copy: own C kernel on CPU, cuSPARSE on CUDA (float32/float64)."""

    name = "gnndist_csr"
    data_organization = "csr"
    propagation = "pull"
    backend = "gnndist"

    def supports(self, block: Block, reduce: str) -> str | None:
        if block.device.type == "cpu":
            ok, message = native_status()
            if not ok:
                return f"{self.name}: {message}"
        elif reduce == "max":
            return f"{self.name} implements max on CPU only (torch.sparse has no CUDA amax)"
        return super().supports(block, reduce)

    def prepare(self, block: Block, reduce: str) -> NativeCsrState:
        weight = block.edge_weight.to(torch.float32).contiguous() if block.edge_weight is not None else None
        return NativeCsrState(block.indptr.contiguous(), block.indices.contiguous(), weight, reduce, block.num_src)

    def run(self, state: NativeCsrState, x: Tensor) -> Tensor:
        if x.dtype not in supported_dtypes():
            raise TypeError(f"{self.name} aggregates {', '.join(map(str, supported_dtypes()))} features (got {x.dtype})")
        if x.device != state.indices.device:
            raise ValueError(f"{self.name}: features on {x.device} but the block on {state.indices.device}")
        if x.dim() != 2 or x.size(0) != state.num_src:
            raise ValueError(f"Expected x of shape [{state.num_src}, F] (got {tuple(x.shape)})")
        x = x.contiguous()
        if x.device.type == "cuda":
            return _SparseSum.apply(x, state)
        if state.reduce == "max":
            return _NativeMax.apply(x, state)
        return _NativeSum.apply(x, state)
