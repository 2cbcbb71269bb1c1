"""Registers the contact-channels step, its table, templates and migrations."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import SQLModel

from portal.api.sections import ApiSection
from portal.changes import ChangeSource, by_client_id
from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.staff.board import BoardColumn, ClientSection
from portal.steps import StepSpec
from portal_contact import api_section, staff_view
from portal_contact.models import ContactPreference
from portal_contact.step import ContactStep


@hookimpl
def portal_models() -> list[type[SQLModel]]:
    return [ContactPreference]


@hookimpl
def portal_steps(settings: Settings) -> list[StepSpec]:
    return [
        StepSpec(
            key="contact",
            title="How we may contact you",
            order=200,
            template="contact/step.html",
            handler=ContactStep(),
        )
    ]


@hookimpl
def portal_template_dirs() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def portal_migration_dirs() -> list[Path]:
    return [Path(__file__).parent / "migrations"]


@hookimpl
def portal_board_columns(settings: Settings) -> list[BoardColumn]:
    return [BoardColumn("contact", "How to contact", 100, staff_view.board_cells)]


@hookimpl
def portal_client_sections(settings: Settings) -> list[ClientSection]:
    return [
        ClientSection(
            "contact",
            "How we may contact them",
            10,
            "contact/staff_section.html",
            staff_view.client_section,
        )
    ]


@hookimpl
def portal_change_sources() -> list[ChangeSource]:
    return [ChangeSource(ContactPreference, by_client_id)]


@hookimpl
def portal_api_sections(settings: Settings) -> list[ApiSection]:
    return [api_section.section(settings)]
