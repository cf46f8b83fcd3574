"""Feature and graph stores: one part's owned rows served by owner-local id, in-process or from a Ray actor per part.

``base`` holds the interfaces (:class:`FeatureStore`, :class:`GraphStore`, :class:`StoreHandle`),
``local`` the in-process backend and the server every backend hosts, ``ray`` the actor backend,
``client`` a worker's side (requests split by owner, its remote rows as a feature store).
"""
from gnndist.store.base import FeatureInfo, FeatureStore, GraphStore, InEdges, Pending, Ready, StoreHandle, StoreInfo
from gnndist.store.client import OwnerAnswer, RemoteFeatures, StoreClient, StoreStats
from gnndist.store.local import LocalFeatureStore, LocalGraphStore, LocalHandle, PartLoader, StoreServer, local_stores
from gnndist.store.ray import RayHandle, StoreSet, start_stores, stop_stores

__all__ = [
    "FeatureInfo",
    "FeatureStore",
    "GraphStore",
    "InEdges",
    "LocalFeatureStore",
    "LocalGraphStore",
    "LocalHandle",
    "OwnerAnswer",
    "PartLoader",
    "Pending",
    "RayHandle",
    "Ready",
    "RemoteFeatures",
    "StoreClient",
    "StoreHandle",
    "StoreInfo",
    "StoreServer",
    "StoreSet",
    "StoreStats",
    "local_stores",
    "start_stores",
    "stop_stores",
]
