"""The `portal` command line, as an operator uses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import open_link
from starlette.testclient import TestClient

from portal import cli as cli_module
from portal.cli_support import open_runtime
from portal.settings import Settings


@pytest.fixture
def run(settings: Settings) -> Iterator:  # type: ignore[type-arg]
    cli_module._add_plugin_commands()
    env = {
        "PORTAL_DATABASE_URL": settings.database_url,
        "PORTAL_SECRET_KEYS": settings.key_list[0],
        "PORTAL_BASE_URL": settings.base_url,
        "PORTAL_SMTP_PORT": str(settings.smtp_port),
    }

    def invoke(*args: str, input: str | None = None) -> Result:
        open_runtime.cache_clear()
        return CliRunner().invoke(cli_module.cli, list(args), env=env, input=input)

    yield invoke
    open_runtime.cache_clear()


def test_invite_prints_the_link_last(run, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    assert run("practice", "set", "--name", "Harbor Light Counseling").exit_code == 0
    result = run("invite", "jo@example.com", "--name", "Jo Park")
    assert result.exit_code == 0, result.output
    link = result.output.strip().splitlines()[-1]
    assert link.startswith("http://testserver/i/")
    assert open_link(client, link).status_code == 303


def test_invite_refuses_bad_input_clearly(run) -> None:  # type: ignore[no-untyped-def]
    run("practice", "set", "--name", "Harbor Light Counseling")
    result = run("invite", "not-an-email", "--name", "Jo")
    assert result.exit_code == 1
    assert "doesn't look right" in result.output
    result = run("invite", "jo@example.com", "--name", "<b>Jo</b>")
    assert result.exit_code == 1 and "can't contain" in result.output


def test_policy_publish_from_a_file(run, tmp_path: Path, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    assert (
        run(
            "practice", "set", "--name", "Harbor Light Counseling", "--phone", "(206) 555-0142"
        ).exit_code
        == 0
    )
    source = tmp_path / "policy.md"
    source.write_text(
        "# Our Policy\n\n## Contact\n\nCall {{ practice_name }} at {{ practice_phone }}.\n"
    )
    result = run("policy", "publish", str(source))
    assert result.exit_code == 0, result.output
    assert "Published version 1" in result.output
    page = client.get("/policy").text
    assert "Call Harbor Light Counseling at (206) 555-0142." in page
    again = run("policy", "publish", str(source))
    assert again.exit_code == 1 and "identical to version 1" in again.output
    bad = tmp_path / "bad.md"
    bad.write_text("# P\n\n## S\n\n{{ unknown_thing }}\n")
    result = run("policy", "publish", str(bad))
    assert result.exit_code == 1 and "unknown_thing" in result.output
    assert "Version 1" in run("policy", "show").output


def test_policy_publish_refuses_blank_details(run) -> None:  # type: ignore[no-untyped-def]
    run("practice", "set", "--name", "Harbor Light Counseling")
    result = run("policy", "publish", "--default")
    assert result.exit_code == 1
    assert "blank" in result.output and "crisis line" in result.output


def test_mail_worker_once_delivers(run, mail) -> None:  # type: ignore[no-untyped-def]
    run("practice", "set", "--name", "Harbor Light Counseling")
    run("invite", "jo@example.com", "--name", "Jo Park")
    result = run("mail-worker", "--once")
    assert result.exit_code == 0 and "Sent 1" in result.output
    assert mail.wait_for(1)[0].envelope_to == ["jo@example.com"]


def test_missing_secret_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PORTAL_SECRET_KEYS", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    open_runtime.cache_clear()
    result = CliRunner().invoke(cli_module.cli, ["invite", "a@example.com", "--name", "A B"])
    assert result.exit_code == 1
    assert "PORTAL_SECRET_KEYS is not set" in result.output
    assert "Traceback" not in result.output


def test_unmigrated_database_says_what_to_run(tmp_path: Path) -> None:
    open_runtime.cache_clear()
    env = {
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}",
        "PORTAL_SECRET_KEYS": "s" * 40,
    }
    result = CliRunner().invoke(
        cli_module.cli, ["invite", "a@example.com", "--name", "A B"], env=env
    )
    assert result.exit_code == 1 and "portal migrate" in result.output
    assert CliRunner().invoke(cli_module.cli, ["migrate"], env=env).exit_code == 0
