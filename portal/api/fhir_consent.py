"""Building blocks for the FHIR R4 Consents that step plugins map their records to.

Every Consent the portal emits shares a skeleton (scope patient-privacy, a category of ours, the
patient, a policy or policy rule for invariant ppc-1); plugins fill in status, provision and
performers. Pure functions: no I/O. Constant parts (scope, categories, codings) are one object
shared by every resource that holds them: resources are read and serialised, never modified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

PRIVACY_SCOPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }
    ]
}
CATEGORY_SYSTEM = "urn:intake-portal:consent-category"
CONTACT_CHANNEL_SYSTEM = "urn:intake-portal:contact-channel"
POLICY_RULE_SYSTEM = "urn:intake-portal:consent-policy"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


def concept(system: str, code: str, display: str, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding; `text` says it in words when that adds something."""
    found: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        found["text"] = text
    return found


def period(start: str | None, end: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if start:
        found["start"] = start
    if end:
        found["end"] = end
    return found


def latest(moments: Iterable[str | None]) -> str:
    """The latest of ISO 8601 timestamps (as the API writes them), compared as times: text
    order is wrong when only some carry fractional seconds."""
    present = [moment for moment in moments if moment]
    if len(present) == 1:
        return present[0]
    return max(present, key=datetime.fromisoformat)


@cache  # a handful of categories: one shared object each
def _category(code: str, display: str) -> dict[str, Any]:
    return concept(CATEGORY_SYSTEM, code, display)


def consent(
    *,
    resource_id: str,
    client_id: str,
    status: str,
    category: str,
    category_display: str,
    date_time: str | None,
    last_updated: str,
    provision: dict[str, Any],
    policy_uri: str | None = None,
    policy_rule: dict[str, Any] | None = None,
    extra_categories: Sequence[dict[str, Any]] = (),
    performers: Sequence[dict[str, Any]] = (),
    extensions: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A Consent resource with the portal's common parts; give `policy_uri` or `policy_rule`."""
    if not policy_uri and not policy_rule:
        raise ValueError("a Consent needs a policy or a policy rule (FHIR invariant ppc-1)")
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": resource_id,
        "meta": {"lastUpdated": last_updated},
    }
    if extensions:
        resource["extension"] = list(extensions)
    resource["status"] = status
    resource["scope"] = PRIVACY_SCOPE
    resource["category"] = [_category(category, category_display), *extra_categories]
    resource["patient"] = {"reference": f"Patient/{client_id}"}
    if date_time:
        resource["dateTime"] = date_time
    if performers:
        resource["performer"] = list(performers)
    if policy_uri:
        resource["policy"] = [{"uri": policy_uri}]
    if policy_rule:
        resource["policyRule"] = policy_rule
    resource["provision"] = provision
    return resource
