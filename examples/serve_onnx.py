"""Serve an exported ensemble with numpy, onnxruntime and Pillow only (no neas, no torch).

    python examples/serve_onnx.py ENSEMBLE_DIR IMAGE.png [IMAGE.png ...]
    python examples/serve_onnx.py --fast  # a smoke run: exports a tiny digits ensemble, serves it

ENSEMBLE_DIR is RUN/ensembles/<id>/ from `neas export` (model.onnx + manifest.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

#: What --fast prints: the tiny ensemble it serves is a smoke test's, not a real model.
SMOKE = (
    "smoke run (--fast): tiny training, so accuracy near chance (wrong classes) is expected; "
    "serve an ensemble from a full run (e.g. examples/quickstart.py) for real predictions"
)


def classify(image_path: str, model_dir: str) -> tuple[str, float]:
    """(class name, probability) of one image, with an ensemble exported by `neas export`."""
    with open(f"{model_dir}/manifest.json") as f:
        spec = json.load(f)["input"]
    c, h, w = spec["shape"]
    image = Image.open(image_path).convert("L" if c == 1 else "RGB").resize((w, h))
    x = np.asarray(image, dtype=np.float32).reshape(h, w, c).transpose(2, 0, 1) / 255.0
    mean = np.asarray(spec["mean"], dtype=np.float32).reshape(c, 1, 1)
    std = np.asarray(spec["std"], dtype=np.float32).reshape(c, 1, 1)
    x = ((x - mean) / std)[None]  # 1 x C x H x W; any batch size works
    session = ort.InferenceSession(f"{model_dir}/model.onnx", providers=["CPUExecutionProvider"])
    probs = session.run(["probabilities"], {"input": x})[0][0]
    best = int(probs.argmax())
    return spec["class_names"][best], float(probs[best])


def tiny_ensemble(root: Path) -> tuple[Path, list[Path]]:
    """Export a tiny digits ensemble and write three digit images (for --fast)."""
    from sklearn.datasets import load_digits

    import neas

    config = neas.RunConfig(
        space=neas.SpaceOptions(width_mult=0.25, head_width=32, feature_width=32),
        train=neas.TrainConfig(epochs=3),
        shrink=neas.ShrinkConfig(at=()),
    )
    options = neas.SearchOptions(population=2, generations=1)
    final = neas.FinalOptions(epochs=1)  # the best ensemble's final training: one epoch
    result = neas.search(out=root / "run", config=config, options=options, final=final, threads=1)
    d = load_digits()
    images = []
    for i in range(3):
        path = root / f"digit{d.target[i]}.png"
        pixels = np.round(d.images[i] * 255 / 16)  # digits are 0-16: the training scale, x 255
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        images.append(path)
    return result.exported[0], images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("model_dir", nargs="?", help="RUN/ensembles/<id>")
    p.add_argument("images", nargs="*", help="image files")
    p.add_argument(
        "--fast", action="store_true", help="a smoke run: export a tiny ensemble and serve it"
    )
    args = p.parse_args()
    if not args.fast and not (args.model_dir and args.images):
        sys.exit("give ENSEMBLE_DIR and images, or --fast")
    with tempfile.TemporaryDirectory(prefix="neas-serve-") as tmp:  # --fast's run, removed after
        if args.fast:
            model_dir, images = tiny_ensemble(Path(tmp))
        else:
            model_dir, images = Path(args.model_dir), [Path(i) for i in args.images]
        for image in images:
            name, prob = classify(str(image), str(model_dir))
            print(f"{image.name}: {name} ({prob:.2f})")
    if args.fast:
        print(SMOKE)


if __name__ == "__main__":
    main()
