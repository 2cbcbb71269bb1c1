"""The client's onboarding pages: one generic route pair per step, resume, and the end."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from portal import client_sessions, invitations
from portal.db import transaction, utcnow
from portal.routes.journey import Journey, load
from portal.runtime import Runtime, runtime
from portal.steps import StepOutcome, StepSpec
from portal.templating import is_htmx, render
from portal.wizard import ReplayedForm

MAX_FIELDS = 200


def _no_session(request: Request) -> Response:
    return render(request, "links/no_session.html", {}, status_code=401)


def _flatten(form: FormData) -> dict[str, str]:
    """First value of each text field; uploads are not accepted by onboarding steps."""
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str) and key not in values:
            values[key[:100]] = value
    return values


async def _read_form(request: Request) -> dict[str, str] | None:
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception:  # malformed or oversized bodies are the client's problem, not a 500
        return None
    try:
        return _flatten(form)
    finally:
        await form.close()


async def start(request: Request) -> Response:
    """Resume: send the client to the first step still to do."""
    rt = runtime(request)

    def work() -> str | None:
        with transaction(rt.engine, read_only=True) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return None
            spec = rt.wizard.first_incomplete(journey.ctx)
            return f"/onboarding/{spec.key}" if spec else "/onboarding/done"

    target = await run_in_threadpool(work)
    if target is None:
        return _no_session(request)
    return RedirectResponse(target, status_code=303)


def _page_context(rt: Runtime, journey: Journey, spec: StepSpec) -> dict[str, Any]:
    progress = rt.wizard.progress(journey.ctx)
    index = next(i for i, item in enumerate(progress) if item.spec.key == spec.key)
    return {
        "client": journey.client,
        "practice": journey.practice,
        "progress": progress,
        "step": spec,
        "step_number": index + 1,
        "step_count": len(progress),
        "form_id": secrets.token_urlsafe(16),
        "errors": {},
        "values": {},
        "notice": None,
        **spec.handler.context(journey.ctx),
    }


async def show_step(request: Request) -> Response:
    rt = runtime(request)
    key = request.path_params["key"]
    spec = rt.wizard.get(key)
    if spec is None:
        return render(request, "errors/not_found.html", {}, status_code=404)

    def work() -> dict[str, Any] | str | None:
        with transaction(rt.engine, read_only=True) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return None
            if not rt.wizard.can_visit(journey.ctx, key):
                return "/onboarding"
            return _page_context(rt, journey, spec)

    result = await run_in_threadpool(work)
    if result is None:
        return _no_session(request)
    if isinstance(result, str):
        return RedirectResponse(result, status_code=303)
    return render(request, "wizard/step.html", result, block="step_form")


async def submit_step(request: Request) -> Response:
    rt = runtime(request)
    key = request.path_params["key"]
    spec = rt.wizard.get(key)
    if spec is None:
        return render(request, "errors/not_found.html", {}, status_code=404)
    form = await _read_form(request)
    if form is None:
        return render(request, "errors/bad_form.html", {}, status_code=400)
    form_id = form.get("form_id", "")
    if not form_id or len(form_id) > 64:
        # Every step form carries one; without it a replay could not be recognised.
        return render(request, "errors/bad_form.html", {}, status_code=400)

    def work() -> tuple[str, Any]:
        try:
            with transaction(rt.engine) as db:
                journey = load(db, rt, request, utcnow())
                if journey is None:
                    return "no_session", None
                if not rt.wizard.can_visit(journey.ctx, key):
                    return "redirect", "/onboarding"
                outcome = rt.wizard.submit(journey.ctx, spec, form, form_id)
                if outcome is None:
                    return "replayed", None
                if not outcome.ok:
                    page = _page_context(rt, journey, spec)
                    page.update(errors=outcome.errors, values=outcome.values)
                    return "invalid", page
                if outcome.done:
                    nxt = rt.wizard.first_incomplete(journey.ctx)
                    return "redirect", f"/onboarding/{nxt.key}" if nxt else "/onboarding/done"
                page = _page_context(rt, journey, spec)
                page.update(values=outcome.values, notice=outcome.notice)
                return "again", page
        except ReplayedForm:
            return "replayed", None

    kind, payload = await run_in_threadpool(work)
    rt.wake_mail()
    if kind == "no_session":
        return _redirect(request, "/onboarding") if is_htmx(request) else _no_session(request)
    if kind == "replayed":
        if is_htmx(request):
            return _redirect(request, "/onboarding")
        return render(request, "errors/replayed.html", {"next": "/onboarding"}, status_code=409)
    if kind == "redirect":
        return _redirect(request, payload)
    status = 422 if kind == "invalid" else 200
    return render(request, "wizard/step.html", payload, status_code=status, block="step_form")


def _redirect(request: Request, url: str) -> Response:
    if is_htmx(request):
        # A full navigation: the next step is a different page, not a fragment of this one.
        return HTMLResponse("", headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def validate_field(request: Request) -> Response:
    """Inline validation for htmx: the named field's error, from a dry run of the step."""
    rt = runtime(request)
    spec = rt.wizard.get(request.path_params["key"])
    form = await _read_form(request)
    # The error slot the input points at (err-NAME) names the error to show: a group of
    # checkboxes shares one slot.
    target = request.headers.get("HX-Target", "")[:100]
    field = (
        target.removeprefix("err-")
        if target.startswith("err-")
        else (request.headers.get("HX-Trigger-Name", "")[:100])
    )
    if spec is None or form is None:
        return HTMLResponse("", status_code=400)

    def work() -> StepOutcome | None:
        with transaction(rt.engine) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return None
            return rt.wizard.dry_run(journey.ctx, spec, form)

    outcome = await run_in_threadpool(work)
    message = outcome.errors.get(field, "") if outcome else ""
    return render(request, "wizard/field_error.html", {"field": field, "message": message})


