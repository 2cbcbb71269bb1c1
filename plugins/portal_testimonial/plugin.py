"""Registers the testimonial-consent step, its table, its withdrawal pages and migrations."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import SQLModel
from starlette.routing import BaseRoute

from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.steps import StepSpec
from portal_testimonial import routes
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
    return list(routes.routes)
