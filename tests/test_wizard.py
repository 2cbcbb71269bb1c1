"""The wizard engine over HTTP: order, resume, htmx fragments, replays."""

from __future__ import annotations

from helpers import hidden, post_form, publish_default, start_journey, submit_step
from starlette.testclient import TestClient

from portal.runtime import Runtime

HX = {"HX-Request": "true"}


def test_every_step_answers_htmx_with_a_fragment(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    for spec in rt.wizard.steps:
        full = client.get(f"/onboarding/{spec.key}")
        if full.status_code == 303:  # not reachable yet: complete the earlier ones first
            break
        fragment = client.get(f"/onboarding/{spec.key}", headers=HX)
        assert fragment.status_code == 200
        assert fragment.text.lstrip().startswith('<div id="step">')
        assert "<html" not in fragment.text
        assert "Vary" in fragment.headers and "HX-Request" in fragment.headers["vary"]
        assert "<html" in full.text
        # An empty submission is refused with the problem named, as a fragment for htmx.
        form_id = hidden(full.text, "form_id")
        refused = post_form(client, f"/onboarding/{spec.key}", {"form_id": form_id}, headers=HX)
        if refused.status_code == 422:
            assert refused.text.lstrip().startswith('<div id="step">')
            assert "error-summary" in refused.text
        ctx_fill(rt, client, spec.key)


def ctx_fill(rt: Runtime, client: TestClient, key: str) -> None:
    """Complete a step the way a client would, with the demo answers."""
    from portal.audit import RequestMeta
    from portal.db import transaction, utcnow
    from portal.models import Client, Enrollment, Practice

    with transaction(rt.engine) as db:
        enrollment = db.exec(Enrollment.__table__.select()).first()  # type: ignore[attr-defined]
        enrollment = db.get(Enrollment, enrollment.id)
        practice = db.get(Practice, 1)
        client_row = db.get(Client, enrollment.client_id)
        ctx = rt.step_context(db, practice, client_row, enrollment, RequestMeta(), utcnow())
        spec = rt.wizard.get(key)
        assert spec is not None
        spec.handler.demo_fill(ctx)


def test_resume_goes_to_the_first_unfinished_step(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    first, second = rt.wizard.steps[0].key, rt.wizard.steps[1].key
    assert client.get("/onboarding").headers["location"] == f"/onboarding/{first}"
    # A later step cannot be skipped to.
    assert client.get(f"/onboarding/{second}").headers["location"] == "/onboarding"
    assert submit_step(client, first, {"policy_version": "1"}).status_code == 303
    assert client.get("/onboarding").headers["location"] == f"/onboarding/{second}"
    # Going back to a finished step is allowed.
    assert client.get(f"/onboarding/{first}").status_code == 200


def test_a_replayed_form_counts_once(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    page = client.get("/onboarding/policy")
    data = {"form_id": hidden(page.text, "form_id"), "policy_version": "1"}
    assert post_form(client, "/onboarding/policy", data).status_code == 303
    again = post_form(client, "/onboarding/policy", data, headers={"accept": "text/html"})
    assert again.status_code == 409
    assert "already saved" in again.text


def test_unknown_step_is_a_friendly_404(client: TestClient, rt: Runtime) -> None:
    start_journey(client, rt)
    assert client.get("/onboarding/nope").status_code == 404


def test_garbage_form_body_is_a_clear_400(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    token = client.cookies["portal_csrf"]
    body = "&".join(f"f{i}=x" for i in range(1000)) + f"&csrf_token={token}"
    response = client.post(
        "/onboarding/policy",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert "couldn" in response.text
