"""Aggregation backends by name: the kernels layers use and the benchmark harness profiles.

``resolve_aggregation(name)`` builds one; ``available_aggregations()`` lists the names;
``resolve_aggregation("auto")`` picks per block with ``select_backend(block, reduce, device)``,
from the harness's measurements (``gnndist bench aggregation``).
Every backend is listed (in :data:`gnndist.registry.AGGREGATIONS`) even when its library is missing;
``supports()`` then says why it cannot run.
"""
from gnndist.aggregation.base import (
    AGGREGATIONS,
    REDUCERS,
    Aggregation,
    available_aggregations,
    register_aggregation,
    resolve_aggregation,
)
from gnndist.aggregation.reference import Agreement, check_against_reference, compare_with_reference, reference_aggregate, reference_with_grad, tie_free_features
from gnndist.aggregation.selection import GraphStats, SelectionTable, auto_choices, select_backend

__all__ = [
    "AGGREGATIONS",
    "Agreement",
    "REDUCERS",
    "Aggregation",
    "available_aggregations",
    "GraphStats",
    "SelectionTable",
    "auto_choices",
    "check_against_reference",
    "compare_with_reference",
    "reference_aggregate",
    "reference_with_grad",
    "register_aggregation",
    "resolve_aggregation",
    "select_backend",
    "tie_free_features",
]
