from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import neas
from neas.cli import app
from neas.data import load_data
from neas.deploy import export_run, load_ensemble
from neas.deploy.onnx_export import check_parity, ort_session, reference_outputs
from neas.errors import ExportError, NeasError
from neas.evaluate import calibration_images, recalibrate_bn
from neas.nn import build_ensemble
from neas.pipeline import train
from neas.run import Run, open_trained, read_config
from neas.search_spaces import EnsembleArch
from tests.conftest import tiny_run, write_pareto

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[1] / "docs" / "inference.md"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny nets run fastest on one thread; more oversubscribe a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    result = train(
        out=tmp_path_factory.mktemp("export") / "run",
        config=tiny_run(summary_samples=0),
        show_progress=False,
    )
    write_pareto(result.path)
    return result.path


@pytest.fixture(scope="module")
def exported(run_dir: Path) -> Path:
    (folder,) = export_run(run_dir, select=["e000"], show_progress=False)
    return folder


@pytest.fixture(scope="module")
def dataset(run_dir: Path) -> neas.Dataset:
    return load_data(read_config(run_dir).data)


def reference_net(run_dir: Path, arch_json: str) -> torch.nn.Module:
    """The static ensemble exactly as the search stage builds it."""
    run = open_trained(run_dir)
    arch = EnsembleArch.from_json(arch_json, run.space)
    recalibrate_bn(run.supernet, arch, calibration_images(run.dataset, seed=run.config.train.seed))
    return build_ensemble(run.supernet, arch).eval()


