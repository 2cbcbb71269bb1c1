"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from portal import changes, migrations, unavailable
from portal.api import routes as api_routes
from portal.api.problems import ApiProblem, handle_problem
from portal.db import make_engine
from portal.fhir import outcome as fhir_outcome
from portal.fhir import routes as fhir_routes
from portal.fhir.bulk import routes as bulk_routes
from portal.fhir.bulk.worker import ExportLoop
from portal.mail_templates import MailRenderer
from portal.mailer import DeliveryLoop
from portal.middleware.access_log import AccessLogMiddleware
from portal.middleware.api_rate_limit import ApiRateLimitMiddleware
from portal.middleware.csrf import CSRFMiddleware
from portal.middleware.security_headers import SecurityHeadersMiddleware
from portal.plugins import collect_steps, get_plugin_manager
from portal.resources import static_dir
from portal.routes import (
    links,
    onboarding,
    public,
    staff_actions,
    staff_admin,
    staff_auth,
    staff_clients,
    staff_mrn,
)
from portal.routing import IndexedRouter
from portal.runtime import Runtime
from portal.settings import Settings
from portal.staff.access import Forbidden, NotSignedIn, SecondFactorRequired
from portal.templating import make_templates, render
from portal.tokens import Tokens
from portal.webhooks.delivery import WebhookLoop
from portal.wizard import Wizard

log = logging.getLogger("portal")


def build_runtime(settings: Settings) -> Runtime:
    """Everything the app and the command line share; opens no connection yet."""
    pm = get_plugin_manager(settings)
    pm.hook.portal_models()
    changes.install(
        [*changes.HOST_SOURCES, *(s for group in pm.hook.portal_change_sources() for s in group)]
    )
    plugin_dirs = [d for group in pm.hook.portal_template_dirs() for d in group]
    templates = make_templates(plugin_dirs)
    return Runtime(
        settings=settings,
        engine=make_engine(settings),
        pm=pm,
        wizard=Wizard(collect_steps(pm, settings)),
        templates=templates,
        tokens=Tokens(settings.key_list),
        mail=MailRenderer(templates.env),
        api_sections=[s for group in pm.hook.portal_api_sections(settings=settings) for s in group],
    )


def create_app(
    settings: Settings, *, extra_routes: list[BaseRoute] | None = None, freeze_heap: bool = False
) -> Starlette:
    """The portal. `freeze_heap`: a server process (one app for its whole life) moves what
    startup loaded out of the garbage collector's reach; tests, which build many apps, don't.
    """
    rt = build_runtime(settings)
    plugin_routes = [r for group in rt.pm.hook.portal_routes(settings=settings) for r in group]
    routes: list[BaseRoute] = [
        *plugin_routes,
        *(extra_routes or []),
        # Before the FHIR facade's routes: its Patient/{id} would take "Patient/$export".
        *bulk_routes.routes,
        *links.routes,
        *staff_auth.routes,
        *staff_clients.routes,
        *staff_mrn.routes,
        *staff_actions.routes,
        *staff_admin.routes,
        *api_routes.routes,
        *fhir_routes.routes,
        *onboarding.routes,
        *public.routes,
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.check_schema:
            migrations.check_current(settings, rt.engine)
            rt.schema_checked = True
        task = None
        hooks = hooks_task = None
        if settings.mail_in_process:
            rt.delivery = DeliveryLoop(rt.engine, settings)
            task = asyncio.create_task(rt.delivery.run())
            hooks = WebhookLoop(rt.engine, settings)
            hooks_task = asyncio.create_task(hooks.run())
        exports = exports_task = None
        if settings.export_in_process:
            exports = app.state.export_loop = ExportLoop(rt)
            exports_task = asyncio.create_task(exports.run())
        if freeze_heap:
            # Everything loaded so far (modules, models, templates, FHIR classes: ~170,000
            # objects) lives as long as the process. Frozen, the cyclic collector stops
            # walking it on every full collection: a page of 500 API records took 130-330 ms
            # (whenever a full collection fell in it), frozen a steady 125 ms.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if exports is not None and exports_task is not None:
                exports.stop()  # a running export stops after its batch and is requeued
                await exports_task
            if rt.delivery is not None and task is not None:
                rt.delivery.stop()
                await task
            if hooks is not None and hooks_task is not None:
                hooks.stop()
                await hooks_task
            rt.engine.dispose()

    app = PortalApp(
        hsts=settings.secure_cookies,
        routes=routes,
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(ApiRateLimitMiddleware, per_minute=settings.api_rate_per_minute),
            Middleware(
                CSRFMiddleware,
                secure=settings.secure_cookies,
                max_body=settings.max_form_bytes,
                max_upload=settings.max_upload_bytes,
            ),
        ],
        exception_handlers={
            404: not_found,
            405: not_found,
            500: server_error,
            NotSignedIn: staff_sign_in,
            Forbidden: staff_forbidden,
            SecondFactorRequired: staff_second_factor,
            ApiProblem: handle_problem,
            fhir_outcome.FhirError: fhir_outcome.handle_fhir_error,
            # The database unreachable or locked: 503 "try again shortly", not a 500.
            **{cls: unavailable.handle for cls in unavailable.HANDLED},
        },
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.templates = rt.templates
    return app


class PortalApp(Starlette):
    def __init__(self, *, hsts: bool, **kwargs: Any) -> None:
        self.hsts = hsts
        super().__init__(**kwargs)
        # The same routes, found by first path segment (see portal/routing.py).
        self.router = IndexedRouter(self.router.routes, lifespan=self.router.lifespan_context)

    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware (which user middleware sits within), so
        # the 500 page carries the security headers too.
        return SecurityHeadersMiddleware(super().build_middleware_stack(), hsts=self.hsts)


async def not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    if request.url.path.startswith("/api/"):
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return api_routes.not_found_problem(request, status, headers)
    if fhir_outcome.is_fhir_path(request.url.path):
        return fhir_outcome.unmatched(request, exc)
    return render(request, "errors/not_found.html", {}, status_code=status)


async def staff_sign_in(request: Request, exc: Exception) -> Response:
    target = quote(request.url.path) if request.method == "GET" else "/staff/"
    return RedirectResponse(f"/staff/login?next={target}", status_code=303)


async def staff_forbidden(request: Request, exc: Exception) -> Response:
    return render(request, "staff/forbidden.html", {}, status_code=403)


async def staff_second_factor(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/staff/account?setup=1", status_code=303)


async def server_error(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log (no request data in it); the person sees a calm page.
    log.error("unhandled error on %s %s", request.method, request.url.path.split("/")[1])
    if fhir_outcome.is_fhir_path(request.url.path):
        return await fhir_outcome.handle_fhir_error(request, exc)
    if request.url.path.startswith("/api/"):
        return await handle_problem(request, exc)  # problem+json, as every API error
    return render(request, "errors/server_error.html", {}, status_code=500)
