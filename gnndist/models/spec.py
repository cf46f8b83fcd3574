"""ModelSpec: what every worker needs to build the same model and optimizer, taken from the job config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from gnndist.config import JobConfig


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Model and optimizer settings, identical on every worker.

    Attributes:
        name: registered model name.
        num_features, num_classes: input and output widths (from the dataset).
        hidden, layers, dropout: model shape; ``options`` further constructor options (``heads``).
        aggregation: aggregation backend name (``auto`` or a backend).
        aggregation_rankings: the measured selection table ``auto`` follows (``aggregation.selection``,
            read once by the driver); None: the built-in ranking.
        lr, weight_decay: Adam settings.
        seed: fixes the initial parameters (every worker builds the same model).
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

    @classmethod
    def from_config(cls, config: "JobConfig", num_features: int, num_classes: int) -> "ModelSpec":
        """The spec of ``config`` for a dataset of ``num_features`` inputs and ``num_classes`` outputs."""
        model, train = config.model, config.train
        rankings = None
        if config.aggregation.selection is not None:
            from gnndist.aggregation.selection import SelectionTable

            rankings = SelectionTable.load(config.aggregation.selection).rankings
        return cls(
            name=model.name,
            num_features=num_features,
            num_classes=num_classes,
            hidden=model.hidden,
            layers=model.layers,
            dropout=model.dropout,
            aggregation=config.aggregation.name,
            aggregation_rankings=rankings,
            lr=train.lr,
            weight_decay=train.weight_decay,
            seed=train.seed,
            options=model.options(),
        )

    def build_model(self) -> "torch.nn.Module":
        """The model, its parameters initialised from ``seed``."""
        import torch

        from gnndist.models import resolve_model

        torch.manual_seed(self.seed)
        return resolve_model(
            self.name, in_channels=self.num_features, hidden_channels=self.hidden, out_channels=self.num_classes, num_layers=self.layers, dropout=self.dropout, aggregation=self.resolve_aggregation(), **self.options
        )

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
        return model, torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
