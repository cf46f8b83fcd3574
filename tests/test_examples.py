"""Every example config validates, and the README's commands are the ones CI runs."""
from pathlib import Path

import pytest

from gnndist.config import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path):
    load_config(path)


def test_readme_has_the_two_commands():
    readme = (REPO / "README.md").read_text()
    for tag, must in (("main-command", "gnndist train"), ("ci-test-command", "pytest"), ("ci-compat-command", "-m dgl")):
        block = readme.split(f"<!-- {tag} -->", 1)[1].split("```")[1]
        assert must in block and "pip install" in block
    assert "bash .ci/run" not in readme.split("<!-- ci-test-command -->", 1)[1].split("```")[1]
