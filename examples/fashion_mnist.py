"""Fashion-MNIST (from the Debian package dataset-fashion-mnist): ensembles under 11.5M MACs.

    python examples/fashion_mnist.py [--fast] [--data-dir DIR]

The full run trains on the official 60k training images (a 20% validation split) and takes
about an hour on a 2-core CPU; --fast cuts the data to 1,000 / 300 / 300 images (written as an
.npz with fixed splits) and uses tiny settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import neas
from neas.front import describe_best

#: What --fast prints: its figures are a smoke test's, not the method's.
SMOKE = (
    "smoke run (--fast): tiny training, so accuracy near chance is expected; "
    "run without --fast for real figures"
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", default="runs/fashion-mnist", help="run folder")
    p.add_argument("--data-dir", default=None, help="folder of the four IDX files")
    p.add_argument(
        "--fast", action="store_true", help="a smoke run: tiny settings, seconds not minutes"
    )
    args = p.parse_args()
    data = neas.DataOptions(source="fashion-mnist", data_dir=args.data_dir)
    if args.fast:  # a small fixed-split copy: x/y train, x_val/y_val, x_test/y_test
        full = neas.load_dataset("fashion-mnist", data_dir=args.data_dir, max_train=1000)
        small = Path(args.out).parent / "fashion-mnist-small.npz"
        small.parent.mkdir(parents=True, exist_ok=True)
        names = np.asarray(full.class_names)
        np.savez(
            small,
            x=full.x_train,
            y=names[full.y_train],
            x_val=full.x_val[:300],
            y_val=names[full.y_val[:300]],
            x_test=full.x_test[:300],
            y_test=names[full.y_test[:300]],
        )
        data = neas.DataOptions(source=str(small))
        config = neas.RunConfig(
            data=data,
            space=neas.SpaceOptions(width_mult=0.25, head_width=32, feature_width=32),
            train=neas.TrainConfig(epochs=1),
            shrink=neas.ShrinkConfig(at=()),
        )
        options = neas.SearchOptions(budget="11.5M", population=4, generations=1)
        final = neas.FinalOptions(epochs=1)
    else:
        config = neas.RunConfig(data=data, train=neas.TrainConfig(epochs=10))
        options = neas.SearchOptions(budget="11.5M")
        final = neas.FinalOptions()  # the best ensemble's final training: the default epochs
    result = neas.search(
        out=args.out, config=config, options=options, final=final, force=True, threads=1
    )
    best = result.best()
    print(f"best by validation: {describe_best(best)}; report: {result.report_path}")
    if args.fast:
        print(SMOKE)


if __name__ == "__main__":
    main()
