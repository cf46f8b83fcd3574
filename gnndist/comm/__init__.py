"""Halo exchange (autograd) and the communication strategies for full-graph training."""
from gnndist.comm.exchange import CommStats, Communicator, ExchangeRoute, HaloExchange, exchange_halo
from gnndist.comm.strategies import (
    STRATEGIES,
    CommStrategy,
    available_strategies,
    dequantize_rows,
    quantize_rows,
    register_strategy,
    resolve_strategy,
)

__all__ = [
    "STRATEGIES",
    "CommStats",
    "CommStrategy",
    "Communicator",
    "ExchangeRoute",
    "HaloExchange",
    "available_strategies",
    "dequantize_rows",
    "exchange_halo",
    "quantize_rows",
    "register_strategy",
    "resolve_strategy",
]
