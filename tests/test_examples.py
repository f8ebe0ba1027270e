"""Every script in examples/ runs in its --fast mode, says what it found and that it is a smoke
run (tiny training: accuracy near chance is no surprise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neas.data import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SMOKE = "smoke run (--fast): tiny training"  # how the line --fast prints starts
EXPECT = {  # a line each example prints when it worked
    "quickstart.py": "best by validation: e",
    "sklearn_pipeline.py": "best budget",
    "tabular_csv.py": "first rows: [",
    "fashion_mnist.py": "best by validation: e",
    "serve_onnx.py": "digit0.png: ",
}


def test_every_example_is_tested() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECT)


@pytest.mark.slow  # 15-35 s each on a 2-core CPU
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example_runs_fast(name: str, tmp_path) -> None:
    if name == "fashion_mnist.py" and not FASHION_MNIST_DIR.is_dir():
        pytest.skip("needs the Debian package dataset-fashion-mnist (installed by .ci/run)")
    args = [sys.executable, str(EXAMPLES / name), "--fast"]
    if name not in ("sklearn_pipeline.py", "serve_onnx.py"):
        args += ["--out", str(tmp_path / "run")]
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}  # this tree's neas, not another
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert EXPECT[name] in done.stdout, done.stdout
    # --fast says, on one line, that its figures are a smoke run's (near chance), not real ones
    (smoke,) = [line for line in done.stdout.splitlines() if line.startswith(SMOKE)]
    assert "near chance" in smoke and ("without --fast" in smoke or "full run" in smoke), smoke


def test_only_fast_runs_print_the_smoke_line() -> None:
    for path in EXAMPLES.glob("*.py"):
        text = path.read_text()
        assert text.count("print(SMOKE)") == 1, path.name
        assert "if args.fast:\n        print(SMOKE)" in text, path.name
