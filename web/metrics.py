"""Prometheus metrics at ``/metrics``: the web's requests, plus the service's state read at scrape.

Two sources, one text page (Prometheus text format 0.0.4):

- **Requests** (prometheus-flask-exporter): ``genreflow_http_request_duration_seconds`` (a
  histogram whose ``_count`` is the request count) and ``genreflow_http_request_total``, labelled
  by route (the URL rule, not the raw path), method and status. Under gunicorn with several
  workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``genreflow run`` does) so that they add up.
- **The service** (:class:`ServiceCollector`, read from the database and Redis at scrape time,
  so whatever the workers did shows here without a shared directory): jobs by final status, job
  duration and queue wait histograms, queue depth per queue, the active model version, webhook
  deliveries by outcome, training runs by status and their duration histogram, free disk space
  where data is written (and whether it is below ``GENREFLOW_MIN_FREE_MB``), labels by status, and
  what the retention sweep let go.

Histograms are built from the job and run rows at each scrape (one aggregate query each), so
they cover the whole history in the database and survive restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from flask import Flask, Response
from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from shared.lifecycle.queues import QUEUE_PREDICT, QUEUE_TRAIN, QUEUE_WEBHOOKS
from shared.store.config import Settings
from shared.store.orm import Job, JobStatus, ModelVersion, RunStatus, TrainingRun, WebhookDelivery

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
QUEUES: Final = (QUEUE_PREDICT, QUEUE_TRAIN, QUEUE_WEBHOOKS)
JOB_BUCKETS_S: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TRAIN_BUCKETS_S: Final = (10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0)
FINAL_JOB_STATUSES: Final = (JobStatus.DONE.value, JobStatus.FAILED.value)
FINAL_RUN_STATUSES: Final = (RunStatus.DONE.value, RunStatus.FAILED.value, RunStatus.SKIPPED.value)


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """Return a SQL expression for ``end - start`` in seconds on ``dialect``."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract(literal_column("epoch"), end - start)


def histogram_counts(
    session: Session, seconds: ColumnElement[float], where: Sequence[Any], buckets: Sequence[float]
) -> tuple[list[int], int, float]:
    """Count rows per cumulative bucket of ``seconds``, in one aggregate query.

    Returns
    -------
    tuple of (list of int, int, float)
        The cumulative count at or below each bucket bound, the total count and the sum.
    """
    columns = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in buckets]
    query = select(*columns, func.count(), func.coalesce(func.sum(seconds), 0.0)).where(*where)
    row = session.execute(query).one()
    *cumulative, count, total = row
    return [int(value or 0) for value in cumulative], int(count or 0), float(total or 0.0)


