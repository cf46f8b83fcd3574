"""Remote feature caches for mini-batch training: a cached feature store and its policies none, degree, presample, lru (one registry).

``CachedFeatureStore(remote_rows, resolve_cache("presample", capacity=0.2, epochs=1), RemoteNodes(...))``
builds one in front of a feature store; ``cached.gather(remote_ids)`` serves a batch
(``cached.gather_into(remote_ids, out, positions)`` into the batch's own tensor); ``cached.stats``
counts hits, misses and bytes fetched.
"""
from gnndist.cache.base import (
    CACHES,
    CachePolicy,
    RemoteNodes,
    available_caches,
    capacity_rows,
    check_capacity,
    register_cache,
    resolve_cache,
)
from gnndist.cache.cached import CachedFeatureStore, CacheStats
from gnndist.cache.policies import DegreeCache, LRUCache, NoCache, PresampleCache

__all__ = [
    "CACHES",
    "CachePolicy",
    "CacheStats",
    "CachedFeatureStore",
    "DegreeCache",
    "LRUCache",
    "NoCache",
    "PresampleCache",
    "RemoteNodes",
    "available_caches",
    "capacity_rows",
    "check_capacity",
    "register_cache",
    "resolve_cache",
]
