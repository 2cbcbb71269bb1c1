"""Contact preferences between sessions: parsing and validation of the onboarding form.

Pure functions and value objects, no I/O. The form is plain urlencoded HTML, so the parser
receives a flat mapping of field names to strings and must cope with anything a client (or a
hostile script) can post: it never raises, it returns errors keyed by field name instead.

Text messages and social-network messages are deliberately absent: the practice's policy does
not offer them, so there is no field for them and no way to store them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat

PHONE_KINDS: dict[str, str] = {"cell": "Cell", "landline": "Landline", "work": "Work"}

VOICEMAIL_RULES: dict[str, str] = {
    "none": "No voicemail",
    "callback_only": ("Voicemail OK: your first name and a callback number only, no practice name"),
    "practice_name": "Voicemail OK: may name the practice",
    "details": "Voicemail OK: may include appointment details",
}

MAX_PHONES = 3

# Wording for the client-facing summary; it follows VOICEMAIL_RULES but reads as one sentence
# after the number, and speaks to the client rather than to staff ("your first name" in the
# staff-facing label means the clinician's first name).
_VOICEMAIL_WORDS: dict[str, str] = {
    "none": "No voicemail",
    "callback_only": "voicemail OK, first name and a callback number only, no practice name",
    "practice_name": "voicemail OK, may name the practice",
    "details": "voicemail OK, may include appointment details",
}

MAX_PHONE_CHARS = 40
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit; email-validator enforces it too.
# Longest value echoed back into the form: enough for any acceptable entry, small enough that a
# hostile post cannot inflate the re-rendered page.
_MAX_ECHO_CHARS = 300
_JSON_VERSION = 1

NO_CHANNEL_MESSAGE = "Give us at least one way to reach you: a phone number, or an email address."
INVALID_PHONE_MESSAGE = (
    "This doesn't look like a valid phone number. Include the area code, e.g. (201) 555-0123."
)
PHONE_TOO_LONG_MESSAGE = f"This phone number is too long. Use at most {MAX_PHONE_CHARS} characters."
DUPLICATE_PHONE_MESSAGE = "You already gave this phone number above. Give each number once."
KIND_MISSING_MESSAGE = "Choose what kind of phone this is."
KIND_INVALID_MESSAGE = "Choose cell, landline or work."
VOICEMAIL_MISSING_MESSAGE = "Choose whether we may leave a voicemail."
VOICEMAIL_INVALID_MESSAGE = "Choose one of the voicemail options listed."
EMAIL_TOO_LONG_MESSAGE = (
    f"This email address is too long. Use at most {MAX_EMAIL_CHARS} characters."
)
EMAIL_INVALID_MESSAGE = "This doesn't look like a valid email address."
EMAIL_WARNING_MESSAGE = (
    "Email is not fully secure. Tick the box to confirm you understand, or leave the address empty."
)
EMAIL_PURPOSE_WORDS = "scheduling and administrative matters only"


def phone_field(i: int, name: str) -> str:
    """Form field name for row ``i`` (0-based), e.g. ``phone_0_number``."""
    return f"phone_{i}_{name}"


PHONE_SUBFIELDS = ("number", "kind", "voicemail", "rank")
EMAIL_FIELDS = ("email_address", "email_rank", "email_warning_accepted")
FIELD_NAMES: tuple[str, ...] = (
    *(phone_field(i, sub) for i in range(MAX_PHONES) for sub in PHONE_SUBFIELDS),
    *EMAIL_FIELDS,
)


@dataclass(frozen=True)
class PhoneChoice:
    number_e164: str  # "+15555550101"; any extension lives only in ``display``
    display: str  # national format in the practice's region, international otherwise
    kind: str  # key of PHONE_KINDS
    voicemail: str  # key of VOICEMAIL_RULES
    rank: int

    def __post_init__(self) -> None:
        # Guards from_json and hand-built instances; parse_contact_form never trips these.
        if not (isinstance(self.number_e164, str) and self.number_e164.startswith("+")):
            raise ValueError("number_e164 must be an E.164 string")
        if not isinstance(self.display, str) or not self.display:
            raise ValueError("display must be a non-empty string")
        if self.kind not in PHONE_KINDS:
            raise ValueError(f"unknown phone kind {self.kind!r}")
        if self.voicemail not in VOICEMAIL_RULES:
            raise ValueError(f"unknown voicemail rule {self.voicemail!r}")
        _check_rank(self.rank)

    def plain_words(self) -> str:
        return f"{PHONE_KINDS[self.kind]} {self.display}: {_VOICEMAIL_WORDS[self.voicemail]}"


@dataclass(frozen=True)
class EmailChoice:
    address: str  # normalised by email-validator
    rank: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or "@" not in self.address:
            raise ValueError("address must be an email address")
        _check_rank(self.rank)

    def plain_words(self) -> str:
        return f"Email {self.address}: {EMAIL_PURPOSE_WORDS}"


@dataclass(frozen=True)
class ContactChoices:
    phones: tuple[PhoneChoice, ...]  # in rank order
    email: EmailChoice | None
    email_warning_accepted: bool  # whether the box was ticked; required when email is set

    def __post_init__(self) -> None:
        if not isinstance(self.phones, tuple) or len(self.phones) > MAX_PHONES:
            raise ValueError(f"phones must be a tuple of at most {MAX_PHONES}")
        if self.email is not None and not self.email_warning_accepted:
            raise ValueError("an email address needs the security warning accepted")
        ranks = sorted(channel.rank for channel in self._channels())
        if not ranks:
            raise ValueError("at least one channel is required")
        if ranks != list(range(1, len(ranks) + 1)):
            raise ValueError(f"ranks must be 1..{len(ranks)} without gaps, got {ranks}")

    def _channels(self) -> list[PhoneChoice | EmailChoice]:
        channels: list[PhoneChoice | EmailChoice] = list(self.phones)
        if self.email is not None:
            channels.append(self.email)
        return sorted(channels, key=lambda channel: channel.rank)

    def as_json(self) -> dict[str, Any]:
        """JSON-serialisable form for storage; keys are always in the same order."""
        return {
            "version": _JSON_VERSION,
            "phones": [
                {
                    "number_e164": phone.number_e164,
                    "display": phone.display,
                    "kind": phone.kind,
                    "voicemail": phone.voicemail,
                    "rank": phone.rank,
                }
                for phone in self.phones
            ],
            "email": (
                None
                if self.email is None
                else {"address": self.email.address, "rank": self.email.rank}
            ),
            "email_warning_accepted": self.email_warning_accepted,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContactChoices:
        """Rebuild from ``as_json`` output. Raises ValueError on malformed data."""
        try:
            version = data.get("version", _JSON_VERSION)
            if version != _JSON_VERSION:
                raise ValueError(f"unsupported contact choices version {version!r}")
            phones = tuple(
                PhoneChoice(
                    number_e164=item["number_e164"],
                    display=item["display"],
                    kind=item["kind"],
                    voicemail=item["voicemail"],
                    rank=item["rank"],
                )
                for item in data["phones"]
            )
            raw_email = data.get("email")
            email = (
                None
                if raw_email is None
                else EmailChoice(address=raw_email["address"], rank=raw_email["rank"])
            )
            accepted = data.get("email_warning_accepted", False)
            if not isinstance(accepted, bool):
                raise ValueError("email_warning_accepted must be a boolean")
            return cls(
                phones=tuple(sorted(phones, key=lambda phone: phone.rank)),
                email=email,
                email_warning_accepted=accepted,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed contact choices: {exc!r}") from exc

    def plain_words(self) -> list[str]:
        """One sentence per channel in rank order, for the client's review and the PDF."""
        words = [channel.plain_words() for channel in self._channels()]
        if self.email is None:
            words.append("No email.")
        return words


