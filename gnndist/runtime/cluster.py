"""Connecting to Ray: an embedded private instance on 127.0.0.1 by default, or an existing cluster."""
from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from typing import Iterator
from urllib.parse import urlparse


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fails fast (instead of Ray's long retries) when ``host:port`` does not accept connections."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if host is None or port is None:
        raise ValueError(f"Cluster address {address!r} is not host:port or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=min(timeout_s, 10.0)):
            pass
    except OSError as error:
        raise ConnectionError(f"Cannot reach the Ray cluster at {address} ({error}); is `ray start --head` running there?") from None


@contextlib.contextmanager
def ray_cluster(address: str | None = None, *, num_cpus: float | None = None, num_gpus: int | None = None, object_store_bytes: int | None = None, timeout_s: float = 30.0) -> Iterator[dict]:
    """Yields a connected Ray; shuts down only what it started.

    Args:
        address: None for an embedded private Ray bound to 127.0.0.1 (its own temp dir, no dashboard);
            ``host:port``, ``ray://host:port`` or ``auto`` to join an existing cluster.
        num_cpus, num_gpus: resources of the embedded instance (logical; default: this machine's).
        object_store_bytes: object store size of the embedded instance.
        timeout_s: bound on reaching an existing cluster.
    """
    import ray

    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    started = time.perf_counter()
    if address is None:
        temp_dir = os.environ.get("RAY_TMPDIR") or tempfile.mkdtemp(prefix="gnndist-ray-")
        os.environ["RAY_TMPDIR"] = temp_dir
        ray.init(
            address="local",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            object_store_memory=object_store_bytes,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            _temp_dir=temp_dir,
            logging_level="ERROR",
        )
    else:
        _check_reachable(address, timeout_s)
        ray.init(address=address, logging_level="ERROR")
    try:
        resources = ray.cluster_resources()
        resources["_connect_s"] = time.perf_counter() - started
        yield resources
    finally:
        ray.shutdown()
