import base64
import re
import threading
from pathlib import Path

import pytest

from shared.store.config import Settings, load_or_create_secret, make_webhook_secret

REPO = Path(__file__).resolve().parents[2]
#: Reading a setting (copying the environment for a child process, or setting a library's
#: variable, is not reading one).
ENV_READ = re.compile(r"os\.getenv\(|environ\.get\(|os\.environ\[[^\]]+\](?!\s*=[^=])")


def test_defaults_follow_the_architecture_table(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env({"GENREFLOW_HOME": str(home)})
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'genreflow.sqlite3'}"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.upload_dir == home / "uploads"
    assert settings.model_dir == home / "models"
    assert settings.cache_dir == home / "cache"
    assert settings.train_data_dir is None
    assert settings.max_upload_mb == 200
    assert settings.max_upload_bytes == 200 * 1024 * 1024
    assert settings.max_content_length > settings.max_upload_bytes
    assert settings.max_duration_s == 1800.0
    assert settings.retrain_cron == "0 3 * * 0"
    assert settings.activate_policy == "if_better"
    assert settings.public_url is None
    assert settings.retention_sweep_s == 3600.0


def test_home_defaults_to_var_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / "var"
    assert (tmp_path / "var" / "webhook_secret").is_file()


def test_every_variable_overrides_its_default(tmp_path: Path) -> None:
    env = {
        "GENREFLOW_HOME": str(tmp_path / "h"),
        "DATABASE_URL": "postgresql://u@db/genreflow",
        "REDIS_URL": "redis://redis:6379/1",
        "GENREFLOW_UPLOAD_DIR": str(tmp_path / "up"),
        "GENREFLOW_MODEL_DIR": str(tmp_path / "models"),
        "GENREFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "GENREFLOW_TRAIN_DATA_DIR": str(tmp_path / "gtzan"),
        "GENREFLOW_MAX_UPLOAD_MB": "5",
        "GENREFLOW_MAX_DURATION_S": "60.5",
        "GENREFLOW_WEBHOOK_SECRET": "whsec_abc",
        "GENREFLOW_RETRAIN_CRON": "*/5 * * * *",
        "GENREFLOW_ACTIVATE_POLICY": "ALWAYS",
        "GENREFLOW_PUBLIC_URL": "https://genre.example/",
        "GENREFLOW_SECRET_KEY": "k",
        "GENREFLOW_RETENTION_SWEEP_S": "60",
    }
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://u@db/genreflow"
    assert settings.redis_url == "redis://redis:6379/1"
    assert settings.upload_dir == tmp_path / "up"
    assert settings.model_dir == tmp_path / "models"
    assert settings.cache_dir == tmp_path / "cache"
    assert settings.train_data_dir == tmp_path / "gtzan"
    assert settings.max_upload_mb == 5
    assert settings.max_duration_s == 60.5
    assert settings.webhook_secret == "whsec_abc"
    assert settings.retrain_cron == "*/5 * * * *"
    assert settings.activate_policy == "always"
    assert settings.public_url == "https://genre.example"
    assert settings.secret_key == "k"
    assert settings.retention_sweep_s == 60.0
    assert not (tmp_path / "h" / "webhook_secret").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GENREFLOW_MAX_UPLOAD_MB", "lots"),
        ("GENREFLOW_MAX_UPLOAD_MB", "0"),
        ("GENREFLOW_MAX_DURATION_S", "-1"),
        ("GENREFLOW_ACTIVATE_POLICY", "sometimes"),
        ("GENREFLOW_RETENTION_SWEEP_S", "0"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({"GENREFLOW_HOME": str(tmp_path), name: value})


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = Settings.from_env({"GENREFLOW_HOME": str(tmp_path)})
    with pytest.raises(AttributeError):
        settings.redis_url = "redis://elsewhere"  # type: ignore[misc]
    assert settings.replace(redis_url="redis://x").redis_url == "redis://x"


def test_webhook_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    first = Settings.from_env({"GENREFLOW_HOME": str(tmp_path)})
    second = Settings.from_env({"GENREFLOW_HOME": str(tmp_path)})
    assert first.webhook_secret == second.webhook_secret
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/=]+", first.webhook_secret)
    assert len(base64.b64decode(first.webhook_secret.removeprefix("whsec_"))) == 24
    stored = tmp_path / "webhook_secret"
    assert stored.read_text().strip() == first.webhook_secret
    assert stored.stat().st_mode & 0o777 == 0o600
    assert first.secret_key == second.secret_key


def test_webhook_secret_works_with_standardwebhooks() -> None:
    from standardwebhooks import Webhook

    Webhook(make_webhook_secret()).sign("msg_1", __import__("datetime").datetime.now(), "{}")


def test_concurrent_first_starts_agree_on_one_secret(tmp_path: Path) -> None:
    path = tmp_path / "webhook_secret"
    results: list[str] = []
    errors: list[BaseException] = []

    def first_start() -> None:
        try:
            results.append(load_or_create_secret(path, make_webhook_secret))
        except BaseException as exc:  # a crashed thread must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=first_start) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 16
    assert len(set(results)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_ensure_dirs_creates_every_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"GENREFLOW_HOME": str(tmp_path / "h")})
    settings.ensure_dirs()
    for directory in (settings.upload_dir, settings.model_dir, settings.cache_dir):
        assert directory.is_dir()


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for package in ("shared", "web", "worker"):
        for path in (REPO / package).rglob("*.py"):
            if path.relative_to(REPO).as_posix() == "shared/store/config.py":
                continue
            text = path.read_text(encoding="utf-8")
            if ENV_READ.search(text):
                offenders.append(path.relative_to(REPO).as_posix())
    assert offenders == [], f"only shared/store/config.py may read the environment: {offenders}"