@dataclass
class ParseResult:
    choices: ContactChoices | None  # None when there are errors
    errors: dict[str, str] = field(default_factory=dict)  # field name -> message
    values: dict[str, str] = field(default_factory=dict)  # trimmed entries, to re-render

    @property
    def ok(self) -> bool:
        return self.choices is not None


def _check_rank(rank: object) -> None:
    # bool is an int subclass; True must not pass as rank 1 in stored data.
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be a positive integer, got {rank!r}")


def _read(form: Mapping[str, Any], name: str) -> str:
    """The trimmed string value of a field; anything that is not a string counts as empty."""
    try:
        value = form.get(name)
    except Exception:  # a broken Mapping must not break the page; treat as not submitted
        return ""
    return value.strip() if isinstance(value, str) else ""


def _echo(value: str) -> str:
    # Control characters (NUL and friends) are invisible and useless in a single-line input.
    cleaned = "".join(ch for ch in value if unicodedata.category(ch) != "Cc")
    return cleaned[:_MAX_ECHO_CHARS]


@dataclass
class _Channel:
    """A channel the client filled in, before ranks are settled."""

    rank_field: str
    rank_text: str
    phone: tuple[str, str, str, str] | None = None  # e164, display, kind, voicemail
    email: str | None = None
    rank: int | None = None


