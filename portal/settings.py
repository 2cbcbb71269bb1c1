"""Configuration from `PORTAL_*` environment variables (and an optional `.env`)."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Used only when `demo` is true; a non-demo start refuses it (see `check_secret`).
DEMO_SECRET = "demo-only-secret-never-use-in-production"  # noqa: S105


class SmtpTls(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PORTAL_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    demo: bool = False
    database_url: str = "sqlite:///portal.db"
    # Seconds to wait for a PostgreSQL connection (libpq's minimum is 2), and for SQLite's
    # write lock, before a request answers 503 "try again shortly".
    database_connect_timeout: int = Field(default=5, ge=2, le=120)
    sqlite_busy_timeout: float = Field(default=30.0, gt=0, le=600)
    # Comma-separated; the first signs, all verify, so keys can be rotated.
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    base_url: str = "http://127.0.0.1:8000"
    # Addresses of reverse proxies whose X-Forwarded-For / -Proto headers are trusted, so
    # signatures record the client's address, not the proxy's ("*" trusts any: only behind one).
    forwarded_allow_ips: str = "127.0.0.1"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: SmtpTls = SmtpTls.NONE
    smtp_timeout: float = 10.0
    mail_from: str = "Practice portal <no-reply@localhost>"
    # `portal serve` delivers mail in-process unless a separate `portal mail-worker` is run.
    mail_in_process: bool = True
    mail_backoff_seconds: float = 30.0
    # Webhooks are delivered by the same process as mail (see mail_in_process).
    webhook_backoff_seconds: float = Field(default=30.0, ge=0)
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)

    invitation_days: int = 14
    resume_days: int = 30
    session_hours: int = 12
    staff_idle_minutes: int = 30
    staff_absolute_hours: int = 12
    phone_region: str = "US"
    max_form_bytes: int = 256 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024  # a scanned paper acknowledgement
    check_schema: bool = True
    # FHIR Bulk Data export: where the NDJSON files go (default: an `exports` folder next to the
    # SQLite database, else in the working directory), how long a finished export stays
    # downloadable, and whether `portal serve` runs exports itself (else `portal export-worker`).
    export_dir: Path | None = None
    export_hours: int = Field(default=24, ge=1)
    export_in_process: bool = True
    # The identifier system of the EHR's medical record numbers in FHIR Patient.identifier.
    ehr_mrn_system: str = "urn:intake-portal:mrn"
    # Requests per minute each API key may make to /api/v1 and /fhir/r4 (per app process).
    api_rate_per_minute: int = Field(default=600, ge=1)

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ehr_mrn_system")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", value):
            raise ValueError("PORTAL_EHR_MRN_SYSTEM must be a URI, e.g. urn:oid:1.2.3.4")
        return value

    @model_validator(mode="after")
    def check_secret(self) -> Self:
        if self.demo:
            if not self.secret_keys:
                self.secret_keys = [SecretStr(DEMO_SECRET)]
            return self
        if not self.secret_keys:
            raise ValueError(
                "PORTAL_SECRET_KEYS is not set. Set it to a long random value, for example "
                "the output of: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        for key in self.secret_keys:
            raw = key.get_secret_value()
            if raw == DEMO_SECRET or len(raw) < 32:
                raise ValueError(
                    "PORTAL_SECRET_KEYS must hold keys of at least 32 characters, "
                    "and never the demo key."
                )
        return self

    @property
    def key_list(self) -> list[str]:
        return [key.get_secret_value() for key in self.secret_keys]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def public_url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def export_path(self) -> Path:
        if self.export_dir is not None:
            return self.export_dir
        database = self.database_url.partition("///")[2] if self.is_sqlite else ""
        if database and "?" not in database and database != ":memory:":
            return Path(database).parent / "exports"
        return Path("exports")


def demo_settings(folder: Path, **overrides: object) -> Settings:
    """Settings for `portal demo`: SQLite in `folder`, the demo key, mail to the local catcher."""
    values: dict[str, object] = {
        "demo": True,
        "database_url": f"sqlite:///{folder / 'portal.db'}",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
