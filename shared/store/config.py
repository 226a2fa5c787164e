"""Settings: the one place genreflow reads its environment.

:meth:`Settings.from_env` is the only code in the project that reads ``os.environ``. Everything
else receives a :class:`Settings` (or the values it needs) as an argument.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.core.nets import hparams

if TYPE_CHECKING:
    from shared.core.serving.staged import ServingOptions

ACTIVATE_POLICIES = ("if_better", "always", "never")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: ``genreflow prepare`` leaves this file in the uploads and models folders; a one-role command
#: (:mod:`shared.cli.roles`) that does not find it there is not looking at the shared folders,
#: and the retention sweep never removes it.
SHARE_MARKER = ".genreflow-shared"
DEFAULT_RETRAIN_CRON = "0 3 * * 0"
DEFAULT_MAX_UPLOAD_MB = 200
DEFAULT_MAX_DURATION_S = 1800.0
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 6
DEFAULT_WEBHOOK_BACKOFF_S = 30.0
DEFAULT_TRAIN_EPOCHS = hparams.EPOCHS
DEFAULT_UPLOADS_PER_MINUTE = 30
DEFAULT_UPLOAD_MB_PER_HOUR = 2048
DEFAULT_MIN_FREE_MB = 512
DEFAULT_AUDIO_RETENTION_DAYS = 7.0
DEFAULT_RETENTION_SWEEP_S = 3600.0
LOG_FORMATS = ("text", "json")
PREDICT_PATHS = ("fast", "exact")
MUSICNN_PRECISIONS = ("auto", "bf16", "f32")
DEFAULT_MUSICNN_STRIDE = 4  # docs/speed.md: the cost-vs-fidelity table that chose it
WEBHOOK_SECRET_FILE = "webhook_secret"
SECRET_KEY_FILE = "secret_key"
MULTIPART_SLACK_BYTES = 64 * 1024  # room for the multipart envelope around the file itself


@dataclass(frozen=True)
class Settings:
    """Every setting genreflow reads, with the defaults of ``docs/architecture.md``.

    Build one with :meth:`from_env`; tests build one with ``Settings.from_env({...})`` or
    :func:`dataclasses.replace`.

    Attributes
    ----------
    home : Path
        ``GENREFLOW_HOME``, the root of every default path (default ``./var``, made absolute).
    database_url : str
        ``DATABASE_URL`` (default SQLite file ``$GENREFLOW_HOME/genreflow.sqlite3``).
    redis_url : str
        ``REDIS_URL``, the Celery broker.
    upload_dir, model_dir, cache_dir : Path
        Where uploads, model files and cached features live.
    train_data_dir : Path or None
        ``GENREFLOW_TRAIN_DATA_DIR``, a GTZAN-layout folder; ``None`` disables training via API.
    max_upload_mb : int > 0
        Largest accepted upload, in MiB.
    max_duration_s : float > 0
        Longest audio decoded, in seconds.
    webhook_secret : str
        Standard Webhooks signing secret (``whsec_...``).
    retrain_cron : str
        Five-field cron expression for the scheduled retrain check.
    activate_policy : {"if_better", "always", "never"}
        Whether a freshly trained model becomes the active one.
    public_url : str or None
        ``GENREFLOW_PUBLIC_URL``, the externally visible base URL (used for absolute links).
    secret_key : str
        ``GENREFLOW_SECRET_KEY``, Flask's session key (generated and persisted if unset).
    webhook_max_attempts : int > 0
        ``GENREFLOW_WEBHOOK_MAX_ATTEMPTS``, delivery attempts per job event (default 6).
    webhook_backoff_s : float > 0
        ``GENREFLOW_WEBHOOK_BACKOFF_S``, wait after the first failed attempt; it doubles after
        each further one (default 30).
    train_epochs : int > 0
        ``GENREFLOW_TRAIN_EPOCHS``, maximum epochs of a training run started by the service
        (default 60; early stopping may end it sooner).
    redis_url_set : bool
        Whether ``REDIS_URL`` was given (``genreflow run`` starts its own Redis when not).
    private_redis : bool
        ``GENREFLOW_PRIVATE_REDIS=1``: the Redis at ``REDIS_URL`` is the one ``genreflow run``
        started itself (it sets both for its children), so messages name it that way.


    require_keys : bool
        ``GENREFLOW_REQUIRE_KEYS=1``: every API request needs a key, even from loopback
        (admin endpoints always need an admin key).
    webhook_allow_private : bool
        ``GENREFLOW_WEBHOOK_ALLOW_PRIVATE=1``: webhooks may target loopback, link-local and
        private addresses (refused by default).
    uploads_per_minute : int > 0
        ``GENREFLOW_UPLOADS_PER_MINUTE``, uploads per key and per client address (default 30).
    upload_mb_per_hour : int > 0
        ``GENREFLOW_UPLOAD_MB_PER_HOUR``, MiB uploaded per key and per client address
        (default 2048).
    log_format : {"text", "json"}
        ``GENREFLOW_LOG_FORMAT``: plain text lines (default) or one JSON object per line.
    proxy_hops : int >= 0
        ``GENREFLOW_PROXY_HOPS``: how many reverse proxies in front of the web server are
        trusted to set ``X-Forwarded-For`` / ``-Proto`` / ``-Host`` / ``-Port`` (default 0:
        the headers are ignored and the client is the connecting address).
    metrics_token : str or None
        ``GENREFLOW_METRICS_TOKEN``: when set, ``/metrics`` answers only requests carrying
        ``Authorization: Bearer <token>``.
    min_free_mb : int > 0
        ``GENREFLOW_MIN_FREE_MB``: uploads are refused (507) when storing one would leave less
        free space than this where uploads and the database live (default 512).
    audio_retention_days : float > 0
        ``GENREFLOW_AUDIO_RETENTION_DAYS``: uploaded audio is removed this long after its job was
        created, unless a label keeps it as training data (default 7).
    result_retention_days : float > 0 or None
        ``GENREFLOW_RESULT_RETENTION_DAYS``: jobs and their results are removed this long after
        they ended (default ``None``: kept forever).
    retention_sweep_s : float > 0
        ``GENREFLOW_RETENTION_SWEEP_S``: seconds between the workers' retention sweeps
        (default 3600).
    predict_path : {"fast", "exact"}
        ``GENREFLOW_PREDICT_PATH``: how a musicnn model is scored. ``fast`` (default) runs it
        in stages, musicnn on every k-th segment, bf16 where the CPU has it; ``exact`` runs
        the whole graph on every segment in float32 (see docs/speed.md).
    musicnn_stride : int > 0
        ``GENREFLOW_MUSICNN_STRIDE``, k of the fast path (default 4; 1: every segment).
    musicnn_precision : {"auto", "bf16", "f32"}
        ``GENREFLOW_MUSICNN_PRECISION``: musicnn's precision on the fast path; ``auto`` is
        bf16 where the CPU and OpenVINO have it.
    """

    home: Path
    database_url: str
    redis_url: str
    upload_dir: Path
    model_dir: Path
    cache_dir: Path
    train_data_dir: Path | None
    max_upload_mb: int
    max_duration_s: float
    webhook_secret: str
    retrain_cron: str
    activate_policy: str
    public_url: str | None
    secret_key: str
    webhook_max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    webhook_backoff_s: float = DEFAULT_WEBHOOK_BACKOFF_S
    train_epochs: int = DEFAULT_TRAIN_EPOCHS
    redis_url_set: bool = False
    private_redis: bool = False

    require_keys: bool = False
    webhook_allow_private: bool = False
    uploads_per_minute: int = DEFAULT_UPLOADS_PER_MINUTE
    upload_mb_per_hour: int = DEFAULT_UPLOAD_MB_PER_HOUR
    log_format: str = "text"
    proxy_hops: int = 0
    metrics_token: str | None = None
    min_free_mb: int = DEFAULT_MIN_FREE_MB
    audio_retention_days: float = DEFAULT_AUDIO_RETENTION_DAYS
    result_retention_days: float | None = None
    retention_sweep_s: float = DEFAULT_RETENTION_SWEEP_S
    predict_path: str = "fast"
    musicnn_stride: int = DEFAULT_MUSICNN_STRIDE
    musicnn_precision: str = "auto"

    @property
    def min_free_bytes(self) -> int:
        """Free space an upload must leave behind, in bytes."""
        return self.min_free_mb * 1024 * 1024

    def serving_options(self) -> ServingOptions:
        """How the predict worker scores a musicnn model (:mod:`shared.core.serving.staged`)."""
        from shared.core.serving.staged import ServingOptions

        return ServingOptions(
            exact=self.predict_path == "exact",
            musicnn_stride=self.musicnn_stride,
            precision=self.musicnn_precision,
        )

    @property
    def max_upload_bytes(self) -> int:
        """Largest accepted audio file, in bytes."""
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_content_length(self) -> int:
        """Largest accepted request body (the file plus its multipart envelope), in bytes."""
        return self.max_upload_bytes + MULTIPART_SLACK_BYTES

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from an environment mapping.

        Parameters
        ----------
        environ : Mapping[str, str], optional
            The variables to read; ``os.environ`` when omitted.

        Returns
        -------
        Settings
            Paths are absolute. When ``GENREFLOW_WEBHOOK_SECRET`` or ``GENREFLOW_SECRET_KEY``
            is unset, a secret is generated once and persisted under ``$GENREFLOW_HOME``.

        Raises
        ------
        ValueError
            If a numeric setting or ``GENREFLOW_ACTIVATE_POLICY`` has an invalid value.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        home = Path(get("GENREFLOW_HOME") or "./var").expanduser().resolve()

        def path(name: str, default: Path) -> Path:
            value = get(name)
            return Path(value).expanduser().resolve() if value else default

        max_upload_mb = int(
            _parse_number("GENREFLOW_MAX_UPLOAD_MB", get, DEFAULT_MAX_UPLOAD_MB, int)
        )
        max_duration_s = _parse_number(
            "GENREFLOW_MAX_DURATION_S", get, DEFAULT_MAX_DURATION_S, float
        )
        policy = _parse_choice("GENREFLOW_ACTIVATE_POLICY", get, ACTIVATE_POLICIES)
        log_format = _parse_choice("GENREFLOW_LOG_FORMAT", get, LOG_FORMATS)
        predict_path = _parse_choice("GENREFLOW_PREDICT_PATH", get, PREDICT_PATHS)
        precision = _parse_choice("GENREFLOW_MUSICNN_PRECISION", get, MUSICNN_PRECISIONS)
        train_dir = get("GENREFLOW_TRAIN_DATA_DIR")
        public_url = get("GENREFLOW_PUBLIC_URL")
        return cls(
            home=home,
            database_url=get("DATABASE_URL") or f"sqlite:///{home / 'genreflow.sqlite3'}",
            redis_url=get("REDIS_URL") or DEFAULT_REDIS_URL,
            upload_dir=path("GENREFLOW_UPLOAD_DIR", home / "uploads"),
            model_dir=path("GENREFLOW_MODEL_DIR", home / "models"),
            cache_dir=path("GENREFLOW_CACHE_DIR", home / "cache"),
            train_data_dir=Path(train_dir).expanduser().resolve() if train_dir else None,
            max_upload_mb=max_upload_mb,
            max_duration_s=max_duration_s,
            webhook_secret=get("GENREFLOW_WEBHOOK_SECRET")
            or load_or_create_secret(home / WEBHOOK_SECRET_FILE, make_webhook_secret),
            retrain_cron=get("GENREFLOW_RETRAIN_CRON") or DEFAULT_RETRAIN_CRON,
            activate_policy=policy,
            public_url=public_url.rstrip("/") if public_url else None,
            secret_key=get("GENREFLOW_SECRET_KEY")
            or load_or_create_secret(home / SECRET_KEY_FILE, lambda: secrets.token_urlsafe(32)),
            webhook_max_attempts=int(
                _parse_number(
                    "GENREFLOW_WEBHOOK_MAX_ATTEMPTS", get, DEFAULT_WEBHOOK_MAX_ATTEMPTS, int
                )
            ),
            webhook_backoff_s=_parse_number(
                "GENREFLOW_WEBHOOK_BACKOFF_S", get, DEFAULT_WEBHOOK_BACKOFF_S, float
            ),
            train_epochs=int(
                _parse_number("GENREFLOW_TRAIN_EPOCHS", get, DEFAULT_TRAIN_EPOCHS, int)
            ),
            redis_url_set=get("REDIS_URL") is not None,
            private_redis=get("GENREFLOW_PRIVATE_REDIS") == "1",
            require_keys=_parse_flag("GENREFLOW_REQUIRE_KEYS", get),
            webhook_allow_private=_parse_flag("GENREFLOW_WEBHOOK_ALLOW_PRIVATE", get),
            uploads_per_minute=int(
                _parse_number("GENREFLOW_UPLOADS_PER_MINUTE", get, DEFAULT_UPLOADS_PER_MINUTE, int)
            ),
            upload_mb_per_hour=int(
                _parse_number("GENREFLOW_UPLOAD_MB_PER_HOUR", get, DEFAULT_UPLOAD_MB_PER_HOUR, int)
            ),
            log_format=log_format,
            proxy_hops=_parse_count("GENREFLOW_PROXY_HOPS", get),
            metrics_token=get("GENREFLOW_METRICS_TOKEN"),
            min_free_mb=int(_parse_number("GENREFLOW_MIN_FREE_MB", get, DEFAULT_MIN_FREE_MB, int)),
            audio_retention_days=_parse_number(
                "GENREFLOW_AUDIO_RETENTION_DAYS", get, DEFAULT_AUDIO_RETENTION_DAYS, float
            ),
            result_retention_days=(
                _parse_number("GENREFLOW_RESULT_RETENTION_DAYS", get, 1.0, float)
                if get("GENREFLOW_RESULT_RETENTION_DAYS")
                else None
            ),
            retention_sweep_s=_parse_number(
                "GENREFLOW_RETENTION_SWEEP_S", get, DEFAULT_RETENTION_SWEEP_S, float
            ),
            predict_path=predict_path,
            musicnn_stride=int(
                _parse_number("GENREFLOW_MUSICNN_STRIDE", get, DEFAULT_MUSICNN_STRIDE, int)
            ),
            musicnn_precision=precision,
        )

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (see :func:`dataclasses.replace`)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def ensure_dirs(self) -> None:
        """Create the home, upload, model and cache directories if missing."""
        for directory in (self.home, self.upload_dir, self.model_dir, self.cache_dir):
            directory.mkdir(parents=True, exist_ok=True)


def _parse_number(
    name: str,
    get: Callable[[str], str | None],
    default: float,
    kind: Callable[[str], float],
) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be greater than 0")
    return value


def _parse_count(name: str, get: Callable[[str], str | None]) -> int:
    raw = get(name)
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ValueError(f"{name}={raw!r} must be a whole number, 0 or more")
    return int(raw)


def _parse_choice(name: str, get: Callable[[str], str | None], choices: tuple[str, ...]) -> str:
    """Return the lower-cased value of ``name``, one of ``choices`` (the first when unset)."""
    value = (get(name) or choices[0]).lower()
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _parse_flag(name: str, get: Callable[[str], str | None]) -> bool:
    raw = (get(name) or "0").lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={raw!r} is not a flag (use 1 or 0)")


def make_webhook_secret() -> str:
    """Return a new Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def load_or_create_secret(path: Path, factory: Callable[[], str]) -> str:
    """Read a secret from ``path``, creating it once (race-free) with ``factory()`` if absent.

    Parameters
    ----------
    path : Path
        The file holding the secret; its parent is created when missing.
    factory : callable
        Returns a new secret string.

    Returns
    -------
    str
        The persisted secret. Concurrent first starts (web and worker) agree on one value.
    """
    with contextlib.suppress(FileNotFoundError):
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    tmp.write_text(factory() + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)  # atomic, fails if another process won the race
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="utf-8").strip()