def _parse_phone(text: str, region: str) -> tuple[tuple[str, str, str | None] | None, str | None]:
    """Return ((e164, display, extension), None) or (None, error message)."""
    if len(text) > MAX_PHONE_CHARS:
        return None, PHONE_TOO_LONG_MESSAGE
    try:
        number = phonenumbers.parse(text, region or None)
    except NumberParseException:
        return None, INVALID_PHONE_MESSAGE
    if not phonenumbers.is_valid_number(number):
        return None, INVALID_PHONE_MESSAGE
    # Callers dial domestic numbers without the country code (this includes Canada for a US
    # practice: same +1 plan), so show those in national format and the rest internationally.
    domestic = bool(region) and number.country_code == phonenumbers.country_code_for_region(region)
    display_format = PhoneNumberFormat.NATIONAL if domestic else PhoneNumberFormat.INTERNATIONAL
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    display = phonenumbers.format_number(number, display_format)
    return (e164, display, number.extension or None), None


def _parse_email(text: str) -> tuple[str | None, str | None]:
    """Return (normalised address, None) or (None, error message)."""
    if len(text) > MAX_EMAIL_CHARS:
        return None, EMAIL_TOO_LONG_MESSAGE
    try:
        validated = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        # email-validator's explanation names the actual problem (missing @, bad domain...).
        return None, f"{EMAIL_INVALID_MESSAGE} {exc}"
    return validated.normalized, None


def _rank_range_message(n: int) -> str:
    if n == 1:
        return "Use 1, or leave the rank empty."
    return f"Use a whole number from 1 to {n}, or leave the rank empty."


def _assign_ranks(channels: list[_Channel], errors: dict[str, str]) -> None:
    """Check the ranks the client typed and fill the empty ones, so ranks end up 1..n.

    Empty ranks take the lowest free ranks in form order (phones first, then email), which
    also covers the all-empty case.
    """
    n = len(channels)
    taken: dict[int, str] = {}
    for channel in channels:
        text = channel.rank_text
        if not text:
            continue
        # isascii + isdigit rejects "-1", "1.0", "1_0" and non-ASCII digits that int() accepts.
        if not (text.isascii() and text.isdigit() and len(text) <= 3):
            errors.setdefault(channel.rank_field, _rank_range_message(n))
            continue
        rank = int(text)
        if not 1 <= rank <= n:
            errors.setdefault(channel.rank_field, _rank_range_message(n))
        elif rank in taken:
            errors.setdefault(
                channel.rank_field,
                f"Another way of reaching you already has rank {rank}. Use each rank once.",
            )
        else:
            taken[rank] = channel.rank_field
            channel.rank = rank
    free = (rank for rank in range(1, n + 1) if rank not in taken)
    for channel in channels:
        if channel.rank is None:
            channel.rank = next(free, None)


