"""The package's shape: layers run one way, no attribute shadows a submodule, and the Python API
runs exactly the job the CLI runs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neas.cli import app
from neas.config import FinalOptions, RunConfig, SearchOptions, SpaceOptions
from neas.data import load_data
from neas.job_space import build_space
from neas.pipeline import resolve

ROOT = Path(__file__).resolve().parents[1] / "neas"
#: Layer of each top-level module or package; a module may import only its own layer or lower.
LAYERS = {
    "__main__": 3,  # python -m neas / torchrun -m neas
    "cli": 3,
    "pipeline": 2,
    "limited": 2,
    "stages": 2,
    "estimator": 2,
    "results": 2,
    **dict.fromkeys(
        ("training", "shrink", "evolution", "deploy", "ranking", "predictors", "report"), 1
    ),
    **dict.fromkeys(
        (
            "nn", "cost", "data", "search_spaces", "config", "run", "evaluate", "errors",
            "budget", "device", "progress", "plots", "tabular", "table_columns", "torchfile",
            "layout", "time_limit", "front", "files", "checkpoint", "job_space", "workers",
        ),
        0,
    ),
}  # fmt: skip


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "neas" and len(parts) > 1 else None


def _imports(path: Path) -> set[str]:
    """Every ``neas.*`` module imported anywhere in ``path`` (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("neas.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "neas":
                found |= {f"neas.{a.name}" for a in node.names}
            elif node.module.startswith("neas."):
                found.add(node.module)
    return found


def test_every_module_has_a_layer() -> None:
    tops = {p.stem if p.is_file() else p.name for p in ROOT.iterdir() if p.name != "__pycache__"}
    assert tops - {"__init__"} == set(LAYERS)


def test_config_is_a_leaf() -> None:
    """``neas.config`` (every default) imports only the specs and two tiny leaves: it builds
    nothing (spaces: ``neas.job_space.build_space``; data: ``neas.data.load_data``)."""
    allowed = {"neas.errors", "neas.budget", "neas.search_spaces", "neas.search_spaces.mlp"}
    tree = ast.parse((ROOT / "config.py").read_text())
    typing_only = {  # ``if TYPE_CHECKING:`` imports are for annotations
        n.module
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(block)
        if isinstance(n, ast.ImportFrom)
    }
    assert _imports(ROOT / "config.py") - typing_only <= allowed


def test_generic_file_io_imports_nothing_from_neas() -> None:
    """``neas.files`` (atomic writes, JSON, locks) is a leaf: anything may use it."""
    assert _imports(ROOT / "files.py") == set()


def test_layers_run_one_way() -> None:
    upward = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        own = _top(".".join(rel.parts))
        if own in (None, "__init__"):  # neas/__init__.py: the public API re-exports any layer
            continue
        for imported in _imports(path):
            other = _top(imported)
            if other is not None and LAYERS[other] > LAYERS[own]:
                upward.append(f"{rel} imports {imported}")
    assert not upward, upward


def test_search_spaces_never_import_torch() -> None:
    for path in (ROOT / "search_spaces").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n.split(".")[0] == "torch" for n in names), path


def test_import_neas_and_its_specs_do_not_import_torch() -> None:
    """``import neas`` (the public names load lazily), its config, layout and search spaces
    leave torch unloaded: checked in a fresh interpreter, not by reading imports."""
    code = (
        "import sys, neas, neas.config, neas.layout, neas.search_spaces\n"
        "neas.search_spaces.create_space('mlp', in_channels=4, num_classes=2)\n"
        "print(sorted(m for m in ('torch', 'pandas', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_run_file_names_are_written_once() -> None:
    """Every file name of a run folder is a constant of ``neas.layout``: no other module spells
    one as a string literal (f-strings and prose may mention them)."""
    import neas.layout as layout

    files = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str) and "." in v}
    assert {"pareto.csv", "manifest.json", "model.pt", "summary.json"} <= files
    found = []
    for path in ROOT.rglob("*.py"):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in files:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_no_package_attribute_shadows_a_submodule() -> None:
    code = """
import importlib, pkgutil, sys, types
bad = []
packages = ["neas"] + [m.name for m in pkgutil.walk_packages(
    importlib.import_module("neas").__path__, "neas.") if m.ispkg]
for name in packages:
    package = importlib.import_module(name)
    for child in pkgutil.iter_modules(package.__path__):
        value = getattr(package, child.name, None)
        if value is not None and not (
            isinstance(value, types.ModuleType) and value.__name__ == f"{name}.{child.name}"
        ):
            bad.append(f"{name}.{child.name} is {value!r}")
print("\\n".join(bad))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout


def test_api_and_cli_resolve_the_same_main_job(tmp_path) -> None:
    """``neas.search(out=...)`` runs what ``neas search --space mbconv --budget 600M`` runs:
    the same options, and on the built-in images the default ``auto`` space is ``mbconv``."""
    result = CliRunner().invoke(app, ["search", "--budget", "600M", "--print-config"])
    assert result.exit_code == 0, result.output
    config, options = resolve()
    search = asdict(options) | {"budget_macs": 600_000_000}
    final = asdict(FinalOptions())
    api = json.loads(json.dumps({"run": config.to_dict(), "search": search, "final": final}))
    assert json.loads(result.output) == api
    digits = load_data(config.data)
    assert build_space(config.space, digits) == build_space(SpaceOptions(name="mbconv"), digits)
    # the main job shrinks the space and reads its training defaults from the dataclasses
    assert config == RunConfig() and options == SearchOptions() and config.shrink.enabled
    train = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "r"), "--print-config"])
    assert json.loads(train.output) == json.loads(json.dumps({"run": RunConfig().to_dict()}))
    assert not (tmp_path / "r").exists()  # --print-config does no work


def test_cli_options_change_the_resolved_job() -> None:
    result = CliRunner().invoke(
        app, ["search", "--epochs", "3", "--shrink-at", "none", "--seed", "4", "--print-config"]
    )
    run = json.loads(result.output)["run"]
    assert run["train"]["epochs"] == 3 and run["shrink"]["at"] == []
    assert {run["data"]["seed"], run["train"]["seed"], run["shrink"]["seed"]} == {4}


def test_val_fraction_sets_the_split_and_survives_config_json(tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--out", str(tmp_path), "--val-fraction", "0.5", "--print-config"]
    )
    run = json.loads(result.output)["run"]
    assert run["data"]["val_fraction"] == 0.5
    config = RunConfig.from_dict(run)
    half, default = load_data(config.data), load_data(RunConfig().data)
    total = len(half.y_train) + len(half.y_val) + len(half.y_test)  # digits: no official test
    assert len(half.y_val) == pytest.approx(total / 2, abs=2)
    assert len(default.y_val) < len(half.y_val) and len(half.y_test) == len(default.y_test)
    del run["data"]["val_fraction"]  # a config.json written before the option reads as default
    assert RunConfig.from_dict(run).data.val_fraction == RunConfig().data.val_fraction
