"""Fit the fusion model (focusguard.analysis.fusion_model) on the table of models/fusion/dataset.py, write its JSON.

Per regime group (``day``; ``night`` = IR and low light) and per sensitivity boundary (each class
from b_0.5 on: the camera's `blurry_from`), a binary model P(defocus at least that class) on the
evidence features. Positives: defocused samples at or beyond the boundary (whole frame and
partial, every PSF kind); negatives: the classes below it and every nuisance on a sharp frame.
Samples whose regime had no baseline are left out (the daemon learns from such frames).

Two model kinds, compared by the leave-cameras-out evaluation (models/fusion/lco.py):
``logistic`` (standardised features, L2, scikit-learn's LogisticRegression) and ``trees``
(GradientBoostingClassifier, depth 3). The threshold on P is chosen on out-of-fold probabilities
(GroupKFold by camera: a camera never judges itself) as the value that keeps the false-alarm
rate on negatives at `TARGET_FAR`; the daemon compares P with it.

Run: python -m models.fusion.fit [--table models/work/fusion/table.npz] [--kind trees]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from focusguard.analysis.evidence import FEATURES
from focusguard.analysis.infer import DEFAULT_LABELS
from models.fusion.dataset import REPO, featurize, load

HELD_OUT = "photo_life_by_Aitzol_Berasategi"  # tests/support/clips.py's source photo
TARGET_FAR = 0.005  # on out-of-fold negatives (sharp, below-boundary classes, nuisances)
BOUNDARIES = DEFAULT_LABELS[1:]  # b_0.5 .. b_7
GROUPS = ("day", "night")
OUT = REPO / "daemon" / "focusguard" / "fusion_model.json"
TREE_PARAMS = {"n_estimators": 120, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8, "random_state": 0}


def usable(table: dict[str, np.ndarray]) -> np.ndarray:
    return table["has_baseline"].astype(bool)


def labels_for(table: dict[str, np.ndarray], boundary: str) -> np.ndarray:
    k = DEFAULT_LABELS.index(boundary)
    return (table["cls"] >= k) & (table["nuisance"] == "")


# More evidence of defocus never lowers P(defocus): -1 = P falls as the feature grows (a sharpness
# ratio), +1 = P grows with it (tiles that lost detail, the CNN's vote), 0 = free (scene change,
# lighting). Trees without this learnt bumps from the synthetic data that vetoed strong real defocus.
MONOTONIC = {
    "lap0_median": -1, "lap0_q25": -1, "lap0_q75": -1, "lap1_median": -1, "lap1_q25": -1, "lap2_median": -1,
    "lap2_q25": -1, "highpass": -1, "lap0_lost": 1, "lap1_lost": 1, "cnn_p": 1, "cnn_shift": 1,
}  # fmt: skip
HGB_PARAMS = {"max_iter": 200, "max_depth": 4, "learning_rate": 0.1, "l2_regularization": 1.0, "random_state": 0}


def _fit_one(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    if kind == "monotonic":
        from sklearn.ensemble import HistGradientBoostingClassifier

        cst = [MONOTONIC.get(name, 0) for name in FEATURES]
        return HistGradientBoostingClassifier(monotonic_cst=cst, early_stopping=False, **HGB_PARAMS).fit(x, y)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(x, y)
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(**TREE_PARAMS).fit(x, y)


def export(kind: str, fitted: Any) -> dict[str, Any]:
    """The JSON form that focusguard.analysis.fusion_model evaluates."""
    if kind == "logistic":
        scaler, lr = fitted.steps[0][1], fitted.steps[1][1]
        return {"kind": "logistic", "mean": scaler.mean_.round(6).tolist(), "scale": scaler.scale_.round(6).tolist(),
                "coef": lr.coef_[0].round(6).tolist(), "intercept": round(float(lr.intercept_[0]), 6)}  # fmt: skip
    if kind == "monotonic":  # scikit-learn's histogram trees: node arrays, learning rate already in the values
        trees = []
        for (predictor,) in fitted._predictors:
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            trees.append({"feature": np.where(leaf, -2, nodes["feature_idx"].astype(np.int64)).tolist(),
                          "threshold": nodes["num_threshold"].tolist(),
                          "left": np.where(leaf, -1, nodes["left"].astype(np.int64)).tolist(),
                          "right": np.where(leaf, -1, nodes["right"].astype(np.int64)).tolist(),
                          "value": nodes["value"].round(6).tolist()})  # fmt: skip
        return {"kind": "trees", "init": float(np.ravel(fitted._baseline_prediction)[0]), "learning_rate": 1.0,
                "trees": trees, "monotonic": {k: v for k, v in MONOTONIC.items()}}  # fmt: skip
    prior = float(np.clip(fitted.init_.class_prior_[1], 1e-6, 1 - 1e-6))
    trees = []
    for est in fitted.estimators_[:, 0]:
        t = est.tree_
        trees.append({"feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                      "left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "value": t.value[:, 0, 0].round(6).tolist()})  # fmt: skip
    return {"kind": "trees", "init": float(np.log(prior / (1 - prior))), "learning_rate": fitted.learning_rate,
            "trees": trees}  # fmt: skip


def probabilities(kind: str, fitted: Any, x: np.ndarray) -> np.ndarray:
    return fitted.predict_proba(x)[:, 1]


def threshold_for(p_negative: np.ndarray, far: float = TARGET_FAR) -> float:
    """The smallest threshold with at most `far` of the negatives at or above it (never below 0.5)."""
    if p_negative.size == 0:
        return 0.5
    return float(max(0.5, np.quantile(p_negative, 1.0 - far) + 1e-6))


def out_of_fold(kind: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 4) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    p = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=min(folds, len(set(groups)))).split(x, y, groups):
        p[test] = probabilities(kind, _fit_one(kind, x[train], y[train]), x[test])
    return p


def fit_models(table: dict[str, np.ndarray], mask: np.ndarray, kind: str,
               boundaries: tuple[str, ...] = BOUNDARIES, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """{"models": {group: {boundary: json}}, ...} fitted on the rows in `mask`."""
    models: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        rows = mask & usable(table) & (table["group"] == group)
        x, cams = table["features"][rows], table["camera"][rows]
        for boundary in boundaries:
            y = labels_for(table, boundary)[rows]
            started = time.time()
            oof = out_of_fold(kind, x, y, cams)
            threshold = threshold_for(oof[~y])
            fitted = _fit_one(kind, x, y)
            entry = export(kind, fitted) | {"threshold": round(threshold, 6),
                                            "oof_recall": round(float((oof[y] >= threshold).mean()), 4),
                                            "oof_far": round(float((oof[~y] >= threshold).mean()), 4)}  # fmt: skip
            models.setdefault(group, {})[boundary] = entry
            if progress:
                print(f"{kind} {group} {boundary}: n={len(y)} pos={int(y.sum())} threshold={threshold:.3f} "
                      f"oof recall={entry['oof_recall']:.3f} far={entry['oof_far']:.4f} ({time.time() - started:.0f} s)",
                      file=sys.stderr, flush=True)  # fmt: skip
    return {"features": list(FEATURES), "kind": kind, "models": models}


def _compact(value: Any) -> Any:
    """Floats to 7 significant digits (float32 precision: thresholds stay between the training values
    they separate), recursively."""
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def compact_json(result: dict[str, Any]) -> str:
    return json.dumps(_compact(result), separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", type=Path, default=REPO / "models" / "work" / "fusion" / "table.npz")
    parser.add_argument("--kind", choices=("monotonic", "trees", "logistic"), default="monotonic")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--refeaturize", action="store_true", help="recompute the features from the stored profiles")
    args = parser.parse_args(argv)
    table = load(args.table)
    if args.refeaturize:
        table = featurize(table)
    # The test clips are made from this photograph: keep it out, so the test suite judges unseen material.
    fitted_on = table["camera"] != HELD_OUT
    result = fit_models(table, fitted_on, args.kind)
    result["info"] = {"table": args.table.name, "samples": int((usable(table) & fitted_on).sum()),
                      "cameras": sorted(set(table["camera"][fitted_on].tolist())), "target_far": TARGET_FAR,
                      "fitted": time.strftime("%Y-%m-%d"), "command": "python -m models.fusion.fit --kind " + args.kind}  # fmt: skip
    args.out.write_text(compact_json(result) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
