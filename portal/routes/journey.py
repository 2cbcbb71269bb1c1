"""Loading the client's journey from the session cookie, shared by the onboarding routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from portal import client_sessions
from portal.models import Client, Enrollment, EnrollmentStatus, Practice
from portal.runtime import Runtime, request_meta
from portal.steps import StepContext


@dataclass
class Journey:
    practice: Practice
    client: Client
    enrollment: Enrollment
    ctx: StepContext


def load(db: Session, rt: Runtime, request: Request, now: datetime) -> Journey | None:
    row = client_sessions.lookup(db, request.cookies.get(client_sessions.COOKIE), now)
    if row is None:
        return None
    enrollment = db.get(Enrollment, row.enrollment_id)
    if enrollment is None or enrollment.status == EnrollmentStatus.CANCELLED:
        return None
    client = db.get(Client, enrollment.client_id)
    practice = db.get(Practice, 1)
    if client is None or practice is None:
        return None
    ctx = rt.step_context(db, practice, client, enrollment, request_meta(request), now)
    return Journey(practice, client, enrollment, ctx)


def set_session_cookie(response: Response, rt: Runtime, key: str) -> None:
    response.set_cookie(
        client_sessions.COOKIE,
        key,
        max_age=rt.settings.session_hours * 3600,
        httponly=True,
        secure=rt.settings.secure_cookies,
        samesite="lax",
        path="/",
    )
