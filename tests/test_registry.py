"""The one registry mechanism: names, duplicates, and options checked against each factory's signature."""
from __future__ import annotations

import pytest

from gnndist.aggregation import resolve_aggregation
from gnndist.cache import resolve_cache
from gnndist.comm import resolve_strategy
from gnndist.data import load_dataset
from gnndist.models import resolve_model
from gnndist.partitioners import resolve_partitioner
from gnndist.registry import Registry, UnknownOptionError


def test_resolve_checks_options_against_the_signature():
    registry: Registry[object] = Registry("widget")

    @registry.register("fn")
    def make(size: int = 1, *, colour: str = "red"):
        return (size, colour)

    @registry.register("open")
    def make_open(**options):
        return options

    @registry.register("cls")
    class Widget:
        def __init__(self, size: int = 1):
            self.size = size

    assert registry.resolve("fn", colour="blue") == (1, "blue")
    assert registry.resolve("cls", size=3).size == 3
    assert registry.resolve("open", anything=1) == {"anything": 1}  # **kwargs: every option is the factory's business
    with pytest.raises(UnknownOptionError, match=r"^Unknown option 'color' for widget 'fn'; accepted: size, colour$"):
        registry.resolve("fn", color="blue")
    with pytest.raises(UnknownOptionError, match=r"^Unknown options 'a', 'b' for widget 'cls'; accepted: size$"):
        registry.resolve("cls", a=1, b=2)
    with pytest.raises(KeyError, match="Unknown widget 'nope'; available: cls, fn, open"):
        registry.resolve("nope", size=1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("fn")(make)


@pytest.mark.parametrize(
    "resolve, message",
    [
        (lambda: resolve_strategy("sampled", pp=0.5), "Unknown option 'pp' for communication strategy 'sampled'; accepted: p"),
        (lambda: resolve_strategy("sync", p=0.5), "Unknown option 'p' for communication strategy 'sync'; accepted: none"),
        (lambda: resolve_cache("lru", epochs=2), "Unknown option 'epochs' for cache policy 'lru'; accepted: capacity"),
        (lambda: resolve_partitioner("metis", passes=2), "Unknown option 'passes' for partitioner 'metis'; accepted: balance, imbalance, recursive"),
        (lambda: resolve_model("gcn", in_channels=4, hidden_channels=8, out_channels=2, heads=4), "Unknown option 'heads' for model 'gcn'; accepted: in_channels, "),
        (lambda: resolve_aggregation("csr_spmm", bogus=1), "Unknown option 'bogus' for aggregation 'csr_spmm'; accepted: "),
        (lambda: load_dataset("planetoid:cora", rot="x"), "Unknown option 'rot' for dataset 'planetoid:cora'; accepted: root, normalize_features"),
    ],
)
def test_every_registry_names_the_unknown_option_and_the_accepted_ones(resolve, message):
    with pytest.raises(UnknownOptionError) as info:
        resolve()
    assert message in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)  # what existing callers catch
