"""Every ```python block of the README runs as written.

The scikit-learn grid search runs exactly as printed (slow: seven fits at the README's
settings), and its budgets are checked, without training, against the most the cheapest
ensemble can cost once shrinking is done. The inference snippets name a run folder
(``runs/digits``) and an image (``digit.png``) that a reader makes first; here they run as
written in a folder where a tiny digits run and a digit image sit at those paths.
"""

from __future__ import annotations

import ast
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_breast_cancer, load_digits, load_wine

import neas
from neas.config import ShrinkConfig, TrainConfig
from neas.cost import CostTable
from neas.evolution.problem import cheapest_macs
from neas.search_spaces import create_space
from neas.shrink import drop_budget
from tests.conftest import tiny_run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Each README python block, by a string only it holds (a new block needs a test here).
BLOCKS = ("GridSearchCV(", "def classify(", "neas.load_ensemble(", "neas.load_run(")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def block(marker: str) -> str:
    (code,) = [b for b in python_blocks() if marker in b]
    return code


def test_every_python_block_is_run_by_a_test() -> None:
    blocks = python_blocks()
    assert len(blocks) == len(BLOCKS)
    for code in blocks:
        assert sum(marker in code for marker in BLOCKS) == 1, code[:200]
        ast.parse(code)


def test_docs_inference_is_the_readme_section() -> None:
    readme = README.read_text()
    section = readme[readme.index("## Inference without neas") : readme.index("## Architecture")]
    assert (ROOT / "docs" / "inference.md").read_text().strip() == section.strip()


def grid_budgets(code: str) -> list[int]:
    found = re.search(r'"neasclassifier__budget": (\[.*?\])', code)
    assert found, code
    return [neas.parse_budget(b) for b in ast.literal_eval(found.group(1))]


def cheapest_after_shrinking(
    features: int, classes: int, rows: int, width_mult: float | None = None
) -> int:
    """The most the cheapest ensemble can cost after NEASClassifier's default shrinking, for a
    table of that shape: each layer keeps at least the ops the shrink steps cannot drop, and at
    worst those are its most expensive ones (shrinking drops by score, not by cost)."""
    space = create_space("mlp", in_channels=features, num_classes=classes, width_mult=width_mult)
    table, cfg = CostTable.from_space(space), ShrinkConfig()
    steps = len(cfg.epochs(TrainConfig().settled(rows=rows, table=True).epochs))
    total = cheapest_macs(space, table, min_members=space.num_members)
    for i, layer in enumerate(space.layers):
        left = len(layer.candidates)
        for _ in range(steps):
            left -= drop_budget(left, ratio=cfg.ratio, min_ops=cfg.min_ops)
        macs = sorted(table.layers[i][op].macs for op in layer.candidates)
        total += macs[-left] - macs[0]
    return total


def test_grid_budgets_afford_the_cheapest_ensemble() -> None:
    """A budget below the (shrunk) space's cheapest ensemble fails its fit: NaN in a grid
    search, or with error_score="raise" an error."""
    X, y = load_breast_cancer(return_X_y=True)
    floor = cheapest_after_shrinking(X.shape[1], len(np.unique(y)), int(0.8 * len(y)))
    assert min(grid_budgets(block("GridSearchCV("))) >= floor == 536_064  # as the README says
    example = (ROOT / "examples" / "sklearn_pipeline.py").read_text()
    X, y = load_wine(return_X_y=True)
    for width in (None, 0.25):  # the full run and --fast
        assert min(grid_budgets(example)) >= cheapest_after_shrinking(
            X.shape[1], len(np.unique(y)), int(0.8 * len(y)), width
        )


@pytest.mark.slow
def test_grid_search_snippet_runs_as_written(capsys) -> None:
    namespace: dict = {}
    exec(compile(block("GridSearchCV("), "README.md", "exec"), namespace)
    scores = namespace["grid"].cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and scores.min() > 0.85, scores
    assert "cv accuracy 0." in capsys.readouterr().out


@pytest.fixture(scope="module")
def reader_folder(tmp_path_factory) -> Path:
    """A folder holding what the inference snippets name: ``runs/digits`` (a tiny run of the
    built-in digits, exported) and ``digit.png`` (a digit as 8-bit pixels)."""
    root = tmp_path_factory.mktemp("reader")
    result = neas.search(
        out=root / "runs" / "digits",
        config=tiny_run(epochs=2),
        options=neas.SearchOptions(population=2, generations=1, latency=False),
        threads=1,
        show_progress=False,
    )
    assert (root / "runs" / "digits" / "ensembles" / "e000" / "model.pt").is_file(), result
    pixels = np.round(load_digits().images[0] * 255 / 16).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(root / "digit.png")
    return root


def run_as_written(marker: str, folder: Path, monkeypatch) -> dict:
    """Run the README block in ``folder``; any warning (e.g. about the input scale) fails."""
    monkeypatch.chdir(folder)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        exec(compile(block(marker), "README.md", "exec"), namespace)
    return namespace


def test_onnx_serving_snippet_runs_as_written(reader_folder: Path, monkeypatch, capsys) -> None:
    namespace = run_as_written("def classify(", reader_folder, monkeypatch)
    name, prob = ast.literal_eval(capsys.readouterr().out.strip())
    assert name in [str(i) for i in range(10)] and 0.0 < prob <= 1.0
    model = neas.load_ensemble(reader_folder / "runs/digits/ensembles/e000/model.pt")
    raw = np.asarray(Image.open(reader_folder / "digit.png"), np.float32) / 255.0
    want = model.predict_proba(raw[None], normalize=True)[0]  # 1 x H x W: one image
    assert name == model.class_names[int(want.argmax())]
    assert prob == pytest.approx(float(want.max()), abs=1e-4)
    assert callable(namespace["classify"])


def test_load_ensemble_snippet_runs_as_written(reader_folder: Path, monkeypatch, capsys) -> None:
    namespace = run_as_written("neas.load_ensemble(", reader_folder, monkeypatch)
    printed = capsys.readouterr().out.strip()
    labels = namespace["model"].predict(namespace["x"][:, None], normalize=True)  # N x 1 x H x W
    early = namespace["early"]
    assert printed == str(labels) and labels.shape == early.shape == (10,)


def test_load_run_snippet_runs_as_written(reader_folder: Path, monkeypatch, capsys) -> None:
    """The Quick start's Python view of a run, on a copy of the tiny run as runs/search-001."""
    shutil.copytree(reader_folder / "runs" / "digits", reader_folder / "runs" / "search-001")
    namespace = run_as_written("neas.load_run(", reader_folder, monkeypatch)
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("RunResults('runs/search-001': ")
    assert namespace["best"]["macs"] <= 8e6 and len(namespace["front"]) >= 1
    assert printed[1].startswith("[") and (reader_folder / "runs/search-001/report.html").is_file()
