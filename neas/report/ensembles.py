"""The report's exported-ensemble sections: architecture drawing, files, how to serve it,
latency measured beside predicted, and its cascade sweep."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from neas.layout import (
    CASCADE_PLOT,
    CASCADE_TABLE,
    ENSEMBLES,
    MANIFEST,
    MODEL_ONNX,
    MODEL_PT,
    PARETO,
)
from neas.report.glossary import _CASCADE
from neas.report.markup import (
    _count,
    _e,
    _finite,
    _int,
    _kv,
    _ms,
    _pct,
    _plain,
    _size,
    _table,
    _threshold,
)
from neas.report.read import _csv, _img, _json
from neas.report.sections import _latency_predicted, _ort_ms
from neas.run import export_matches

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


def _final_text(m: dict[str, Any]) -> str | None:
    """What the final training stage did to this ensemble (manifest ``final``), in words.

    >>> text = _final_text({"final": {"init": "branches", "epochs": 30, "epochs_trained": 20,
    ...     "patience": 6, "best_epoch": 14, "refit_rows": 480}})
    >>> for part in text.split(", "):
    ...     print(part)
    branches
    20 of 30 epochs
    kept epoch 14 (the best on validation)
    then trained again on 480 rows (training + validation) for 14 epochs; val scores are those of the kept ensemble before that
    >>> _final_text({"final": {"init": "branches", "epochs": 8, "epochs_trained": 6,
    ...     "patience": 6, "best_epoch": 0, "refit_rows": 0}})
    "branches, 6 of 8 epochs, kept the supernet's weights (no epoch beat them on validation)"
    """  # noqa: E501
    final = m.get("final")
    if not isinstance(final, dict):
        return None
    text = f"{final.get('init', '?')}, {_int(final.get('epochs_trained'))} of "
    text += f"{_int(final.get('epochs'))} epochs"
    best = _finite(final.get("best_epoch"))
    if final.get("patience") and best is not None:
        text += (
            ", kept the supernet's weights (no epoch beat them on validation)"
            if best == 0
            else f", kept epoch {int(best)} (the best on validation)"
        )
    if _finite(final.get("refit_rows")):
        text += (
            f", then trained again on {_int(final['refit_rows'])} rows (training + validation) "
            f"for {_int(best)} epochs; val scores are those of the kept ensemble before that"
        )
    return text


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
        "final training": _final_text(m),
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


def _predicted_latencies(run: Path) -> dict[str, Any]:
    """Each front id's predicted latency (``pareto.csv``), or nothing when none was predicted."""
    front = _csv(run / PARETO)
    if not {"id", "latency_ms"} <= set(front.columns) or not _latency_predicted(run):
        return {}
    return dict(zip(front["id"].astype(str), front["latency_ms"]))
