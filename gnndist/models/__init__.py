"""GNN models by name, built from PyG layers or their weights; they know nothing of distribution.

``gcn`` and ``sage`` hold PyG-compatible weights (:mod:`gnndist.models.weights`) and import no PyG; ``gat``,
``gin``, ``rgcn`` and ``hsage`` import PyG when they are built.

Built-ins (``gcn``, ``sage``, ``gat``, ``gin``) are listed in :data:`gnndist.registry.MODELS`; third-party models
register with ``MODELS.register(name)``, the entry-point group ``gnndist.models``, or are named directly as
``model.name=package.module:Class``. Every trainer drives a model layer by layer
(:class:`~gnndist.models.gnn.Layerwise`), which is how full-graph training moves halo rows between layers
from outside the model: ``gcn``, ``sage`` and ``gat`` implement the protocol themselves; any other model
(``gin`` too) is a plain PyG module that :class:`~gnndist.models.adapter.PyGLayers` adapts (its ``convs``,
``act`` and ``dropout``).
This module imports no torch: the classes live in ``gnndist.models.gnn``, ``.gin`` and ``.adapter``.
"""
from __future__ import annotations

from typing import Any, Callable

from gnndist.models.spec import ModelSpec
from gnndist.registry import MODELS, import_object


def model_factory(name: str) -> Callable[..., Any]:
    """The class (or function) that builds model ``name``: a registered name, or ``package.module:Class``.

    Raises:
        KeyError: an unknown name without ``:``, listing the registered ones.
        ImportError: ``package.module:Class`` that does not import; the message shows the import error.
    """
    if name in MODELS or ":" not in name:
        return MODELS.get(name)
    try:
        factory = import_object(name)
    except Exception as error:  # the user's module may fail in any way while importing: show how
        raise ImportError(f"model.name={name!r} cannot be imported: {type(error).__name__}: {error}") from error
    if not callable(factory):
        raise ImportError(f"model.name={name!r} names a {type(factory).__name__}, not a model class")
    return factory


def resolve_model(name: str, **options: Any) -> Any:
    """Builds the model registered as ``name`` (``gcn``, ``sage``, ``gat``, ...) with ``options``."""
    return MODELS.resolve(name, **options)


def available_models() -> list[str]:
    return MODELS.available()


__all__ = ["MODELS", "ModelSpec", "available_models", "model_factory", "resolve_model"]
