"""Tasks by name (``task.name=node|link``): what a run learns, apart from how and where it trains.

Built-ins are listed in :data:`gnndist.registry.TASKS`; see :mod:`gnndist.tasks.base` for the interface.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from gnndist.registry import TASKS

if TYPE_CHECKING:
    from gnndist.config import TaskConfig
    from gnndist.tasks.base import Task


def resolve_task(config: "TaskConfig | None" = None) -> "Task":
    """The task the ``task`` config section describes (default: node classification)."""
    if config is None:
        return TASKS.resolve("node")
    return TASKS.resolve(config.name, **config.options())


def available_tasks() -> list[str]:
    return TASKS.available()


__all__ = ["TASKS", "available_tasks", "resolve_task"]
