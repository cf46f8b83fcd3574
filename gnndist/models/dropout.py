"""Dropout that is fast on CPU, alone and fused with the ReLU before it.

torch 2.13's CPU ``F.dropout`` draws one random number per element through a slow path (49 ms on
Cora's 2708 x 1433 input, 406 ms on 200k x 128; environment.md). Here one full-range 64-bit draw
yields four uniform 16-bit numbers, compared with a threshold straight into a float mask that holds
``1 / (1 - p)`` where an element is kept and 0 where it is dropped. Keep probability is quantised to
1/65536. On CUDA, ``F.dropout`` is used as is.

Every fresh large tensor costs page faults on first touch (as much as the arithmetic on the VMs
these benchmarks run on), so both functions allocate as little as they can: ``dropout`` keeps the
mask for backward only when its input needs a gradient, and :func:`relu_dropout` keeps no mask at
all: its backward reads the sign of its own output, which the next layer keeps anyway.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_FULL_RANGE = -(2**63)  # random_(from=int64 min, to=None) draws all 64 bits: four 16-bit lanes per word


def _scaled_keep_mask(like: Tensor, p: float) -> Tensor:
    """``[like.shape]`` tensor of ``like.dtype``: ``1 / (1 - p)`` with probability ``1 - p``, else 0."""
    n = like.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=like.device).random_(_FULL_RANGE, None)
    uniform16 = words.view(torch.int16)[:n].view(like.shape)  # uniform in [-32768, 32767]
    drop_levels = min(round(p * 65536), 65535)
    mask = torch.ge(uniform16, drop_levels - 32768, out=torch.empty_like(like, memory_format=torch.contiguous_format))
    return mask.mul_(1.0 / (1.0 - p))


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by ``1 / (1 - p)``."""
    if not training or p == 0.0:
        return x
    if x.is_cuda or p >= 1.0:
        return F.dropout(x, p, training)
    mask = _scaled_keep_mask(x, p)
    if x.requires_grad and torch.is_grad_enabled():
        return x * mask  # autograd keeps the mask for backward
    return mask.mul_(x)


class _ReluDropout(torch.autograd.Function):
    """``relu(h) * mask`` in one pass; backward ``grad * scale`` where the output is positive.

    With a mask of 0 or ``scale > 0``, the output is positive exactly where ``h > 0`` and the element
    was kept, which is where the composed gradient is ``scale`` (0 elsewhere).
    """

    @staticmethod
    def forward(ctx, h: Tensor, p: float) -> Tensor:
        out = _scaled_keep_mask(h, p).mul_(h).relu_()
        ctx.scale = 1.0 / (1.0 - p)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad_out, out, 0).mul_(ctx.scale), None


def relu_dropout(h: Tensor, p: float, training: bool = True) -> Tensor:
    """``dropout(relu(h), p, training)``, with one output tensor and no saved mask on CPU."""
    if not training or p == 0.0 or h.is_cuda or p >= 1.0:
        return dropout(F.relu(h), p, training)
    if h.requires_grad and torch.is_grad_enabled():
        return _ReluDropout.apply(h, p)
    return _scaled_keep_mask(h, p).mul_(h).relu_()
