"""Leave-cameras-out: the fusion beside cnn, dft, laplacian and the old combined, day and IR night, nuisances.

The 15 CCTV cameras are split into the same 3 folds of 5 as models/training/leave_cameras_out.py.
For each fold the fusion model is fitted (models/fusion/fit.py, both kinds) on every other camera
(the other 10 CCTV cameras, the GoPro scene and the photographs; both roles) and judges the fold's
5 cameras in the canonical role only: start-up frames 0-4, judged frames 5-9 (models/fusion/dataset.py).
One frame per verdict, no debounce. Cells:

* recall on b_0.75 and above and on b_2 and above (whole-frame defocus; partial defocus in its
  own column), FAR on sharp + b_0.5 frames, FAR on the nuisances (each on a sharp frame);
* **at equal false-alarm rate**: each single detector's own score thresholded so that its FAR on
  all negatives (sharp, b_0.5, nuisances) equals the fusion's, and its recall on b_0.75+ then.

Writes models/eval/fusion_lco.{json,md,png}. Run: python -m models.fusion.lco
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from focusguard.analysis.fusion_model import FusionModel
from focusguard.analysis.infer import DEFAULT_LABELS
from models.fusion.dataset import REPO, featurize, load
from models.fusion.fit import HELD_OUT, fit_models

DETECTORS = ("cnn", "dft", "laplacian", "combined")
FIRST_BLURRY = DEFAULT_LABELS.index("b_0.75")
FIRST_CLEAR = DEFAULT_LABELS.index("b_2")
WIDTH_BANDS = ((0, 400), (400, 800), (800, 4000))


def folds(cameras: list[str], n: int = 3) -> list[list[str]]:
    """The fixed folds of leave_cameras_out.py (sha256 order, every n-th camera)."""
    order = sorted(cameras, key=lambda c: hashlib.sha256(c.encode()).hexdigest())
    return [sorted(order[i::n]) for i in range(n)]


def fusion_verdicts(table: dict[str, np.ndarray], rows: np.ndarray, model_json: dict[str, Any],
                    blurry_from: str = "b_0.75") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(blurry, P) per row through focusguard.analysis.fusion_model, as the daemon evaluates it. Rows without a
    baseline: the daemon's rule (day: the CNN when it says blurry, else learning = sharp)."""
    model = FusionModel(model_json, "fold model")
    idx = np.flatnonzero(rows)
    blurry = np.zeros(len(idx), bool)
    p = np.zeros(len(idx))
    for j, i in enumerate(idx):
        regime = str(table["regime"][i])
        if not table["has_baseline"][i]:
            blurry[j] = bool(table["cnn"][i]) and regime == "day"
            p[j] = 1.0 - float(table["cnn_score"][i])
            continue
        boundary = model.boundary(regime, blurry_from)
        p[j] = boundary.probability(table["features"][i])
        blurry[j] = p[j] >= boundary.threshold
    return blurry, p


def cell(table: dict[str, np.ndarray], rows: np.ndarray, blurry: np.ndarray) -> dict[str, Any]:
    """Counts and rates of one detector on the selected rows (`blurry` aligned with rows' True entries)."""
    sel = {k: v[rows] for k, v in table.items() if k not in ("features", "probs", "feature_names")}
    clean = sel["nuisance"] == ""
    whole = clean & ~sel["partial"].astype(bool)
    part = clean & sel["partial"].astype(bool)
    pos = whole & (sel["cls"] >= FIRST_BLURRY)
    clear = whole & (sel["cls"] >= FIRST_CLEAR)
    ppos = part & (sel["cls"] >= FIRST_BLURRY)
    neg = clean & (sel["cls"] < FIRST_BLURRY)
    nuis = ~clean

    def rate(m: np.ndarray) -> float | None:
        return float(blurry[m].mean()) if m.any() else None

    per_nuisance = {str(n): int(blurry[sel["nuisance"] == n].sum()) for n in sorted(set(sel["nuisance"][nuis]))}
    per_class = {DEFAULT_LABELS[c]: rate(whole & (sel["cls"] == c)) for c in range(len(DEFAULT_LABELS))}
    return {
        "recall": rate(pos), "recall_b2_up": rate(clear), "recall_partial": rate(ppos),
        "far_sharp": rate(neg), "far_nuisance": rate(nuis), "far_all": rate(neg | nuis),
        "n_pos": int(pos.sum()), "n_pos_partial": int(ppos.sum()), "n_neg": int(neg.sum()), "n_nuisance": int(nuis.sum()),
        "false_alarms_sharp": int(blurry[neg].sum()), "false_alarms_nuisance": int(blurry[nuis].sum()),
        "per_nuisance": per_nuisance, "per_class": per_class,
    }  # fmt: skip


