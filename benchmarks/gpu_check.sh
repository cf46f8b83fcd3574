#!/usr/bin/env bash
# The one prepared GPU check of gnndist: the gpu test tier and the GPU benchmarks, in one run, on a lent
# GPU machine that has torch and PyG but not Ray or pydantic (see /work/.library/device/README.md).
#
#   bash benchmarks/gpu_check.sh fetch        # here (with network): wheels the GPU machine lacks -> .whl/
#   bash benchmarks/gpu_check.sh run [OUT]    # there, from the repository root, with .whl carried:
#                                             #   device run: carry [".whl"], command "bash benchmarks/gpu_check.sh run $OUT"
#
# `run` installs the wheels and gnndist into /tmp/site, runs `pytest -m gpu`, then `gnndist bench fullgraph`
# and `gnndist bench minibatch` on CUDA, and writes OUT/gpu_check.json and OUT/gpu_check.md. It is sized
# to finish in under 8 minutes on one H100/H200: the tests are bounded at 150 s, and `--devices cuda` alone picks the
# benchmarks' GPU defaults (fullgraph: P 1 and 2, sync, 20 epochs, bounded at 180 s; minibatch: [15, 10], 1 and
# 2 workers, 4 epochs, bounded at 120 s). Nothing here is needed on a machine without a GPU.
set -euo pipefail

WHEELS=.whl
PYTHON=${PYTHON:-python3}

fetch() {
    # Ray, pydantic, pymetis and what they need beyond the GPU image's packages, for its Python 3.12.
    mkdir -p "$WHEELS"
    grep -qx "/$WHEELS/" .git/info/exclude 2>/dev/null || echo "/$WHEELS/" >> .git/info/exclude
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" ray==2.60.0 pydantic==2.14.4 pydantic-core annotated-types typing-inspection typing-extensions==4.16.0 \
        jsonschema jsonschema-specifications referencing rpds-py pymetis==2025.2.2
    # Ray's wheel is 79 MB, over the 64 MiB a device call carries; 31 MB of it is the Java worker
    # (ray/jars), which Python jobs never load: rewrite the wheel without it.
    "$PYTHON" - "$WHEELS" <<'EOF'
import sys, zipfile
from pathlib import Path

for wheel in Path(sys.argv[1]).glob("ray-*.whl"):
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename.startswith("ray/jars/"):
                continue
            data = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True) if not line.startswith(b"ray/jars/"))
            dst.writestr(item, data)
    slim.replace(wheel)
    print(f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB without ray/jars")
EOF
    du -sh "$WHEELS"
}

run() {
    local out=${1:-${OUT:-gpu-check}}
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    export PYTHONUNBUFFERED=1 RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_TMPDIR=/tmp/gdray
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    "$PYTHON" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --upgrade --target /tmp/site .
    export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

    # At most 8 files come back from a device call: benchmark folders stay in /tmp, their tables are copied.
    local status=0 bench=/tmp/gnndist-gpu-bench
    rm -rf "$bench"
    set -o pipefail
    # From /tmp, so that `import gnndist` is the installed package, not the source folder.
    local repo=$PWD
    "$PYTHON" -c 'import torch, torch_geometric, ray; print("torch", torch.__version__, "pyg", torch_geometric.__version__, "ray", ray.__version__)' | tee -a "$out/gpu.txt"
    # Each stage is bounded, and its whole log comes back (OUT/*.log), so one failing stage leaves the others' results.
    (cd /tmp && timeout 170 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider --timeout 60 --durations 12 -c "$repo/setup.cfg" "$repo/tests" 2>&1) > "$out/gpu_tests.log" || status=1
    tail -40 "$out/gpu_tests.log" | tee "$out/gpu_tests.txt"
    (cd /tmp && timeout 150 gnndist bench fullgraph --devices cuda --out "$bench/fullgraph" --no-dgl 2>&1) > "$out/fullgraph.log" || status=1
    tail -30 "$out/fullgraph.log"
    (cd /tmp && timeout 110 gnndist bench minibatch --devices cuda --out "$bench/minibatch" --no-dgl 2>&1) > "$out/minibatch.log" || status=1
    tail -30 "$out/minibatch.log"

    "$PYTHON" - "$out" "$bench" <<'EOF'
import json, sys
from pathlib import Path

out, bench = Path(sys.argv[1]), Path(sys.argv[2])
result = {"gpu": (out / "gpu.txt").read_text().strip(), "tests": (out / "gpu_tests.txt").read_text().strip().splitlines()[-1:]}
for name in ("fullgraph", "minibatch"):
    found = sorted((bench / name).glob("*.json")) if (bench / name).exists() else []
    result[name] = json.loads(found[0].read_text()) if found else None
(out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
lines = [f"# gnndist GPU check\n", f"GPU: {result['gpu']}\n", f"gpu tests: {' '.join(result['tests'])}\n"]
for name in ("fullgraph", "minibatch"):
    tables = sorted((bench / name).glob("*.md")) if (bench / name).exists() else []
    lines.append(f"\n## {name}\n\n" + (tables[0].read_text() if tables else "(no result)\n"))
(out / "gpu_check.md").write_text("".join(lines))
print("".join(lines))
EOF
    return $status
}

case "${1:-}" in
    fetch) fetch ;;
    run) shift; run "$@" ;;
    *) echo "usage: bash benchmarks/gpu_check.sh fetch | run [OUT]" >&2; exit 2 ;;
esac
