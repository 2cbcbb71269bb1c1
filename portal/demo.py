"""`portal demo`: the whole product on embedded defaults, ready to click through.

SQLite in a local folder, migrations, a demo practice and policy, a few clients in different
states, and an embedded SMTP server whose mail is shown at /demo/mail.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
import uvicorn
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portal import invitations, migrations
from portal.api import keys as api_keys
from portal.app import create_app
from portal.audit import Actor, RequestMeta
from portal.db import transaction, utcnow
from portal.mail_catcher import MailCatcher
from portal.models import Client, Enrollment, Practice
from portal.runtime import Runtime
from portal.settings import demo_settings
from portal.staff import accounts, attestations
from portal.templating import render

DEMO_PRACTICE = {
    "name": "Harbor Light Counseling (demo)",
    "phone": "(206) 555-0142",
    "email": "office@harborlight.example",
    "website": "https://harborlight.example",
    "licensing_board": "the Washington State Department of Health",
    "crisis_line": "After hours, call (206) 555-0199.",
}

# Demo-only credentials, printed at start. Outside the demo there is no default account.
DEMO_PASSWORD = "harbor-light-demo"  # noqa: S105
DEMO_STAFF = [
    ("admin@harborlight.example", "Dana Whitfield", "admin"),
    ("therapist@harborlight.example", "Dr. Lee Moreno", "therapist"),
    ("frontdesk@harborlight.example", "Pat Kim", "front_desk"),
]

# (name, email, how many steps they have completed; None = all)
DEMO_CLIENTS = [
    ("Avery Chen", "avery.chen@example.com", 0),
    ("Morgan Ellis", "morgan.ellis@example.com", 2),
    ("Sam Okafor", "sam.okafor@example.com", None),
]


def seed(rt: Runtime) -> None:
    """Fill a fresh demo database; a database that has a practice already is left alone."""
    with transaction(rt.engine) as db:
        if db.get(Practice, 1) is not None:
            return
        db.add(Practice.model_validate(DEMO_PRACTICE))
        db.flush()
        for email, name, role in DEMO_STAFF:
            accounts.create(
                db,
                email=email,
                name=name,
                role=role,
                password=DEMO_PASSWORD,
                actor=Actor("system", "demo"),
                meta=RequestMeta.none(),
                now=utcnow(),
            )
        for group in rt.pm.hook.portal_demo_setup():
            for setup in group:
                setup(db, rt.settings)
        attestations.publish_default_staff_policy(db, Actor("system", "demo"), utcnow())
        for name, email, steps_done in DEMO_CLIENTS:
            onboard_client(db, rt, name, email, steps_done)


def onboard_client(
    db: Session, rt: Runtime, name: str, email: str, steps: int | None
) -> Enrollment:
    """Invite a client and fill their first `steps` steps (None: all) as a client would.

    Used by the demo and by tests that need realistic records."""
    practice = db.get(Practice, 1)
    assert practice is not None
    # Invited two days ago; the steps are done now, after the demo policy was published.
    invited_at = utcnow() - timedelta(days=2)
    enrollment, link = invitations.invite(
        db,
        rt.services,
        practice,
        full_name=name,
        email=email,
        actor=Actor("system", "demo"),
        meta=RequestMeta.none(),
        now=invited_at,
    )
    if steps == 0:
        return enrollment
    token = link.rsplit("/", 1)[-1]
    now = utcnow()
    invitations.accept_invitation(db, rt.services, token, RequestMeta("127.0.0.1", "demo"), now)
    client = db.get(Client, enrollment.client_id)
    assert client is not None
    ctx = rt.step_context(db, practice, client, enrollment, RequestMeta("127.0.0.1", "demo"), now)
    for spec in rt.wizard.steps[: steps if steps is not None else None]:
        spec.handler.demo_fill(ctx)
    rt.wizard.complete_if_done(ctx)
    return enrollment


def fresh_invitation(rt: Runtime) -> str:
    with transaction(rt.engine) as db:
        practice = db.get(Practice, 1)
        assert practice is not None
        _, link = invitations.invite(
            db,
            rt.services,
            practice,
            full_name="Riley Demo",
            email="riley.demo@example.com",
            actor=Actor("system", "demo"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    return link


def demo_api_key(rt: Runtime) -> str:
    """A fresh key on each start: only hashes are kept, so an earlier key can't be shown again."""
    with transaction(rt.engine) as db:
        _, secret = api_keys.create(
            db,
            name=f"Demo EHR {utcnow():%Y-%m-%d %H.%M.%S}",
            scopes=list(api_keys.Scope),
            actor=Actor("system", "demo"),
            meta=RequestMeta.none(),
            now=utcnow(),
        )
    return secret


def mail_routes(catcher: MailCatcher) -> list[BaseRoute]:
    async def inbox(request: Request) -> Response:
        return render(request, "demo/mail.html", {"mails": list(reversed(catcher.mails))})

    async def message(request: Request) -> Response:
        mails = catcher.mails
        index = request.path_params["n"]
        if not 0 <= index < len(mails):
            return render(request, "errors/not_found.html", {}, status_code=404)
        return render(request, "demo/message.html", {"mail": mails[index], "n": index})

    return [
        Route("/demo/mail", inbox, methods=["GET"]),
        Route("/demo/mail/{n:int}", message, methods=["GET"]),
    ]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--folder",
    default="portal-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo keeps its SQLite database.",
)
@click.option(
    "--public-url",
    default=None,
    help="The address other devices use for links, e.g. http://192.168.1.20:8000 "
    "(default: http://HOST:PORT).",
)
def demo(host: str, port: int, folder: Path, public_url: str | None) -> None:
    """Run a demo practice: SQLite, demo data and a local mail catcher, no setup needed."""
    folder.mkdir(parents=True, exist_ok=True)
    catcher = MailCatcher(host="127.0.0.1").start()
    shown_host = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    base_url = (public_url or f"http://{shown_host}:{port}").rstrip("/")
    settings = demo_settings(
        folder.resolve(),
        base_url=base_url,
        smtp_host="127.0.0.1",
        smtp_port=catcher.port,
        mail_backoff_seconds=5.0,
    )
    app = create_app(settings, extra_routes=mail_routes(catcher), freeze_heap=True)
    rt: Runtime = app.state.runtime
    migrations.upgrade(settings, rt.engine)
    seed(rt)
    link = fresh_invitation(rt)
    api_key = demo_api_key(rt)
    click.echo("")
    click.echo(f"  Demo portal:      {base_url}/")
    click.echo(f"  Caught mail:      {base_url}/demo/mail")
    click.echo(f"  Public policy:    {base_url}/policy")
    click.echo(f"  Database:         {folder.resolve() / 'portal.db'}")
    click.echo(f"  Staff sign-in:    {base_url}/staff/login")
    for email, _name, role in DEMO_STAFF:
        click.echo(f"    {role:<11} {email} / {DEMO_PASSWORD}")
    click.echo(f"  EHR API key:      {api_key}")
    click.echo("  A ready invitation link (works once):")
    click.echo(f"  {link}")
    click.echo("")
    try:
        uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    finally:
        catcher.stop()
