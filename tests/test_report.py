"""The HTML report as a person sees it (headless Chromium), and the notebook view of a run."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
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
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", page)  # nothing fetched
    front = neas.load_run(run_dir).front
    assert all(i in page for i in front["id"])
    assert page.count("data:image/png;base64,") >= 3 + len(front)  # + a cascade per ensemble


def _visible_text(page: str) -> str:
    """What a reader sees as prose and tables: no style, no code snippets, no inlined images."""
    page = re.sub(r"<(style|pre|code)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'src="data:[^"]*"', "", page)
    page = re.sub(r"</?(b|i|a|span)\b[^>]*>", "", page)  # inline: part of a sentence
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _cells(page: str) -> list[str]:
    return [
        html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", page)
    ]


def test_report_explains_its_measures_in_words(run_dir) -> None:
    page = (run_dir / "report.html").read_text()
    text = " ".join(_visible_text(page).split())
    for explanation in (
        "how many leading layers the members share",
        "split = number of layers means all layers shared, only the heads differ",
        "fraction of validation images on which members' predicted classes differ",
        "0 means the members are copies, and averaging them gains nothing",
        "tie-break between equal validation accuracies",
        "hypervolume: how much of the objective space the front dominates",
        "members run in order and stop once the running average's top probability exceeds t",
        "t = 0 runs only the first member",
        "predicted by the search from a per-(layer, op) lookup table",
        "measured on the machine that exported it",
    ):
        assert explanation in text, explanation
    assert not re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", text, flags=re.I)  # no raw keys
    assert "space default" not in text and "members per ensemble (K) 2 " in text
    assert re.search(r"supernet parameters \d+(\.\d+)?k ", text)
    # a search run's random baseline is its first generation, not a second sample after training
    history = pd.read_csv(run_dir / "search" / "history.csv")
    first = history.query("generation == 0 and feasible").dropna(subset=["val_accuracy"])
    assert re.search(
        r"first generation \(random ensembles within the budget\) mean val accuracy "
        rf"{100 * first['val_accuracy'].mean():.2f}%, best {100 * first['val_accuracy'].max():.2f}%"
        rf", mean disagreement \d+\.\d\d% \({len(first)} ensembles\)",
        text,
    )
    assert "random ensembles from the trained supernet" not in text
    cells = _cells(page)
    assert not [c for c in cells if re.search(r"\d[eE][+-]\d", c)]  # no scientific notation
    front = neas.load_run(run_dir).front
    for row in front.itertuples():
        assert f"{100 * row.val_accuracy:.2f}%" in cells and f"{row.val_nll:.3f}" in cells
        assert f"{row.split} of " in text
    assert all(re.fullmatch(r"\d+(\.\d+)?[kMG]?", c) for c in cells if c.endswith(("k", "M")))


def _section_of(page: str, eid: str) -> str:
    start = page.index(f'id="ensemble-{eid}"')
    end = page.find('<div class="ens">', start)
    return page[start : end if end > 0 else len(page)]


def test_report_shows_each_export_architecture_files_and_latencies(run_dir) -> None:
    page = (run_dir / "report.html").read_text()
    folders = sorted((run_dir / "ensembles").iterdir())
    assert folders
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        section = _section_of(page, folder.name)
        for name in ("model.onnx", "model.pt", "manifest.json"):
            assert f"<code>ensembles/{folder.name}/{name}</code>" in section
        assert "session.run([&quot;probabilities&quot;], {&quot;input&quot;: x})" in section
        assert "neas.load_ensemble(" in section and "normalize=True" in section
        arch = manifest["arch"]  # shared ops once (spanning the member rows), then each member's
        ops = re.findall(r'<td class="(shared|own)(?: skip)?"[^>]*>([^<]+)</td>', section)
        assert [o for kind, o in ops if kind == "shared"] == arch["shared"]
        assert [o for kind, o in ops if kind == "own"] == [o for m in arch["members"] for o in m]
        assert section.count('<td class="head">') == manifest["members"]
        text = " ".join(_visible_text(section).split())
        for label, value in (
            (r"latency measured, ONNX Runtime \(batch 1\) ([\d.]+) ms median",
             manifest["latency"]["batch_1"]["median_ms"]),
            (r"latency predicted by the search \(PyTorch\) ([\d.]+) ms",
             manifest["search"]["latency_ms"]),
        ):  # fmt: skip
            shown = re.search(label, text)
            assert shown and float(shown.group(1)) == pytest.approx(value, rel=0.01, abs=1e-5)
        assert f"Threshold t = {manifest['cascade']['threshold']:g}:" in text
    front_text = " ".join(_visible_text(page.split('id="ensemble-')[0]).split())
    assert "predicted latency, PyTorch (ms)" in front_text
    assert "measured latency, ONNX Runtime (ms)" in front_text


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

    def overflow(page, width):
        """How many pixels the page is wider than a window ``width`` wide (a copy of the page
        with a probe script; the report itself runs no script)."""
        probe = tmp_path / f"probe-{page.stem}.html"
        script = (
            "<script>const d = document.documentElement;"
            "document.body.dataset.overflow = d.scrollWidth - d.clientWidth;</script>"
        )
        probe.write_text(page.read_text().replace("</body>", script + "</body>"))
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},1000",
             "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return int(re.search(r'data-overflow="(-?\d+)"', done.stdout).group(1))

    for width in (1200, 800):  # wide tables scroll inside their box, the page does not
        assert overflow(run_dir / "report.html", width) <= 0, width
    wide = tmp_path / "wide.html"  # the same check does see a table wider than the page
    cells = "".join(f"<td>{i:.3e}</td>" for i in range(40))
    wide.write_text(f"<html><body><table><tr>{cells}</tr></table></body></html>")
    assert overflow(wide, 800) > 0


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
