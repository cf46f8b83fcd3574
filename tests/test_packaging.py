"""Guardrails for the package_dir mapping: one top-level package, every package folder listed."""
import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAPPED = {"partitioners": "gnndist.partitioners", "launch": "gnndist.launch", "benchmarks": "gnndist.benchmarks"}


def listed_packages() -> set[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return {line.strip() for line in config["options"]["packages"].splitlines() if line.strip()}


def package_of(folder: Path) -> str:
    parts = folder.relative_to(REPO).parts
    head = MAPPED.get(parts[0], parts[0])
    return ".".join([head, *parts[1:]])


def test_every_package_folder_is_listed():
    folders = {package_of(init.parent) for init in REPO.rglob("__init__.py") if not any(p.startswith(".") or p in ("build", "tests") for p in init.relative_to(REPO).parts)}
    assert folders == listed_packages()


@pytest.mark.slow
def test_wheel_has_only_gnndist_on_top(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)], check=True, timeout=300)
    wheel = next(tmp_path.glob("gnndist-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"gnndist"}
    for package in listed_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names
    assert "gnndist/launch/cli.py" in names and "gnndist/partitioners/__init__.py" in names
