"""``report.html``: one self-contained page per run (no server, no network: images inlined).

It shows what the run folder holds, in words a new user can follow: the configuration and
training summary, the Pareto front (table and plot, each measure explained where it appears),
hypervolume by generation, the shrink history, the ranking diagnostics if ``neas rank`` ran, and
every exported ensemble: its architecture (shared layers, then each member's layers), its files,
how to serve it, its measured ONNX Runtime latency beside the search's predicted one, and its
cascade sweep. Sections whose files are missing are left out, so a report can be written at any
stage. Numbers are written for people (``6.42M`` MACs, ``93.20%``), never as raw keys.

Example (not run as a doctest: it trains or needs a run folder)::

    path = write_report("runs/digits")
    path.name
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from neas.errors import RunDirError
from neas.layout import (
    CASCADE_PLOT,
    CASCADE_TABLE,
    HYPERVOLUME,
    HYPERVOLUME_PLOT,
    MANIFEST,
    MODEL_ONNX,
    MODEL_PT,
    SEARCH_SUMMARY,
)
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
    SPACE,
    TIME_RECORD,
    TRAIN_SUMMARY,
    atomic_write_text,
    export_matches,
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.8em; }
h3 { margin-top: 1.6em; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
td { white-space: nowrap; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.chosen td { font-weight: bold; background: #fff6d5; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
.muted { color: #777; }
.note, ul.notes { color: #444; font-size: .9em; max-width: 62em; }
ul.notes { padding-left: 1.2em; } ul.notes li { margin: .15em 0; }
pre { background: #f6f8fa; border: 1px solid #e5e5e5; padding: .7em; font-size: .85em;
      max-width: 100%; overflow-x: auto; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
code { font-size: .88em; }
pre code { font-size: 1em; }
details { margin: .4em 0 1em; } summary { cursor: pointer; color: #245; }
table.arch { font-size: .78em; margin: .3em 0 .4em; }
table.arch td, table.arch th { padding: .2em .35em; text-align: center; }
table.arch th.l { text-align: left; }
table.arch td.shared { background: #dbe9f7; }
table.arch td.own { background: #e3f3e1; }
table.arch td.skip { background: #f5f5f5; color: #999; font-style: italic; }
table.arch td.head { background: #fbe7c6; }
table.arch td.gap { border: none; background: none; }
.ens { border-left: 3px solid #dbe9f7; padding-left: 1em; margin: 1em 0 2em; }
"""

_DAMAGE = (ValueError, KeyError, TypeError, AttributeError, IndexError, OSError)
_NA = "–"


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


# --- numbers for people -----------------------------------------------------------------------


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (missing, NaN, text)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _count(v: Any) -> str:
    """A count (MACs, parameters) to three significant digits.

    >>> _count(6_416_000), _count(881_308), _count(600e6), _count(999_999), _count(42)
    ('6.42M', '881k', '600M', '1M', '42')
    """
    f = _finite(v)
    if f is None:
        return _NA
    for unit, div in (("", 1.0), ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12)):
        text = f"{f / div:.3g}"
        if "e" not in text and abs(float(text)) < 1000:
            return text + unit
    return f"{f / 1e12:.0f}T"


def _size(n: int) -> str:
    """A file size: ``3.56 MB``."""
    text = _count(n)
    return f"{text[:-1]} {text[-1]}B" if text[-1:].isalpha() else f"{text} bytes"


def _pct(v: Any) -> str:
    """A fraction as a percentage with two decimals.

    >>> _pct(0.932), _pct(float("nan"))
    ('93.20%', '–')
    """
    f = _finite(v)
    return _NA if f is None else f"{100 * f:.2f}%"


def _ms(v: Any) -> str:
    """Milliseconds to three significant digits, never in scientific notation.

    >>> _ms(8.5528), _ms(13.07), _ms(0.0314), _ms(0.00012)
    ('8.55', '13.1', '0.0314', '0.00012')
    """
    f = _finite(v)
    if f is None:
        return _NA
    if f >= 100:
        return f"{f:.0f}"
    if f >= 10:
        return f"{f:.1f}"
    return f"{f:.6f}".rstrip("0").rstrip(".") if f < 0.01 else f"{f:.3g}"


def _seconds(v: Any) -> str:
    f = _finite(v)
    if f is None:
        return _NA
    if f < 120:
        return f"{f:.1f} s"
    return f"{int(f // 60)} min {f % 60:.0f} s"


