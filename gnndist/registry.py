"""One registry mechanism for every pluggable part (partitioners, strategies, caches, datasets, ...)."""
from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownOptionError(TypeError, ValueError):
    """An option a registered component does not take.

    A ``TypeError`` like Python's own for an unexpected keyword argument, and a ``ValueError`` like every
    other bad value in a config, so callers catching either see it.
    """


def _accepted_options(factory: Callable[..., Any], skip: int) -> list[str] | None:
    """The keyword options ``factory`` takes, in signature order, after its first ``skip`` parameters;
    None when it takes any keyword (``**kwargs``) or has no inspectable signature."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    named = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    return named[skip:]


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

    def check_options(self, name: str, options: dict[str, Any], *, skip: int = 0, label: str | None = None) -> None:
        """Fails before building when ``options`` holds a keyword the factory ``name`` does not take.

        Args:
            name: a registered name.
            options: the keyword options to check.
            skip: leading parameters supplied positionally (not options).
            label: how the component is named in the message (default: ``name``).

        Raises:
            KeyError: an unknown name.
            UnknownOptionError: an unknown option; the message names it and lists the accepted ones.
        """
        accepted = _accepted_options(self.get(name), skip)
        unknown = [option for option in options if accepted is not None and option not in accepted]
        if unknown:
            listed = ", ".join(repr(option) for option in unknown)
            raise UnknownOptionError(f"Unknown option{'s' if len(unknown) > 1 else ''} {listed} for {self.kind} {label or name!r}; accepted: {', '.join(accepted) or 'none'}")

    def resolve(self, name_or_instance: str | T, **kwargs: Any) -> T:
        """Builds the component named ``name_or_instance`` with ``kwargs``, or returns an instance unchanged.

        Options are checked against the factory's signature first (:meth:`check_options`), so a typo
        fails with the accepted options instead of a bare ``TypeError`` from deep inside the factory.
        """
        if not isinstance(name_or_instance, str):
            if kwargs:
                raise TypeError(f"Options {sorted(kwargs)} given with an already built {self.kind}")
            return name_or_instance
        self.check_options(name_or_instance, kwargs)
        return self.get(name_or_instance)(**kwargs)
