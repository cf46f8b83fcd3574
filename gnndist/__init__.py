"""gnndist: distributed GNN training on Ray.

The package root imports nothing heavy (the job config and the registries load without torch);
``gnndist.Graph`` is imported on first access.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Graph", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Graph":
        from gnndist.graph import Graph

        return Graph
    raise AttributeError(f"module 'gnndist' has no attribute {name!r}")
