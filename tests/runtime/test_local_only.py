"""`gnndist train` on its embedded Ray is local: every process of the run listens on loopback only."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import psutil
import pytest

from gnndist.runtime.cluster import is_loopback

JOB = ["mode=fullgraph", "dataset.num_nodes=300", "dataset.feature_dim=8", "model.hidden=8", "train.epochs=100000", "train.num_threads=1", "partition.parts=2"]


@dataclass
class Listener:
    pid: int
    process: str
    address: str
    port: int


@pytest.fixture(scope="module")
def run_tree(tmp_path_factory):
    """The processes and listening sockets of a `gnndist train` run, taken once its workers train."""
    ray_tmp = tempfile.mkdtemp(prefix="gdloc-")  # short: Ray's socket paths must stay under 108 bytes
    out = tmp_path_factory.mktemp("local") / "run"
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}  # nothing set for Ray: the command does it
    env["RAY_TMPDIR"] = ray_tmp
    proc = subprocess.Popen([sys.executable, "-m", "gnndist.launch.cli", "train", *JOB, f"output.dir={out}", "--no-progress"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no epoch within 300 s"
            time.sleep(0.05)
        time.sleep(2)  # let every service finish starting its servers
        root = psutil.Process(proc.pid)
        processes, listeners = {}, []
        for process in [root, *root.children(recursive=True)]:
            try:
                name = " ".join(process.cmdline())
                processes[process.pid] = name
                listeners += [Listener(process.pid, name, c.laddr.ip, c.laddr.port) for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        yield processes, listeners
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_every_listening_socket_of_the_run_is_on_loopback(run_tree):
    processes, listeners = run_tree
    names = " | ".join(processes.values())
    for expected in ("gcs_server", "raylet", "ray::Worker", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "monitor.py", "gnndist.launch.cli"):
        assert expected in names, f"{expected} is not among the run's processes: the listing would not cover it"
    listening = {listener.pid: listener.process for listener in listeners}
    assert any("gcs_server" in p for p in listening.values()) and any("raylet" in p for p in listening.values()) and sum("ray::Worker" in p for p in listening.values()) == 2
    exposed = [listener for listener in listeners if not is_loopback(listener.address)]
    assert not exposed, "\n".join(f"{listener.process[:100]} (pid {listener.pid}) listens on {listener.address}:{listener.port}" for listener in exposed)


@pytest.mark.xfail(
    strict=True,
    reason="Ray 2.60 always starts its head API server (ray/dashboard/dashboard.py --modules-to-load=UsageStatsHead "
    "--disable-frontend) even with include_dashboard=False; no ray.init option skips it. It serves no dashboard UI and "
    "listens on 127.0.0.1 only (asserted above)",
)
def test_no_dashboard_process_is_started(run_tree):
    processes, _ = run_tree
    assert not [name for name in processes.values() if "dashboard/dashboard.py" in name]
