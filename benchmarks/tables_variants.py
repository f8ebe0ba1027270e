"""Variants of neas on the real tables, paired: the same splits, the same machine, side by side.

Each variant's rows come from one ``tables.py`` run with ``--methods neas --neas-params ...
--results FILE`` (or are the defaults' rows of ``results/tables.json``); this script reads
neas's rows of each, keeps per table the seeds every variant has, and
writes a RESULTS.md section and ``results/tables_variants.json`` (every variant's rows, with a
``variant`` key): per table the mean test accuracy of each variant, the paired difference of
each variant against the first, and each variant's mean accuracy rank against the baselines of
``results/tables.json`` (HistGradientBoosting, LightGBM, TabM, RealMLP, logistic regression) on
the same seeds, as if it were neas's row.

    python benchmarks/tables_variants.py none=/tmp/none.json piecewise=/tmp/piecewise.json \
        [--title "stem: raw values against the piecewise-linear encoding"] [--name NAME]

``--name NAME`` writes a section and a json of its own (``... paired (NAME)``,
``results/tables_variants_NAME.json``), so that a comparison over other seeds (the seeds of
the variants above are those every variant has) does not replace the main one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _results import write_json, write_section
from _tables_data import TABLES
from scipy.stats import rankdata
from tables import METHODS, RESULTS

TITLE = "## Real tables: neas variants, paired"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("variants", nargs="+", help="NAME=rows.json (the first is the reference)")
    p.add_argument("--title", default="", help="what the variants differ in, for the section")
    p.add_argument("--name", default="", help="a section and json of their own (module doc)")
    p.add_argument("--seeds", default="", help="only these seeds, e.g. 3,4,5 (default: all)")
    args = p.parse_args()
    if args.name and not args.name.replace("_", "").isalnum():
        p.error(f"--name must be letters, digits and _, got {args.name!r}")
    variants = dict(v.split("=", 1) for v in args.variants)
    only = {int(s) for s in args.seeds.split(",")} if args.seeds else None
    # neas's rows only (``results/tables.json`` holds the baselines' too); the seeds kept here
    # are the only ones the baselines are compared on
    rows = {n: [r for r in json.loads(Path(f).read_text())["rows"]
                if r["method"] == "neas" and r["accuracy"] is not None
                and (only is None or r["seed"] in only)]
            for n, f in variants.items()}  # fmt: skip
    baselines = [m for m in METHODS if m != "neas"]
    base_rows = [r for r in json.loads(RESULTS.read_text())["rows"]
                 if r["method"] in baselines and r["accuracy"] is not None]  # fmt: skip

    def acc(rs, table, method, seeds, key="accuracy"):
        v = [r[key] for r in rs if r["table"] == table and r["method"] == method
             and r["seed"] in seeds]  # fmt: skip
        return float(np.mean(v)) if v else None

    names = list(variants)
    ref = names[0]
    lines = ["", args.title + "." if args.title else "", ""]
    lines += [
        "| table | seeds | " + " | ".join(names) + " | "
        + " | ".join(f"{n} − {ref}" for n in names[1:]) + " |",
        "|---|---|" + "---|" * (2 * len(names) - 1),
    ]  # fmt: skip
    out, ranks, diffs, fit, ratio = [], {n: [] for n in names}, {n: [] for n in names}, {}, {}
    for t in TABLES:
        seeds = set.intersection(*({r["seed"] for r in rows[n] if r["table"] == t} for n in names))
        bseeds = seeds & set.intersection(
            *(
                {r["seed"] for r in base_rows if r["table"] == t and r["method"] == m}
                for m in baselines
            )  # fmt: skip
        )
        if not seeds:
            continue
        a = {n: acc(rows[n], t, "neas", seeds) for n in names}
        for n in names:
            diffs[n].append(a[n] - a[ref])
        lines.append(
            f"| {t} | {len(seeds)} | " + " | ".join(f"{100 * a[n]:.2f}" for n in names) + " | "
            + " | ".join(f"{100 * (a[n] - a[ref]):+.2f}" for n in names[1:]) + " |"
        )  # fmt: skip
        if bseeds:
            base = [acc(base_rows, t, m, bseeds) for m in baselines]
            for n in names:
                mine = acc(rows[n], t, "neas", bseeds)
                ranks[n].append(rankdata([-mine, *(-b for b in base)])[0])
    for n in names:
        mine = [r for r in rows[n] if r["table"] in TABLES]
        fit[n] = float(np.mean([r["fit_s"] for r in mine]))
        with_ref = [r["fit_s"] / r["ref_workload_s"] for r in mine if r.get("ref_workload_s")]
        ratio[n] = float(np.mean(with_ref)) if with_ref else None
        out += [r | {"variant": n} for r in mine]
    lines.append("")
    lines.append(
        "Mean accuracy difference against "
        + ref
        + " over the tables: "
        + "; ".join(f"{n} {100 * np.mean(diffs[n]):+.2f} points" for n in names[1:])
        + ". Mean accuracy rank among neas and the five baselines of `results/tables.json` "
        "(1 = best of 6; the variant in neas's place, on the seeds both have; "
        f"{len(ranks[ref])} tables): "
        + "; ".join(f"**{n}** {np.mean(ranks[n]):.2f}" for n in names)
        + ". Mean fit seconds (fit / reference workload): "
        + "; ".join(
            f"{n} {fit[n]:.1f} s ({ratio[n]:.1f}x)" if ratio[n] else f"{n} {fit[n]:.1f} s"
            for n in names
        )
        + "."
    )
    params = {n: next((r.get("neas_params") for r in rows[n]), None) for n in names}
    lines.append(
        "Variants (`NEASClassifier` keyword arguments): "
        + "; ".join(f"{n}: `{json.dumps(params[n])}`" for n in names)
        + ". Command: `python benchmarks/tables_variants.py "
        + " ".join(args.variants)
        + (f" --seeds {args.seeds}" if args.seeds else "")
        + (f" --name {args.name}" if args.name else "")
        + "`, after "
        "one `tables.py --methods neas --neas-params ... --results ...` run per variant."
    )
    suffix = f"_{args.name}" if args.name else ""
    write_json(f"tables_variants{suffix}.json", {"variants": params, "rows": out})
    print("\n".join(lines))
    write_section(f"{TITLE} ({args.name})" if args.name else TITLE, lines)


if __name__ == "__main__":
    main()
