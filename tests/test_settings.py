from __future__ import annotations

import pytest
from pydantic import ValidationError

from portal.settings import DEMO_SECRET, Settings, SmtpTls

GOOD_KEY = "k" * 40


def test_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORTAL_SECRET_KEYS", raising=False)
    with pytest.raises(ValidationError, match="PORTAL_SECRET_KEYS is not set"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("key", ["short", DEMO_SECRET])
def test_refuses_weak_or_demo_keys(key: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(secret_keys=key, _env_file=None)  # type: ignore[call-arg,arg-type]


def test_demo_gets_a_key_of_its_own() -> None:
    settings = Settings(demo=True, _env_file=None)  # type: ignore[call-arg]
    assert settings.key_list == [DEMO_SECRET]


def test_reads_portal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEYS", f"{GOOD_KEY}, {'n' * 40}")
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql://db/portal")
    monkeypatch.setenv("PORTAL_SMTP_TLS", "starttls")
    monkeypatch.setenv("PORTAL_SMTP_PORT", "587")
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.key_list == [GOOD_KEY, "n" * 40]
    assert settings.smtp_tls is SmtpTls.STARTTLS
    assert settings.smtp_port == 587
    assert not settings.is_sqlite
    assert settings.secure_cookies


def test_reads_dotenv_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PORTAL_SECRET_KEYS", raising=False)
    env = tmp_path / ".env"
    env.write_text(f"PORTAL_SECRET_KEYS={GOOD_KEY}\nPORTAL_MAIL_FROM=Office <office@example.com>\n")
    settings = Settings(_env_file=env)  # type: ignore[call-arg]
    assert settings.mail_from == "Office <office@example.com>"


def test_rejects_unknown_tls_mode() -> None:
    with pytest.raises(ValidationError):
        Settings(secret_keys=GOOD_KEY, smtp_tls="sometimes", _env_file=None)  # type: ignore[call-arg,arg-type]
