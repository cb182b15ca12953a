"""Turn a trained patch model (GAP head) into its 448, batch-1 network (`nets.NETS[net].to_448`: for
Pix2Pix the Table 3.8 fold) and export it int8.

`--target-far F` first sets the operating point: the bias on the sharp classes' logits that
brings the float model's whole-frame validation false-alarm rate to F (at most; negative where
the model alone stays below F). compare_nets compares the nets at Pix2Pix's FAR this way. It is
chosen on validation, so a biased model's validation figures are not independent of it, while
real_defocus/ and the camera frames are.

The representative set is real training samples of the lens cache. The folded float model is
checked against the GAP model on a few validation frames before export (same outputs).

Usage: python -m models.training.patch_export --weights models/work/patchrun/best.weights.h5 \
           --data models/work/lens --out models/work/patchrun/candidate_int8.tflite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.training.evaluate import FIRST_BLURRY, at_equal_far, blurry_margin
from models.training.export import write_int8
from models.training.nets import NETS


def sharp_bias_for(patch: Any, data: Path, target_far: float) -> float:
    """The bias on the sharp classes' logits that brings the float model's whole-frame validation
    false-alarm rate down to `target_far` (a margin threshold t is exactly a bias t on both)."""
    images = np.load(data / "val_x.npy", mmap_mode="r")
    labels = np.load(data / "val_y.npy")
    probs = np.concatenate([patch.predict(np.asarray(images[i : i + 16]).astype(np.float32) / 255.0, verbose=0)
                            for i in range(0, len(labels), 16)])  # fmt: skip
    point = at_equal_far(blurry_margin(probs), labels >= FIRST_BLURRY, target_far)
    print(f"sharp bias {point['threshold']:.3f}: float validation recall {point['recall']:.3f} at FAR {point['far']:.3f} "
          f"(target {target_far:.3f}, {len(labels)} frames)", file=sys.stderr)  # fmt: skip
    return point["threshold"]  # negative where the model is more cautious than the target: equal FAR both ways


def add_sharp_bias(model: Any, bias: float) -> None:
    """Shift the last Dense layer's logits of the sharp classes (sharp, b_0.5) by `bias`."""
    kernel, offsets = model.layers[-1].get_weights()
    offsets = offsets.copy()
    offsets[:FIRST_BLURRY] += bias
    model.layers[-1].set_weights([kernel, offsets])


def export(weights: Path, data: Path, out: Path, samples: int = 200, net: str = "pix2pix",
           target_far: float | None = None) -> None:  # fmt: skip
    spec = NETS[net]
    patch = spec.build_crop()
    patch.load_weights(str(weights))
    if target_far is not None:
        add_sharp_bias(patch, sharp_bias_for(patch, data, target_far))
    folded = spec.to_448(patch)
    val = np.load(data / "val_x.npy", mmap_mode="r")
    probe = np.asarray(val[:4]).astype(np.float32) / 255.0
    gap = patch.predict(probe, verbose=0)
    flat = np.concatenate([folded.predict(p[None], verbose=0) for p in probe])
    drift = float(np.abs(gap - flat).max())
    print(f"folded vs GAP max |dp| on 4 validation frames: {drift:.2e}", file=sys.stderr)
    if drift > 1e-4:
        raise SystemExit(f"fold mismatch {drift:.2e}: not exporting")
    write_int8(folded, np.load(data / "train_x.npy", mmap_mode="r"), out, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="patch model weights (.h5)")
    parser.add_argument("--data", type=Path, default=Path("models/work/lens"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--net", choices=tuple(NETS), default="pix2pix")
    parser.add_argument("--target-far", type=float, default=None,
                        help="bias the sharp classes so that the whole-frame validation FAR is at most this")
    args = parser.parse_args()
    export(args.weights, args.data, args.out, args.samples, args.net, args.target_far)


if __name__ == "__main__":
    main()
