"""GNN models by name, built from PyG layers; they know nothing of distribution.

Built-ins (``gcn``, ``sage``, ``gat``) are listed in :data:`gnndist.registry.MODELS`; third-party models
register with ``MODELS.register(name)`` or the entry-point group ``gnndist.models``. A model is a
:class:`~gnndist.models.gnn.GNN`: a stack of layers that every trainer can drive layer by layer (see
:meth:`~gnndist.models.gnn.GNN.forward_layer`), which is how full-graph training moves halo rows between
layers from outside the model. This module imports no torch: the classes live in ``gnndist.models.gnn``.
"""
from __future__ import annotations

from typing import Any

from gnndist.models.spec import ModelSpec
from gnndist.registry import MODELS


def resolve_model(name: str, **options: Any) -> Any:
    """Builds the model registered as ``name`` (``gcn``, ``sage``, ``gat``, ...) with ``options``."""
    return MODELS.resolve(name, **options)


def available_models() -> list[str]:
    return MODELS.available()


__all__ = ["MODELS", "ModelSpec", "available_models", "resolve_model"]
