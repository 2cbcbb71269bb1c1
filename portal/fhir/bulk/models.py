"""The export job: one row per `$export` kick-off, from request to expiry.

The row outlives its files. After expiry the NDJSON is deleted but the row keeps its
``transaction_time`` and change-log position, so an EHR that passes that transactionTime back as
``_since`` days later still gets the exact change-log answer (see ``portal.fhir.bulk.selection``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String
from sqlmodel import Field, SQLModel

from portal.db import UTCDateTime, new_id, utcnow


class JobStatus(StrEnum):
    PENDING = "pending"  # waiting for a worker
    RUNNING = "running"  # a worker holds it (until locked_until, renewed per batch)
    COMPLETE = "complete"  # files ready until expires_at
    FAILED = "failed"  # a real failure; the status URL answers 500 with an OperationOutcome
    CANCELLED = "cancelled"  # DELETE on the status URL; files removed
    EXPIRED = "expired"  # past expires_at; files removed, row kept for `_since`


ACTIVE = (JobStatus.PENDING, JobStatus.RUNNING)


class ExportJob(SQLModel, table=True):
    __tablename__ = "export_job"
    __table_args__ = (
        Index("ix_export_job_status_created", "status", "created_at"),
        Index("ix_export_job_transaction_time", "transaction_time"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    api_key_id: str = Field(max_length=32, index=True)
    level: str = Field(max_length=20)  # "system" or "patient": which kick-off URL was used
    request_url: str = Field(max_length=2000)
    types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The key's scopes at kick-off: they decide what the files contain (telecom, contact Consents).
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    output_format: str = Field(max_length=40)
    status: JobStatus = Field(default=JobStatus.PENDING, sa_type=String(20))
    attempts: int = 0
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    locked_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The manifest's transactionTime and the change-log head read in the same transaction.
    transaction_time: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    position_txid: int | None = Field(default=None, sa_column=Column(BigInteger))
    position_seq: int | None = Field(default=None, sa_column=Column(BigInteger))
    total_clients: int = 0
    done_clients: int = 0
    # [{"type": "Patient", "file": "Patient.ndjson", "count": 12}, ...] once complete.
    output: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    errors: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # Why it failed, in words that identify nobody (an exception class, never data).
    failure: str | None = Field(default=None, max_length=300)