class ServiceCollector:
    """A prometheus_client collector that reads the service's state at scrape time.

    Parameters
    ----------
    sessions : sessionmaker
        Opens a short session per scrape.
    redis_url : str
        The broker, for queue depths.
    """

    def __init__(
        self, sessions: sessionmaker[Session], redis_url: str, settings: Settings | None = None
    ) -> None:
        self._sessions = sessions
        self._redis_url = redis_url
        self._settings = settings

    def describe(self) -> list[Metric]:
        """Describe nothing up front: the metrics are only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Yield every service metric; a source that fails is logged and left out."""
        try:
            with self._sessions() as session:
                yield from self._from_database(session)
        except Exception as exc:
            log.warning("metrics: the database could not be read: %s", exc)
        yield from self._queue_depths()
        if self._settings is not None:
            from web.metrics_keeping import disk_metrics

            yield from disk_metrics(self._settings)

    def _from_database(self, session: Session) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        dialect = session.get_bind().dialect.name
        yield self._status_counter(
            session, "genreflow_jobs", "Jobs that ended, by final status",
            Job.status, FINAL_JOB_STATUSES,
        )  # fmt: skip

        ended = (Job.status.in_(FINAL_JOB_STATUSES), Job.started_at.is_not(None))
        yield self._histogram(
            session,
            "genreflow_job_duration_seconds",
            "Time from a job's start to its end",
            seconds_between(dialect, Job.started_at, Job.finished_at),
            (*ended, Job.finished_at.is_not(None)),
            JOB_BUCKETS_S,
        )
        yield self._histogram(
            session,
            "genreflow_job_queue_wait_seconds",
            "Time a job waited in the queue before a worker started it",
            seconds_between(dialect, Job.created_at, Job.started_at),
            (Job.started_at.is_not(None),),
            JOB_BUCKETS_S,
        )

        active = GaugeMetricFamily(
            "genreflow_active_model",
            "The active model version (1 for the active one)",
            labels=["version"],
        )
        version = session.scalars(select(ModelVersion.version).where(ModelVersion.active)).first()
        if version is not None:
            active.add_metric([version], 1)
        yield active

        deliveries = CounterMetricFamily(
            "genreflow_webhook_deliveries",
            "Webhook delivery attempts by outcome",
            labels=["outcome"],
        )
        outcome = case(
            (WebhookDelivery.succeeded.is_(True), "delivered"),
            (WebhookDelivery.error.like("refused:%"), "refused"),
            else_="failed",
        )
        by_outcome = dict(session.execute(select(outcome, func.count()).group_by(outcome)).all())
        for name in ("delivered", "failed", "refused"):
            deliveries.add_metric([name], by_outcome.get(name, 0))
        yield deliveries

        yield self._status_counter(
            session, "genreflow_training_runs", "Training runs that ended, by status",
            TrainingRun.status, FINAL_RUN_STATUSES,
        )  # fmt: skip
        yield self._histogram(
            session,
            "genreflow_training_duration_seconds",
            "Time a training run took (done or failed)",
            seconds_between(dialect, TrainingRun.started_at, TrainingRun.finished_at),
            (
                TrainingRun.status.in_((RunStatus.DONE.value, RunStatus.FAILED.value)),
                TrainingRun.started_at.is_not(None),
                TrainingRun.finished_at.is_not(None),
            ),
            TRAIN_BUCKETS_S,
        )
        from web.metrics_keeping import keeping_metrics

        yield from keeping_metrics(session)

    @staticmethod
    def _status_counter(
        session: Session,
        name: str,
        documentation: str,
        status: ColumnElement[str],
        statuses: Sequence[str],
    ) -> Metric:
        """Count the rows in each of ``statuses`` (every one listed, zero included)."""
        from prometheus_client.core import CounterMetricFamily

        counter = CounterMetricFamily(name, documentation, labels=["status"])
        counts = dict(
            session.execute(
                select(status, func.count()).where(status.in_(statuses)).group_by(status)
            ).all()
        )
        for value in statuses:
            counter.add_metric([value], counts.get(value, 0))
        return counter

    @staticmethod
    def _histogram(
        session: Session,
        name: str,
        documentation: str,
        seconds: ColumnElement[float],
        where: Sequence[Any],
        buckets: Sequence[float],
    ) -> Metric:
        from prometheus_client.core import HistogramMetricFamily

        cumulative, count, total = histogram_counts(session, seconds, where, buckets)
        pairs = [(repr(float(bound)), n) for bound, n in zip(buckets, cumulative, strict=True)]
        pairs.append(("+Inf", count))
        return HistogramMetricFamily(name, documentation, buckets=pairs, sum_value=total)

    def _queue_depths(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily
        from redis import Redis
        from redis.exceptions import RedisError

        depth = GaugeMetricFamily(
            "genreflow_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
        )
        client = Redis.from_url(self._redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            for queue in QUEUES:
                depth.add_metric([queue], client.llen(queue))
        except RedisError as exc:
            log.warning("metrics: the broker could not be read: %s", exc)
            return
        finally:
            client.close()
        yield depth


def check_metrics_token(token: str) -> None:
    """Refuse a scrape that does not carry ``Authorization: Bearer <token>``.

    Raises
    ------
    Unauthorized
        401 with ``WWW-Authenticate: Bearer``, whatever was wrong (missing or another token).
    """
    import hmac

    from flask import request

    from shared.errors import Unauthorized

    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise Unauthorized(
            "/metrics needs the metrics token (GENREFLOW_METRICS_TOKEN) as "
            "'Authorization: Bearer <token>'."
        )


def init_app(app: Flask, settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Count the app's requests and serve ``/metrics`` (requests + :class:`ServiceCollector`)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_flask_exporter import PrometheusMetrics

    requests_registry = CollectorRegistry(auto_describe=True)
    exporter = PrometheusMetrics(
        app,
        path=None,
        registry=requests_registry,
        group_by="url_rule",
        defaults_prefix="genreflow",
        excluded_paths=[f"^{METRICS_PATH}$", "^/static/"],
    )
    service_registry = CollectorRegistry(auto_describe=False)
    service_registry.register(ServiceCollector(sessions, settings.redis_url, settings))  # type: ignore[arg-type]

    def serve_metrics() -> Response:
        """Answer Prometheus' scrape (with ``GENREFLOW_METRICS_TOKEN`` set: only with it)."""
        if settings.metrics_token is not None:
            check_metrics_token(settings.metrics_token)
        text, _content_type = exporter.generate_metrics()
        body = (text if isinstance(text, bytes) else text.encode()) + generate_latest(
            service_registry
        )
        return Response(body, content_type=CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, "metrics", app.doc(hide=True)(serve_metrics), methods=["GET"])  # type: ignore[attr-defined]
