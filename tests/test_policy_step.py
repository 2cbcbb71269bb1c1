from __future__ import annotations

from helpers import post_form, publish_default, start_journey, submit_step
from starlette.testclient import TestClient

from portal.runtime import Runtime


def test_public_policy_page_shows_current_version(client: TestClient, rt: Runtime) -> None:
    assert "has not published" in client.get("/policy").text
    publish_default(rt)
    page = client.get("/policy")
    assert page.status_code == 200
    assert "Harbor Light Counseling" in page.text
    assert "Version 1" in page.text
    assert "988" in page.text


def test_policy_step_records_reading_and_moves_on(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    first = client.get("/onboarding")
    assert first.headers["location"] == "/onboarding/policy"
    response = submit_step(client, "policy", {"policy_version": "1", "action": "save"})
    assert response.status_code == 303
    assert response.headers["location"] != "/onboarding/policy"


def test_policy_step_refuses_stale_version(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    response = submit_step(client, "policy", {"policy_version": "7"})
    assert response.status_code == 422
    assert "new version" in response.text


def test_without_csrf_token_nothing_happens(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    response = client.post("/onboarding/policy", data={"policy_version": "1"})
    assert response.status_code == 403
    assert submit_step(client, "policy", {"policy_version": "1"}).status_code == 303


def test_a_step_form_without_its_one_time_id_is_refused(client: TestClient, rt: Runtime) -> None:
    publish_default(rt)
    start_journey(client, rt)
    response = post_form(client, "/onboarding/policy", {"policy_version": "1"})
    assert response.status_code == 400
    assert client.get("/onboarding").headers["location"] == "/onboarding/policy"  # not stored