def recall_at_far(table: dict[str, np.ndarray], rows: np.ndarray, score: np.ndarray, far: float,
                  higher_is_blurry: bool) -> dict[str, float]:  # fmt: skip
    """A detector's score thresholded to a given FAR on all negatives: its recall (b_0.75+, whole) then."""
    sel = {k: table[k][rows] for k in ("cls", "nuisance", "partial")}
    s = score if higher_is_blurry else -score
    clean = sel["nuisance"] == ""
    neg = (clean & (sel["cls"] < FIRST_BLURRY)) | ~clean
    pos = clean & ~sel["partial"].astype(bool) & (sel["cls"] >= FIRST_BLURRY)
    negatives = np.sort(s[neg])[::-1]
    k = int(np.floor(far * len(negatives)))  # this many negatives may be at or above the threshold
    threshold = negatives[k] + 1e-12 if k < len(negatives) else -np.inf
    return {"recall": float((s[pos] >= threshold).mean()), "far": float((s[neg] >= threshold).mean())}


def markdown(result: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}"

    lines = [
        ("Leave-cameras-out (3 folds of the 15 CCTV cameras, start-up frames 0-4, judged frames 5-9), one frame per "
        "verdict. Recall on whole-frame defocus; partial = behind a depth-like mask. FAR sharp = sharp + b_0.5 "
        "frames; FAR nuisances = the 14 nuisances on sharp frames. `@FAR` = recall (b_0.75+) of the detector's own "
        "score thresholded to the fusion's FAR on all negatives."),
        "",
        "| detector | group | recall b_0.75+ | recall b_2+ | partial b_0.75+ | FAR sharp | FAR nuisances "
        "| false alarms | recall @ fusion's FAR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for group in ("day", "night"):
        for det, c in result["cells"][group].items():
            at = result["at_equal_far"][group].get(det)
            lines.append(
                f"| {det} | {group} | {pct(c['recall'])} | {pct(c['recall_b2_up'])} | {pct(c['recall_partial'])} "
                f"| {pct(c['far_sharp'])} | {pct(c['far_nuisance'])} | {c['false_alarms_sharp']}+{c['false_alarms_nuisance']}"
                f"/{c['n_neg']}+{c['n_nuisance']} | {'–' if at is None else pct(at['recall'])} |"
            )
    lines += ["", "By frame width (fusion vs laplacian): recall b_0.75+ / recall b_2+ / FAR sharp+nuisances:", "",
              "| group, width | cameras | fusion | laplacian |", "|---|---|---|---|"]
    for band, c in result.get("by_width", {}).items():
        f, lap = c["fusion"], c["laplacian"]
        lines.append(f"| {band} | {len(c['cameras'])} | {pct(f['recall'])} / {pct(f['recall_b2_up'])} / {pct(f['far_all'])} "
                     f"| {pct(lap['recall'])} / {pct(lap['recall_b2_up'])} / {pct(lap['far_all'])} |")
    lines += ["", "False alarms per nuisance (fusion, day / night):", ""]
    day, night = result["cells"]["day"]["fusion"]["per_nuisance"], result["cells"]["night"]["fusion"]["per_nuisance"]
    lines.append("| " + " | ".join(sorted(set(day) | set(night))) + " |")
    lines.append("|" + "---|" * len(set(day) | set(night)))
    lines.append("| " + " | ".join(f"{day.get(n, '–')} / {night.get(n, '–')}" for n in sorted(set(day) | set(night))) + " |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, group in zip(axes, ("day", "night"), strict=True):
        cells = result["cells"][group]
        names = list(cells)
        x = np.arange(len(names))
        for off, key, label in ((-0.3, "recall", "recall b_0.75+"), (-0.1, "recall_b2_up", "recall b_2+"),
                                (0.1, "far_sharp", "FAR sharp"), (0.3, "far_nuisance", "FAR nuisances")):  # fmt: skip
            ax.bar(x + off, [100 * (cells[n][key] or 0) for n in names], 0.2, label=label)
        ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
        ax.set_title(f"leave-cameras-out, {group}")
        ax.set_ylabel("%")
        ax.axhline(1, color="k", lw=0.5, ls=":")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=REPO / "models" / "work" / "fusion" / "table.npz")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "eval")
    parser.add_argument("--kinds", default="trees,logistic")
    parser.add_argument("--refeaturize", action="store_true", help="recompute the features from the stored profiles")
    args = parser.parse_args(argv)
    started = time.time()
    table = load(args.table)
    if args.refeaturize:
        table = featurize(table)
    cctv = sorted({c for c in table["camera"].tolist() if not c.startswith("photo_") and c != "gopro"})
    fold_list = folds(cctv)
    kinds = args.kinds.split(",")
    verdicts: dict[str, np.ndarray] = {f"fusion/{k}": np.zeros(len(table["cls"]), bool) for k in kinds}
    scores: dict[str, np.ndarray] = {f"fusion/{k}": np.zeros(len(table["cls"])) for k in kinds}
    test_rows = np.zeros(len(table["cls"]), bool)
    for f, test_cams in enumerate(fold_list):
        is_test = np.isin(table["camera"], test_cams) | (table["camera"] == HELD_OUT)
        rows = np.isin(table["camera"], test_cams) & (table["role"] == "canonical")
        test_rows |= rows
        for kind in kinds:
            model = fit_models(table, ~is_test, kind, boundaries=("b_0.75",), progress=False)
            blurry, p = fusion_verdicts(table, rows, model)
            verdicts[f"fusion/{kind}"][rows], scores[f"fusion/{kind}"][rows] = blurry, p
            print(f"fold {f} ({', '.join(test_cams)}): {kind} fitted ({time.time() - started:.0f} s)", file=sys.stderr)
    result: dict[str, Any] = {"folds": fold_list, "cells": {}, "at_equal_far": {}, "kinds": kinds}
    for group in ("day", "night"):
        rows = test_rows & (table["group"] == group)
        cells: dict[str, Any] = {}
        for name in verdicts:
            cells[name] = cell(table, rows, verdicts[name][rows])
        for det in DETECTORS:
            cells[det] = cell(table, rows, table[det][rows].astype(bool))
        result["cells"][group] = cells
        best = f"fusion/{kinds[0]}"
        far = cells[best]["far_all"] or 0.0
        result["at_equal_far"][group] = {
            det: recall_at_far(table, rows, table[f"{det}_score"][rows], far, higher_is_blurry=False) for det in DETECTORS
        } | {best: {"recall": cells[best]["recall"], "far": far}}
    # Where the targets are physically reachable: b_s is sigma s at 1920 px, so b_2 is 0.37 px on a
    # 352 px camera (below its own compression). Fusion per frame width band.
    result["by_width"] = {}
    for group in ("day", "night"):
        for lo, hi in WIDTH_BANDS:
            rows = test_rows & (table["group"] == group) & (table["width"] >= lo) & (table["width"] < hi)
            best = f"fusion/{kinds[0]}"
            result["by_width"][f"{group} {lo}-{hi - 1} px"] = {
                "cameras": sorted(set(table["camera"][rows].tolist())),
                "fusion": cell(table, rows, verdicts[best][rows]),
                "laplacian": cell(table, rows, table["laplacian"][rows].astype(bool)),
            }
    # The shipped model's name in the tables is "fusion" (the first kind).
    for group in ("day", "night"):
        result["cells"][group]["fusion"] = result["cells"][group].pop(f"fusion/{kinds[0]}")
        result["at_equal_far"][group]["fusion"] = result["at_equal_far"][group].pop(f"fusion/{kinds[0]}")
    result["minutes"] = round((time.time() - started) / 60, 1)
    result["command"] = "python -m models.fusion.lco " + " ".join(argv or [])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fusion_lco.json").write_text(json.dumps(result, indent=1))
    (args.out / "fusion_lco.md").write_text(markdown(result))
    plot(result, args.out / "fusion_lco.png")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
