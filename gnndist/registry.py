"""One registry mechanism for every pluggable part, and the catalogue of gnndist's built-ins.

Every pluggable kind (training modes, tasks, models, link decoders, negative samplers, datasets, partitioners,
communication strategies, cache policies, aggregation backends) is a :class:`Registry`: names map to factories, resolved the same way
(``resolve(name, **options)``), listed by ``available()``. Built-ins are declared here as
``"module:attribute"`` strings and imported on first use, so that listing or validating names (the job
config does both) imports no torch or PyG. Third-party components register with ``REGISTRY.register(name)``
or through an entry-point group (partitioners: ``gnndist.partitioners``; models: ``gnndist.models``).
"""
from __future__ import annotations

import functools
import importlib
import inspect
from importlib import metadata
from typing import Any, Callable, Generic, Mapping, TypeVar

T = TypeVar("T")


def import_object(target: str) -> Any:
    """The object ``"package.module:Attribute"`` names (``Attribute`` may be dotted)."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"Expected 'package.module:Name' (got {target!r})")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


class UnknownOptionError(TypeError, ValueError):
    """An option a registered component does not take.

    A ``TypeError`` like Python's own for an unexpected keyword argument, and a ``ValueError`` like every
    other bad value in a config, so callers catching either see it.
    """


def accepted_options(factory: Callable[..., Any], skip: int) -> tuple[str, ...] | None:
    """The keyword options ``factory`` takes, in signature order, after its first ``skip`` parameters;
    None when it takes any keyword (``**kwargs``) or has no inspectable signature. Remembered per factory:
    ``inspect.signature`` is slow, and mini-batch blocks resolve their aggregation backend every step."""
    try:
        return _cached_options(factory, skip)
    except TypeError:  # an unhashable factory (a callable object): not remembered
        return _signature_options(factory, skip)


def _signature_options(factory: Callable[..., Any], skip: int) -> tuple[str, ...] | None:
    """:func:`accepted_options`, read from the signature."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # some builtins and C extensions have none
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    named = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    return tuple(named[skip:])


_cached_options = functools.lru_cache(maxsize=None)(_signature_options)


