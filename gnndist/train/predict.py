"""Inference with a trained model: the evaluation path (:func:`~gnndist.train.collective.infer`) over parts or the whole graph.

Every node's row is computed exactly, from all its in-edges: a worker runs the model on its owned rows and
receives the halo rows of every layer from their owners (the exact exchange training evaluates with), so
the rows do not depend on how the graph is partitioned, nor on whether it is at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from gnndist.block import Block
from gnndist.comm import Communicator, ExchangeRoute, exchange_halo
from gnndist.device import to_device, worker_device
from gnndist.graph import Graph
from gnndist.models import ModelSpec
from gnndist.train.collective import infer

What = Literal["logits", "embeddings", "probabilities"]
WHATS: tuple[str, ...] = ("logits", "embeddings", "probabilities")


@dataclass(frozen=True)
class Prediction:
    """Rows of some nodes.

    Attributes:
        global_ids: ``[n]`` int64 global id of each row's node.
        rows: ``[n, F]`` float rows.
    """

    global_ids: Tensor
    rows: Tensor


def output_layers(what: str, layer: int | None, num_layers: int) -> int:
    """How many layers to run for ``what``: all for logits and probabilities; ``layer`` (default: the last
    hidden one, ``num_layers - 1``) for embeddings.

    Raises:
        ValueError: an unknown ``what``, or a ``layer`` outside ``[1, num_layers]`` (naming both).
    """
    if what not in WHATS:
        raise ValueError(f"Expected what in {', '.join(WHATS)} (got {what!r})")
    if what != "embeddings":
        if layer not in (None, num_layers):
            raise ValueError(f"--layer {layer} with --what {what}: {what} are the output of the last layer ({num_layers}); use --what embeddings for another layer")
        return num_layers
    if layer is None:
        if num_layers == 1:
            raise ValueError("The model has one layer: it has no hidden embeddings; give --layer 1 for its output")
        return num_layers - 1
    if not 1 <= layer <= num_layers:
        raise ValueError(f"Expected --layer in [1, {num_layers}] (the model's layers) (got {layer})")
    return layer


def finish(rows: Tensor, what: str, multilabel: bool) -> Tensor:
    """``rows`` as exported: probabilities are the softmax of the logits (sigmoid for multi-label labels)."""
    if what != "probabilities":
        return rows
    return torch.sigmoid(rows) if multilabel else torch.softmax(rows, dim=-1)


def build_trained(spec: ModelSpec, model_state: dict[str, Any]) -> torch.nn.Module:
    """The model of ``spec`` with the trained parameters ``model_state`` (a checkpoint's ``model``), in eval mode."""
    model = spec.build_model()
    model.load_state_dict(model_state)
    return model.eval()


def predict_whole_graph(graph: Graph, spec: ModelSpec, model_state: dict[str, Any], layers: int) -> Prediction:
    """Raw rows of layer ``layers`` for every node of ``graph``, in this process."""
    block = Block.from_graph(graph)
    rows = infer(build_trained(spec, model_state), graph.x, block, lambda layer, h: h[:0], layers)  # a whole graph has no halo
    return Prediction(torch.arange(graph.num_nodes), rows)


class PartPredictor:
    """Inference over one part inside a worker: owned rows, halo rows of every layer from their owners.

    Args:
        context: the worker's rank and world size (rank = part id).
        source: where to load the part from.
        model_spec: the model to build (identical on every worker); ``model_state`` its trained parameters.
    """

    def __init__(self, context, source, model_spec: ModelSpec, model_state: dict[str, Any]):
        part = source.load()
        if part.part_id != context.rank:
            raise ValueError(f"Worker of rank {context.rank} was given part {part.part_id}")
        device = worker_device(context.device)
        self.model = build_trained(model_spec, model_state).to(device)
        self.block = part.block().to(device)
        self.x = to_device(part.x[: self.block.num_src], device)
        self.global_ids = part.owned_global_ids
        self.route = ExchangeRoute(to_device(part.send_indices, device), part.send_counts.tolist(), part.recv_counts.tolist())
        self.comm = Communicator()

    def predict(self, layers: int) -> Prediction:
        """Raw rows of layer ``layers`` for this part's owned nodes, on the CPU (every worker calls it together)."""
        rows = infer(self.model, self.x, self.block, lambda layer, h: exchange_halo(h, self.route, self.comm), layers)
        return Prediction(self.global_ids, rows.cpu())


def predict_parts(group, sources: Sequence[Any], spec: ModelSpec, model_state: dict[str, Any], layers: int) -> list[Prediction]:
    """Raw rows of layer ``layers`` from every worker of ``group`` (``sources[rank]`` its part), in part order."""
    if len(sources) != group.num_workers:
        raise ValueError(f"Expected one part source per worker ({group.num_workers}), got {len(sources)}")
    group.setup(PartPredictor, [(source,) for source in sources], model_spec=spec, model_state=model_state)
    return group.run("predict", layers)
