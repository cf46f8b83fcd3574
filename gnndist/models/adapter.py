"""The one adapter that lets a user's PyG model train in every mode: it drives the model's layers one by one.

A user model (``model.name=package.module:Class``, an entry point of group ``gnndist.models``, or a
built-in declared the same way) is a plain ``torch.nn.Module`` built from PyG layers. It fits gnndist's
layer-wise protocol (:class:`~gnndist.models.gnn.Layerwise`) when it exposes:

- ``convs`` (or ``layers``): a ``torch.nn.ModuleList`` of PyG ``MessagePassing`` layers that take a
  bipartite ``(x_source, x_destination)`` pair and a ``size`` (``SAGEConv``, ``GINConv``, ``GATConv``,
  ``GraphConv``, ...);
- ``act``: the activation applied between two layers (a module such as ``torch.nn.ReLU()`` or a function);
- optionally ``dropout``: a probability or a ``torch.nn.Dropout``, applied after the activation.

Layer ``i > 0`` computes ``conv_i(dropout(act(h)))`` from the raw output ``h`` of layer ``i - 1``, as PyG's
own ``BasicGNN`` models (``torch_geometric.nn.models.GraphSAGE``, ``GIN``, ``GAT``) do, which fit as they
are. Full-graph trainers add the halo rows between two layers from outside; the model never sees them.
"""
from __future__ import annotations

import inspect

from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from gnndist.block import Block
from gnndist.models.dropout import dropout as fast_dropout
from gnndist.models.gnn import Layerwise

PROTOCOL = (
    "a model must expose `convs` (or `layers`): a torch.nn.ModuleList of PyG MessagePassing layers that take "
    "a bipartite (x_source, x_destination) pair and `size`, and `act`: the activation between two layers "
    "(optional `dropout`: a float or a torch.nn.Dropout); see README 'Your own model'"
)


class PyGLayers(Layerwise):
    """Drives the ``convs`` of a user's PyG model layer by layer on gnndist :class:`~gnndist.block.Block` s.

    The user's module is kept whole as ``module`` (its ``state_dict`` keys gain the prefix ``module.``);
    :func:`gnndist.load_model` gives it back unwrapped.

    Args:
        module: the user's model.
        name: how the config named it (``model.name``), for error messages.

    Raises:
        TypeError: the module does not fit the protocol; the message says what is missing.
    """

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        where = f"model.name={name!r} ({type(module).__name__})"
        if not isinstance(module, nn.Module):
            raise TypeError(f"{where} built a {type(module).__name__}, not a torch.nn.Module; {PROTOCOL}")
        self.layers_attribute = "convs" if getattr(module, "convs", None) is not None else "layers"
        convs = getattr(module, self.layers_attribute, None)
        if not isinstance(convs, nn.ModuleList) or len(convs) == 0:
            found = "neither `convs` nor `layers`" if convs is None else f"`convs`/`layers` of type {type(convs).__name__}" + (" (empty)" if isinstance(convs, nn.ModuleList) else "")
            raise TypeError(f"{where} has {found}; {PROTOCOL}")
        for index, conv in enumerate(convs):
            if not isinstance(conv, MessagePassing):
                raise TypeError(f"{where}: layer {index} is a {type(conv).__name__}, not a PyG MessagePassing layer; {PROTOCOL}")
            if "size" not in inspect.signature(conv.forward).parameters:
                raise TypeError(f"{where}: layer {index} ({type(conv).__name__}) takes no bipartite input with `size`, so it cannot run on a part or a sampled block; {PROTOCOL} (for GCN use model.name=gcn)")
        act = getattr(module, "act", None)
        if len(convs) > 1 and not callable(act):
            raise TypeError(f"{where} has no callable `act` (the activation between its layers); {PROTOCOL}")
        rate = getattr(module, "dropout", 0.0)
        rate = rate.p if isinstance(rate, nn.Dropout) else rate
        if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
            raise TypeError(f"{where}: `dropout` must be a probability in [0, 1) or a torch.nn.Dropout (got {module.dropout!r}); {PROTOCOL}")
        used = {id(p) for p in convs.parameters()}
        unused = [key for key, p in module.named_parameters() if id(p) not in used]
        if unused:
            raise TypeError(f"{where} has parameters outside its layers that the layer-wise protocol would never use: {', '.join(unused)}; {PROTOCOL}")
        self.module = module  # the only child: convs and act are reached through it (no duplicate state_dict keys)
        self.dropout = float(rate)
        self.num_layers = len(convs)

    def rows(self, index: int, h: Tensor) -> Tensor:
        """Activation and dropout on the raw output of the layer before (none on the model's input)."""
        return fast_dropout(self.module.act(h), self.dropout, self.training) if index else h

    def aggregate(self, index: int, messages: Tensor, block: Block) -> Tensor:
        """The PyG layer on the bipartite block (see :class:`~gnndist.models.gnn.Layerwise`)."""
        conv = getattr(self.module, self.layers_attribute)[index]
        return conv((messages, messages[: block.num_dst]), block.edge_index(), size=(block.num_src, block.num_dst))
