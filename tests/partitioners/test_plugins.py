"""Third-party partitioners plug in through the entry-point group ``gnndist.partitioners``.

A real tiny distribution is built and installed into a temporary folder with pip; a fresh
interpreter with that folder on its path must find and run the plug-in by name.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
import torch
from gnndist.partitioners import Partitioner


class MyPartitioner(Partitioner):
    """Deals node ids round-robin."""

    def _assign(self, graph, num_parts, *, seed):
        return torch.arange(graph.num_nodes) % num_parts
'''

SETUP_CFG = """
[metadata]
name = gnndist-test-plugin
version = 0.1

[options]
packages = mypkg

[options.entry_points]
gnndist.partitioners =
    mine = mypkg:MyPartitioner
"""

CHECK = """
import json, torch
from gnndist.graph import Graph
from gnndist.partitioners import available_partitioners, resolve_partitioner
graph = Graph.from_edge_index(torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 0]]), 5)
result = resolve_partitioner("mine").partition(graph, 2)
print(json.dumps({"available": available_partitioners(), "method": result.method, "node_part": result.node_part.tolist()}))
"""


@pytest.mark.slow
def test_entry_point_plugin_is_resolved_by_name(tmp_path):
    source = tmp_path / "src"
    (source / "mypkg").mkdir(parents=True)
    (source / "mypkg" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (source / "setup.cfg").write_text(textwrap.dedent(SETUP_CFG))
    (source / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n')
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert list(target.glob("gnndist_test_plugin-0.1.dist-info/entry_points.txt"))

    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, env=environment)
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "mine" in output["available"] and "metis" in output["available"]
    assert output["method"] == "mine"
    assert output["node_part"] == [0, 1, 0, 1, 0]
