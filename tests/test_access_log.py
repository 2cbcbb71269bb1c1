"""The access log: one line per request with credentials masked, and no work when it is off."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from portal.middleware import access_log


def test_a_line_per_request_with_tokens_masked(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="portal.access"):
        assert client.get("/healthz").status_code == 200
        client.get("/i/secret-invitation-token")
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.access"]
    assert lines[0].startswith("GET /healthz 200 ")
    assert lines[1].startswith("GET /i/*** ")
    assert "secret-invitation-token" not in caplog.text


def test_no_work_when_the_access_log_is_off(
    client: TestClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off, the middleware neither times the request nor formats a line: the page is served
    even if timing were impossible, and nothing reaches the log."""

    def no_timing() -> float:
        raise AssertionError("the access log timed a request while it was off")

    monkeypatch.setattr(access_log, "time", SimpleNamespace(perf_counter=no_timing))
    with caplog.at_level(logging.WARNING, logger="portal.access"):
        assert client.get("/healthz").status_code == 200
    assert not [r for r in caplog.records if r.name == "portal.access"]
