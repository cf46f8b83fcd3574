"""Connecting to Ray: an embedded private instance on 127.0.0.1 by default, or an existing cluster.

An embedded Ray is local only when its node address is 127.0.0.1: then every process it starts (GCS,
raylet, object manager, agents, workers, the driver's core worker) listens on loopback only. Ray fixes
that address when it is *imported*: on Linux it turns 127.0.0.1 into the machine's interface address
unless the environment holds ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (:data:`LOCAL_ONLY_ENV`) at that
moment. The ``gnndist`` command sets it before importing Ray; a program embedding gnndist sets it before
its first ``import ray`` (``ray_cluster`` warns when the embedded Ray came up on another address).
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from typing import Iterator
from urllib.parse import urlparse

JOB_SUBMIT_MARKER = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray's job supervisor for `ray job submit` entrypoints
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # read by Ray at import: nodes it starts keep 127.0.0.1


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped loopback)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


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
        address: None for an embedded private Ray bound to 127.0.0.1 (its own temp dir: ``RAY_TMPDIR`` or a
            fresh one, removed at the end; no dashboard UI; see the module notes on local-only),
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
    own_temp_dir = None
    if address is None:
        temp_dir = os.environ.get("RAY_TMPDIR") or (own_temp_dir := tempfile.mkdtemp(prefix="gnndist-ray-"))
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
        node_address = ray.util.get_node_ip_address()
        if not is_loopback(node_address):
            print(
                f"gnndist: warning: the embedded Ray listens on {node_address}, not only on 127.0.0.1: Ray was imported without "
                f"{' '.join(f'{k}={v}' for k, v in LOCAL_ONLY_ENV.items())} in the environment (the gnndist command sets it; set it before importing ray)",
                file=sys.stderr,
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
        if own_temp_dir is not None:
            shutil.rmtree(own_temp_dir, ignore_errors=True)