def _build(channels: Iterable[_Channel], accepted: bool) -> ContactChoices:
    phones: list[PhoneChoice] = []
    email: EmailChoice | None = None
    for channel in channels:
        assert channel.rank is not None  # only called once every rank is settled
        if channel.phone is not None:
            e164, display, kind, voicemail = channel.phone
            phones.append(PhoneChoice(e164, display, kind, voicemail, channel.rank))
        elif channel.email is not None:
            email = EmailChoice(channel.email, channel.rank)
    phones.sort(key=lambda phone: phone.rank)
    return ContactChoices(tuple(phones), email, accepted)


def parse_contact_form(form: Mapping[str, str], default_region: str = "US") -> ParseResult:
    """Validate the contact-preferences form. Never raises; see ParseResult."""
    if not isinstance(form, Mapping):
        form = {}
    region = default_region.strip().upper() if isinstance(default_region, str) else ""

    raw = {name: _read(form, name) for name in FIELD_NAMES}
    accepted = raw["email_warning_accepted"] == "yes"
    values = {name: _echo(value) for name, value in raw.items()}
    values["email_warning_accepted"] = "yes" if accepted else ""

    errors: dict[str, str] = {}
    channels: list[_Channel] = []
    seen_numbers: set[tuple[str, str | None]] = set()

    for i in range(MAX_PHONES):
        number_field = phone_field(i, "number")
        text = raw[number_field]
        if not text:
            continue  # an untouched row, even if kind or voicemail were picked
        channel = _Channel(rank_field=phone_field(i, "rank"), rank_text=raw[phone_field(i, "rank")])
        channels.append(channel)

        parsed, problem = _parse_phone(text, region)
        if problem is not None:
            errors[number_field] = problem
        elif parsed is not None:
            e164, _display, extension = parsed
            # Same line with a different extension is a different way to reach the client.
            if (e164, extension) in seen_numbers:
                errors[number_field] = DUPLICATE_PHONE_MESSAGE
            seen_numbers.add((e164, extension))

        kind_field, voicemail_field = phone_field(i, "kind"), phone_field(i, "voicemail")
        kind, voicemail = raw[kind_field], raw[voicemail_field]
        if not kind:
            errors[kind_field] = KIND_MISSING_MESSAGE
        elif kind not in PHONE_KINDS:
            errors[kind_field] = KIND_INVALID_MESSAGE
        if not voicemail:
            errors[voicemail_field] = VOICEMAIL_MISSING_MESSAGE
        elif voicemail not in VOICEMAIL_RULES:
            errors[voicemail_field] = VOICEMAIL_INVALID_MESSAGE

        if parsed is not None and not errors.keys() & {number_field, kind_field, voicemail_field}:
            channel.phone = (parsed[0], parsed[1], kind, voicemail)

    email_text = raw["email_address"]
    if email_text:
        channel = _Channel(rank_field="email_rank", rank_text=raw["email_rank"])
        channels.append(channel)
        channel.email, problem = _parse_email(email_text)
        if problem is not None:
            errors["email_address"] = problem
        # Asked even when the address is invalid, so the client sees every problem at once.
        if not accepted:
            errors["email_warning_accepted"] = EMAIL_WARNING_MESSAGE

    if not channels:
        errors["__all__"] = NO_CHANNEL_MESSAGE
        return ParseResult(choices=None, errors=errors, values=values)

    _assign_ranks(channels, errors)
    if errors:
        return ParseResult(choices=None, errors=errors, values=values)
    return ParseResult(choices=_build(channels, accepted), errors={}, values=values)
