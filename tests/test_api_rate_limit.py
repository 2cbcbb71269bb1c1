"""Each API key has a request budget; over it, 429 with Retry-After, and other keys carry on."""

from __future__ import annotations

from helpers import api_key
from starlette.testclient import TestClient

from portal.app import create_app
from portal.middleware.api_rate_limit import TokenBuckets
from portal.settings import Settings


def test_buckets_refill_at_the_configured_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(60, clock=lambda: now[0])  # one request a second, bursts of 60
    assert all(buckets.take("a") == 0 for _ in range(60))
    assert buckets.take("a") == 1.0  # empty: wait a second
    assert buckets.take("b") == 0  # another caller is not affected
    now[0] += 1.0
    assert buckets.take("a") == 0


def test_over_budget_answers_429_with_retry_after(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_rate_per_minute": 3}))
    rt = app.state.runtime
    busy, calm = api_key(rt, name="Busy"), api_key(rt, name="Calm")
    with TestClient(app) as client:
        statuses = [
            client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {busy}"}).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {busy}"})
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["status"] == 429
        fhir = client.get("/fhir/r4/Patient", headers={"Authorization": f"Bearer {busy}"})
        assert fhir.status_code == 429 and fhir.json()["resourceType"] == "OperationOutcome"
        calm_response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {calm}"})
        assert calm_response.status_code == 200
    rt.engine.dispose()
