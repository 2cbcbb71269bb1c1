"""Registers the policy step, its tables, its public page, the admin's policy page and its
commands."""

from __future__ import annotations

from pathlib import Path

import click
from sqlmodel import Session, SQLModel
from starlette.routing import BaseRoute

from portal.audit import Actor, RequestMeta
from portal.changes import ChangeSource, by_enrollment
from portal.db import utcnow
from portal.hookspecs import hookimpl
from portal.settings import Settings
from portal.staff.board import BoardFilter, BoardPanel
from portal.steps import StepSpec
from portal_policy import board, routes, service, staff_policy
from portal_policy.models import (
    PolicyCampaign,
    PolicyCampaignRecipient,
    PolicyReading,
    PolicyVersion,
)
from portal_policy.step import PolicyStep


@hookimpl
def portal_models() -> list[type[SQLModel]]:
    return [PolicyVersion, PolicyReading, PolicyCampaign, PolicyCampaignRecipient]


@hookimpl
def portal_steps(settings: Settings) -> list[StepSpec]:
    return [
        StepSpec(
            key="policy",
            title="Read the policy",
            order=100,
            template="policy/step.html",
            handler=PolicyStep(),
        )
    ]


@hookimpl
def portal_migration_dirs() -> list[Path]:
    return [Path(__file__).parent / "migrations"]


@hookimpl
def portal_template_dirs() -> list[Path]:
    return [Path(__file__).parent / "templates"]


@hookimpl
def portal_routes(settings: Settings) -> list[BaseRoute]:
    return [*routes.routes, *staff_policy.routes]


@hookimpl
def portal_commands() -> list[click.Command]:
    from portal_policy.cli import policy

    return [policy]


def _publish_default(db: Session, settings: Settings) -> None:
    service.publish_default(
        db, actor=Actor("system", "demo"), meta=RequestMeta.none(), now=utcnow()
    )


@hookimpl
def portal_demo_setup() -> list[object]:
    return [_publish_default]


@hookimpl
def portal_board_filters(settings: Settings) -> list[BoardFilter]:
    return [
        BoardFilter("must_reack", "Must re-acknowledge", board.must_reacknowledge),
        BoardFilter("not_signed", "Not signed yet", board.not_signed),
    ]


@hookimpl
def portal_board_panels(settings: Settings) -> list[BoardPanel]:
    return [BoardPanel("campaign", 10, "policy/board_panel.html", board.campaign_panel)]


@hookimpl
def portal_change_sources() -> list[ChangeSource]:
    # Reading the policy completes the client's policy step. A new version changes every
    # client's status at once: `service.publish` logs that for everyone.
    return [ChangeSource(PolicyReading, by_enrollment)]
