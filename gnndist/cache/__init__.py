"""Remote feature caches for mini-batch training: none, degree, presample, lru (one interface, one registry).

``resolve_cache("presample", capacity=0.2, epochs=1)`` builds one; ``cache.build(remote, fetch)``
loads it; ``cache.gather(remote_ids, fetch)`` serves a batch; ``cache.stats`` counts hits, misses
and bytes fetched.
"""
from gnndist.cache.base import (
    CACHES,
    CacheStats,
    FeatureCache,
    Fetch,
    RemoteNodes,
    available_caches,
    capacity_rows,
    check_capacity,
    register_cache,
    resolve_cache,
)
from gnndist.cache.policies import DegreeCache, LRUCache, NoCache, PresampleCache

__all__ = [
    "CACHES",
    "CacheStats",
    "DegreeCache",
    "FeatureCache",
    "Fetch",
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
