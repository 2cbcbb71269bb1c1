"""Every hook a plugin can implement. Each returns declarations and does no I/O.

Built-in steps (in `plugins/`) use exactly these hooks, as does any package exposing the
entry-point group ``portal.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from sqlmodel import Session, SQLModel
    from starlette.routing import BaseRoute

    from portal.api.sections import ApiSection
    from portal.changes import ChangeSource
    from portal.settings import Settings
    from portal.staff.board import BoardColumn, BoardFilter, BoardPanel, ClientSection
    from portal.steps import StepSpec

hookspec = pluggy.HookspecMarker("portal")
hookimpl = pluggy.HookimplMarker("portal")


@hookspec
def portal_models() -> list[type[SQLModel]]:
    """Return the plugin's table models.

    Importing them registers the tables in ``SQLModel.metadata``, which Alembic and the start-up
    schema check read. Returns: a list of SQLModel table classes. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_steps(settings: Settings) -> list[StepSpec]:
    """Return onboarding steps this plugin contributes.

    Arguments: ``settings``, the running configuration. Returns: a list of
    ``portal.steps.StepSpec``; the wizard orders all steps by ``StepSpec.order``. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_template_dirs() -> list[Path]:
    """Return folders holding the plugin's Jinja templates.

    Plugin templates may extend the host's (``base.html``, ``wizard/step.html``). Returns: a list
    of ``pathlib.Path``. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_routes(settings: Settings) -> list[BaseRoute]:
    """Return extra Starlette routes (public pages, downloads) the plugin serves.

    Arguments: ``settings``. Returns: a list of ``starlette.routing.BaseRoute``. Routes are
    mounted before the host's catch-alls. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_commands() -> list[click.Command]:
    """Return click commands (or groups) to add to the ``portal`` command line.

    Returns: a list of ``click.Command``. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_done_panels() -> list[str]:
    """Return template names rendered on the "you're done" page, in plugin order.

    Each template receives ``client``, ``enrollment`` and ``summary``. Returns: a list of
    template names. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_demo_setup() -> list[Callable[[Session, Settings], None]]:
    """Return functions that prepare a fresh demo database (e.g. publish a default document).

    ``portal demo`` calls each once, inside one transaction, before creating demo clients.
    Returns: a list of callables taking ``(session, settings)``. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_migration_dirs() -> list[Path]:
    """Return folders of Alembic revisions for the plugin's tables.

    Each plugin keeps its own branch off the host's first revision: its first revision has
    ``down_revision = "host_0001"`` and ``branch_labels`` of the plugin's package name.

    ``portal migrate`` upgrades every branch to its head. Returns: a list of ``pathlib.Path``.
    Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_board_columns(settings: Settings) -> list[BoardColumn]:
    """Return columns for the staff consent board (e.g. the step's status per client).

    Arguments: ``settings``. Returns: a list of ``portal.staff.board.BoardColumn``, shown in
    ``order``. Each column's ``values`` callable receives a session and one page of enrollment
    ids and returns a ``Cell`` per id. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_client_sections(settings: Settings) -> list[ClientSection]:
    """Return sections for the staff page of one client (e.g. signed acknowledgements).

    Arguments: ``settings``. Returns: a list of ``portal.staff.board.ClientSection``, shown in
    ``order``; each template receives the page's ``client``, ``enrollment``, ``me`` and
    ``permissions`` (the signed-in staff member's permission names) plus what the section's
    ``context`` callable returns. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_board_filters(settings: Settings) -> list[BoardFilter]:
    """Return extra choices for the consent board's status filter.

    Arguments: ``settings``. Returns: a list of ``portal.staff.board.BoardFilter``; each
    ``condition`` callable receives a session and returns a SQL condition on ``Enrollment``.
    Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_board_panels(settings: Settings) -> list[BoardPanel]:
    """Return panels shown above the consent board (for example a campaign's progress).

    Arguments: ``settings``. Returns: a list of ``portal.staff.board.BoardPanel``, shown in
    ``order``; a panel whose ``context`` returns None is not shown. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_change_sources() -> list[ChangeSource]:
    """Return the plugin's tables whose rows belong to a client, for incremental sync.

    Every insert or update of such a row logs a change for its client in the same transaction
    (``portal.changes``), which the API's change feed, FHIR ``_since`` and webhooks read.
    Returns: a list of ``portal.changes.ChangeSource``. Not firstresult.
    """
    raise NotImplementedError


@hookspec
def portal_api_sections(settings: Settings) -> list[ApiSection]:
    """Return sections of a client's record for the EHR-facing API (``/api/v1``, ``/fhir/r4``).

    Arguments: ``settings``. Returns: a list of ``portal.api.sections.ApiSection``; each has a
    JSON Schema for the OpenAPI document, a batch loader, the scope an API key needs to see it
    and an optional FHIR mapping. The loader serves API reads and FHIR reads and exports; it
    only reads, so it may read Core rows (``portal.rows.core_rows``), which cost a fraction of
    ORM objects. Not firstresult.
    """
    raise NotImplementedError
