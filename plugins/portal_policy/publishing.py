"""Publishing a new version and telling clients about it, as one unit of work."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from portal.audit import Actor, RequestMeta
from portal.invitations import Services
from portal.models import Practice
from portal_policy import campaign, service
from portal_policy.models import PolicyCampaign, PolicyVersion


def publish_new_version(
    db: Session,
    svc: Services,
    source: str,
    practice: Practice,
    *,
    actor: Actor,
    meta: RequestMeta,
    now: datetime,
) -> tuple[PolicyVersion, PolicyCampaign | None]:
    """Publish `source` and, when it replaces an earlier version, start the re-acknowledgement
    campaign in the same transaction: the version and its emails commit or fail together.

    Raises PolicyTemplateError (see `service.publish`). The campaign is None for version 1.
    """
    had_earlier = service.current(db) is not None
    version = service.publish(db, source, practice, actor=actor, meta=meta, now=now)
    db.flush()
    if not had_earlier:
        return version, None
    started = campaign.start(db, svc, practice, version, actor=actor, meta=meta, now=now)
    return version, started
