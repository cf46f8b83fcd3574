"""One registry mechanism for every pluggable part (partitioners, strategies, caches, datasets, ...)."""
from __future__ import annotations

from importlib import metadata
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories (classes or functions) of one kind of component.

    Args:
        kind: what the registry holds, used in error messages ("partitioner").
        entry_point_group: optional entry-point group whose plug-ins are loaded on first lookup.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._factories: dict[str, Callable[..., T]] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under ``name``; a second use of a name is an error."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._factories[name]!r})")
            self._factories[name] = factory
            return factory

        return decorator

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            if entry_point.name in self._factories:
                continue
            try:
                self._factories[entry_point.name] = entry_point.load()
            except Exception as error:  # a broken plug-in must not break the built-ins
                raise ImportError(
                    f"{self.kind} plug-in {entry_point.name!r} from entry point {entry_point.value!r} "
                    f"(group {self.entry_point_group!r}) failed to load: {error}"
                ) from error

    def available(self) -> list[str]:
        """Sorted names of every registered factory, plug-ins included."""
        self._load_plugins()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; unknown names fail with the list of choices."""
        self._load_plugins()
        if name not in self._factories:
            raise KeyError(f"Unknown {self.kind} {name!r}; available: {', '.join(self.available())}")
        return self._factories[name]

    def resolve(self, name_or_instance: str | T, **kwargs: Any) -> T:
        """Builds the component named ``name_or_instance`` with ``kwargs``, or returns an instance unchanged."""
        if not isinstance(name_or_instance, str):
            if kwargs:
                raise TypeError(f"Options {sorted(kwargs)} given with an already built {self.kind}")
            return name_or_instance
        return self.get(name_or_instance)(**kwargs)
