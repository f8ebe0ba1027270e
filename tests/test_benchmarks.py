"""The benchmark scripts still import: they call the package's API, which moves, and no other
test runs them (they take minutes to hours)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Packages only the baselines need (not neas's dependencies, the ``bench`` extra): a script
#: may lack them here.
BASELINE_PACKAGES = {"tabm", "rtdl_num_embeddings", "lightgbm", "pytabkit"}

IMPORT_ALL = """
import importlib, json, pathlib, sys
sys.path.insert(0, "benchmarks")
failed = {}
for path in sorted(pathlib.Path("benchmarks").glob("*.py")):
    try:
        importlib.import_module(path.stem)
    except ModuleNotFoundError as exc:
        failed[path.stem] = ["missing", exc.name]
    except Exception as exc:
        failed[path.stem] = [type(exc).__name__, str(exc)]
print(json.dumps(failed))
"""


def test_every_benchmark_script_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], cwd=ROOT, capture_output=True, text=True, check=True
    )
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    broken = {
        name: why
        for name, why in failed.items()
        if not (why[0] == "missing" and why[1].split(".")[0] in BASELINE_PACKAGES)
    }
    assert broken == {}
    assert len(list((ROOT / "benchmarks").glob("*.py"))) >= 10  # the glob found the scripts


def test_the_bench_extra_installs_every_baseline_package() -> None:
    """``pip install -e '.[bench]'`` (benchmarks/tables.py's docstring) brings what the
    baselines import, so nobody installs them by hand."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bench = extras["optional-dependencies"]["bench"]
    names = {re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].replace("-", "_") for req in bench}
    assert names == BASELINE_PACKAGES