def test_export_writes_every_file_with_a_sane_manifest(exported: Path, dataset) -> None:
    assert {p.name for p in exported.iterdir()} >= {
        "model.onnx",
        "model.pt",
        "manifest.json",
        "cascade.csv",
        "cascade.png",
    }
    m = json.loads((exported / "manifest.json").read_text())
    pareto = pd.read_csv(exported.parents[1] / "pareto.csv", dtype={"id": str})
    row = pareto.set_index("id").loc["e000"]
    assert m["id"] == "e000" and m["members"] == row["members"] and m["split"] == row["split"]
    assert m["macs"] == row["macs"] and m["params"] == row["params"]
    assert m["macs"] == m["trunk_macs"] + sum(m["member_macs"])
    # the recorded accuracies are the exported model's (this pareto.csv is written by the test)
    model = load_ensemble(exported / "model.pt")
    for split in ("val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        assert m["accuracy"][split] == pytest.approx(float((model.predict(x) == y).mean()))
    assert 0.0 <= m["onnx"]["parity_max_abs_diff"] <= 1e-4
    assert m["onnx"]["parity_samples"] == min(256, len(dataset.x_val))
    lat = m["latency"]
    assert lat["intra_op_threads"] == 1
    for key in ("batch_1", "batch_32"):
        assert 0 < lat[key]["median_ms"] <= lat[key]["p90_ms"]
        assert lat["separate_members"][key]["median_ms"] > 0
        assert lat["one_graph_over_separate"][key] > 0
    spec = m["input"]
    assert spec["shape"] == list(dataset.input_shape)
    assert spec["mean"] == pytest.approx(dataset.mean) and spec["std"] == pytest.approx(dataset.std)
    assert spec["class_names"] == list(dataset.class_names)
    assert 0.0 <= m["cascade"]["threshold"] <= 1.0
    assert "finetune" not in m and "accuracy_before_finetune" not in m


def test_round_trip_torch_to_load_ensemble(run_dir: Path, exported: Path, dataset) -> None:
    manifest = json.loads((exported / "manifest.json").read_text())
    net = reference_net(run_dir, json.dumps(manifest["arch"]))
    model = load_ensemble(exported / "model.pt")
    x = dataset.x_val[:50]
    with torch.no_grad():
        want = net(torch.from_numpy(x))
    got = model.predict_proba(x)
    assert isinstance(got, np.ndarray) and got.shape == (50, 10)
    np.testing.assert_allclose(got, want.numpy(), atol=1e-6)
    tensor_out = model.predict_proba(torch.from_numpy(x))
    assert isinstance(tensor_out, torch.Tensor)
    np.testing.assert_array_equal(model.predict(x), want.argmax(-1).numpy())
    raw = x * np.asarray(dataset.std, np.float32)[:, None, None] + np.asarray(dataset.mean)[
        :, None, None
    ].astype(np.float32)
    np.testing.assert_allclose(model.predict_proba(raw, normalize=True), got, atol=1e-5)
    assert model.predict(x[0]).shape == (1,)  # one C x H x W image
    assert model.cascade_threshold == manifest["cascade"]["threshold"]
    with pytest.raises(NeasError, match="expected input N x 1 x 8 x 8"):
        model.predict(np.zeros((2, 3, 8, 8), np.float32))


def test_onnx_parity_and_dynamic_batch(exported: Path, dataset) -> None:
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["probabilities", "logits_0", "logits_1"]
    model = load_ensemble(exported / "model.pt")
    for n in (1, 7):
        x = dataset.x_val[:n]
        probs, *logits = session.run(None, {"input": x})
        assert probs.shape == (n, 10)
        np.testing.assert_allclose(probs, model.predict_proba(x), atol=1e-4)
        np.testing.assert_allclose(np.stack(logits), model.member_logits(x), atol=1e-4)


def test_parity_beyond_tolerance_is_an_error(exported: Path, dataset) -> None:
    session = ort_session((exported / "model.onnx").read_bytes())
    x = dataset.x_val[:4]
    reference = reference_outputs(
        torch.as_tensor(load_ensemble(exported / "model.pt").member_logits(x))
    )
    assert check_parity(session, x, reference) <= 1e-4
    reference[1] = reference[1] + 1e-3
    with pytest.raises(ExportError, match="differs from PyTorch") as failure:
        check_parity(session, x, reference)
    assert failure.value.exit_code == 3  # a failed verification, not bad input (2)


def test_inference_snippet_matches_torch(exported: Path, dataset, tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(code.split("\nprint(")[0], namespace)  # the snippet, without its example call
    mean, std = np.asarray(dataset.mean)[0], np.asarray(dataset.std)[0]
    model = load_ensemble(exported / "model.pt")
    for i in range(3):
        pixels = np.clip(np.round((dataset.x_val[i, 0] * std + mean) * 255), 0, 255)
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(tmp_path / f"{i}.png")
        name, prob = namespace["classify"](tmp_path / f"{i}.png", exported)
        raw = (pixels / 255.0).astype(np.float32)[None, None]
        want = model.predict_proba(raw, normalize=True)[0]
        assert name == dataset.class_names[int(want.argmax())]
        assert prob == pytest.approx(float(want.max()), abs=1e-4)


class Payload:
    """Any class instance makes torch.save pickle a reference to code."""

    def __init__(self) -> None:
        self.format = "neas-ensemble"


def test_load_refuses_pickled_code_and_foreign_files(tmp_path: Path) -> None:
    torch.save({"format": "neas-ensemble", "arch": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(NeasError, match="pickled code"):
        load_ensemble(tmp_path / "evil.pt")
    torch.save({"model": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(NeasError, match="not a neas ensemble"):
        load_ensemble(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(NeasError, match="not a torch file"):
        load_ensemble(tmp_path / "junk.pt")
    with pytest.raises(NeasError, match="does not exist"):
        load_ensemble(tmp_path / "missing.pt")


def test_final_training_records_before_and_after(run_dir: Path) -> None:
    before = _exported_weights(run_dir, final_epochs=0)
    (folder,) = export_run(
        run_dir, select="best", formats=("torch",), final_epochs=1, show_progress=False
    )
    m = json.loads((folder / "manifest.json").read_text())
    assert m["id"] == "e002"  # highest val_accuracy in the fake pareto.csv
    assert m["final"]["epochs"] == 1 and m["final"]["init"] == "inherit"
    assert set(m["accuracy_before_final"]) >= {"val", "test"}
    after = torch.load(folder / "model.pt", weights_only=True)["state_dict"]
    changed = [
        k for k in after if after[k].is_floating_point() and not torch.equal(after[k], before[k])
    ]
    assert len(changed) > len(after) // 2  # the weights were trained
    assert not (folder / "final.pt").exists()  # the checkpoint goes once the export is whole
    front = pd.read_csv(run_dir / "pareto.csv", dtype={"id": str}).set_index("id")
    assert front.loc["e002", "final_val_accuracy"] == pytest.approx(m["accuracy"]["val"])
    assert front.loc["e002", "final_test_accuracy"] == pytest.approx(m["accuracy"]["test"])
    assert front[["final_val_accuracy"]].drop(index="e002").isna().all().all()
    original = (run_dir / "pareto.csv").read_text()
    front.loc["e000", "final_val_accuracy"] = 1.0  # best() ranks by what final training gave
    front.reset_index().to_csv(run_dir / "pareto.csv", index=False)
    assert neas.load_run(run_dir).best()["id"] == "e000"
    # a trained ensemble is not ranked against the untrained ones' (inflated) search scores
    front.loc["e000", "final_val_accuracy"] = float("nan")
    front.loc["e002", "final_val_accuracy"] = front["val_accuracy"].min() / 2
    front.reset_index().to_csv(run_dir / "pareto.csv", index=False)
    assert neas.load_run(run_dir).best()["id"] == "e002"
    # ... and where the limits leave no trained one, the search's best among the rest
    front.loc["e002", "macs"] = front["macs"].max() + 1
    front.reset_index().to_csv(run_dir / "pareto.csv", index=False)
    assert neas.load_run(run_dir).best(max_macs=front["macs"].max() - 1)["id"] == "e001"
    (run_dir / "pareto.csv").write_text(original)
    assert (folder / "model.pt").exists() and not (folder / "model.onnx").exists()
    assert "onnx" not in m and "latency" not in m


def test_a_refitted_export_reports_the_held_out_scores(
    run_dir: Path, held_out_says_class_0
) -> None:
    """With early stopping and ``final_refit`` the exported ensemble is trained again on the
    training and validation rows; its manifest says so, and the val accuracy it (and
    ``pareto.csv``) reports is the early-stopped ensemble's (here one that answers class 0),
    measured on rows it never saw, while the refitted one is the one exported."""
    (folder,) = export_run(
        run_dir,
        select="best",
        formats=("torch",),
        final_epochs=3,
        final_init="branches",
        final_patience=2,
        final_refit=True,
        show_progress=False,
    )
    m = json.loads((folder / "manifest.json").read_text())
    ds = Run.open(run_dir).dataset
    assert m["final"]["refit"] is True and m["final"]["best_epoch"] >= 1
    assert m["final"]["refit_rows"] == len(ds.y_train) + len(ds.y_val)
    assert "early-stopped" in m["final"]["val_scores"]
    assert not list(folder.glob("final*.pt"))  # both checkpoints go once the export is whole
    share = float((ds.y_val == 0).mean())
    assert m["accuracy"]["val"] == pytest.approx(share)
    front = pd.read_csv(run_dir / "pareto.csv", dtype={"id": str}).set_index("id")
    assert front.loc[m["id"], "final_val_accuracy"] == pytest.approx(share)
    net = load_ensemble(folder / "model.pt").net
    with torch.no_grad():
        served = float((net(torch.from_numpy(ds.x_test)).argmax(1).numpy() == ds.y_test).mean())
    assert m["accuracy"]["test"] == pytest.approx(served)  # the exported net's, on test
    assert served > 2 * share


def test_final_training_runs_at_the_training_thread_count(
    run_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """The main job hands its trained run over with the thread count training used: final
    training runs at that count; the export and its latency stay at the export's."""
    import neas.deploy.export as export_module

    seen = []
    real = export_module.final_train

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(export_module, "final_train", spy)
    run = _copy_run(run_dir, tmp_path / "run")
    trained = replace(open_trained(run), threads=2)
    (folder,) = export_run(
        run, select="best", final_epochs=1, threads=1, trained=trained, show_progress=False
    )
    m = json.loads((folder / "manifest.json").read_text())
    assert seen == [2] and m["latency"]["intra_op_threads"] == 1
    assert torch.get_num_threads() == 1  # restored


def _exported_weights(run_dir: Path, *, final_epochs: int) -> dict[str, torch.Tensor]:
    (folder,) = export_run(
        run_dir, select="best", formats=("torch",), final_epochs=final_epochs, show_progress=False
    )
    return torch.load(folder / "model.pt", weights_only=True)["state_dict"]


def _copy_run(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("ensembles"))
    return dest


@pytest.mark.parametrize(
    "case,message",
    [
        ("unknown_id", "unknown ensemble id e999; valid: all, best, e000, e001, e002"),
        ("no_pareto", "no search results"),
        ("no_run", "does not exist"),
        ("unwritable", "cannot write to"),
        ("bad_format", "valid: onnx, torch"),
        ("foreign_model", "not a neas ensemble"),
        ("not_exported", "has no exported model.pt"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    run_dir: Path, tmp_path: Path, case: str, message: str
) -> None:
    run = _copy_run(run_dir, tmp_path / "run")
    args = ["export", str(run)]
    if case == "unknown_id":
        args += ["--select", "e999"]
    elif case == "no_pareto":
        (run / "pareto.csv").unlink()
    elif case == "no_run":
        args = ["export", str(tmp_path / "nowhere")]
    elif case == "unwritable":
        (run / "ensembles").write_text("a file where the output folder should be")
    elif case == "bad_format":
        args += ["--format", "tflite"]
    elif case == "foreign_model":
        (run / "ensembles" / "e000").mkdir(parents=True)
        torch.save({"weights": torch.zeros(1)}, run / "ensembles" / "e000" / "model.pt")
        args = ["cascade", str(run), "--id", "e000"]
    elif case == "not_exported":
        args = ["cascade", str(run), "--id", "e001"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
    assert not (run / "ensembles" / "e000" / "model.onnx").exists()


def test_cli_cascade_updates_manifest_and_model(exported: Path) -> None:
    run = exported.parents[1]
    result = runner.invoke(app, ["cascade", str(run), "--id", "e000", "--tolerance", "0.5"])
    assert result.exit_code == 0, result.output
    assert "chosen threshold" in result.output
    sweep = pd.read_csv(exported / "cascade.csv")
    assert {"threshold", "val_accuracy", "val_mean_macs", "test_accuracy"} <= set(sweep.columns)
    m = json.loads((exported / "manifest.json").read_text())
    chosen = m["cascade"]["threshold"]
    assert load_ensemble(exported / "model.pt").cascade_threshold == chosen
    full = sweep.loc[sweep["threshold"].idxmax(), "val_accuracy"]
    ok = sweep[sweep["val_accuracy"] >= full - 0.5]
    assert m["cascade"]["val"]["mean_macs"] == pytest.approx(ok["val_mean_macs"].min())


def test_the_main_jobs_final_stage_trains_the_best_ensemble_only(tmp_path: Path) -> None:
    """``search(final=FinalOptions(epochs=1))`` trains the front's best-validation ensemble and
    exports the others with the supernet's weights: pareto.csv re-scores that one only."""
    from neas.config import FinalOptions, SearchOptions
    from neas.pipeline import search

    options = SearchOptions(population=6, generations=1, latency=False, calibration_images=64)
    result = search(
        out=tmp_path / "run",
        config=tiny_run(),
        options=options,
        final=FinalOptions(epochs=1),
        threads=1,
        show_progress=False,
    )
    front = pd.read_csv(tmp_path / "run" / "pareto.csv")
    best = front.sort_values(["val_accuracy", "macs"], ascending=[False, True]).iloc[0]["id"]
    trained = front.loc[front["final_val_accuracy"].notna(), "id"].tolist()
    assert len(front) >= 2 and trained == [best]  # others exported as they are
    for folder in result.exported:
        manifest = json.loads((folder / "manifest.json").read_text())
        assert ("final" in manifest) == (folder.name == best)
    assert len(result.exported) == len(front) and neas.load_run(tmp_path / "run").best()["id"]
