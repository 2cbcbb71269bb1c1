# syntax=docker/dockerfile:1
# Build: the locked environment without dev tools, in /app/.venv, with the project installed
# into it as a wheel (templates, static files, migrations). Building that wheel runs
# hatch_build.py, which fetches htmx and the receipt fonts from the npm registry and checks
# their sha512; PORTAL_REQUIRE_ASSETS=1 makes a failed fetch fail the build.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PORTAL_REQUIRE_ASSETS=1
RUN pip install uv==0.13.8
WORKDIR /src
# Dependencies first, in a layer of their own: a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
COPY README.md hatch_build.py alembic.ini ./
COPY alembic ./alembic
COPY templates ./templates
COPY plugins ./plugins
COPY portal ./portal
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

# Run: the same Python, the environment and the start script; no compiler, no uv, no source.
FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 portal \
    && useradd --create-home --uid 10001 --gid portal portal \
    && install --directory --owner=portal --group=portal /var/lib/portal /var/lib/portal/exports
COPY --from=build /app/.venv /app/.venv
COPY --chmod=0755 docker/start.sh /app/start.sh
# SQLite in /var/lib/portal by default (mount a volume there); compose.yaml uses PostgreSQL.
# A volume mounted on /var/lib/portal/exports starts out owned by portal, as the folder is.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORTAL_DATABASE_URL=sqlite:////var/lib/portal/portal.db \
    PORT=8000 \
    WEB_CONCURRENCY=1
USER 10001:10001
WORKDIR /var/lib/portal
EXPOSE 8000
# /healthz: is the process serving? (The slim image has no curl; urlopen fails on non-2xx.)
# Not /readyz: a database outage must not get healthy app containers replaced.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
# Migrations run before serving (docker/start.sh); serve refuses an outdated schema anyway.
CMD ["/app/start.sh"]
