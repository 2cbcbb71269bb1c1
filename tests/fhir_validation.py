"""Validate FHIR R4 JSON in tests.

``fhir.resources`` 8 has no pydantic-2 models for R4 (4.0.1); its R4B models are structurally
R4's for the resources we emit (Patient, Consent, Bundle, OperationOutcome, CapabilityStatement).
They check structure, cardinality and primitive formats but neither the codes of required
bindings nor the invariants, so ``validate`` adds those for the elements we use, plus FHIR JSON's
own rules (no empty objects, arrays or strings; ids of at most 64 characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PRIVACY = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
_ISSUE_TYPES = (
    "invalid structure required value invariant security login unknown expired forbidden "
    "suppressed processing not-supported duplicate multiple-matches not-found deleted too-long "
    "code-invalid extension too-costly business-rule conflict transient lock-error no-store "
    "exception timeout incomplete throttled informational"
)
_RESOURCE_INTERACTIONS = (
    "read vread update patch delete history-instance history-type create search-type"
)

# (model class name, field) -> the codes a required binding allows.
REQUIRED_CODES: dict[tuple[str, str], set[str]] = {
    (cls, fld): set(codes.split())
    for cls, fld, codes in [
        ("Consent", "status", "draft proposed active rejected inactive entered-in-error"),
        ("ConsentProvision", "type", "deny permit"),
        ("ContactPoint", "system", "phone fax email pager url sms other"),
        ("ContactPoint", "use", "home work temp old mobile"),
        ("Patient", "gender", "male female other unknown"),
        ("HumanName", "use", "usual official temp nickname anonymous old maiden"),
        ("Identifier", "use", "usual official temp secondary old"),
        ("Narrative", "status", "generated extensions additional empty"),
        (
            "Bundle",
            "type",
            "document message transaction transaction-response batch batch-response history "
            "searchset collection",
        ),
        ("BundleEntrySearch", "mode", "match include outcome"),
        ("BundleEntryRequest", "method", "GET HEAD POST PUT DELETE PATCH"),
        ("OperationOutcomeIssue", "severity", "fatal error warning information"),
        ("OperationOutcomeIssue", "code", _ISSUE_TYPES),
        ("CapabilityStatement", "status", "draft active retired unknown"),
        ("CapabilityStatement", "kind", "instance capability requirements"),
        ("CapabilityStatement", "fhirVersion", "4.0.0 4.0.1"),
        ("CapabilityStatementRest", "mode", "client server"),
        (
            "CapabilityStatementRestInteraction",
            "code",
            "transaction batch search-system history-system",
        ),
        ("CapabilityStatementRestResourceInteraction", "code", _RESOURCE_INTERACTIONS),
        ("CapabilityStatementRestResource", "versioning", "no-version versioned versioned-update"),
        (
            "CapabilityStatementRestResourceSearchParam",
            "type",
            "number date string token reference composite quantity uri special",
        ),
    ]
}


def validate(resource: dict[str, Any]) -> BaseModel:
    """Validate `resource` (FHIR JSON) as its ``resourceType``; raise AssertionError or a
    pydantic ValidationError naming the problem. Returns the parsed model."""
    _check_json_rules(resource, resource.get("resourceType", "?"))
    model_class = get_fhir_model_class(resource["resourceType"])
    model = model_class.model_validate(resource)
    for path, element in _elements(model, resource["resourceType"]):
        _check_element(path, element)
    return model


def _check_json_rules(value: Any, path: str) -> None:
    if isinstance(value, dict):
        assert value, f"{path}: empty object"
        if "id" in value and isinstance(value["id"], str) and "resourceType" in value:
            assert _ID.fullmatch(value["id"]), f"{path}.id: not a FHIR id: {value['id']!r}"
        for key, item in value.items():
            _check_json_rules(item, f"{path}.{key}")
    elif isinstance(value, list):
        assert value, f"{path}: empty array"
        for index, item in enumerate(value):
            _check_json_rules(item, f"{path}[{index}]")
    elif isinstance(value, str):
        assert value.strip(), f"{path}: empty string"
    else:
        assert value is not None, f"{path}: null"


def _elements(model: BaseModel, path: str) -> Iterator[tuple[str, BaseModel]]:
    yield path, model
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            if isinstance(item, BaseModel):
                suffix = f"[{index}]" if isinstance(value, list) else ""
                yield from _elements(item, f"{path}.{name}{suffix}")


def _check_element(path: str, element: BaseModel) -> None:
    kind = type(element).__name__
    for (cls, fld), allowed in REQUIRED_CODES.items():
        if cls == kind:
            code = getattr(element, fld, None)
            assert code is None or code in allowed, f"{path}.{fld}: {code!r} not in {allowed}"
    if kind == "Extension":  # ext-1: extensions or a value, not both
        has_value = any(
            getattr(element, name, None) is not None
            for name in type(element).model_fields
            if name.startswith("value")
        )
        assert has_value != bool(element.extension), f"{path}: ext-1"  # type: ignore[attr-defined]
    elif kind == "Period":  # per-1: start <= end
        start, end = element.start, element.end  # type: ignore[attr-defined]
        if start is not None and end is not None:
            same_type = type(start) is type(end)
            assert (start <= end) if same_type else str(start) <= str(end), f"{path}: per-1"
    elif kind == "ContactPoint":  # cpt-2: a value needs a system
        assert element.value is None or element.system, f"{path}: cpt-2"  # type: ignore[attr-defined]
    elif kind == "Consent":
        _check_consent(path, element)


def _check_consent(path: str, consent: Any) -> None:
    assert consent.policy or consent.policyRule, f"{path}: ppc-1 (policy or policyRule)"
    codings = [(c.system, c.code) for c in (consent.scope.coding or [])]
    if _PRIVACY in codings:
        assert consent.patient is not None, f"{path}: ppc-2 (privacy consent needs a patient)"
