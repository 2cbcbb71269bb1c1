"""The client page's "EHR record number" section: the number the practice's EHR uses for this
client, which staff (or the EHR through the API) set so the two systems can match records."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from portal.models import Client, Enrollment
from portal.staff.board import ClientSection


def context(db: Session, enrollment: Enrollment, client: Client) -> dict[str, Any]:
    return {"mrn": client.mrn}


SECTION = ClientSection("ehr", "EHR record number", 45, "staff/actions/mrn_section.html", context)
