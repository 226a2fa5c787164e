"""The soak benchmark's verdict: the whole history of a run, checked after it drained.

Pure functions over what ``benchmarks/soak.py`` wrote down while it ran: the client's log (one
record per upload attempt), the webhook receiver's log (one record per delivery), the database
as sampled every few seconds (every job's latest row, so retention may delete a job after it was
seen ended) and the process, Redis and disk samples. Nothing here talks to the service, so the
checks can be tested on the files a real run leaves behind.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

FINAL: Final = frozenset({"done", "failed"})
ACCEPTED: Final = frozenset({200, 202})
#: Refusals genreflow documents for a service under a fault: broker or web down, disk low.
DOCUMENTED_REFUSALS: Final = frozenset({503, 507})
#: What a bad file may be answered at the door (unsupported, unreadable, empty).
BAD_FILE_REFUSALS: Final = frozenset({400, 413, 415, 422})
#: The code of a 503's job row, which genreflow keeps (failed) when the broker is down.
QUEUE_UNAVAILABLE: Final = "queue_unavailable"
#: A process's first minutes (start-up, model loading) are left out of its growth fit.
SETTLE_S: Final = 600.0


@dataclass
class Verdict:
    """The counts the issue asks for, and what they are made of."""

    accepted: int = 0
    lost: int = 0
    duplicates: int = 0
    stuck: int = 0
    undelivered: int = 0
    done: int = 0
    failed_good: int = 0
    failed_bad: int = 0
    bad_refused: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    undocumented_refusals: int = 0
    refused_rows: int = 0
    undocumented_rows: int = 0
    orphan_rows: int = 0
    deliveries: int = 0
    duplicate_deliveries: int = 0
    id_mismatches: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Whether the run meets the issue's goal for the history."""
        return not (
            self.lost or self.duplicates or self.stuck or self.undelivered or self.failed_good
            or self.undocumented_refusals or self.undocumented_rows or self.id_mismatches
        )  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        return {**asdict(self), "clean": self.clean}


