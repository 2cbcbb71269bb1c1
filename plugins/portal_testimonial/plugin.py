"""Registers the testimonial-consent step, its table, its withdrawal pages and migrations."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import SQLModel
from starlette.routing import BaseRoute

from portal.api.sections import ApiSection
from portal.changes import ChangeSource, by_client_id
from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.staff.board import BoardColumn, ClientSection
from portal.steps import StepSpec
from portal_testimonial import api_section, routes, staff_routes, staff_view
from portal_testimonial.models import TestimonialDecision
from portal_testimonial.step import TestimonialStep


@hookimpl
def portal_models() -> list[type[SQLModel]]:
    return [TestimonialDecision]


@hookimpl
def portal_steps(settings: Settings) -> list[StepSpec]:
    return [
        StepSpec(
            key="testimonial",
            title="Testimonials",
            order=300,
            template="testimonial/step.html",
            handler=TestimonialStep(),
        )
    ]


@hookimpl
def portal_template_dirs() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def portal_migration_dirs() -> list[Path]:
    return [Path(__file__).parent / "migrations"]


@hookimpl
def portal_routes(settings: Settings) -> list[BaseRoute]:
    return [*routes.routes, *staff_routes.routes]


@hookimpl
def portal_board_columns(settings: Settings) -> list[BoardColumn]:
    return [BoardColumn("testimonial", "Testimonials", 300, staff_view.board_cells)]


@hookimpl
def portal_client_sections(settings: Settings) -> list[ClientSection]:
    return [
        ClientSection(
            "testimonial",
            "Testimonials",
            30,
            "testimonial/staff_section.html",
            staff_view.client_section,
        )
    ]


@hookimpl
def portal_change_sources() -> list[ChangeSource]:
    return [ChangeSource(TestimonialDecision, by_client_id)]


@hookimpl
def portal_api_sections(settings: Settings) -> list[ApiSection]:
    return [api_section.section(settings)]
