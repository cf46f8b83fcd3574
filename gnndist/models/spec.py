"""ModelSpec: what every worker needs to build the same model and optimizer, taken from the job config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from gnndist.config import JobConfig
    from gnndist.hetero import HeteroSchema


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Model and optimizer settings, identical on every worker.

    Attributes:
        name: registered model name, or ``package.module:Class``.
        num_features, num_classes: input and output widths (from the dataset; the task's output width, e.g.
            ``hidden`` for link prediction).
        hidden, layers, dropout: model shape; ``options`` further constructor options (``heads``).
        aggregation: aggregation backend name (``auto`` or a backend).
        aggregation_rankings: the measured selection table ``auto`` follows (``aggregation.selection``,
            read once by the driver); None: the built-in ranking.
        lr, weight_decay: Adam settings.
        seed: fixes the initial parameters (every worker builds the same model).
        decoder: the link decoder paired with the model (``gnndist.registry.DECODERS``), or None (node tasks).
        schema: a heterogeneous graph's types, widths and relations (``rgcn``, ``hsage``, ``mlp`` are built from
            it; ``num_features`` is then the target type's); None: a homogeneous graph.
    """

    name: str
    num_features: int
    num_classes: int
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.5
    aggregation: str = "auto"
    aggregation_rankings: dict[str, Any] | None = None
    lr: float = 0.01
    weight_decay: float = 5e-4
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    decoder: str | None = None
    schema: "HeteroSchema | None" = None

    @classmethod
    def from_config(cls, config: "JobConfig", num_features: int, num_classes: int, schema: "HeteroSchema | None" = None) -> "ModelSpec":
        """The spec of ``config`` for a dataset of ``num_features`` inputs and ``num_classes`` classes (the
        output width is the task's: ``num_classes`` for node classification, ``model.hidden`` for links);
        ``schema`` for a heterogeneous dataset."""
        from gnndist.tasks import resolve_task

        model, train = config.model, config.train
        task = resolve_task(config.task)
        rankings = None
        if config.aggregation.selection is not None:
            from gnndist.aggregation.selection import SelectionTable

            rankings = SelectionTable.load(config.aggregation.selection).rankings
        return cls(
            name=model.name,
            num_features=num_features,
            num_classes=task.output_width(num_classes, model.hidden),
            hidden=model.hidden,
            layers=model.layers,
            dropout=model.dropout,
            aggregation=config.aggregation.name,
            aggregation_rankings=rankings,
            lr=train.lr,
            weight_decay=train.weight_decay,
            seed=train.seed,
            options=model.options(),
            decoder=task.decoder,
            schema=schema,
        )

    def build_model(self) -> "torch.nn.Module":
        """The model, its parameters initialised from ``seed``, ready for layer-wise training.

        The factory (:func:`~gnndist.models.model_factory`) gets the keywords its signature names among
        ``in_channels, hidden_channels, out_channels, num_layers, dropout, aggregation`` and ``options``
        (all but ``aggregation`` when it takes ``**kwargs``); a heterogeneous model
        (:class:`~gnndist.models.hetero.HeteroLayerwise`) gets ``schema`` instead of ``in_channels``. A model
        that is not layer-wise itself is wrapped in :class:`~gnndist.models.adapter.PyGLayers` and checked once
        on a one-node graph.

        Raises:
            TypeError: the model does not fit the layer-wise protocol (the message says what is missing).
            ValueError: its number of layers is not ``layers``, its output width is not ``num_classes``, it
                fails on ``num_features`` inputs, or it does not fit the graph's kind (a heterogeneous model on a
                homogeneous graph, or the reverse).
        """
        import torch

        from gnndist.models import model_factory
        from gnndist.models.gnn import Layerwise
        from gnndist.models.hetero import HeteroLayerwise, is_heterogeneous
        from gnndist.registry import MODELS, accepted_options

        factory = model_factory(self.name)
        heterogeneous = is_heterogeneous(factory)
        if heterogeneous and self.schema is None:
            raise ValueError(f"model.name={self.name!r} is a heterogeneous model: it trains on a graph with node and edge types (e.g. dataset.name=hsbm), not on a homogeneous one")
        if self.schema is not None and not heterogeneous:
            hetero_models = [name for name in MODELS.available() if is_heterogeneous(MODELS.get(name))]
            raise ValueError(f"model.name={self.name!r} is a homogeneous model but the dataset is a heterogeneous graph; models for it: {', '.join(hetero_models)}")
        offered = {"in_channels": self.num_features, "hidden_channels": self.hidden, "out_channels": self.num_classes, "num_layers": self.layers, "dropout": self.dropout, **self.options}
        if heterogeneous:
            del offered["in_channels"]
            offered["schema"] = self.schema
        accepted = accepted_options(factory, 0)
        if accepted is not None and "aggregation" in accepted:
            offered["aggregation"] = self.resolve_aggregation()
        torch.manual_seed(self.seed)
        model = factory(**{key: value for key, value in offered.items() if accepted is None or key in accepted})
        if not isinstance(model, (Layerwise, HeteroLayerwise)):
            from gnndist.models.adapter import PyGLayers

            model = PyGLayers(model, self.name)
            if model.num_layers != self.layers:  # mini-batch samples one hop per layer: the counts must agree
                raise ValueError(f"model.name={self.name!r} has {model.num_layers} layers but model.layers={self.layers}: set model.layers={model.num_layers}, or let the class take num_layers")
            self._check_widths(model)
        if self.decoder is None:
            return model
        from gnndist.models.decoders import with_decoder

        return with_decoder(model, self.decoder, self.num_classes)

    def check(self) -> None:
        """Builds the model once and drops it, so that a model that does not fit fails where the job starts
        (the driver), with the message of :meth:`build_model`, rather than inside every worker."""
        self.build_model()

    def _check_widths(self, model: "torch.nn.Module") -> None:
        """Runs ``model`` once on one node without edges: it must take ``num_features`` inputs and give ``num_classes`` outputs."""
        import torch

        from gnndist.block import Block

        block = Block(torch.zeros(2, dtype=torch.long), torch.zeros(0, dtype=torch.long), 1)
        model.eval()
        try:
            with torch.no_grad():
                out = model(torch.zeros(1, self.num_features), block)
        except Exception as error:
            raise ValueError(f"model.name={self.name!r} fails on a node of num_features={self.num_features} inputs: {type(error).__name__}: {error}") from error
        finally:
            model.train()
        if out.dim() != 2 or out.size(1) != self.num_classes:
            raise ValueError(f"model.name={self.name!r} outputs rows of shape {list(out.shape[1:])} but the dataset has num_classes={self.num_classes} (it is built with out_channels={self.num_classes})")

    def resolve_aggregation(self) -> Any:
        """The aggregation backend every layer uses (``auto`` with the measured table, when one was given)."""
        from gnndist.aggregation import SelectionTable, resolve_aggregation

        if self.aggregation == "auto" and self.aggregation_rankings is not None:
            return resolve_aggregation("auto", table=SelectionTable(self.aggregation_rankings, "aggregation.selection"))
        return resolve_aggregation(self.aggregation)

    def build(self, device: "torch.device | str" = "cpu") -> "tuple[torch.nn.Module, torch.optim.Optimizer]":
        """The model on ``device`` (initialised on the CPU first, so every device starts from the same
        parameters) and its Adam optimizer."""
        import torch

        model = self.build_model().to(device)
        # torch's fused Adam: one kernel per step instead of ~10 tensor operations per parameter (a 2-layer
        # GraphSAGE's step on the CPU: 89-110 us against 276 us; a mini-batch worker steps once a batch), on CUDA
        # and, from torch 2.4, on the CPU
        kind = torch.device(device).type
        fused = kind == "cuda" or (kind == "cpu" and torch.torch_version.TorchVersion(torch.__version__) >= "2.4")
        return model, torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=fused)
