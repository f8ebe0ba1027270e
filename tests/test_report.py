"""The HTML report as a person sees it (headless Chromium), and the notebook view of a run."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_wine
from typer.testing import CliRunner

import neas
from neas.cli import app
from neas.errors import ConfigError, SelectError

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    x, y = load_wine(return_X_y=True)
    np.savez(root / "wine.npz", x=x, y=y)
    out = root / "run"
    result = runner.invoke(
        app,
        ["search", "--space", "mlp", "--data", str(root / "wine.npz"), "--budget", "200k",
         "--epochs", "8", "--population", "6", "--generations", "2", "--width-mult", "0.25",
         "--shrink-at", "0.5", "--threads", "1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output.replace("\n", "")
    return out


def test_report_is_self_contained_and_complete(run_dir) -> None:
    page = (run_dir / "report.html").read_text()
    for heading in ("Pareto front", "Hypervolume by generation", "Shrink history", "Exported"):
        assert heading in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing fetched
    front = neas.load_run(run_dir).front
    assert all(i in page for i in front["id"])
    assert page.count("data:image/png;base64,") >= 3 + len(front)  # + a cascade per ensemble


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_chromium(run_dir, tmp_path) -> None:
    def render(page):
        shot = tmp_path / f"{page.stem}.png"
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
             "--v=0", f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
        return np.asarray(Image.open(shot).convert("L"), dtype=float), console

    pixels, console = render(run_dir / "report.html")
    assert console == []
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and plots, not blank
    bad = tmp_path / "bad.html"  # the same check does see a broken page
    bad.write_text("<html><body><script>missing();</script></body></html>")
    blank, errors = render(bad)
    assert errors and blank.std() < 1


def test_notebook_view_of_a_run(run_dir) -> None:
    run = neas.load_run(run_dir)
    best = run.best()
    assert best["val_accuracy"] == run.front["val_accuracy"].max()
    cheapest = run.front["macs"].min()
    assert run.best(max_macs=cheapest)["macs"] == cheapest
    with pytest.raises(ConfigError, match="cheapest has"):
        run.best(max_macs=cheapest - 1)
    model = run.ensemble(str(best["id"]))
    x, y = load_wine(return_X_y=True)
    assert (model.predict(x, normalize=True) == y).mean() > 0.8
    with pytest.raises(SelectError, match="valid"):
        run.ensemble("nope")
    assert run.report() == run_dir / "report.html"
    result = runner.invoke(app, ["report", str(run_dir / "missing")])
    assert result.exit_code == 2 and result.output.startswith("error:")
