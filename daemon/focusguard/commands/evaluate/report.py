"""What `focusguard eval` reports: the table, and the verdict timeline plot of a clip."""


from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from focusguard.commands.evaluate.run import Row

# --------------------------------------------------------------------------- output


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def table(rows: Sequence[Row]) -> str:
    """A Markdown table, one line per detector."""
    lines = [
        "| detector | n | accuracy % | balanced acc. % | recall % | precision % | FAR % | TP/FP/TN/FN | ms/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row.summary()
        ms = "–" if s["ms_per_frame_median"] is None else f"{s['ms_per_frame_median']:.1f}"
        lines.append(
            f"| {row.name} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['balanced_accuracy'])} | {_pct(s['recall'])} "
            f"| {_pct(s['precision'])} | {_pct(s['false_alarm_rate'])} | {s['tp']}/{s['fp']}/{s['tn']}/{s['fn']} "
            f"| {ms} |"
        )
    return "\n".join(lines)


def plot_clip(
    out: Path, rows: Sequence[Row], times: Sequence[float], ranges: Sequence[tuple[float, float, bool]], title: str
) -> None:
    """Score and threshold per detector over time, labelled blur shaded, blurry verdicts and focus=lost marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 2.4 * len(rows) + 0.6), sharex=True, squeeze=False)
    for ax, row in zip(axes[:, 0], rows, strict=True):
        for start, end, blurry in ranges:
            if blurry:
                ax.axvspan(start, end, color="tab:red", alpha=0.12, lw=0)
        ax.plot(times, row.scores, color="tab:blue", lw=1.2, label="score")
        thr = [np.nan if v is None else v for v in row.thresholds]
        if not all(np.isnan(thr)):
            ax.plot(times, thr, color="tab:orange", lw=1, ls="--", label="threshold")
        hits = [(t, s) for t, s, p in zip(times, row.scores, row.verdicts, strict=True) if p]
        if hits:
            ax.scatter(*zip(*hits, strict=True), s=8, color="tab:red", zorder=3, label="verdict blurry")
        lost = [t for t, f in zip(times, row.focus, strict=True) if f == "lost"]
        if lost:
            low = min(row.scores) if row.scores else 0
            ax.scatter(lost, [low] * len(lost), marker="s", s=10, color="black", label="focus lost (debounced)")
        ax.set_ylabel(row.name)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("clip time (s); shaded: labelled blurry")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
