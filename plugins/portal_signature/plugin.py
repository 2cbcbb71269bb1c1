"""Registers the acknowledgement-and-signature step, its tables, the receipt and its mail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session, SQLModel
from starlette.routing import BaseRoute

from portal.api.sections import ApiSection
from portal.changes import ChangeSource, by_client_id, by_enrollment
from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.staff.board import BoardColumn, ClientSection
from portal.steps import StepSpec
from portal_signature import api_section, routes, staff_actions, staff_view
from portal_signature.models import (
    Acknowledgement,
    PaperAcknowledgement,
    PolicyDiscussion,
    Signature,
    SignerSlot,
)
from portal_signature.receipt_mail import email_receipt
from portal_signature.step import SignatureStep

HERE = Path(__file__).parent


@hookimpl
def portal_models() -> list[type[SQLModel]]:
    return [Acknowledgement, SignerSlot, Signature, PolicyDiscussion, PaperAcknowledgement]


@hookimpl
def portal_steps(settings: Settings) -> list[StepSpec]:
    return [
        StepSpec(
            key="sign",
            title="Sign",
            order=900,
            template="signature/step.html",
            handler=SignatureStep(),
            on_journey_complete=email_receipt,
        )
    ]


@hookimpl
def portal_template_dirs() -> list[Path]:
    return [HERE / "templates"]


@hookimpl
def portal_migration_dirs() -> list[Path]:
    return [HERE / "migrations"]


@hookimpl
def portal_routes(settings: Settings) -> list[BaseRoute]:
    return [*routes.routes, *staff_view.routes, *staff_actions.routes]


@hookimpl
def portal_done_panels() -> list[str]:
    return ["signature/done_panel.html"]


@hookimpl
def portal_board_columns(settings: Settings) -> list[BoardColumn]:
    return [BoardColumn("acknowledgement", "Acknowledgement", 200, staff_view.board_cells)]


@hookimpl
def portal_client_sections(settings: Settings) -> list[ClientSection]:
    return [
        ClientSection(
            "acknowledgement",
            "Signed acknowledgement",
            20,
            "signature/staff_section.html",
            staff_view.client_section,
        )
    ]


def by_acknowledgement(db: Session, row: Any) -> str | None:
    ack = db.get(Acknowledgement, row.acknowledgement_id)
    return ack.client_id if ack else None


@hookimpl
def portal_change_sources() -> list[ChangeSource]:
    return [
        ChangeSource(Acknowledgement, by_client_id),
        ChangeSource(SignerSlot, by_acknowledgement),
        ChangeSource(Signature, by_acknowledgement),
        ChangeSource(PolicyDiscussion, by_enrollment),
        ChangeSource(PaperAcknowledgement, by_client_id),
    ]


@hookimpl
def portal_api_sections(settings: Settings) -> list[ApiSection]:
    return [api_section.section(settings)]
