"""Who is signing: the "who signs" form, read into a plan of signers. Pure, never raises."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from portal.validation import NAME_MAX, clean_name
from portal_signature.models import Party, Role

MAX_OTHER_ADULTS = 5
RELATIONSHIP_OTHER_MAX = 60
ECHO_MAX = 200  # longest entry echoed back into the form: a hostile post can't bloat the page

PARTY_OPTIONS: tuple[tuple[str, str], ...] = (
    (Party.INDIVIDUAL, "Just me"),
    (Party.ADULTS, "Me and other adults seen together (couple or family)"),
    (Party.MINOR, "A parent or guardian, for a child under 18"),
)
RELATIONSHIPS: tuple[tuple[str, str], ...] = (
    ("mother", "Mother"),
    ("father", "Father"),
    ("legal guardian", "Legal guardian"),
    ("other", "Other (please say)"),
)
ROLE_LABELS: dict[str, str] = {
    Role.CLIENT: "Client",
    Role.ADULT: "Adult seen together",
    Role.GUARDIAN: "Parent or guardian",
    Role.THERAPIST: "Therapist (countersignature)",
}


def adult_field(number: int) -> str:
    """Form field for the n-th other adult (1-based): adult_1_name ... adult_5_name."""
    return f"adult_{number}_name"


ADULT_FIELDS = tuple(adult_field(n) for n in range(1, MAX_OTHER_ADULTS + 1))
TEXT_FIELDS = ("party", "minor_name", "guardian_name", "relationship", "relationship_other")


@dataclass(frozen=True)
class PlannedSigner:
    role: Role
    expected_name: str
    relationship: str | None = None


@dataclass(frozen=True)
class SignerPlan:
    party: Party
    signers: tuple[PlannedSigner, ...]
    minor_name: str | None = None


@dataclass
class PlanResult:
    plan: SignerPlan | None  # None when there are errors
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def normal_name(value: str) -> str:
    return unicodedata.normalize("NFC", " ".join(value.split()))


def same_name(typed: str, expected: str) -> bool:
    """Equal ignoring case and extra spaces."""
    return normal_name(typed).casefold() == normal_name(expected).casefold()


def relationship_words(relationship: str | None) -> str:
    """ "mother", or what the guardian typed after "other: "."""
    return (relationship or "").removeprefix("other: ")


def role_label(role: str, relationship: str | None = None) -> str:
    label = ROLE_LABELS.get(role, role)  # StrEnum keys match their plain string values
    if role == Role.GUARDIAN and relationship:
        return f"{label} ({relationship_words(relationship)})"
    return label


def _read(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _echo(value: str) -> str:
    return "".join(ch for ch in value if unicodedata.category(ch) != "Cc")[:ECHO_MAX]


def adult_rows(form: Mapping[str, str]) -> int:
    """How many other-adult rows to show: as many as asked for, and every row with text."""
    raw = _read(form, "adult_rows")
    shown = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 2 else 1
    filled = max(
        (n for n in range(1, MAX_OTHER_ADULTS + 1) if _read(form, adult_field(n))), default=0
    )
    return max(1, min(MAX_OTHER_ADULTS, max(shown, filled)))


def form_values(form: Mapping[str, str]) -> dict[str, str]:
    """The entries to re-render the "who signs" form with."""
    values = {name: _echo(_read(form, name)) for name in (*TEXT_FIELDS, *ADULT_FIELDS)}
    values["adult_rows"] = str(adult_rows(form))
    values["phase"] = "who"
    return values


def parse_plan(form: Mapping[str, str], client_name: str) -> PlanResult:
    values = form_values(form)
    errors: dict[str, str] = {}
    party = _read(form, "party")
    if not party:
        errors["party"] = "Choose who is signing."
        return PlanResult(None, errors, values)
    if party not in {value for value, _ in PARTY_OPTIONS}:
        errors["party"] = "Choose one of the three options for who is signing."
        values["party"] = ""
        return PlanResult(None, errors, values)
    me = PlannedSigner(Role.CLIENT, normal_name(client_name))
    if party == Party.INDIVIDUAL:
        return PlanResult(SignerPlan(Party.INDIVIDUAL, (me,)), errors, values)
    if party == Party.ADULTS:
        others = _other_adults(form, me.expected_name, errors)
        if errors:
            return PlanResult(None, errors, values)
        return PlanResult(SignerPlan(Party.ADULTS, (me, *others)), errors, values)
    return _minor_plan(form, errors, values)


def _other_adults(
    form: Mapping[str, str], client_name: str, errors: dict[str, str]
) -> list[PlannedSigner]:
    others: list[PlannedSigner] = []
    seen = {client_name.casefold()}
    for name_field in ADULT_FIELDS:
        raw = _read(form, name_field)
        if not raw:
            continue
        name, problem = clean_name(raw, label="name of the other adult")
        if problem:
            errors[name_field] = problem
        elif same_name(name, client_name):
            errors[name_field] = (
                "That's your own name, and you sign first already. Enter the other adult's name."
            )
        elif name.casefold() in seen:
            errors[name_field] = "You listed this name already. Each adult is listed once."
        else:
            seen.add(name.casefold())
            others.append(PlannedSigner(Role.ADULT, name))
    if not others and not errors:
        errors[adult_field(1)] = "Enter the full name of at least one other adult who signs."
    return others


def _minor_plan(
    form: Mapping[str, str], errors: dict[str, str], values: dict[str, str]
) -> PlanResult:
    minor, problem = clean_name(_read(form, "minor_name"), label="child's full name")
    if problem:
        errors["minor_name"] = problem
    guardian, problem = clean_name(_read(form, "guardian_name"), label="your full name")
    if problem:
        errors["guardian_name"] = problem
    elif not errors.get("minor_name") and same_name(guardian, minor):
        errors["guardian_name"] = "Enter your own name here, not the child's."
    relationship = _relationship(form, errors, values)
    if errors:
        return PlanResult(None, errors, values)
    signer = PlannedSigner(Role.GUARDIAN, guardian, relationship)
    return PlanResult(SignerPlan(Party.MINOR, (signer,), minor_name=minor), errors, values)


def _relationship(
    form: Mapping[str, str], errors: dict[str, str], values: dict[str, str]
) -> str | None:
    choice = _read(form, "relationship")
    if not choice:
        errors["relationship"] = "Choose how you are related to the child."
        return None
    if choice not in {value for value, _ in RELATIONSHIPS}:
        errors["relationship"] = "Choose one of the relationships listed."
        values["relationship"] = ""
        return None
    if choice != "other":
        return choice
    other, problem = clean_name(_read(form, "relationship_other"), label="relationship")
    if problem:
        errors["relationship_other"] = (
            "Say how you are related to the child, e.g. grandmother or foster parent."
            if not other
            else problem
        )
        return None
    if len(other) > RELATIONSHIP_OTHER_MAX:
        errors["relationship_other"] = (
            f"That is too long: {RELATIONSHIP_OTHER_MAX} characters at most."
        )
        return None
    return f"other: {other}"


def check_typed_name(raw: str | None, expected: str) -> tuple[str, str | None]:
    """The typed signature: it must be the expected name (ignoring case and extra spaces)."""
    value = normal_name(raw or "")
    if not value:
        return "", f"Type your full name to sign: {expected}"
    # The expected name may come from the practice's records, so it may be longer than NAME_MAX.
    if len(value) > max(NAME_MAX, len(expected)) or "<" in value or ">" in value:
        return _echo(value), clean_name(value, label="name")[1]
    if not same_name(value, expected):
        return _echo(value), f"Type your full name exactly as shown: {expected}"
    return value, None
