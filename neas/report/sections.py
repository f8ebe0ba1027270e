"""The report's run-wide sections: configuration and training, time limit, search (front and
hypervolume), shrink history and ranking diagnostics."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neas.layout import (
    CONFIG,
    HYPERVOLUME,
    HYPERVOLUME_PLOT,
    MANIFEST,
    PARETO,
    PARETO_PLOT,
    RANKING,
    RANKING_PLOT,
    SEARCH_DIR,
    SEARCH_SUMMARY,
    SHRINK_HISTORY,
    SHRINK_PLOT,
    SPACE,
    TIME_RECORD,
    TRAIN_SUMMARY,
)
from neas.report.glossary import (
    _ACC,
    _DISAGREE,
    _FINAL,
    _HYPERVOLUME,
    _K,
    _MACS,
    _NLL,
    _ORT_NOTE,
    _SPLIT,
    _WEIGHTS,
    _predicted_latency_note,
)
from neas.report.markup import (
    _auto,
    _count,
    _e,
    _finite,
    _humanise,
    _int,
    _kv,
    _ms,
    _notes,
    _pct,
    _plain,
    _seconds,
    _table,
)
from neas.report.read import _csv, _damaged, _img, _json, _section


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
        random_text = _random_baseline(
            s.get("random_val_accuracy_mean"),
            s.get("random_val_accuracy_max"),
            s.get("random_val_disagreement_mean"),
            f"{s['random_val_samples']} sampled" if s.get("random_val_samples") else None,
        )
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
    "final_val_accuracy": ("val accuracy after final training", _pct),
    "final_test_accuracy": ("test accuracy after final training", _pct),
    "val_nll": ("val NLL", lambda v: _plain(v, 3)),
    "disagreement": ("disagreement", _pct),
    "latency_ms": ("predicted latency, PyTorch (ms)", _ms),
}


def _random_baseline(mean: Any, best: Any, disagreement: Any, count: str | None) -> str | None:
    """Random ensembles' validation scores in words (the training's sample or the search's
    first generation); the parts that are missing are left out, all of them: ``None``.

    >>> _random_baseline(0.9, 0.95, 0.1, "8 sampled")
    'mean val accuracy 90.00%, best 95.00%, mean disagreement 10.00% (8 sampled)'
    >>> _random_baseline(0.9, None, None, None), _random_baseline(None, 0.9, 0.1, "2 ensembles")
    ('mean val accuracy 90.00%', None)
    """
    if _finite(mean) is None:
        return None
    text = f"mean val accuracy {_pct(mean)}"
    if _finite(best) is not None:
        text += f", best {_pct(best)}"
    if _finite(disagreement) is not None:
        text += f", mean disagreement {_pct(disagreement)}"
    return text + (f" ({count})" if count else "")


def _first_generation(g: dict[str, Any] | None) -> str | None:
    g = g or {}
    count = f"{g['ensembles']} ensembles" if g.get("ensembles") else None
    return _random_baseline(
        g.get("val_accuracy_mean"), g.get("val_accuracy_max"), g.get("disagreement_mean"), count
    )


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
                    "first generation (random ensembles within the budget)": _first_generation(
                        s.get("first_generation")
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
        "final_val_accuracy": ("after final training", _FINAL),
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


def _latency_predicted(run: Path) -> bool:
    """Whether the search predicted latencies (``--no-latency`` leaves ``latency_ms`` at 0)."""
    summary = run / SEARCH_DIR / SEARCH_SUMMARY
    opts = _json(summary).get("options") if summary.is_file() else None
    return not isinstance(opts, dict) or opts.get("latency") is not False
