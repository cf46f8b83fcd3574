"""Cache policies and the cached feature store: registry, capacity rules, exact rows and counters for every policy, what each one holds."""
from __future__ import annotations

import pytest
import torch
from torch import Tensor

from gnndist.cache import (
    CachedFeatureStore,
    CachePolicy,
    CacheStats,
    RemoteNodes,
    available_caches,
    capacity_rows,
    register_cache,
    resolve_cache,
)
from gnndist.store import FeatureInfo, FeatureStore

POLICIES = ["none", "degree", "presample", "lru"]
COUNT, WIDTH = 50, 4


class FakeStore(FeatureStore):
    """A feature store over a known feature table, recording what was asked."""

    def __init__(self, count: int = COUNT, width: int = WIDTH):
        self.rows = torch.arange(count * width, dtype=torch.float32).view(count, width)
        self.asked: list[Tensor] = []

    @property
    def info(self) -> FeatureInfo:
        return FeatureInfo(self.rows.size(0), self.rows.size(1), self.rows.dtype)

    def _gather(self, ids):
        self.asked.append(ids.clone())
        return self.rows[ids]


def remote_nodes(count: int = COUNT, access=None) -> RemoteNodes:
    degree = torch.arange(count)  # node i has degree i: the hottest by degree are the last ids
    counts = access if access is not None else torch.arange(count).flip(0).double()  # presample prefers the first ids
    return RemoteNodes(degree, lambda epochs: counts * epochs)


def cached(policy, store=None, remote=None, **options) -> CachedFeatureStore:
    """A cached store in front of ``store`` (a fresh FakeStore by default) with the named policy."""
    return CachedFeatureStore(store if store is not None else FakeStore(), resolve_cache(policy, **options), remote if remote is not None else remote_nodes())


def test_registry_lists_every_policy_and_names_them_on_error():
    assert available_caches() == sorted(POLICIES)
    with pytest.raises(KeyError, match="available: degree, lru, none, presample"):
        resolve_cache("fifo")
    with pytest.raises(ValueError, match="already registered"):
        register_cache("lru")(CachePolicy)


def test_instance_resolves_to_itself():
    cache = resolve_cache("degree", capacity=0.5)
    assert resolve_cache(cache) is cache
    with pytest.raises(TypeError):
        resolve_cache(cache, capacity=0.1)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.2", True, None])
def test_bad_capacity_is_an_error(bad):
    with pytest.raises(ValueError, match="capacity"):
        resolve_cache("degree", capacity=bad)


def test_capacity_is_a_fraction_up_to_one_then_bytes():
    assert capacity_rows(0.2, 100, 16) == 20
    assert capacity_rows(1.0, 100, 16) == 100
    assert capacity_rows(0, 100, 16) == 0
    assert capacity_rows(16 * 30, 100, 16) == 30
    assert capacity_rows(16 * 30 + 15, 100, 16) == 30


def test_capacity_beyond_the_remote_set_is_clamped_with_a_warning():
    with pytest.warns(UserWarning, match="clamped to the whole remote set"):
        assert capacity_rows(16 * 1000, 100, 16) == 100
    with pytest.warns(UserWarning, match="exceeds the 50 remote nodes"):
        cache = cached("degree", capacity=1e9)
    assert cache.capacity_rows == COUNT


def test_presample_epochs_option_is_checked():
    assert resolve_cache("presample", capacity=0.1, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="epochs"):
        resolve_cache("presample", epochs=0)
    with pytest.raises(TypeError):
        resolve_cache("lru", epochs=2)


