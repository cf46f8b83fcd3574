"""Connecting to Ray: an embedded private instance on 127.0.0.1 by default, or an existing cluster."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import tempfile
import time
from typing import Iterator
from urllib.parse import urlparse

JOB_SUBMIT_MARKER = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for `ray job submit` entrypoints


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
def ray_cluster(
    address: str | None = None, *, num_cpus: float | None = None, num_gpus: int | None = None, object_store_bytes: int | None = None, timeout_s: float = 30.0, runtime_env: dict | None = None
) -> Iterator[dict]:
    """Yields a connected Ray; shuts down only what it started.

    Args:
        address: None for an embedded private Ray bound to 127.0.0.1 (its own temp dir, no dashboard),
            except under ``ray job submit``, where None joins the job's cluster;
            ``host:port``, ``ray://host:port`` or ``auto`` to join an existing cluster.
        num_cpus, num_gpus: resources of the embedded instance (logical; default: this machine's).
        object_store_bytes: object store size of the embedded instance.
        timeout_s: bound on reaching an existing cluster.
        runtime_env: Ray runtime environment for the job on an existing cluster (e.g. a gnndist wheel to pip-install).
    """
    import ray

    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    started = time.perf_counter()
    if address is None and JOB_SUBMIT_MARKER in os.environ:
        address = os.environ.get("RAY_ADDRESS") or "auto"
    sigterm_handler = signal.getsignal(signal.SIGTERM)
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
        try:
            ray.init(address=address, logging_level="ERROR", **({"runtime_env": runtime_env} if runtime_env else {}))
        except ConnectionError as error:
            raise ConnectionError(
                f"{error}: the port answers but Ray could not connect; if the cluster uses token authentication (on by default in Ray 2.60), "
                "set RAY_AUTH_MODE=token here and provide its token (~/.ray/auth_token or RAY_AUTH_TOKEN)"
            ) from None
    if callable(sigterm_handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, sigterm_handler)  # Ray's core worker replaces it with one that aborts the process
    try:
        resources = ray.cluster_resources()
        resources["_connect_s"] = time.perf_counter() - started
        yield resources
    finally:
        ray.shutdown()
