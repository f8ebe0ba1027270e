"""Every script in examples/ runs in its --fast mode and says what it found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neas.data import FASHION_MNIST_DIR

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECT = {  # a line each example prints when it worked
    "quickstart.py": "best by validation: e",
    "sklearn_pipeline.py": "best budget",
    "tabular_csv.py": "first rows: [",
    "fashion_mnist.py": "best by validation: e",
    "serve_onnx.py": "digit0.png: ",
}


def test_every_example_is_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs_fast(name: str, tmp_path) -> None:
    if name == "fashion_mnist.py" and not FASHION_MNIST_DIR.is_dir():
        pytest.skip("needs the Debian package dataset-fashion-mnist (installed by .ci/run)")
    args = [sys.executable, str(EXAMPLES / name), "--fast"]
    if name not in ("sklearn_pipeline.py", "serve_onnx.py"):
        args += ["--out", str(tmp_path / "run")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert EXPECT[name] in done.stdout, done.stdout
