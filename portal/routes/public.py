"""Pages anyone may see, and health checks."""

from __future__ import annotations

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.db import transaction
from portal.migrations import SchemaNotCurrent, check_current
from portal.models import Practice
from portal.runtime import runtime
from portal.templating import render


async def home(request: Request) -> Response:
    rt = runtime(request)

    def work() -> Practice | None:
        with transaction(rt.engine, read_only=True) as db:
            return db.get(Practice, 1)

    return render(request, "public/home.html", {"practice": await run_in_threadpool(work)})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    rt = runtime(request)

    def work() -> str | None:
        try:
            with rt.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            if not rt.schema_checked:
                check_current(rt.settings, rt.engine)  # once: it reads every migration script
                rt.schema_checked = True
        except SchemaNotCurrent:
            return "database schema is not current"
        except Exception as exc:  # the answer is "not ready", whatever broke
            return f"database unavailable ({type(exc).__name__})"
        return None

    problem = await run_in_threadpool(work)
    if problem:
        return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
    return JSONResponse({"status": "ready"})


routes = [
    Route("/", home, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