def accepted_uploads(client_log: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return the accepted attempts by job id (the answer 200 or 202 named the job)."""
    return {rec["id"]: rec for rec in client_log if rec.get("status") in ACCEPTED and rec.get("id")}


def check_history(
    client_log: list[dict[str, Any]],
    receiver_log: list[dict[str, Any]],
    jobs: dict[str, dict[str, Any]],
    done_lines: Mapping[str, int],
) -> Verdict:
    """Check every accepted upload, every refusal, every job row and every webhook.

    Parameters
    ----------
    client_log : list of dict
        One record per upload attempt: ``song``, ``bad`` (a deliberately bad file), ``status``
        (HTTP status, 0 when no answer came), ``id`` and ``code`` from the answer.
    receiver_log : list of dict
        One record per delivery: ``webhook_id``, ``type``, ``job_id``, ``answer`` (the status
        the receiver sent, 0 when it let the request time out).
    jobs : dict of str to dict
        Every job row ever seen, by id: ``status``, ``error_code``, ``n_results`` (the most
        result rows seen at once) and ``gone`` (deleted since, by retention).
    done_lines : mapping of str to int
        How often the predict workers' logs say ``job <id> done``.

    Returns
    -------
    Verdict
    """
    verdict = Verdict()
    examples: dict[str, list[str]] = defaultdict(list)
    accepted = accepted_uploads(client_log)
    verdict.accepted = len(accepted)
    for job_id, rec in accepted.items():
        row = jobs.get(job_id)
        if row is None or (row.get("gone") and row["status"] not in FINAL):
            verdict.lost += 1
            examples["lost"].append(job_id)
        elif row["status"] not in FINAL:
            verdict.stuck += 1
            examples["stuck"].append(f"{job_id} {row['status']}")
        elif row["status"] == "done":
            verdict.done += 1
        elif rec.get("bad"):
            verdict.failed_bad += 1
        else:
            verdict.failed_good += 1
            examples["failed_good"].append(f"{job_id} {row.get('error_code')}")
        if row is not None and (row.get("n_results", 0) > 1 or done_lines.get(job_id, 0) > 1):
            verdict.duplicates += 1
            examples["duplicates"].append(job_id)

    refused: Counter[str] = Counter()
    refused_ids = set()
    for rec in client_log:
        status = rec.get("status", 0)
        if status in ACCEPTED:
            continue
        refused[str(status)] += 1
        if rec.get("bad") and status in BAD_FILE_REFUSALS:
            verdict.bad_refused += 1
        elif status not in DOCUMENTED_REFUSALS and status != 0:
            verdict.undocumented_refusals += 1
            examples["undocumented_refusals"].append(f"{rec.get('song')} {status}")
        if rec.get("id"):
            refused_ids.add(rec["id"])
    verdict.refused = dict(sorted(refused.items()))
    for job_id, row in jobs.items():
        if job_id in accepted:
            continue
        if job_id in refused_ids:
            verdict.refused_rows += 1
            if row["status"] != "failed" or row.get("error_code") != QUEUE_UNAVAILABLE:
                verdict.undocumented_rows += 1
                examples["undocumented_rows"].append(f"{job_id} {row['status']}")
        else:
            verdict.orphan_rows += 1  # an upload whose answer never reached the client
            examples["orphan_rows"].append(f"{job_id} {row['status']}")

    by_event: dict[tuple[str, str], set[str]] = defaultdict(set)
    delivered: set[tuple[str, str]] = set()
    per_id: Counter[str] = Counter()
    for rec in receiver_log:
        key = (rec["job_id"], rec["type"])
        by_event[key].add(rec["webhook_id"])
        per_id[rec["webhook_id"]] += 1
        if 200 <= rec.get("answer", 0) < 300:
            delivered.add(key)
    verdict.deliveries = len(receiver_log)
    verdict.duplicate_deliveries = sum(n - 1 for n in per_id.values() if n > 1)
    verdict.id_mismatches = sum(1 for ids in by_event.values() if len(ids) > 1)
    for job_id in accepted:
        row = jobs.get(job_id)
        if row is None or row["status"] not in FINAL:
            continue
        event = "job.completed" if row["status"] == "done" else "job.failed"
        if (job_id, event) not in delivered:
            verdict.undelivered += 1
            examples["undelivered"].append(f"{job_id} {event}")
    verdict.examples = {k: v[:5] for k, v in examples.items()}
    return verdict


# --- over time --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Return the ``q``-th percentile (nearest rank) of ``values`` (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def windows(
    client_log: list[dict[str, Any]],
    jobs: dict[str, dict[str, Any]],
    queue_samples: list[dict[str, Any]],
    faults: list[dict[str, Any]],
    *,
    t0: float,
    end: float,
    width_s: float = 300.0,
) -> list[dict[str, Any]]:
    """Cut the run into windows of ``width_s``: throughput, latency, queue depth, faults.

    A job's latency runs from the start of its accepted upload to its ``finished_at``; a job
    counts in the window its upload was accepted in. Bad files are left out of the latency.
    Times are seconds since the epoch; ``t0`` is the first arrival.
    """
    n = max(1, math.ceil((end - t0) / width_s))
    out = [
        {"start_min": i * width_s / 60, "accepted": 0, "finished": 0, "latencies": [],
         "queue": [], "faults": []}
        for i in range(n)
    ]  # fmt: skip

    def slot(t: float) -> dict[str, Any] | None:
        i = int((t - t0) // width_s)
        return out[i] if 0 <= i < n else None

    for job_id, rec in accepted_uploads(client_log).items():
        window = slot(rec["t0"])
        row = jobs.get(job_id)
        if window is not None:
            window["accepted"] += 1
        if row is None or row.get("finished") is None:
            continue
        if (ended := slot(row["finished"])) is not None:
            ended["finished"] += 1
        if window is not None and not rec.get("bad") and row["status"] == "done":
            window["latencies"].append(row["finished"] - rec["t0"])
    for sample in queue_samples:
        if (window := slot(sample["t"])) is not None:
            window["queue"].append(sample["depth"])
    for fault in faults:
        if (window := slot(fault["t"])) is not None:
            window["faults"].append(fault["fault"])
    for window in out:
        lat, queue = window.pop("latencies"), window.pop("queue")
        window.update(
            per_min=window["finished"] / (width_s / 60),
            p50_s=percentile(lat, 50),
            p99_s=percentile(lat, 99),
            queue_mean=sum(queue) / len(queue) if queue else math.nan,
            queue_max=max(queue) if queue else math.nan,
        )
    return out


def p99_drift(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the last window's p99 against the first window without a fault (and the ratio)."""
    calm = [r for r in rows if not r["faults"] and not math.isnan(r["p99_s"])]
    if not calm or math.isnan(rows[-1]["p99_s"]):
        return {"first_calm_p99_s": None, "last_p99_s": None, "ratio": None}
    first, last = calm[0]["p99_s"], rows[-1]["p99_s"]
    return {"first_calm_p99_s": first, "last_p99_s": last, "ratio": last / first}


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of ``(t seconds, value)`` points, per hour."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


def median_slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Return the Theil-Sen slope (median of pairwise slopes) per hour.

    A brief peak (a song in flight) does not move it as it moves a least-squares fit over a
    process's short life.
    """
    slopes = sorted(
        (v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points)
        for t2, v2 in points[i + 1 :] if t2 > t1
    )  # fmt: skip
    return slopes[len(slopes) // 2] * 3600 if slopes else 0.0


def growth(
    samples: list[dict[str, Any]], *, settle_s: float = SETTLE_S, min_span_s: float = 600.0
) -> dict[str, dict[str, Any]]:
    """Fit RSS and open files against time per process, after its first ``settle_s``.

    ``samples`` are ``{"t", "pid", "label", "rss_mb", "fds"}``. A process that lived less than
    ``settle_s + min_span_s`` gets no fit (a fault restarted it, or it came late). Per label the
    longest-lived process is reported.
    """
    by_pid: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:
        by_pid[sample["pid"]].append(sample)
    fits: dict[str, dict[str, Any]] = {}
    for pid, series in by_pid.items():
        series.sort(key=lambda s: s["t"])
        label, born = series[0]["label"], series[0]["t"]
        later = [s for s in series if s["t"] >= born + settle_s]
        span = later[-1]["t"] - later[0]["t"] if later else 0.0
        fit: dict[str, Any] = {"pid": pid, "lived_min": (series[-1]["t"] - born) / 60,
                               "rss_first_mb": series[0]["rss_mb"],
                               "rss_last_mb": series[-1]["rss_mb"],
                               "rss_mb_per_h": None, "rss_median_mb_per_h": None,
                               "fds_per_h": None,
                               "fds_last": series[-1]["fds"]}  # fmt: skip
        fit["rss_settled_mb"] = later[0]["rss_mb"] if later else None
        if span >= min_span_s and len(later) >= 3:
            fit["rss_mb_per_h"] = slope_per_hour([(s["t"], s["rss_mb"]) for s in later])
            fit["rss_median_mb_per_h"] = median_slope_per_hour(
                [(s["t"], s["rss_mb"]) for s in later]
            )
            fit["fds_per_h"] = slope_per_hour([(s["t"], s["fds"]) for s in later])
        best = fits.get(label)
        if best is None or fit["lived_min"] > best["lived_min"]:
            fits[label] = fit
    return dict(sorted(fits.items()))


def flat(samples: list[dict[str, Any]], key: str, *, after_s: float) -> dict[str, Any]:
    """Say whether ``key`` stopped growing: its fitted growth per hour after ``after_s``."""
    points = [(s["t"], s[key]) for s in samples if s.get(key) is not None]
    if not points:
        return {"first": None, "last": None, "max": None, "per_h": None}
    start = points[0][0] + after_s
    later = [p for p in points if p[0] >= start]
    return {
        "first": points[0][1],
        "last": points[-1][1],
        "max": max(v for _, v in points),
        "per_h": slope_per_hour(later) if len(later) >= 3 else None,
    }
