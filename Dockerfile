# syntax=docker/dockerfile:1
# Build stage: a wheel with templates, static files, migrations and the pinned htmx (fetched
# from the npm registry by hatch_build.py and checked against its published sha512).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PORTAL_REQUIRE_ASSETS=1
RUN pip install uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock README.md hatch_build.py alembic.ini ./
COPY portal ./portal
COPY plugins ./plugins
COPY templates ./templates
COPY alembic ./alembic
RUN uv export --locked --no-dev --no-emit-project --format requirements-txt > requirements.txt \
    && uv build --wheel --out-dir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 portal
COPY --from=build /src/requirements.txt /tmp/requirements.txt
COPY --from=build /dist /tmp/dist
RUN pip install --no-cache-dir -r /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
    && rm -rf /tmp/dist /tmp/requirements.txt
USER portal
WORKDIR /home/portal
ENV PORTAL_DATABASE_URL=sqlite:////home/portal/data/portal.db
RUN mkdir -p /home/portal/data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# Migrations run before serving; the app refuses to start on an outdated schema anyway.
CMD ["sh", "-c", "portal migrate && exec portal serve --host 0.0.0.0 --port 8000"]
