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

import html
from pathlib import Path

from neas.errors import RunDirError
from neas.files import atomic_write_text
from neas.layout import (
    CONFIG,
    MANIFEST,
    MARKER,
    PARETO,
    RANKING,
    REPORT,
    SEARCH_DIR,
    SHRINK_HISTORY,
    SPACE,
    TIME_RECORD,
    TRAIN_SUMMARY,
)
from neas.report.ensembles import _ensemble_section, _exports, _exports_intro, _predicted_latencies
from neas.report.markup import _STYLE
from neas.report.read import _section
from neas.report.sections import (
    _config_section,
    _exported_manifests,
    _ranking_section,
    _search_section,
    _shrink_section,
    _space,
    _time_section,
)


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
