"""gnndist: distributed GNN training on Ray.

The package root imports nothing heavy (the job config and the registries load without torch);
``gnndist.Graph`` and ``gnndist.load_model`` (a finished run's trained model) are imported on first access.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Graph", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "Graph":
        from gnndist.graph import Graph

        return Graph
    if name == "load_model":
        from gnndist.runs import load_model

        return load_model
    raise AttributeError(f"module 'gnndist' has no attribute {name!r}")
