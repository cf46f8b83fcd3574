"""gnndist: distributed GNN training on Ray."""
from gnndist.graph import Graph

__version__ = "0.1.0"
__all__ = ["Graph", "__version__"]
