"""The ``/metrics`` of what genreflow keeps: free disk space, labels, and expired data.

Read at scrape time by :class:`web.metrics.ServiceCollector`:

- ``genreflow_disk_free_bytes{path}`` and ``genreflow_disk_low{path}`` (1 while less than
  ``GENREFLOW_MIN_FREE_MB`` is free, when uploads are answered 507);
- ``genreflow_labels{status}``: users' labels, pending, approved and rejected;
- ``genreflow_retention_audio_expired``, ``genreflow_retention_files_removed``,
  ``genreflow_retention_results_expired`` and ``genreflow_retention_freed_bytes``: totals over
  every retention sweep, and ``genreflow_retention_last_sweep_timestamp_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.store.config import Settings
from shared.store.disk import disk_spaces
from shared.store.orm import JobLabel, LabelStatus, RetentionSweep

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)


def disk_metrics(settings: Settings) -> Iterator[Metric]:
    """Yield free bytes and the low-disk flag of every filesystem genreflow writes data to."""
    from prometheus_client.core import GaugeMetricFamily

    free = GaugeMetricFamily(
        "genreflow_disk_free_bytes", "Free bytes where genreflow writes data", labels=["path"]
    )
    low = GaugeMetricFamily(
        "genreflow_disk_low",
        "1 while less than GENREFLOW_MIN_FREE_MB is free (uploads answer 507)",
        labels=["path"],
    )
    try:
        spaces = disk_spaces(settings)
    except OSError as exc:
        log.warning("metrics: free disk space could not be measured: %s", exc)
        return
    for space in spaces:
        free.add_metric([str(space.path)], space.free_bytes)
        low.add_metric([str(space.path)], 1 if space.low else 0)
    yield free
    yield low


def keeping_metrics(session: Session) -> Iterator[Metric]:
    """Yield labels by status and the retention sweeps' totals."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    labels = GaugeMetricFamily("genreflow_labels", "Users' labels by status", labels=["status"])
    counts = dict(
        session.execute(select(JobLabel.status, func.count()).group_by(JobLabel.status)).all()
    )
    for status in LabelStatus:
        labels.add_metric([status.value], counts.get(status.value, 0))
    yield labels

    totals = session.execute(
        select(
            func.coalesce(func.sum(RetentionSweep.n_audio_expired), 0),
            func.coalesce(func.sum(RetentionSweep.n_files_removed), 0),
            func.coalesce(func.sum(RetentionSweep.n_results_expired), 0),
            func.coalesce(func.sum(RetentionSweep.bytes_freed), 0),
            func.max(RetentionSweep.started_at),
        )
    ).one()
    for (name, documentation), value in zip(
        (
            ("genreflow_retention_audio_expired", "Jobs whose audio passed its retention"),
            ("genreflow_retention_files_removed", "Audio files the retention sweep removed"),
            ("genreflow_retention_results_expired", "Jobs removed when their result expired"),
            ("genreflow_retention_freed_bytes", "Bytes of audio the retention sweep freed"),
        ),
        totals[:4],
        strict=True,
    ):
        yield CounterMetricFamily(name, documentation, value=int(value))
    if totals[4] is not None:
        yield GaugeMetricFamily(
            "genreflow_retention_last_sweep_timestamp_seconds",
            "When the retention sweep last ran (Unix time)",
            value=totals[4].timestamp(),
        )