async def done(request: Request) -> Response:
    rt = runtime(request)

    def work() -> dict[str, Any] | str | None:
        with transaction(rt.engine, read_only=True) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return None
            if rt.wizard.first_incomplete(journey.ctx) is not None:
                return "/onboarding"
            return {
                "client": journey.client,
                "enrollment": journey.enrollment,
                "practice": journey.practice,
                "summary": rt.wizard.summary(journey.ctx),
                "panels": [p for group in rt.pm.hook.portal_done_panels() for p in group],
            }

    result = await run_in_threadpool(work)
    if result is None:
        return _no_session(request)
    if isinstance(result, str):
        return RedirectResponse(result, status_code=303)
    return render(request, "wizard/done.html", result)


async def later(request: Request) -> Response:
    """ "Finish later": email a resume link; progress is already saved step by step."""
    rt = runtime(request)

    def work() -> bool:
        with transaction(rt.engine) as db:
            journey = load(db, rt, request, utcnow())
            if journey is None:
                return False
            invitations.send_resume_link(
                db,
                rt.services,
                journey.practice,
                journey.enrollment,
                journey.ctx.actor,
                journey.ctx.meta,
            )
            return True

    if not await run_in_threadpool(work):
        return _no_session(request)
    rt.wake_mail()
    return render(request, "wizard/later.html", {})


async def sign_out(request: Request) -> Response:
    rt = runtime(request)

    def work() -> None:
        with transaction(rt.engine) as db:
            client_sessions.end(db, request.cookies.get(client_sessions.COOKIE), utcnow())

    await run_in_threadpool(work)
    response = render(request, "wizard/signed_out.html", {})
    response.delete_cookie(client_sessions.COOKIE, path="/")
    return response


routes = [
    Route("/onboarding", start, methods=["GET"]),
    Route("/onboarding/done", done, methods=["GET"]),
    Route("/onboarding/later", later, methods=["POST"]),
    Route("/onboarding/sign-out", sign_out, methods=["POST"]),
    Route("/onboarding/{key:str}", show_step, methods=["GET"]),
    Route("/onboarding/{key:str}", submit_step, methods=["POST"]),
    Route("/onboarding/{key:str}/validate", validate_field, methods=["POST"]),
]
