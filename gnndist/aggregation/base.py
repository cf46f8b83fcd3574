"""The aggregation interface: how a layer reduces incoming messages over a Block."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from torch import Tensor

import gnndist.typing
from gnndist.block import Block
from gnndist.registry import AGGREGATIONS

REDUCERS = ("sum", "mean", "max")


class Aggregation(ABC):
    """One aggregation abstraction: a data organisation x a propagation method (Qi et al., 2023).

    ``prepare`` turns a Block into the backend's own format once (it is cached per block);
    ``run`` computes, for every destination ``d`` over its in-edges ``s -> d`` with weight ``w_sd``
    (``block.edge_weight``, ones when None):

    - ``sum``:  ``out[d] = sum_s w_sd * x[s]``
    - ``mean``: ``out[d] = sum_s w_sd * x[s] / in_degree(d)`` (the edge count, not the weight sum)
    - ``max``:  ``out[d] = max_s w_sd * x[s]`` elementwise

    A destination without in-edges gets zeros for every reducer. ``run`` is differentiable with
    respect to ``x`` (edge weights are constants); ``gnndist.aggregation.reference`` is the oracle.
    """

    name: ClassVar[str]
    data_organization: ClassVar[str]  # "coo" | "csr" | "csc" | "dense"
    propagation: ClassVar[str]  # "push" | "pull" | "gemm"
    backend: ClassVar[str] = "torch"  # the library doing the work, for tables ("torch", "pyg", "dgl", "gnndist", ...)
    reducers: ClassVar[tuple[str, ...]] = REDUCERS
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    requires: ClassVar[str | None] = None  # optional package, checked by its gnndist.typing flag: "dgl" -> WITH_DGL
    max_nodes: ClassVar[int | None] = None  # dense layouts refuse larger graphs
    materializes_messages: ClassVar[bool] = False  # builds an [E, F] message tensor (memory grows with E x F)
    selector: ClassVar[bool] = False  # True for "auto", which delegates to another backend

    def supports(self, block: Block, reduce: str) -> str | None:
        """None when this backend can run ``reduce`` on ``block``, else the reason it cannot.

        Reads only ``block.device``, ``num_src`` and ``num_dst``, so a ``GraphStats`` stands in for a graph
        that is never loaded (overrides keep to these too)."""
        reason = self.available()
        if reason is not None:
            return reason
        if reduce not in self.reducers:
            return f"{self.name} does not implement reduce={reduce!r} (has {', '.join(self.reducers)})"
        device = block.device.type
        if device not in self.devices:
            return f"{self.name} runs on {', '.join(self.devices)}, not on {device}"
        if self.max_nodes is not None and max(block.num_src, block.num_dst) > self.max_nodes:
            return f"{self.name} needs a dense {block.num_dst}x{block.num_src} matrix (limit {self.max_nodes} nodes)"
        return None

    def available(self) -> str | None:
        """None when the library behind this backend loads here, else why not (checked once per process)."""
        if self.requires is None or getattr(gnndist.typing, f"WITH_{self.requires.upper()}"):
            return None
        status = gnndist.typing.dgl_status() if self.requires == "dgl" else gnndist.typing.module_status(self.requires)
        return f"{self.name} needs {self.requires}, which does not load here ({status[1]})"

    @abstractmethod
    def prepare(self, block: Block, reduce: str) -> Any:
        """Backend-specific state for ``block`` (built once, reused every call)."""

    @abstractmethod
    def run(self, state: Any, x: Tensor) -> Tensor:
        """``[num_dst, F]`` aggregated rows from ``x`` of shape ``[num_src, F]``."""

    def __call__(self, block: Block, x: Tensor, reduce: str = "sum") -> Tensor:
        """Aggregates ``x`` over ``block``, preparing (and caching on the block) on first use."""
        state = block._cached(("aggregation", self.name, reduce), lambda: self._checked_prepare(block, reduce))
        return self.run(state, x)

    def _checked_prepare(self, block: Block, reduce: str) -> Any:
        reason = self.supports(block, reduce)
        if reason is not None:
            raise ValueError(reason)
        return self.prepare(block, reduce)


register_aggregation = AGGREGATIONS.register


def resolve_aggregation(name_or_instance: str | Aggregation, **kwargs: Any) -> Aggregation:
    """The aggregation backend named ``name_or_instance`` (see ``available_aggregations()``)."""
    return AGGREGATIONS.resolve(name_or_instance, **kwargs)


def available_aggregations() -> list[str]:
    return AGGREGATIONS.available()
