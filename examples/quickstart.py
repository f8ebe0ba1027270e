"""The main job from Python: train a supernet, search ensembles under 600M MACs, export the front.

python examples/quickstart.py         # as `neas search --space mbconv --budget 600M`
python examples/quickstart.py --fast  # a smoke run in seconds (tiny training, accuracy near chance)
"""

from __future__ import annotations

import argparse

import neas
from neas.front import describe_best

#: What --fast prints: its figures are a smoke test's, not the method's.
SMOKE = (
    "smoke run (--fast): tiny training, so accuracy near chance is expected; "
    "run without --fast for real figures"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/quickstart", help="run folder")
    p.add_argument(
        "--fast", action="store_true", help="a smoke run: tiny settings, seconds not minutes"
    )
    args = p.parse_args()
    config, options = neas.RunConfig(), neas.SearchOptions(budget="600M")
    final = neas.FinalOptions()  # the best ensemble's final training: the data's default epochs
    if args.fast:
        config = neas.RunConfig(
            data=neas.DataOptions(max_train=300),
            space=neas.SpaceOptions(width_mult=0.25, head_width=32, feature_width=32),
            train=neas.TrainConfig(epochs=2),
            shrink=neas.ShrinkConfig(at=()),
        )
        options = neas.SearchOptions(budget="600M", population=4, generations=2)
        final = neas.FinalOptions(epochs=1)
    result = neas.search(
        out=args.out, config=config, options=options, final=final, force=True, threads=1
    )
    print(result.front[["id", "members", "split", "macs", "val_accuracy", "test_accuracy"]])
    best = result.best()
    print(f"best by validation: {describe_best(best)}")
    print(f"report: {result.report_path}")
    if args.fast:
        print(SMOKE)


if __name__ == "__main__":
    main()