class Registry(Generic[T]):
    """Maps names to factories (classes or functions) of one kind of component.

    Args:
        kind: what the registry holds, used in error messages ("partitioner").
        builtins: ``name -> "module:attribute"`` of the built-in factories, imported on first lookup.
        entry_point_group: optional entry-point group whose plug-ins are loaded on first lookup.
    """

    def __init__(self, kind: str, builtins: Mapping[str, str] | None = None, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._lazy: dict[str, str] = dict(builtins or {})
        self._factories: dict[str, Callable[..., T]] = {}
        self._plugins: dict[str, metadata.EntryPoint] | None = None

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering a factory under ``name``; a second use of a name is an error."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories or name in self._lazy:
                raise ValueError(f"{self.kind} {name!r} is already registered ({self._factories.get(name, self._lazy.get(name))!r})")
            self._factories[name] = factory
            return factory

        return decorator

    def unregister(self, name: str) -> None:
        """Forgets ``name`` (tests that register temporary components clean up with it)."""
        self._factories.pop(name, None)
        self._lazy.pop(name, None)

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self._plugins is None:
            found = metadata.entry_points(group=self.entry_point_group) if self.entry_point_group else ()
            self._plugins = {entry_point.name: entry_point for entry_point in found}
        return self._plugins

    def available(self) -> list[str]:
        """Sorted names of every registered factory, plug-ins included (nothing is imported)."""
        return sorted({*self._factories, *self._lazy, *self._entry_points()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.available()

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; unknown names fail with the list of choices."""
        if name in self._factories:
            return self._factories[name]
        if name in self._lazy:
            factory = import_object(self._lazy[name])
        elif name in self._entry_points():
            entry_point = self._entry_points()[name]
            try:
                factory = entry_point.load()
            except Exception as error:  # a broken plug-in must name itself, not break with a bare import error
                raise ImportError(f"{self.kind} plug-in {name!r} from entry point {entry_point.value!r} (group {self.entry_point_group!r}) failed to load: {error}") from error
        else:
            raise KeyError(f"Unknown {self.kind} {name!r}; available: {', '.join(self.available())}")
        self._factories[name] = factory
        return factory

    def check_options(self, name: str, options: Mapping[str, Any], *, skip: int = 0, label: str | None = None) -> None:
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
        accepted = accepted_options(self.get(name), skip)
        unknown = [option for option in options if accepted is not None and option not in accepted]
        if unknown:
            listed = ", ".join(repr(option) for option in unknown)
            raise UnknownOptionError(f"Unknown option{'s' if len(unknown) > 1 else ''} {listed} for {self.kind} {label or name!r}; accepted: {', '.join(accepted) or 'none'}")

    def resolve(self, name_or_instance: str | T, **options: Any) -> T:
        """Builds the component named ``name_or_instance`` with ``options``, or returns an instance unchanged.

        Options are checked against the factory's signature first (:meth:`check_options`), so a typo
        fails with the accepted options instead of a bare ``TypeError`` from deep inside the factory.
        """
        if not isinstance(name_or_instance, str):
            if options:
                raise TypeError(f"Options {sorted(options)} given with an already built {self.kind}")
            return name_or_instance
        self.check_options(name_or_instance, options)
        return self.get(name_or_instance)(**options)


# --- the catalogue of built-ins --------------------------------------------------------------------

MODES: Registry[Any] = Registry(
    "training mode",
    {
        "single": "gnndist.modes.single:SingleMode",
        "local": "gnndist.modes.local:LocalMode",
        "fullgraph": "gnndist.modes.fullgraph:FullGraphMode",
        "minibatch": "gnndist.modes.minibatch:MiniBatchMode",
    },
)

MODELS: Registry[Any] = Registry(
    "model",
    {"gcn": "gnndist.models.gnn:GCN", "sage": "gnndist.models.gnn:GraphSAGE", "gat": "gnndist.models.gnn:GAT", "gin": "gnndist.models.gin:GIN",
     "rgcn": "gnndist.models.hetero:RGCN", "hsage": "gnndist.models.hetero:HeteroSAGE", "mlp": "gnndist.models.hetero:TargetMLP"},
    entry_point_group="gnndist.models",
)

DATASETS: Registry[Any] = Registry(
    "dataset",
    {
        "sbm": "gnndist.data.synthetic:sbm",
        "hsbm": "gnndist.data.hsbm:hsbm",
        "rmat": "gnndist.data.synthetic:rmat",
        "uniform": "gnndist.data.synthetic:uniform",
        "planetoid": "gnndist.data.planetoid:planetoid",
        "ogb": "gnndist.data.ogb:ogb",
        "npz": "gnndist.data.npz:npz",
        "chunked": "gnndist.data.chunked:chunked",
    },
)

PARTITIONERS: Registry[Any] = Registry(
    "partitioner",
    {
        "random": "gnndist.partitioners.simple:RandomPartitioner",
        "range": "gnndist.partitioners.simple:RangePartitioner",
        "metis": "gnndist.partitioners.multilevel:MetisPartitioner",
        "kahip": "gnndist.partitioners.multilevel:KaHIPPartitioner",
        "kaminpar": "gnndist.partitioners.multilevel:KaMinParPartitioner",
        "ldg": "gnndist.partitioners.streaming:LDGPartitioner",
        "fennel": "gnndist.partitioners.streaming:FennelPartitioner",
        "parallel": "gnndist.partitioners.parallel:ParallelPartitioner",
        "hdrf": "gnndist.partitioners.vertex_cut:HDRFPartitioner",
    },
    entry_point_group="gnndist.partitioners",
)

STRATEGIES: Registry[Any] = Registry(
    "communication strategy",
    {
        "sync": "gnndist.comm.strategies:SyncStrategy",
        "sampled": "gnndist.comm.strategies:SampledStrategy",
        "quantized": "gnndist.comm.strategies:QuantizedStrategy",
        "stale": "gnndist.comm.strategies:StaleStrategy",
        "cached": "gnndist.comm.strategies:CachedStrategy",
    },
)

CACHES: Registry[Any] = Registry(
    "cache policy",
    {
        "none": "gnndist.cache.policies:NoCache",
        "degree": "gnndist.cache.policies:DegreeCache",
        "presample": "gnndist.cache.policies:PresampleCache",
        "lru": "gnndist.cache.policies:LRUCache",
    },
)

TASKS: Registry[Any] = Registry(
    "task",
    {"node": "gnndist.tasks.node:NodeTask", "link": "gnndist.tasks.link:LinkTask"},
)

DECODERS: Registry[Any] = Registry(
    "decoder",
    {"dot": "gnndist.models.decoders:DotDecoder", "mlp": "gnndist.models.decoders:MLPDecoder"},
)

NEGATIVE_SAMPLERS: Registry[Any] = Registry(
    "negative sampler",
    {"uniform": "gnndist.tasks.negatives:uniform", "degree": "gnndist.tasks.negatives:degree"},
)

AGGREGATIONS: Registry[Any] = Registry(
    "aggregation",
    {
        "auto": "gnndist.aggregation.selection:AutoAggregation",
        "coo_index_add": "gnndist.aggregation.edge_list:CooIndexAdd",
        "csr_segment": "gnndist.aggregation.segment:CsrSegment",
        "csr_spmm": "gnndist.aggregation.torch_sparse_csr:CsrSpmm",
        "csc_spmm": "gnndist.aggregation.torch_sparse_csr:CscSpmm",
        "dense_gemm": "gnndist.aggregation.dense:DenseGemm",
        "pyg_edge_index": "gnndist.aggregation.pyg:PygEdgeIndex",
        "pyg_sparse": "gnndist.aggregation.pyg:PygSparse",
        "dgl_gspmm": "gnndist.aggregation.dgl_gspmm:DglGspmm",
        "torch_sparse_spmm": "gnndist.aggregation.torch_sparse_ext:TorchSparseSpmm",
        "gnndist_csr": "gnndist.aggregation.native_csr:NativeCsr",
    },
)
