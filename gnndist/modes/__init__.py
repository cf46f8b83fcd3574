"""Training modes by name (``mode=single|local|fullgraph|minibatch``): how a job trains, and in which processes.

Built-ins are listed in :data:`gnndist.registry.MODES`. Each mode is a small class with
``start(group, job) -> trainer`` (Ray Train's ``Backend`` shape): the job prepares what the mode
declares it needs (a partition directory, a group of Ray workers) and the mode builds the trainer the
epoch loop drives.
"""
from __future__ import annotations

from typing import Any

from gnndist.registry import MODES


def resolve_mode(name: str) -> Any:
    """The mode registered as ``name``."""
    return MODES.resolve(name)


def available_modes() -> list[str]:
    return MODES.available()


__all__ = ["MODES", "available_modes", "resolve_mode"]
