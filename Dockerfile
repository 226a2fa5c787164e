# genreflow: one image for every service (web, predict worker, trainer, beat, migrate).
# ffmpeg is not installed: the imageio-ffmpeg wheel ships its own binary.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GENREFLOW_HOME=/data

WORKDIR /app

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN mkdir -p shared web worker \
    && touch README.md shared/__init__.py web/__init__.py worker/__init__.py \
    && pip install . \
    && pip uninstall -y genreflow \
    && rm -rf shared web worker README.md build *.egg-info

# The code, installed in place so alembic.ini and migrations/ stay beside shared/.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 1000 genreflow \
    && mkdir -p /data \
    && chown genreflow:genreflow /data

USER genreflow
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"

# The web server; compose overrides the command for workers, beat and the migrate step.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--timeout", "300", \
     "--access-logfile", "-", "web:create_app()"]
