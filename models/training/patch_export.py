"""Turn a trained patch model (GAP head) into its 448, batch-1 network (`nets.NETS[net].to_448`: for
Pix2Pix the Table 3.8 fold) and export it int8.

The representative set is real training samples of the lens cache. The folded float model is
checked against the GAP model on a few validation frames before export (same outputs).

Usage: python -m models.training.patch_export --weights models/work/patchrun/best.weights.h5 \
           --data models/work/lens --out models/work/patchrun/candidate_int8.tflite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from models.training.export import write_int8
from models.training.nets import NETS


def export(weights: Path, data: Path, out: Path, samples: int = 200, net: str = "pix2pix") -> None:
    spec = NETS[net]
    patch = spec.build_crop()
    patch.load_weights(str(weights))
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
    args = parser.parse_args()
    export(args.weights, args.data, args.out, args.samples, args.net)


if __name__ == "__main__":
    main()
