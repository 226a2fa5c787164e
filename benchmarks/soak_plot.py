"""The soak benchmark's picture: throughput and p99 per window, RSS per process, faults marked."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def draw(
    path: Path,
    rows: list[dict[str, Any]],
    processes: list[dict[str, Any]],
    faults: list[dict[str, Any]],
    *,
    t0: float,
    title: str,
) -> Path:
    """Draw two panels sharing the time axis (minutes) and save them as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    mids = [r["start_min"] + 2.5 for r in rows]
    top.bar(mids, [r["per_min"] for r in rows], width=4, color="#9ecae1", label="finished/min")
    top.set_ylabel("songs finished per minute")
    right = top.twinx()
    right.plot(mids, [r["p99_s"] for r in rows], "o-", color="#d62728", label="p99 latency")
    right.plot(mids, [r["p50_s"] for r in rows], "s--", color="#ff9896", label="p50 latency")
    right.set_ylabel("upload → result (s)")
    right.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=7)
    series: dict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for s in processes:
        series[(s["label"], s["pid"])].append(((s["t"] - t0) / 60, s["rss_mb"]))
    colours: dict[str, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, _pid), points in sorted(series.items()):
        colour = colours.setdefault(name, cycle[len(colours) % len(cycle)])
        points.sort()
        bottom.plot([p[0] for p in points], [p[1] for p in points], color=colour,
                    label=name if name not in bottom.get_legend_handles_labels()[1] else None,
                    linewidth=1)  # fmt: skip
    bottom.set_ylabel("RSS (MiB)")
    bottom.set_xlabel("minutes since the first arrival")
    bottom.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    for fault in faults:
        for axis in (top, bottom):
            axis.axvline(fault["at_min"], color="grey", linestyle=":", linewidth=1)
        top.annotate(fault["fault"], (fault["at_min"], 0), rotation=90, fontsize=7,
                     xytext=(2, 4), textcoords="offset points", va="bottom")  # fmt: skip
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
