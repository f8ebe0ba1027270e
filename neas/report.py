"""``report.html``: one self-contained page per run (no server, no network: images inlined).

It shows what the run folder holds: the configuration and training summary, the Pareto front
(table and plot), hypervolume by generation, the shrink history, the ranking diagnostics if
``neas rank`` ran, and every exported ensemble's manifest and cascade sweep. Sections whose
files are missing are left out, so a report can be written at any stage.

>>> path = write_report("runs/digits")  # doctest: +SKIP
>>> path.name  # doctest: +SKIP
'report.html'
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from neas.errors import RunDirError
from neas.run import (
    CONFIG,
    ENSEMBLES,
    MARKER,
    PARETO,
    PARETO_PLOT,
    RANKING,
    RANKING_PLOT,
    REPORT,
    SEARCH_DIR,
    SHRINK_HISTORY,
    SHRINK_PLOT,
    TRAIN_SUMMARY,
    atomic_write_text,
    export_matches,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.muted { color: #777; }
"""

_DAMAGE = (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError)


def _damaged(path: Path, exc: BaseException) -> RunDirError:
    return RunDirError(
        f"{path} is damaged ({type(exc).__name__}); delete it or run the stage that writes it "
        "again, then `neas report`"
    )


def _regular(path: Path) -> Path:
    """``path``, refused when it is a symbolic link: the report shows only the run's own files."""
    if Path(path).is_symlink():
        raise RunDirError(f"{path} is a symbolic link; neas never reads a run file through one")
    return path