def _int(v: Any) -> str:
    """A whole number (K, split, generation, epoch); anything else as text."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    return str(int(f)) if f.is_integer() else f"{f:g}"


def _plain(v: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals (NLL, hypervolume, Kendall tau)."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    return f"{f:.{digits}f}"


def _auto(v: Any) -> str:
    """A value of a column neas does not know: whole numbers as such, counts as ``6.42M``,
    fractions with four decimals; never scientific notation."""
    f = _finite(v)
    if f is None:
        return _NA if v is None or isinstance(v, (int, float)) else str(v)
    if f.is_integer():
        return str(int(f)) if abs(f) < 10_000 else _count(f)
    return _count(f) if abs(f) >= 1000 else f"{f:.4f}"


def _threshold(v: Any) -> str:
    f = _finite(v)
    return _NA if f is None else f"{f:g}" if f == 0 or abs(f) >= 1e-4 else f"{f:.6f}"


def _humanise(key: str) -> str:
    """A label for a column neas does not know: words, not a snake_case key."""
    return str(key).replace("_", " ")


# --- HTML pieces --------------------------------------------------------------------------------


def _e(v: Any) -> str:
    return html.escape(str(v))


def _kv(rows: dict[str, Any]) -> str:
    """Label / value rows; values are already formatted text (None rows are left out)."""
    body = "".join(
        f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>'
        for k, v in rows.items()
        if v is not None
    )
    return f'<div class="scroll"><table>{body}</table></div>'


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, chosen: int | None = None
) -> str:
    """A table in a horizontally scrolling box; cells are text, except each row's first cell,
    which is HTML (already escaped: it may hold a link)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="chosen"' if i == chosen else ""
        cells = "".join(
            f'<td class="l">{c}</td>' if j == 0 else f"<td>{_e(c)}</td>" for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _notes(items: Sequence[tuple[str, str]]) -> str:
    """Explanations of the measures a table shows: ``<ul>`` of "<b>name</b>: sentence"."""
    lis = "".join(f"<li><b>{_e(name)}</b>: {text}</li>" for name, text in items if text)
    return f'<ul class="notes">{lis}</ul>'


# --- explanations -------------------------------------------------------------------------------

_K = "how many networks (members) the ensemble combines; it averages their softmax probabilities."
_SPLIT = (
    "how many leading layers the members share (computed once for all of them); split = number "
    "of layers means all layers shared, only the heads differ."
)
_MACS = (
    "multiply-accumulate operations to classify one input with the whole ensemble (shared "
    "layers counted once); the search keeps every ensemble within the budget."
)
_ACC = (
    "share of the validation split classified correctly; the search maximises it. <b>test "
    "accuracy</b>: the same on the test split, which no choice in the run looked at."
)
_NLL = (
    "mean negative log-likelihood of the true class under the averaged probabilities (lower is "
    "better); the search uses it only as a tie-break between equal validation accuracies."
)
_DISAGREE = (
    "fraction of validation images on which members' predicted classes differ (mean over member "
    "pairs) — 0 means the members are copies, and averaging them gains nothing."
)
_HYPERVOLUME = (
    "how much of the objective space the front dominates, with validation error, MACs / budget "
    "and predicted latency / slowest possible latency each scaled to [0, 1] and (1, 1, 1) as "
    "reference point. Higher is better; it grows when a generation finds ensembles that are more "
    "accurate, cheaper or faster than the front so far, and stays flat when it finds none."
)
_CASCADE = (
    "members run in order and stop once the running average's top probability exceeds t; "
    "t = 0 runs only the first member, t = 1 runs every member."
)
_WEIGHTS = {
    "entangled": "entangled (one weight set per layer; every op uses a slice of it)",
    "separate": "separate (one weight set per layer and op)",
    "members": "members (shared trunk weights; each member has its own weights after the split)",
}


def _predicted_latency_note(device: str | None, batch: Any) -> str:
    where = f" ({_e(device)})" if device else ""
    at = f" at batch {_e(batch)}" if batch is not None else ""
    return (
        f"PyTorch latency{at} <i>predicted</i> by the search from a per-(layer, op) lookup table "
        f"timed on the search device{where} and calibrated on whole ensembles "
        "(<code>latency_table.json</code>); it ranks ensembles against each other, it is not a "
        "measurement of the exported model."
    )


_ORT_NOTE = (
    "median time of one batch-1 call of the exported <code>model.onnx</code> in ONNX Runtime, "
    "<i>measured</i> on the machine that exported it (see each ensemble below)."
)


# --- run, search, shrink, ranking ---------------------------------------------------------------


def _space(run: Path) -> dict[str, Any] | None:
    """``space.json`` (the space the supernet started from), or None when the run has none."""
    path = run / SPACE
    if not path.is_file() and not path.is_symlink():
        return None
    space = _json(path)
    if not isinstance(space, dict):
        raise _damaged(path, TypeError("not an object"))
    return space


def _members_text(run: Path, cfg: dict[str, Any]) -> str:
    """What K the run's ensembles have: the actual number, not "space default"."""
    k = cfg["space"].get("members")
    if k is None:
        space = _space(run)
        k = space.get("num_members") if space else None
    summary = run / SEARCH_DIR / SEARCH_SUMMARY
    opts = _json(summary).get("options", {}) if summary.is_file() else {}
    if not isinstance(opts, dict):
        opts = {}
    if k is None:
        return "not recorded"
    if opts.get("ensemble_size"):
        return f"{opts['ensemble_size']} (fixed by --ensemble-size; the supernet has {k} slots)"
    if opts.get("search_members"):
        return f"1 to {k} (searched)"
    return str(k)


def _config_section(run: Path) -> str:
    parts = ["<h2>Run</h2>"]
    if (run / CONFIG).is_file():
        cfg = _json(run / CONFIG)
        shrink_at = (cfg.get("shrink") or {}).get("at")
        weights = cfg["train"].get("weights", cfg.get("weights"))
        rows = {
            "data": cfg["data"]["source"],
            "search space": cfg["space"]["name"],
            "members per ensemble (K)": _members_text(run, cfg),
            "supernet training epochs": cfg["train"]["epochs"],
            "supernet weights": _WEIGHTS.get(str(weights), weights),
            "space shrinking": (
                "at " + ", ".join(f"{100 * float(a):g}%" for a in shrink_at) + " of training"
                if shrink_at
                else "never"
            ),
            "seed": cfg["train"]["seed"],
        }
        parts.append(_kv(rows))
    if (run / TRAIN_SUMMARY).is_file():
        s = _json(run / TRAIN_SUMMARY)
        random_text = None
        if _finite(s.get("random_val_accuracy_mean")) is not None:
            random_text = f"mean val accuracy {_pct(s['random_val_accuracy_mean'])}"
            if _finite(s.get("random_val_accuracy_max")) is not None:
                random_text += f", best {_pct(s['random_val_accuracy_max'])}"
            if _finite(s.get("random_val_disagreement_mean")) is not None:
                random_text += f", mean disagreement {_pct(s['random_val_disagreement_mean'])}"
            if s.get("random_val_samples"):
                random_text += f" ({s['random_val_samples']} sampled)"
        train_time = _seconds(s.get("train_seconds")) if "train_seconds" in s else None
        if train_time and s.get("device"):
            train_time += f" on {s['device']}"
        parts.append(
            _kv(
                {
                    "supernet training time": train_time,
                    "supernet parameters": (
                        _count(s["supernet_params"]) if "supernet_params" in s else None
                    ),
                    "random ensembles from the trained supernet": random_text,
                }
            )
        )
    return "".join(parts)


def _time_section(run: Path) -> str:
    """Under ``--time-limit``: the plan against the seconds each stage took."""
    if not (run / TIME_RECORD).is_file():
        return ""
    rec = _json(run / TIME_RECORD)
    limit, spent = _finite(rec.get("limit_s")), _finite(rec.get("spent_s"))
    rows = []
    for name, st in (rec.get("stages") or {}).items():
        planned = ", ".join(f"{v} {k}" for k, v in (st.get("planned") or {}).items()
                            if k in ("epochs", "evaluations"))  # fmt: skip
        done = [f"{st[k]} {k}" for k in ("epochs", "proposals", "exported") if k in st]
        rows.append(
            [
                _e(name),
                _seconds(st.get("allowance_s")),
                _seconds(st.get("seconds")) if "seconds" in st else "unfinished",
                planned or "-",
                ", ".join(done) or "-",
                "yes" if st.get("stopped_early") else "no",
            ]
        )
    over = _finite(rec.get("overrun_s")) or 0.0
    head = (
        f"<p>Limit {_seconds(limit)}, spent {_seconds(spent)}"
        + (f", over by {_seconds(over)}" if over > 0 else "")
        + ". Each stage got its share of the time left when it started; it stopped at an "
        "epoch, a generation or an exported ensemble once its time was spent.</p>"
    )
    header = ["stage", "allowance", "took", "planned", "done", "stopped early"]
    return "<h2>Time limit</h2>" + head + _table(header, rows)


def _exported_manifests(folders: Sequence[Path]) -> dict[str, dict[str, Any]]:
    out = {}
    for folder in folders:
        m = _section(_json, folder / MANIFEST, folder / MANIFEST)
        if not isinstance(m, dict):
            raise _damaged(folder / MANIFEST, TypeError("not an object"))
        out[folder.name] = m
    return out


def _ort_ms(manifest: dict[str, Any]) -> float | None:
    return _finite(((manifest.get("latency") or {}).get("batch_1") or {}).get("median_ms"))


def _layers_of(arch_json: Any) -> int | None:
    try:
        arch = json.loads(arch_json)
        return len(arch["shared"]) + len(arch["members"][0])
    except (ValueError, TypeError, KeyError, IndexError):
        return None


_FRONT_COLUMNS: dict[str, tuple[str, Callable[[Any], str]]] = {
    "members": ("K", _int),
    "split": ("split", _int),
    "macs": ("MACs", _count),
    "params": ("parameters", _count),
    "val_accuracy": ("val accuracy", _pct),
    "test_accuracy": ("test accuracy", _pct),
    "val_nll": ("val NLL", lambda v: _plain(v, 3)),
    "disagreement": ("disagreement", _pct),
    "latency_ms": ("predicted latency, PyTorch (ms)", _ms),
}


def _search_section(run: Path, manifests: dict[str, dict[str, Any]]) -> str:
    if not (run / PARETO).is_file():
        return ""
    raw = _csv(run / PARETO)
    parts = [f"<h2>Pareto front ({len(raw)} ensembles)</h2>"]
    parts.append(
        '<p class="note">The ensembles no other ensemble beats on every objective at once '
        "(validation accuracy, MACs, predicted latency): pick one by the accuracy you need and "
        "the cost you can pay.</p>"
    )
    s: dict[str, Any] = {}
    summary = run / SEARCH_DIR / SEARCH_SUMMARY
    if summary.is_file():
        s = _json(summary)
        opts = s.get("options", {})
        proposals = s.get("proposals")
        if proposals is not None and s.get("unique_evaluations") is not None:
            proposals = f"{proposals} ({s['unique_evaluations']} distinct ensembles scored)"
        parts.append(
            _kv(
                {
                    "search strategy": opts.get("strategy"),
                    "MACs budget": _count(s.get("budget_macs")),
                    "ensembles proposed": proposals,
                    "search time": _seconds(s.get("seconds")),
                    "best val accuracy": _pct(s.get("best_val_accuracy")),
                    "test accuracy of the best-val ensemble": _pct(
                        s.get("test_accuracy_of_best_val")
                    ),
                }
            )
        )
    has_arch = "arch" in raw.columns
    hidden = {"id", "arch"} | (set() if _latency_predicted(run) else {"latency_ms"})
    known = [c for c in _FRONT_COLUMNS if c in raw.columns and c not in hidden]  # latency last
    columns = known + [c for c in raw.columns if c not in hidden and c not in known]
    header = ["id"] + [_FRONT_COLUMNS.get(c, (_humanise(c),))[0] for c in columns]
    any_ort = any(_ort_ms(m) is not None for m in manifests.values())
    if any_ort:
        header.append("measured latency, ONNX Runtime (ms)")
    rows = []
    for r in raw.to_dict("records"):
        rid = str(r.get("id", ""))
        cells = [f'<a href="#ensemble-{_e(rid)}">{_e(rid)}</a>' if rid in manifests else _e(rid)]
        for c in columns:
            fmt = _FRONT_COLUMNS.get(c, ("", _auto))[1]
            text = fmt(r[c])
            if c == "split" and has_arch and (n := _layers_of(r["arch"])) is not None:
                text = f"{text} of {n}"
            cells.append(text)
        if any_ort:
            cells.append(_ms(_ort_ms(manifests[rid])) if rid in manifests else "not exported")
        rows.append(cells)
    parts.append(_table(header, rows))
    opts = s.get("options") if isinstance(s.get("options"), dict) else {}
    explain = {
        "members": ("K", _K),
        "split": ("split", _SPLIT + " Written <i>s of L</i>: s shared layers of L."),
        "macs": ("MACs", _MACS),
        "val_accuracy": ("val accuracy", _ACC),
        "val_nll": ("val NLL", _NLL),
        "disagreement": ("disagreement", _DISAGREE),
        "latency_ms": (
            "predicted latency",
            _predicted_latency_note(s.get("device"), opts.get("latency_batch")),
        ),
    }
    notes = [explain[c] for c in explain if c in columns]
    if any_ort:
        notes.append(("measured latency", _ORT_NOTE))
    parts += [_notes(notes), _img(run / PARETO_PLOT, "Pareto front")]
    hv = run / SEARCH_DIR / HYPERVOLUME
    if hv.is_file():
        table = _csv(hv)
        labels = {
            "generation": ("generation", _int),
            "evaluations": ("ensembles scored so far", _int),
            "hypervolume": ("hypervolume", lambda v: _plain(v, 4)),
            "best_val_accuracy": ("best val accuracy", _pct),
        }
        hv_header = [labels.get(c, (_humanise(c),))[0] for c in table.columns]
        fmts = [labels.get(c, ("", _auto))[1] for c in table.columns]
        hv_rows = [[f(v) for f, v in zip(fmts, r)] for r in table.itertuples(index=False)]
        for row in hv_rows:
            row[0] = _e(row[0])
        parts += [
            "<h2>Hypervolume by generation</h2>",
            _notes([("hypervolume", _HYPERVOLUME)]),
            _img(run / SEARCH_DIR / HYPERVOLUME_PLOT, "hypervolume"),
            _table(hv_header, hv_rows),
        ]
    return "".join(parts)


def _shrink_section(run: Path) -> str:
    if not (run / SHRINK_HISTORY).is_file():
        return ""
    steps = _json(run / SHRINK_HISTORY)["steps"]
    header = [
        "epoch",
        "space size before (log10 of architectures)",
        "after",
        "sampled ensembles: mean val accuracy",
        "mean disagreement",
        "time",
    ]
    rows = [
        [
            _e(_int(s["epoch"])),
            _plain(s["log10_size_before"], 1),
            _plain(s["log10_size_after"], 1),
            _pct(s["sampled_accuracy_mean"]),
            _pct(s["sampled_disagreement_mean"]),
            _seconds(s["seconds"]),
        ]
        for s in steps
    ]
    note = _notes(
        [
            (
                "shrinking",
                "at set epochs, ensembles are sampled from the supernet and every op of every "
                "layer gets a score from the ensembles that used it: their mean validation "
                "accuracy (potentiality) plus their mean member disagreement (diversity), each "
                "standardised. The lowest-scoring ops of each layer are dropped, so later "
                "training and the search spend their time on the promising part of the space.",
            ),
            (
                "heatmap",
                "one row per op, one column per layer (numbered from 1); colour = score; "
                "<b>x</b> = dropped at this step, <b>?</b> = not sampled (kept).",
            ),
        ]
    )
    return "".join(
        [
            "<h2>Shrink history</h2>",
            note,
            _table(header, rows),
            _img(run / SHRINK_PLOT, "shrink history"),
        ]
    )


def _ranking_section(run: Path) -> str:
    if not (run / RANKING).is_file():
        return ""
    r = _json(run / RANKING)
    ci = r.get("kendall_tau_ci95")
    tau = _plain(r.get("kendall_tau"), 2)
    if isinstance(ci, list) and len(ci) == 2 and all(_finite(c) is not None for c in ci):
        tau += f" (95% interval {_plain(ci[0], 2)} to {_plain(ci[1], 2)})"
    return "".join(
        [
            "<h2>Ranking</h2>",
            '<p class="note">Does the supernet rank architectures as stand-alone training would? '
            "Sampled architectures are trained from scratch and their accuracy compared with the "
            "supernet's estimate: rank correlation 1 means the same order, 0 no relation.</p>",
            _kv(
                {
                    "Kendall τ (supernet vs stand-alone accuracy)": tau,
                    "Spearman ρ": _plain(r.get("spearman_rho"), 2),
                    "architectures trained stand-alone": _int(r.get("samples")),
                    "stand-alone training epochs": _int(r.get("epochs")),
                }
            ),
            _img(run / RANKING_PLOT, "ranking"),
        ]
    )


# --- exported ensembles -------------------------------------------------------------------------

_OP = re.compile(r"^k(\d+)e(\d+)(?:d(\d+))?$")


def _op_title(name: str, block: str) -> str:
    m = _OP.match(name)
    if name == "skip":
        return "skip: the layer is left out (identity)"
    if not m:
        return name
    k, e, d = m.group(1), m.group(2), m.group(3)
    if block == "mlp" or k == "1":
        text = f"MLP block, hidden width {e}x the model width"
    else:
        text = f"MBConv block, {k}x{k} depthwise kernel, expansion {e}"
    return text + (f", dropout {d}%" if d else "")


def _arch_legend(block: str, names: set[str]) -> str:
    shown = sorted(n for n in names if n != "skip")
    example = shown[0] if shown else ("k1e2" if block == "mlp" else "k3e4")
    legend = f"<code>{_e(example)}</code> = {_e(_op_title(example, block))}"
    if any(_OP.match(n) and _OP.match(n).group(3) for n in names):
        legend += " (a trailing <code>dNN</code>: dropout NN%)"
    return (
        '<p class="note">Read left to right: the input enters the stem, then the <span '
        'style="background:#dbe9f7">shared layers</span> run once for all members, then each '
        'member runs its <span style="background:#e3f3e1">own layers</span> and its own '
        '<span style="background:#fbe7c6">head</span>; the ensemble averages the members\' '
        f"probabilities. Op names: {legend}; <code>skip</code> = the layer is left out.</p>"
    )


def _stage_groups(space: dict[str, Any] | None, n_layers: int) -> list[tuple[str, int]]:
    """(label, number of layers) per stage of the space, or one group when it is unknown."""
    layers = (space or {}).get("layers")
    if not isinstance(layers, list) or len(layers) != n_layers:
        return [("layers", n_layers)]
    if not all(isinstance(lay, dict) for lay in layers):  # a space.json neas did not write
        return [("layers", n_layers)]
    groups: list[tuple[str, int]] = []
    last = None
    for lay in layers:
        stage = lay.get("stage")
        if groups and stage == last:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
            continue
        last = stage
        label = f"stage {int(stage) + 1}" if isinstance(stage, int) else "layers"
        if space.get("block") == "mlp" or space.get("name") == "mlp":
            label = f"blocks, width {lay.get('out_channels')}"
        elif isinstance(lay.get("out_channels"), int):
            label += f": {lay['out_channels']} ch"
            if lay.get("stride", 1) != 1:
                label += f", stride {lay['stride']}"
        groups.append((label, 1))
    return groups


def _architecture(arch: dict[str, Any], space: dict[str, Any] | None) -> str:
    """The ensemble as a table: one row per member, the shared layers one cell spanning every
    member's row, then each member's own layers and head; stages as column groups."""
    shared = [str(o) for o in arch["shared"]]
    members = [[str(o) for o in m] for m in arch["members"]]
    k = len(members)
    n_layers = len(shared) + (len(members[0]) if members else 0)
    block = str((space or {}).get("block") or (space or {}).get("name") or "")
    groups = _stage_groups(space, n_layers)
    stage_row = "".join(f'<th colspan="{n}">{_e(label)}</th>' for label, n in groups)
    layer_row = "".join(f"<th>{i + 1}</th>" for i in range(n_layers))

    def cell(op: str, cls: str, extra: str = "") -> str:
        cls += " skip" if op == "skip" else ""
        return f'<td class="{cls}"{extra} title="{_e(_op_title(op, block))}">{_e(op)}</td>'

    rows = []
    for j, own in enumerate(members):
        cells = [f'<th class="l">member {j + 1}</th>']
        if j == 0:
            cells += [cell(op, "shared", f' rowspan="{k}"') for op in shared]
        cells += [cell(op, "own") for op in own]
        cells.append('<td class="head">head</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    table = (
        '<div class="scroll"><table class="arch">'
        f'<tr><th class="l"></th>{stage_row}<th></th></tr>'
        f'<tr><th class="l">layer</th>{layer_row}<th></th></tr>'
        f"{''.join(rows)}</table></div>"
    )
    split = arch.get("split", len(shared))
    words = (
        f"all {n_layers} layers shared, only the heads differ"
        if len(shared) == n_layers
        else f"layers 1 to {split} shared, layers {split + 1} to {n_layers} per member"
        if shared
        else "no layer shared: independent members after the stem"
    )
    return f'<p class="note">split = {_e(split)}: {_e(words)}.</p>{table}'


def _files(run: Path, folder: Path) -> str:
    names = (MODEL_ONNX, MODEL_PT, MANIFEST, CASCADE_TABLE)
    items = []
    for name in names:
        path = folder / name
        if path.is_symlink() or not path.is_file():
            continue
        rel = path.relative_to(run).as_posix()
        what = {
            MODEL_ONNX: "one ONNX graph: shared trunk once, then the K members",
            MODEL_PT: "for <code>neas.load_ensemble</code>",
            MANIFEST: "input shape, normalisation, class names, measurements",
            CASCADE_TABLE: "the full cascade sweep",
        }[name]
        items.append(f"<li><code>{_e(rel)}</code> ({_size(path.stat().st_size)}): {what}</li>")
    if not items:
        return ""
    listing = "".join(items)
    return f'<p class="note">Files, relative to the run folder:</p><ul class="notes">{listing}</ul>'


def _serve(folder: Path, m: dict[str, Any]) -> str:
    """A short how-to-serve snippet (ONNX Runtime, then neas) for this ensemble, collapsed."""
    spec = m.get("input") if isinstance(m.get("input"), dict) else {}
    shape = spec.get("shape")
    table = isinstance(shape, list) and len(shape) == 3 and shape[1:] == [1, 1]
    where = json.dumps(str(folder.resolve()))
    if table:
        raw = "rows"
        make_x = (
            f"# rows: N x {shape[0]} float32 features, in the training data's column order\n"
            'mean = np.asarray(spec["mean"], np.float32)\n'
            'std = np.asarray(spec["std"], np.float32)\n'
            "x = ((rows - mean) / std).astype(np.float32)[:, :, None, None]  # N x F x 1 x 1\n"
        )
        if spec.get("preprocessing"):
            make_x = (
                "# a table with text columns: rows = neas.load_ensemble(...).encode_table(frame)\n"
                + make_x
            )
    else:
        raw = "pixels / 255.0"
        dims = " x ".join(map(str, shape)) if isinstance(shape, list) else "C x H x W"
        make_x = (
            f"# pixels: N x {dims} float32 in 0..255\n"
            'c = spec["shape"][0]\n'
            'mean = np.asarray(spec["mean"], np.float32).reshape(c, 1, 1)\n'
            'std = np.asarray(spec["std"], np.float32).reshape(c, 1, 1)\n'
            "x = ((pixels / 255.0 - mean) / std).astype(np.float32)  # normalised as in training\n"
        )
    code = []
    if (folder / MODEL_ONNX).is_file():
        code.append(
            "import json\n\nimport numpy as np\nimport onnxruntime as ort\n\n"
            f"folder = {where}\n"
            'spec = json.load(open(f"{folder}/manifest.json"))["input"]\n'
            f"{make_x}"
            'session = ort.InferenceSession(f"{folder}/model.onnx", '
            'providers=["CPUExecutionProvider"])\n'
            'probabilities = session.run(["probabilities"], {"input": x})[0]  # N x classes\n'
            'labels = [spec["class_names"][i] for i in probabilities.argmax(1)]\n'
        )
    if (folder / MODEL_PT).is_file():
        code.append(
            ("# or, with neas installed (it normalises for you):\n" if code else "")
            + "import neas\n\n"
            f"model = neas.load_ensemble({json.dumps(str(folder.resolve() / MODEL_PT))})\n"
            f"labels = model.predict({raw}, normalize=True)  # class indices\n"
        )
    if not code:
        return ""
    return (
        f"<details><summary>How to serve it (Python)</summary>"
        f"<pre><code>{html.escape(chr(10).join(code))}</code></pre></details>"
    )


_RULE = re.compile(r"^cheapest within ([0-9.]+) of full$")


def _cascade_block(folder: Path, m: dict[str, Any]) -> str:
    cascade = m.get("cascade") if isinstance(m.get("cascade"), dict) else {}
    threshold = cascade.get("threshold")
    parts = []
    if threshold is not None:
        text = f"Threshold t = {_e(_threshold(threshold))}: {_CASCADE}"
        rule = str(cascade.get("rule") or "")
        if (found := _RULE.match(rule)) and _finite(found.group(1)) is not None:
            points = 100 * float(found.group(1))
            text += (
                " Chosen as the cheapest threshold whose validation accuracy is within "
                f"{points:g} points of the full ensemble's."
            )
        elif rule:
            text += f" Chosen by the rule: {_e(rule)}."
        val = cascade.get("val") if isinstance(cascade.get("val"), dict) else {}
        if val:
            text += (
                f" On the validation split it reaches {_pct(val.get('accuracy'))} at "
                f"{_count(val.get('mean_macs'))} MACs per input on average, against "
                f"{_pct(val.get('full_accuracy'))} at {_count(val.get('full_macs'))} MACs for "
                "the full ensemble."
            )
        parts.append(f'<p class="note">{text}</p>')
    if (folder / CASCADE_TABLE).is_file():
        sweep = _csv(folder / CASCADE_TABLE)
        parts.append(_img(folder / CASCADE_PLOT, "cascade"))
        parts.append(_sweep_table(sweep, threshold))
    return "".join(parts)


def _sweep_table(sweep: pd.DataFrame, chosen: Any) -> str:
    """The cascade sweep, one row per threshold that changes a shown number (the chosen one
    always shown), in a collapsed ``<details>``."""
    splits = [c[: -len("_accuracy")] for c in sweep.columns if c.endswith("_accuracy")]
    header = ["threshold t"]
    for s in splits:
        header += [f"{s} accuracy", f"{s} mean MACs", f"{s} mean members run"]
    chosen_f = _finite(chosen)
    rows, chosen_row, last = [], None, None
    for _, r in sweep.iterrows():
        cells = []
        for s in splits:
            cells += [
                _pct(r.get(f"{s}_accuracy")),
                _count(r.get(f"{s}_mean_macs")),
                _plain(r.get(f"{s}_mean_members"), 2),
            ]
        is_chosen = chosen_f is not None and _finite(r.get("threshold")) == chosen_f
        if cells == last and not is_chosen:
            continue
        last = cells
        if is_chosen:
            chosen_row = len(rows)
        rows.append([_e(_threshold(r.get("threshold"))), *cells])
    table = _table(header, rows, chosen=chosen_row)
    return (
        f"<details><summary>Cascade sweep: {len(rows)} of {len(sweep)} thresholds "
        "(rows that repeat the previous one left out; the chosen one in bold)</summary>"
        f"{table}</details>"
    )


def _ensemble_section(
    folder: Path, run: Path, space: dict[str, Any] | None, predicted: dict[str, Any]
) -> str:
    m = _json(folder / MANIFEST)
    onnx = m.get("onnx") if isinstance(m.get("onnx"), dict) else {}
    acc = m.get("accuracy") if isinstance(m.get("accuracy"), dict) else {}
    lat = m.get("latency") if isinstance(m.get("latency"), dict) else {}
    eid = str(m.get("id", folder.name))
    pred = _finite(predicted.get(folder.name))
    ort_ms = _ort_ms(m)
    ort_text = None
    if ort_ms is not None:
        ort_text = f"{_ms(ort_ms)} ms median"
        b32 = _finite((lat.get("batch_32") or {}).get("median_ms"))
        if b32 is not None:
            ort_text += f" (batch 32: {_ms(b32)} ms)"
        details = [str(lat[k]) for k in ("runtime", "provider") if lat.get(k)]
        if _finite(lat.get("intra_op_threads")) is not None:
            n = int(lat["intra_op_threads"])
            details.append(f"{n} thread" + ("s" if n != 1 else ""))
        if details:
            ort_text += ", " + ", ".join(details)
    parity = _finite(onnx.get("parity_max_abs_diff"))
    parity_text = None
    if parity is not None:
        size = "below 0.0001" if parity < 1e-4 else f"{parity:.4f}"
        parity_text = f"largest output difference {size}"
        if onnx.get("parity_samples"):
            parity_text += f" on {_int(onnx['parity_samples'])} validation inputs"
    val_members = acc.get("val_members")
    rows = {
        "members (K)": _int(m.get("members")),
        "MACs": _count(m.get("macs")),
        "parameters": _count(m.get("params")),
        "val accuracy": _pct(acc.get("val")),
        "test accuracy": _pct(acc.get("test")),
        "each member's own val accuracy": (
            ", ".join(_pct(a) for a in val_members) if isinstance(val_members, list) else None
        ),
        "latency predicted by the search (PyTorch)": (
            f"{_ms(pred)} ms" if pred is not None else None
        ),
        "latency measured, ONNX Runtime (batch 1)": ort_text,
        "ONNX Runtime vs PyTorch": parity_text,
    }
    parts = [
        f'<div class="ens"><h3 id="ensemble-{_e(eid)}">{_e(eid)}</h3>',
        _kv(rows),
        "<h4>Architecture</h4>",
    ]
    if isinstance(m.get("arch"), dict):
        parts.append(_architecture(m["arch"], space))
    parts += [
        "<h4>Files and serving</h4>",
        _files(run, folder),
        _serve(folder, m),
        "<h4>Early-exit cascade</h4>",
        _cascade_block(folder, m),
        "</div>",
    ]
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


def _exports_intro(space: dict[str, Any] | None, manifests: dict[str, dict[str, Any]]) -> str:
    names: set[str] = set()
    for m in manifests.values():
        arch = m.get("arch")
        if isinstance(arch, dict) and isinstance(arch.get("shared"), list):
            names.update(map(str, arch["shared"]))
            for member in arch.get("members") or []:
                names.update(map(str, member if isinstance(member, list) else []))
    block = str((space or {}).get("block") or (space or {}).get("name") or "")
    return (
        f"<h2>Exported ensembles ({len(manifests)})</h2>"
        '<p class="note">Each ensemble of the front, as exported: its architecture, its files '
        "and how to serve them, its latency as predicted by the search and as measured in ONNX "
        "Runtime, and its early-exit cascade.</p>" + _arch_legend(block, names)
    )


def _latency_predicted(run: Path) -> bool:
    """Whether the search predicted latencies (``--no-latency`` leaves ``latency_ms`` at 0)."""
    summary = run / SEARCH_DIR / SEARCH_SUMMARY
    opts = _json(summary).get("options") if summary.is_file() else None
    return not isinstance(opts, dict) or opts.get("latency") is not False


def _predicted_latencies(run: Path) -> dict[str, Any]:
    """Each front id's predicted latency (``pareto.csv``), or nothing when none was predicted."""
    front = _csv(run / PARETO)
    if not {"id", "latency_ms"} <= set(front.columns) or not _latency_predicted(run):
        return {}
    return dict(zip(front["id"].astype(str), front["latency_ms"]))


def render_report(run_dir: str | Path) -> str:
    """The report of ``run_dir`` as one HTML string."""
    run = Path(run_dir)
    folders = _exports(run)
    manifests = _exported_manifests(folders)
    body = [
        f"<h1>neas run <code>{html.escape(run.name)}</code></h1>",
        f'<p class="muted">{html.escape(str(run.resolve()))}</p>',
        _section(_config_section, run, run / f"{CONFIG} or {TRAIN_SUMMARY}"),
        _section(_time_section, run, run / TIME_RECORD),
        _section(lambda r: _search_section(r, manifests), run, run / f"{PARETO} or {SEARCH_DIR}/"),
        _section(_shrink_section, run, run / SHRINK_HISTORY),
        _section(_ranking_section, run, run / RANKING),
    ]
    if folders:
        space = _section(_space, run, run / SPACE)
        predicted = _section(_predicted_latencies, run, run / PARETO)
        body.append(_exports_intro(space, manifests))
        body += [
            _section(lambda f: _ensemble_section(f, run, space, predicted), f, f / MANIFEST)
            for f in folders
        ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
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