def test_bad_ids_and_mismatched_ranking_are_errors():
    cache = cached("lru")
    with pytest.raises(IndexError, match=f"CachedFeatureStore.*expected row ids in \\[0, {COUNT - 1}\\]"):
        cache.gather(torch.tensor([1, COUNT]))
    with pytest.raises(TypeError, match="1-D int64 tensor"):
        cache.gather(torch.tensor([1.0]))
    with pytest.raises(ValueError, match=f"Expected 'in_degree' of shape \\[{COUNT}\\]"):
        cached("degree", remote=remote_nodes(COUNT - 1))


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("capacity", [0.0, 0.3, 1.0])
def test_gather_into_writes_the_exact_rows_at_their_positions_only(policy, capacity):
    """The batch path: hits and misses land in the caller's tensor at the given rows, the rest stays as it was."""
    store = FakeStore()
    cache = cached(policy, store, capacity=capacity)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        ids = torch.randperm(COUNT, generator=generator)[:30]
        out = torch.full((2 * COUNT, WIDTH), -1.0)
        positions = torch.randperm(2 * COUNT, generator=generator)[:30]
        cache.gather_into(ids, out, positions)
        assert torch.equal(out[positions], store.rows[ids])
        untouched = torch.ones(2 * COUNT, dtype=torch.bool).index_fill_(0, positions, False)
        assert bool((out[untouched] == -1).all())
    assert cache.stats.requests == 6 * 30


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("capacity", [0.0, 0.3, 1.0])
def test_gather_returns_the_exact_rows_and_counts_every_request(policy, capacity):
    store = FakeStore()
    cache = cached(policy, store, capacity=capacity)
    assert cache.info == store.info  # a feature store over the same rows
    generator = torch.Generator().manual_seed(0)
    hits = misses = 0
    for _ in range(12):
        ids = torch.randperm(COUNT, generator=generator)[: int(torch.randint(1, COUNT, (1,), generator=generator))]
        fetched_before = sum(a.numel() for a in store.asked)
        before = cache.stats.hits
        assert torch.equal(cache.gather(ids), store.rows[ids])
        fetched = sum(a.numel() for a in store.asked) - fetched_before
        assert cache.stats.hits - before == ids.numel() - fetched  # every miss fetched exactly once
        hits, misses = cache.stats.hits, cache.stats.misses
    assert cache.stats.bytes_fetched == misses * WIDTH * 4
    if policy == "none" or capacity == 0:
        assert hits == 0
    if policy in ("degree", "presample") and capacity == 1.0:
        assert misses == 0  # the whole remote set is held


def test_static_policies_hold_their_ranking():
    degree = cached("degree", capacity=0.1)
    assert degree.held_nodes().tolist() == [49, 48, 47, 46, 45]
    assert degree.fill_bytes == 5 * WIDTH * 4
    presample = cached("presample", capacity=0.1)
    assert presample.held_nodes().tolist() == [0, 1, 2, 3, 4]


def test_presample_breaks_ties_and_fills_unvisited_by_degree():
    access = torch.zeros(COUNT, dtype=torch.float64)
    access[[3, 7]] = 2.0
    access[10] = 5.0
    cache = cached("presample", remote=remote_nodes(access=access), capacity=0.1)
    assert cache.held_nodes().tolist() == [10, 7, 3, 49, 48]


def test_none_holds_nothing_whatever_its_capacity():
    cache = cached("none", capacity=1.0)
    assert cache.capacity_rows == 0 and cache.held_nodes().numel() == 0


def test_lru_evicts_the_least_recently_used():
    store = FakeStore()
    cache = cached("lru", store, capacity=0.06)  # 3 rows
    gather = lambda ids: cache.gather(torch.tensor(ids))  # noqa: E731
    gather([1, 2])  # cache: 1, 2
    gather([3])  # 1, 2, 3
    gather([1])  # 1 is the most recent
    gather([4])  # evicts 2 (least recent)
    assert sorted(cache.held_nodes().tolist()) == [1, 3, 4]
    before = cache.stats.hits
    assert torch.equal(gather([1, 3, 4]), store.rows[[1, 3, 4]])
    assert cache.stats.hits - before == 3
    gather([5, 6, 7, 8])  # more misses than slots: the first three are admitted
    assert sorted(cache.held_nodes().tolist()) == [5, 6, 7]


def test_lru_keeps_rows_hit_in_the_same_batch():
    cache = cached("lru", capacity=0.04)  # 2 rows
    cache.gather(torch.tensor([1, 2]))
    cache.gather(torch.tensor([1, 9]))  # 1 hit: only the other slot may be replaced
    assert sorted(cache.held_nodes().tolist()) == [1, 9]


def test_stats_hit_rate_and_reset():
    stats = CacheStats(hits=3, misses=1, bytes_fetched=16)
    assert stats.hit_rate == 0.75 and stats.requests == 4
    stats.reset()
    assert stats.hit_rate is None and stats.bytes_fetched == 0