def _json(path: Path) -> Any:
    _regular(path)
    try:
        return json.loads(Path(path).read_text())
    except (ValueError, OSError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _damaged(path, exc) from None


def _csv(path: Path) -> pd.DataFrame:
    _regular(path)
    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:  # ParserError, EmptyDataError, UnicodeDecodeError
        raise _damaged(path, exc) from None


def _section(render: Any, where: Path, path: Path) -> str:
    """``render(where)``; a file of the wrong shape is a one-line error naming ``path``."""
    try:
        return render(where)
    except RunDirError:
        raise
    except _DAMAGE as exc:
        raise _damaged(path, exc) from None


def _img(path: Path, alt: str) -> str:
    if path.is_symlink() or not path.is_file():  # only a run's own regular files are embedded
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _kv(rows: dict[str, Any]) -> str:
    body = "".join(
        f'<tr><th class="l">{html.escape(str(k))}</th><td class="l">{html.escape(_fmt(v))}</td>'
        "</tr>"
        for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _frame(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}", escape=True)


def _config_section(run: Path) -> str:
    parts = ["<h2>Run</h2>"]
    if (run / CONFIG).is_file():
        cfg = _json(run / CONFIG)
        rows = {
            "data": cfg["data"]["source"],
            "space": cfg["space"]["name"],
            "members (K)": cfg["space"].get("members") or "space default",
            "epochs": cfg["train"]["epochs"],
            "weights": cfg["train"].get("weights", cfg.get("weights")),
            "shrink at": (cfg.get("shrink") or {}).get("at") or "never",
            "seed": cfg["train"]["seed"],
        }
        parts.append(_kv(rows))
    if (run / TRAIN_SUMMARY).is_file():
        s = _json(run / TRAIN_SUMMARY)
        keys = ("train_seconds", "device", "supernet_params", "random_val_accuracy_mean")
        parts.append(_kv({k: s[k] for k in keys if k in s}))
    return "".join(parts)


def _search_section(run: Path) -> str:
    if not (run / PARETO).is_file():
        return ""
    front = _csv(run / PARETO).drop(columns=["arch"], errors="ignore")
    parts = [f"<h2>Pareto front ({len(front)} ensembles)</h2>"]
    summary = run / SEARCH_DIR / "summary.json"
    if summary.is_file():
        s = _json(summary)
        opts = s.get("options", {})
        parts.append(
            _kv(
                {
                    "strategy": opts.get("strategy"),
                    "budget (MACs)": f"{s.get('budget_macs', 0):,}",
                    "proposals": s.get("proposals"),
                    "search seconds": s.get("seconds"),
                    "best val accuracy": s.get("best_val_accuracy"),
                    "test accuracy of the best-val ensemble": s.get("test_accuracy_of_best_val"),
                }
            )
        )
    parts += [_frame(front), _img(run / PARETO_PLOT, "Pareto front")]
    hv = run / SEARCH_DIR / "hypervolume.csv"
    if hv.is_file():
        parts += [
            "<h2>Hypervolume by generation</h2>",
            _img(run / SEARCH_DIR / "hypervolume.png", "hypervolume"),
            _frame(_csv(hv)),
        ]
    return "".join(parts)


def _shrink_section(run: Path) -> str:
    if not (run / SHRINK_HISTORY).is_file():
        return ""
    steps = _json(run / SHRINK_HISTORY)["steps"]
    table = pd.DataFrame(
        [
            {
                "epoch": s["epoch"],
                "log10 size before": s["log10_size_before"],
                "after": s["log10_size_after"],
                "sampled val acc": s["sampled_accuracy_mean"],
                "sampled disagreement": s["sampled_disagreement_mean"],
                "seconds": s["seconds"],
            }
            for s in steps
        ]
    )
    return "".join(
        ["<h2>Shrink history</h2>", _frame(table), _img(run / SHRINK_PLOT, "shrink history")]
    )


def _ranking_section(run: Path) -> str:
    if not (run / RANKING).is_file():
        return ""
    r = _json(run / RANKING)
    keys = ("kendall_tau", "spearman_rho", "samples", "epochs")
    return "".join(
        [
            "<h2>Ranking</h2>",
            _kv({k: r.get(k) for k in keys}),
            _img(run / RANKING_PLOT, "ranking"),
        ]
    )


def _ensemble_section(folder: Path) -> str:
    m = _json(folder / "manifest.json")
    lat, onnx = m.get("latency") or {}, m.get("onnx") or {}
    acc = m.get("accuracy", {})
    rows = {
        "members (K)": m.get("members"),
        "shared layers": m.get("split"),
        "MACs": f"{m.get('macs', 0):,}",
        "params": f"{m.get('params', 0):,}",
        "val accuracy": acc.get("val"),
        "test accuracy": acc.get("test"),
        "ONNX parity (max abs diff)": onnx.get("parity_max_abs_diff"),
        "ONNX Runtime ms, batch 1": (lat.get("batch_1") or {}).get("median_ms"),
        "cascade threshold": (m.get("cascade") or {}).get("threshold"),
    }
    parts = [f"<h3>{html.escape(str(m.get('id', folder.name)))}</h3>", _kv(rows)]
    if (folder / "cascade.csv").is_file():
        sweep = _csv(folder / "cascade.csv")
        parts += [_img(folder / "cascade.png", "cascade"), _frame(sweep)]
    return "".join(parts)


def _exports(run: Path) -> list[Path]:
    """The run's own export folders (no symbolic links) that hold a finished export of the
    architecture ``pareto.csv`` gives their id now: a stale export is never shown."""
    root = run / ENSEMBLES
    if root.is_symlink() or not root.is_dir() or not (run / PARETO).is_file():
        return []
    front = _csv(run / PARETO)
    if not {"id", "arch"} <= set(front.columns):
        return []
    archs = dict(zip(front["id"].astype(str), front["arch"].astype(str)))
    return [
        f
        for f in sorted(root.iterdir())
        if not f.is_symlink() and f.name in archs and export_matches(f, archs[f.name])
    ]


def render_report(run_dir: str | Path) -> str:
    """The report of ``run_dir`` as one HTML string."""
    run = Path(run_dir)
    folders = _exports(run)
    body = [
        f"<h1>neas run <code>{html.escape(run.name)}</code></h1>",
        f'<p class="muted">{html.escape(str(run.resolve()))}</p>',
        _section(_config_section, run, run / f"{CONFIG} or {TRAIN_SUMMARY}"),
        _section(_search_section, run, run / f"{PARETO} or {SEARCH_DIR}/"),
        _section(_shrink_section, run, run / SHRINK_HISTORY),
        _section(_ranking_section, run, run / RANKING),
    ]
    if folders:
        body.append(f"<h2>Exported ensembles ({len(folders)})</h2>")
        body += [_section(_ensemble_section, f, f / "manifest.json") for f in folders]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>neas report: {html.escape(run.name)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` (atomically) and return its path."""
    if not (Path(run_dir) / MARKER).is_file():
        raise RunDirError(f"{run_dir} is not a neas run folder (no {MARKER})")
    path = Path(run_dir) / REPORT
    atomic_write_text(path, render_report(run_dir))
    return path
