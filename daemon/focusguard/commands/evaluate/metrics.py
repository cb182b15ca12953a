"""Binary figures of one detector (positive = blurry): accuracy, balanced accuracy, recall, precision, FAR."""


from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Metrics:
    """Binary metrics with positive = blurry. Undefined ratios are None."""

    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float | None
    balanced_accuracy: float | None
    recall: float | None
    precision: float | None
    false_alarm_rate: float | None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def binary_metrics(truth: Sequence[bool], predicted: Sequence[bool]) -> Metrics:
    """Accuracy, balanced accuracy, recall, precision and FAR = FP / (TN + FP) (thesis 2.7)."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum((not t) and p for t, p in zip(truth, predicted, strict=True))
    tn = sum((not t) and (not p) for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and (not p) for t, p in zip(truth, predicted, strict=True))
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    balanced = None
    if recall is not None and specificity is not None:
        balanced = (recall + specificity) / 2
    else:
        balanced = recall if recall is not None else specificity
    return Metrics(
        n=len(truth),
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=_ratio(tp + tn, len(truth)),
        balanced_accuracy=balanced,
        recall=recall,
        precision=_ratio(tp, tp + fp),
        false_alarm_rate=_ratio(fp, fp + tn),
    )
